package smtpd_test

import (
	"bytes"
	"errors"
	"github.com/relaymail/relay/internal/testqueue"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaymail/relay/smtpd"
)

// Refusals at each step: the code, and nothing queued for the refused.
func TestSMTP_Refusals(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("MAIL FROM:<a@example.org>", 250) // HELO is not required (Postfix neither)
	c.cmd("RSET", 250)
	c.cmd("EHLO client", 250)
	c.cmd("RCPT TO:<b@example.org>", 503) // no MAIL
	c.cmd("DATA", 503)
	c.cmd("MAIL FROM:<a@b@c>", 501)
	c.cmd("MAIL FROM:<a@example.org (comment)>", 501)
	c.cmd("MAIL FROM:a@example.org BODY=BINARYMIME", 501)
	c.cmd("MAIL FROM:<a@example.org> SMTPUTF8", 555)
	c.cmd("MAIL FROM:<a@example.org> ENVID=a+2", 501)
	c.cmd("MAIL FROM:<a@example.org> SIZE=2000000", 552) // over max_message_size
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("MAIL FROM:<a@example.org>", 503) // nested
	c.cmd("DATA", 503)                      // no RCPT: go-smtp would say 502
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatal(err)
	}

	// A new session: 20 errors end one.
	c = startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	for _, bad := range []string{"<a@b@c>", "<a b@example.org>", "<>", "<-oQ/tmp@example.org>", "<-x>", "<a@example.org", "<a@example.org>junk", "<a@exa mple.org>", "<b@example.org (comment)>", "<b@example.org, c@example.org>"} {
		c.cmd("RCPT TO:"+bad, 501)
	}
	c.cmd("RCPT TO:<b@example.org> NOTIFY=NEVER,SUCCESS", 501)
	c.cmd("RCPT TO:<b@example.org> FOO=1", 555)
	c.cmd("RCPT TO:<b@example.org>", 250)
	c.cmd("DATA extra", 501)
	c.cmd("AUTH PLAIN AGFsaWNlAHg=", 502)
	c.cmd("STARTTLS", 502)
	c.cmd("BDAT 10 LAST", 502)
	c.cmd("FROB", 500)
	c.cmd("DATA", 354) // the transaction survived the errors
	c.write("Subject: ok\r\n\r\nfine\r\n.\r\n")
	id := queuedID(t, c.expect(250, "end of DATA"))
	c.cmd("RCPT TO:<b@example.org>", 503) // DATA ended the transaction
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	if ids := testqueue.IDs(t, s.Spool); !slices.Equal(ids, []string{id}) {
		t.Fatalf("spool %v, want only %s", ids, id)
	}
}

// A message over max_message_size: 552 after the data, nothing queued, and
// the session goes on.
func TestSMTP_TooLarge(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	s.MaxMessageSize = 1000
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	c.cmd("DATA", 354)
	c.write("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 100) + ".\r\n")
	if text := c.expect(552, "end of a large DATA"); !strings.HasPrefix(text, "5.3.4 ") {
		t.Errorf("552 %q, want enhanced code 5.3.4", text)
	}
	if ids := testqueue.IDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v after 552", ids)
	}
	// Exactly the limit is accepted, as with sendmail on the command line.
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	c.cmd("DATA", 354)
	head := "Subject: fits\r\n\r\n"
	c.write(head + strings.Repeat("y", 1000-len(head)-2) + "\r\n.\r\n")
	id := queuedID(t, c.expect(250, "end of DATA of exactly the limit"))
	c.cmd("QUIT", 221)
	c.end()
	if ids := testqueue.IDs(t, s.Spool); !slices.Equal(ids, []string{id}) {
		t.Fatalf("spool %v, want %s", ids, id)
	}
}

// A spool without room: 452 at MAIL when it is already full, 451 at the
// end of DATA when it fills during the transaction, and nothing queued.
// A header line no SMTP server may take and relay cannot fold (a
// Message-ID over 998 octets) is refused for good after the dot, as
// sendmail refuses it with 65; the session goes on.
func TestSMTP_UnsendableHeader(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	c.cmd("DATA", 354)
	c.write("Message-ID: <" + strings.Repeat("m", 1200) + "@example.org>\r\n\r\nbody\r\n.\r\n")
	if text := c.expect(554, "end of DATA with an unfoldable Message-ID"); !strings.HasPrefix(text, "5.6.0 ") || !strings.Contains(text, "Message-ID") {
		t.Errorf("554 %q, want 5.6.0 naming the field", text)
	}
	if ids := testqueue.IDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v after 554", ids)
	}
	c.cmd("QUIT", 221)
	c.end()
}

func TestSMTP_SpoolFull(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	// The disk fills now (the server reads the field only after our next
	// write: the pipes order it).
	s.MinFreeSpace = 1 << 62
	c.cmd("DATA", 354)
	c.write("Subject: full\r\n\r\n" + strings.Repeat("z\r\n", 1000) + ".\r\n")
	if text := c.expect(451, "end of DATA on a full spool"); !strings.HasPrefix(text, "4.3.0 ") || !strings.Contains(text, "min_free_space") {
		t.Errorf("451 %q, want 4.3.0 and the reason", text)
	}
	c.cmd("MAIL FROM:<a@example.org>", 452)
	c.cmd("RCPT TO:<b@example.org>", 503)
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatalf("a refused message is no failure of the session: %v", err)
	}
	if ids := testqueue.IDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v on a full spool", ids)
	}
}

// relay's own failure to write the queue is temporary: 451, never 5xx.
func TestSMTP_SpoolBroken(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	if err := os.RemoveAll(filepath.Join(s.Spool.Dir, "tmp")); err != nil {
		t.Fatal(err)
	}
	c.cmd("DATA", 354)
	c.write("Subject: x\r\n\r\nx\r\n.\r\n")
	c.expect(451, "end of DATA with the spool's tmp/ gone")
	c.cmd("QUIT", 221)
	c.end()
	if ids := testqueue.IDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v", ids)
	}
}

func TestSMTP_TooManyErrors(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.write(strings.Repeat("BOGUS\r\n", 25))
	for i := 0; i < 20; i++ {
		c.expect(500, "BOGUS")
	}
	c.expect(421, "too many errors")
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	c.expectEOF()
}

// A line longer than any command is refused without ending the session.
func TestSMTP_LongCommandLine(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("NOOP "+strings.Repeat("x", 100<<10), 500)
	c.cmd("NOOP", 250)
	c.cmd("QUIT", 221)
	c.end()
}

func TestRefuseSession(t *testing.T) {
	var out bytes.Buffer
	smtpd.RefuseSession(&out, errors.New("spool:\n  disk full"))
	if out.String() != "421 4.3.0 relay cannot accept mail: spool: disk full\r\n" {
		t.Errorf("greeting %q", out.String())
	}
}
