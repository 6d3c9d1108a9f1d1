package sendmailcompat_test

import (
	"github.com/relaymail/relay/internal/testqueue"
	"strings"
	"testing"

	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/sysexits"
)

// Aliases apply at enqueue; the address as written stays as Original.
func TestEnqueueAliases(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	testqueue.WithRewrite(t, s, "")
	m, content, err := submit(t, s, []string{"-i", "ROOT", "bob@example.org"}, "To: root\nSubject: s\n\nx\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := testqueue.RecipientStates(m), "alice@example.org<ROOT>pending ops@example.org<ROOT>pending bob@example.org<>pending"; got != want {
		t.Errorf("recipients %s, want %s", got, want)
	}
	// The header is qualified, not aliased: the reader sees whom it was for.
	if !strings.Contains(content, "\nTo: root@server1.example.com\n") {
		t.Errorf("header:\n%s", testqueue.HeaderOf(content))
	}
	// -t takes header recipients through the aliases too.
	m, _, err = submit(t, s, []string{"-t"}, "To: ops\nSubject: s\n\nx\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := testqueue.RecipientStates(m); got != "ops@example.org<ops@server1.example.com>pending" {
		t.Errorf("-t: %s", got)
	}
}

// A local name with nowhere to go: exit 67, and the message is queued
// with that recipient failed, so the sender gets the bounce.
func TestEnqueueNowhereToGo(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	testqueue.WithRewrite(t, s, "")
	o, err := sendmailcompat.ParseArgs([]string{"-i", "pipe", "bob@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Enqueue(o.Message(), strings.NewReader("Subject: s\n\nx\n"))
	if err != nil {
		t.Fatalf("a message with an unroutable recipient is queued all the same: %v", err)
	}
	id, err := r.ID, r.Err()
	if sysexits.Code(err, -1) != sysexits.NoUser || id == "" {
		t.Fatalf("id %q, err %v: want an ID and exit 67", id, err)
	}
	if !strings.Contains(err.Error(), "queued as "+id) || !strings.Contains(err.Error(), `"|/usr/bin/procmail" is a command`) {
		t.Errorf("message: %v", err)
	}
	m, err := s.Spool.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	if got := testqueue.RecipientStates(m); got != "pipe@server1.example.com<pipe>failed bob@example.org<>pending" {
		t.Errorf("recipients: %s", got)
	}
	if r := m.Recipients[0].Reason(); !strings.HasPrefix(r, "550 5.1.1 <pipe>: ") {
		t.Errorf("reason %q", r)
	}
}

func TestEnqueueSenderLoginMap(t *testing.T) {
	s := testqueue.NewSubmitter(t) // user alice
	testqueue.WithRewrite(t, s, "alice: @example.org\n")
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"-f", "sales@example.org", "x@example.org"}, 0},
		{[]string{"-f", "alice", "x@example.org"}, 0}, // her own address
		{[]string{"x@example.org"}, 0},                // the default sender
		{[]string{"-f", "root", "x@example.org"}, sysexits.NoPerm},
		{[]string{"-f", "<>", "x@example.org"}, sysexits.NoPerm},
	} {
		before := len(testqueue.IDs(t, s.Spool))
		_, _, err := submit(t, s, tt.args, "Subject: s\n\nx\n")
		if code := sysexits.Code(err, 0); code != tt.code {
			t.Errorf("%v: exit %d (%v), want %d", tt.args, code, err, tt.code)
		}
		if tt.code != 0 {
			if n := len(testqueue.IDs(t, s.Spool)); n != before {
				t.Errorf("%v: refused but queued", tt.args)
			}
			if !strings.Contains(err.Error(), "user alice may not send as") {
				t.Errorf("message %v", err)
			}
		}
	}
}
