package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/spool"
)

// relay import through the binary: the exit codes of bad input, --write
// and --force, and --queue into the configured spool.
func TestImport_Command(t *testing.T) {
	e := testbin.NewEnv(t, "")
	src := filepath.Join(e.Dir, "nullmailer")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "remotes"), []byte("smtp.example.com smtp --port=587 --starttls --user=robot --pass=pw-1\n"), 0o600)
	os.WriteFile(filepath.Join(src, "me"), []byte("host1.example.com\n"), 0o644)

	r := testbin.Run(e.Cmd("relay", "import", "nullmailer", src), "")
	if r.Code != 0 || !strings.Contains(r.Stdout, `host = "smtp.example.com"`) || strings.Contains(r.Stdout, "pw-1") ||
		!strings.Contains(r.Stderr, "remotes:1: smtp.example.com smtp: mapped") || !strings.Contains(r.Stderr, "not written (use --write DIR): smtp.example.com.secret") {
		t.Fatalf("print: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}

	out := filepath.Join(e.Dir, "etc-relay")
	r = testbin.Run(e.Cmd("relay", "import", "nullmailer", src, "--write", out), "")
	if r.Code != 0 || r.Stdout != "" {
		t.Fatalf("--write: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "smtp.example.com.secret")); string(b) != "pw-1\n" {
		t.Errorf("secret %q", b)
	}
	r = testbin.Run(e.Cmd("relay", "import", "nullmailer", src, "--write="+out), "")
	if r.Code != 73 || !strings.Contains(r.Stderr, "exists: nothing written (--force replaces it)") {
		t.Errorf("again without --force: exit %d %q", r.Code, r.Stderr)
	}
	r = testbin.Run(e.Cmd("relay", "import", "nullmailer", src, "--write", out, "--force"), "")
	if r.Code != 0 {
		t.Errorf("--force: exit %d %q", r.Code, r.Stderr)
	}
	// The written configuration loads: relay check reads it.
	if r := testbin.Run(e.Cmd("relay", "-C", filepath.Join(out, "relay.toml"), "rewrite", "root"), ""); r.Code != 0 {
		t.Errorf("the imported relay.toml: exit %d %q", r.Code, r.Stderr)
	}

	os.WriteFile(filepath.Join(src, "remotes"), []byte("smtp.example.com\n"), 0o600)
	r = testbin.Run(e.Cmd("relay", "import", "nullmailer", src), "")
	if r.Code != 65 || r.Stdout != "" || !strings.Contains(r.Stderr, filepath.Join(src, "remotes")+":1: ") {
		t.Errorf("malformed: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	r = testbin.Run(e.Cmd("relay", "import", "msmtp", filepath.Join(e.Dir, "none")), "")
	if r.Code != 66 {
		t.Errorf("missing: exit %d %q", r.Code, r.Stderr)
	}
	for _, args := range [][]string{{"import"}, {"import", "exim"}, {"import", "dma", "--frobnicate"}, {"import", "ssmtp", "--queue"}} {
		if r := testbin.Run(e.Cmd("relay", args...), ""); r.Code != 64 && !(args[1] == "ssmtp" && r.Code == 66) {
			t.Errorf("%v: exit %d %q", args, r.Code, r.Stderr)
		}
	}

	// --queue: the queue moves into the configured spool.
	os.WriteFile(filepath.Join(src, "remotes"), []byte("smtp.example.com smtp --starttls\n"), 0o600)
	if _, err := spool.Create(e.Spool); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(e.Dir, "queue")
	os.Mkdir(q, 0o700)
	os.WriteFile(filepath.Join(q, "1.1"), []byte("alice@example.com\nbob@example.net\n\nSubject: hi\n\nbody\n"), 0o600)
	os.WriteFile(filepath.Join(q, "1.2"), []byte("garbage"), 0o600)
	r = testbin.Run(e.Cmd("relay", "import", "nullmailer", src, "--queue-dir", q), "")
	if r.Code != 65 || !strings.Contains(r.Stderr, "1 message(s) moved") || !strings.Contains(r.Stderr, "1.2: left in place") {
		t.Errorf("--queue: exit %d %q", r.Code, r.Stderr)
	}
	msgs := e.Messages()
	if len(msgs) != 1 {
		t.Fatalf("queued %v", msgs)
	}
	for _, m := range msgs {
		if m.Sender != "alice@example.com" || len(m.Recipients) != 1 || m.Recipients[0].Address != "bob@example.net" {
			t.Errorf("queued %+v", m.Envelope)
		}
	}
}
