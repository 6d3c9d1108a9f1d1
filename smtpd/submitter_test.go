package smtpd_test

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

// The Submitter every session queues through, and how to read back what
// it queued.

var testNow = time.Date(2026, 11, 22, 21, 42, 28, 0, time.UTC)

func newSubmitter(t *testing.T) *sendmailcompat.Submitter {
	t.Helper()
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	return &sendmailcompat.Submitter{
		Spool: sp, Domain: "server1.example.com", Hostname: "server1",
		UID: 1000, User: "alice", Gecos: "Alice Liddell",
		MaxMessageSize: 1 << 20,
		Now:            func() time.Time { return testNow },
	}
}

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

func spoolIDs(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	ids, err := sp.IDs()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func readQueued(t *testing.T, sp *spool.Spool, id string) (*spool.Message, string) {
	t.Helper()
	m, err := sp.Read(id)
	if err != nil {
		t.Fatalf("queue ID %s named in the reply: %v", id, err)
	}
	f, err := sp.OpenContent(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return m, string(b)
}

func addresses(m *spool.Message) []string {
	var out []string
	for _, r := range m.Recipients {
		out = append(out, r.Address)
	}
	return out
}

func recipientStates(m *spool.Message) string {
	var out []string
	for _, r := range m.Recipients {
		out = append(out, r.Address+"<"+r.Original+">"+string(r.Status))
	}
	return strings.Join(out, " ")
}

// headerOf returns the header section of a queued message, unfolded lines.
func headerOf(content string) string {
	i := strings.Index(content, "\n\n")
	if j := strings.Index(content, "\r\n\r\n"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return content
	}
	return content[:i+1]
}

func bodyOf(content string) string {
	if i := strings.Index(content, "\r\n\r\n"); i >= 0 && !strings.Contains(content[:i], "\n\n") {
		return content[i+4:]
	}
	if i := strings.Index(content, "\n\n"); i >= 0 {
		return content[i+2:]
	}
	return ""
}
