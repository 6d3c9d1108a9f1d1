package rewrite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

func TestNewaliases(t *testing.T) {
	cfg := config.Default()
	cfg.Domain = "server1.example.com"

	cfg.Rewrite.Aliases = ""
	if lines := Newaliases(cfg); len(lines) != 0 {
		t.Errorf("no alias file: %q", lines)
	}

	cfg.Rewrite.Aliases = writeFile(t, "aliases", "root: alice@example.org\nno colon here\n")
	lines := Newaliases(cfg)
	if len(lines) != 1 || lines[0] != cfg.Rewrite.Aliases+`:2: warning: "no colon here": no colon: an entry is "name: address, address…"` {
		t.Errorf("a bad line: %q, want one warning with file:line", lines)
	}

	cfg.Rewrite.Aliases = writeFile(t, "aliases", "root: alice@example.org\n")
	if lines := Newaliases(cfg); len(lines) != 0 {
		t.Errorf("a good file: %q", lines)
	}

	// A file that exists but cannot be read: one warning, no error.
	dir := filepath.Join(t.TempDir(), "aliases")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.Rewrite.Aliases = dir
	lines = Newaliases(cfg)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "warning: ") {
		t.Errorf("an unreadable file: %q, want one warning", lines)
	}
}
