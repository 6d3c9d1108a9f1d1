// Package testqueue is the intake fixture that the tests of sendmailcompat
// (the command line) and smtpd (SMTP sessions) share: a Submitter over a
// spool of the test's own, with a fixed clock and, on request, an alias
// file and a sender_login_map, and the ways to read back what it queued.
// It is imported by _test.go files only.
package testqueue

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
)

// Now is the Submitter's clock: Date and Received fields are reproducible.
var Now = time.Date(2026, 11, 22, 21, 42, 28, 0, time.UTC)

// NewSubmitter is user alice (uid 1000, "Alice Liddell") on host server1
// of server1.example.com, queueing into a new spool in the test's
// directory, with a 1 MiB message size limit.
func NewSubmitter(t testing.TB) *sendmailcompat.Submitter {
	t.Helper()
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	return &sendmailcompat.Submitter{
		Spool: sp, Domain: "server1.example.com", Hostname: "server1",
		UID: 1000, User: "alice", Gecos: "Alice Liddell",
		MaxMessageSize: 1 << 20,
		Now:            func() time.Time { return Now },
	}
}

// Aliases is the alias file WithRewrite gives: a list, a recursion, and a
// command that relay cannot serve.
const Aliases = `root: alice@example.org, ops
ops: ops@example.org
pipe: "|/usr/bin/procmail"
`

// WithRewrite gives s the alias file Aliases and, when logins is not
// empty, that sender_login_map.
func WithRewrite(t testing.TB, s *sendmailcompat.Submitter, logins string) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Domain = s.Domain
	cfg.Rewrite.Aliases = filepath.Join(dir, "aliases")
	if err := os.WriteFile(cfg.Rewrite.Aliases, []byte(Aliases), 0o644); err != nil {
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

// IDs lists the queue.
func IDs(t testing.TB, sp *spool.Spool) []string {
	t.Helper()
	ids, err := sp.IDs()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// Read returns queued message id: its envelope and its content as stored.
func Read(t testing.TB, sp *spool.Spool, id string) (*spool.Message, string) {
	t.Helper()
	m, err := sp.Read(id)
	if err != nil {
		t.Fatalf("queue ID %s: %v", id, err)
	}
	f, err := sp.OpenContent(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return m, string(b)
}

// Addresses lists m's recipients in envelope order.
func Addresses(m *spool.Message) []string {
	var out []string
	for _, r := range m.Recipients {
		out = append(out, r.Address)
	}
	return out
}

// RecipientStates is m's recipients as one line: each address, the
// address as given in <>, and its status.
func RecipientStates(m *spool.Message) string {
	var out []string
	for _, r := range m.Recipients {
		out = append(out, r.Address+"<"+r.Original+">"+string(r.Status))
	}
	return strings.Join(out, " ")
}

// HeaderOf returns the header section of a queued message's content (up
// to the first empty line, LF or CRLF), ending with its last line end.
func HeaderOf(content string) string {
	i := strings.Index(content, "\n\n")
	if j := strings.Index(content, "\r\n\r\n"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return content
	}
	return content[:i+1]
}

// BodyOf returns the body of a queued message's content: what follows
// the first empty line (CRLF or LF); "" without one.
func BodyOf(content string) string {
	if i := strings.Index(content, "\r\n\r\n"); i >= 0 && !strings.Contains(content[:i], "\n\n") {
		return content[i+4:]
	}
	if i := strings.Index(content, "\n\n"); i >= 0 {
		return content[i+2:]
	}
	return ""
}
