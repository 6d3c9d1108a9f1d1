package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
)

// testConfig loads a configuration whose spool is in a fresh directory
// (not created) and whose smarthost is 127.0.0.1:port without TLS (port
// 0: no smarthost). Nothing of the host's is read: the domain is given,
// no alias file.
func testConfig(t *testing.T, port int, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.toml")
	writeConfig(t, path, filepath.Join(dir, "spool"), port, extra)
	cfg, err := config.Load(config.Location{Path: path, Required: true})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// writeConfig writes the configuration testConfig loads to path: spool,
// the smarthost 127.0.0.1:port (0: none), extra TOML.
func writeConfig(t *testing.T, path, spoolDir string, port int, extra string) {
	t.Helper()
	text := fmt.Sprintf("spool = %q\ndomain = \"example.com\"\n%s\n[rewrite]\naliases = \"\"\n", spoolDir, extra)
	if port > 0 {
		text += fmt.Sprintf("\n[[smarthost]]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\n", port)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reloader reads cfg's file again, as relay daemon does on SIGHUP.
func reloader(cfg *config.Config) func() (*config.Config, error) {
	return func() (*config.Config, error) {
		return config.Load(config.Location{Path: cfg.Path, Required: true})
	}
}

// createSpool makes the configured spool, with a maildrop when asked (a
// system install's, as far as the pickup cares).
func createSpool(t *testing.T, cfg *config.Config, maildrop bool) *spool.Spool {
	t.Helper()
	sp, err := spool.Create(cfg.Spool)
	if err != nil {
		t.Fatal(err)
	}
	if maildrop {
		if err := os.Mkdir(filepath.Join(cfg.Spool, "maildrop"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return sp
}

// submit queues a message with Message-ID msgID as sendmail would (into
// the maildrop with drop set) and returns its queue ID.
func submit(t *testing.T, sp *spool.Spool, msgID string, drop bool) string {
	t.Helper()
	return enqueue(t, sp, msgID, "body\n", drop)
}

// submitBody queues a message with Message-ID msgID and body.
func submitBody(t *testing.T, sp *spool.Spool, msgID, body string) string {
	t.Helper()
	return enqueue(t, sp, msgID, body, false)
}

func enqueue(t *testing.T, sp *spool.Spool, msgID, body string, drop bool) string {
	t.Helper()
	s := &sendmailcompat.Submitter{Spool: sp, Domain: "example.com", Hostname: "host.example.com",
		UID: os.Getuid(), User: "tester", Now: time.Now, Drop: drop}
	o, err := sendmailcompat.ParseArgs([]string{"-i", "-f", "tester@example.com", "rcpt@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Enqueue(o.Message(), strings.NewReader("Message-ID: <"+msgID+">\nSubject: test\n\n"+body))
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func queueLen(t *testing.T, sp *spool.Spool) int {
	t.Helper()
	ids, err := sp.IDs()
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}
