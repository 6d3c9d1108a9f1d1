package smtpd_test

import (
	"github.com/relaymail/relay/internal/testqueue"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/relaymail/relay/spool"
)

// The null sender, bare names qualified as on the command line, quoted
// local parts kept, BODY and the DSN parameters recorded.
func TestSMTP_EnvelopeParameters(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<> BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 SIZE=100", 250)
	c.cmd("RCPT TO:<bob> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob", 250)
	c.cmd(`RCPT TO:<"john doe"@example.org> NOTIFY=failure,success`, 250)
	c.cmd("DATA", 354)
	c.write("Subject: dsn\r\n\r\nhi\r\n.\r\n")
	id := queuedID(t, c.expect(250, "end of DATA"))
	// Unqualified sender; RFC 5321 source route dropped; no NOTIFY.
	c.cmd("MAIL FROM:<root> BODY=7bit", 250)
	c.cmd("RCPT TO:<@relay.example:eve@example.org>", 250)
	c.cmd("DATA", 354)
	c.write("Subject: plain\r\n\r\nhi\r\n.\r\n")
	id2 := queuedID(t, c.expect(250, "end of DATA"))
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatal(err)
	}

	m, _ := testqueue.Read(t, s.Spool, id)
	if m.Sender != "" {
		t.Errorf("sender %q, want the null sender", m.Sender)
	}
	if got, want := testqueue.Addresses(m), []string{"bob@server1.example.com", `"john doe"@example.org`}; !slices.Equal(got, want) {
		t.Errorf("recipients %q, want %q", got, want)
	}
	if m.Recipients[0].Original != "bob" {
		t.Errorf("bob's original address %q, want \"bob\"", m.Recipients[0].Original)
	}
	if m.Body != "8BITMIME" {
		t.Errorf("body %q, want 8BITMIME", m.Body)
	}
	if want := (spool.DSN{Notify: []string{"SUCCESS", "FAILURE"}, Ret: "HDRS", EnvID: "QQ+1"}); !slices.Equal(m.DSN.Notify, want.Notify) || m.DSN.Ret != want.Ret || m.DSN.EnvID != want.EnvID {
		t.Errorf("DSN %+v, want %+v", m.DSN, want)
	}
	m2, _ := testqueue.Read(t, s.Spool, id2)
	if m2.Sender != "root@server1.example.com" || !slices.Equal(testqueue.Addresses(m2), []string{"eve@example.org"}) {
		t.Errorf("second envelope: sender %q recipients %q", m2.Sender, testqueue.Addresses(m2))
	}
	if m2.Body != "7BIT" || m2.DSN.Notify != nil || m2.DSN.Ret != "" || m2.DSN.EnvID != "" {
		t.Errorf("second envelope: body %q DSN %+v, want 7BIT and no DSN", m2.Body, m2.DSN)
	}
}

// Recipients asking for different notifications: the queue keeps one
// NOTIFY per message, and nobody loses a notice they asked for.
func TestSMTP_NotifyMerged(t *testing.T) {
	for _, tt := range []struct {
		notify []string // per recipient; "" for none
		want   []string
	}{
		{[]string{"NEVER", "NEVER"}, []string{"NEVER"}},
		{[]string{"", ""}, nil},
		{[]string{"SUCCESS", "NEVER"}, []string{"SUCCESS"}},
		{[]string{"SUCCESS", ""}, []string{"SUCCESS", "DELAY", "FAILURE"}},
		{[]string{"NEVER", "FAILURE"}, []string{"FAILURE"}},
	} {
		s := testqueue.NewSubmitter(t)
		c := startSMTP(t, s, 0)
		c.expect(220, "connect")
		c.cmd("EHLO client", 250)
		c.cmd("MAIL FROM:<a@example.org>", 250)
		for i, n := range tt.notify {
			line := "RCPT TO:<r" + strconv.Itoa(i) + "@example.org>"
			if n != "" {
				line += " NOTIFY=" + n
			}
			c.cmd(line, 250)
		}
		c.cmd("DATA", 354)
		c.write("\r\nx\r\n.\r\n")
		m, _ := testqueue.Read(t, s.Spool, queuedID(t, c.expect(250, "end of DATA")))
		if !slices.Equal(m.DSN.Notify, tt.want) {
			t.Errorf("NOTIFY %q: queued %q, want %q", tt.notify, m.DSN.Notify, tt.want)
		}
		c.cmd("QUIT", 221)
		c.end()
	}
}

func TestSMTP_Rewriting(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	testqueue.WithRewrite(t, s, "alice: @example.org\n")
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("HELO client", 250)
	if text := c.cmd("MAIL FROM:<root@server1.example.com>", 553); !strings.Contains(text, "may not send as root@server1.example.com") {
		t.Errorf("553 text %q", text)
	}
	c.cmd("MAIL FROM:<sales@example.org>", 250)
	if text := c.cmd("RCPT TO:<pipe>", 550); !strings.Contains(text, "is a command") {
		t.Errorf("550 text %q", text)
	}
	c.cmd("RCPT TO:<root>", 250)
	c.cmd("DATA", 354)
	id := queuedID(t, c.cmd("Subject: s\r\n\r\nx\r\n.", 250))
	c.cmd("QUIT", 221)
	m, _ := testqueue.Read(t, s.Spool, id)
	if got := testqueue.RecipientStates(m); got != "alice@example.org<root>pending ops@example.org<root>pending" {
		t.Errorf("recipients %s", got)
	}
}
