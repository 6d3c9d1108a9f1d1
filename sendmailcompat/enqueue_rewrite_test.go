package sendmailcompat_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

const testAliases = `root: alice@example.org, ops
ops: ops@example.org
pipe: "|/usr/bin/procmail"
`

// withRewrite gives s the alias file above and a sender_login_map.
func withRewrite(t *testing.T, s *sendmailcompat.Submitter, logins string) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Domain = s.Domain
	cfg.Rewrite.Aliases = filepath.Join(dir, "aliases")
	if err := os.WriteFile(cfg.Rewrite.Aliases, []byte(testAliases), 0o644); err != nil {
		t.Fatal(err)
	}
	if logins != "" {
		cfg.Rewrite.SenderLoginMap = filepath.Join(dir, "logins")
		if err := os.WriteFile(cfg.Rewrite.SenderLoginMap, []byte(logins), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.Rewrite = rewrite.Load(cfg, s.Hostname)
	if err := s.Rewrite.Err(); err != nil {
		t.Fatal(err)
	}
}

func recipientStates(m *spool.Message) string {
	var out []string
	for _, r := range m.Recipients {
		out = append(out, r.Address+"<"+r.Original+">"+string(r.Status))
	}
	return strings.Join(out, " ")
}

// Aliases apply at enqueue; the address as written stays as Original.
func TestEnqueueAliases(t *testing.T) {
	s := newSubmitter(t)
	withRewrite(t, s, "")
	m, content, err := submit(t, s, []string{"-i", "ROOT", "bob@example.org"}, "To: root\nSubject: s\n\nx\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := recipientStates(m), "alice@example.org<ROOT>pending ops@example.org<ROOT>pending bob@example.org<>pending"; got != want {
		t.Errorf("recipients %s, want %s", got, want)
	}
	// The header is qualified, not aliased: the reader sees whom it was for.
	if !strings.Contains(content, "\nTo: root@server1.example.com\n") {
		t.Errorf("header:\n%s", headerOf(content))
	}
	// -t takes header recipients through the aliases too.
	m, _, err = submit(t, s, []string{"-t"}, "To: ops\nSubject: s\n\nx\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := recipientStates(m); got != "ops@example.org<ops@server1.example.com>pending" {
		t.Errorf("-t: %s", got)
	}
}

// A local name with nowhere to go: exit 67, and the message is queued
// with that recipient failed, so the sender gets the bounce.
func TestEnqueueNowhereToGo(t *testing.T) {
	s := newSubmitter(t)
	withRewrite(t, s, "")
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
	if got := recipientStates(m); got != "pipe@server1.example.com<pipe>failed bob@example.org<>pending" {
		t.Errorf("recipients: %s", got)
	}
	if r := m.Recipients[0].Reason(); !strings.HasPrefix(r, "550 5.1.1 <pipe>: ") {
		t.Errorf("reason %q", r)
	}
}

func TestEnqueueSenderLoginMap(t *testing.T) {
	s := newSubmitter(t) // user alice
	withRewrite(t, s, "alice: @example.org\n")
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
		before := len(spoolIDs(t, s.Spool))
		_, _, err := submit(t, s, tt.args, "Subject: s\n\nx\n")
		if code := sysexits.Code(err, 0); code != tt.code {
			t.Errorf("%v: exit %d (%v), want %d", tt.args, code, err, tt.code)
		}
		if tt.code != 0 {
			if n := len(spoolIDs(t, s.Spool)); n != before {
				t.Errorf("%v: refused but queued", tt.args)
			}
			if !strings.Contains(err.Error(), "user alice may not send as") {
				t.Errorf("message %v", err)
			}
		}
	}
}
