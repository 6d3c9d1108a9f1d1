package main_test

// Black-box tests of the relay binary: they build it once and run it as
// sendmail, mailq and relay, the way callers and administrators do.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/spool"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func TestSendmail_SilentOnSuccess(t *testing.T) {
	e := testbin.NewEnv(t, "")
	r := testbin.Run(e.Cmd("sendmail", "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"),
		"From: root (Cron Daemon)\nTo: root\nSubject: test\n\nhello\n")
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Fatalf("exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if n := len(e.Messages()); n != 1 {
		t.Fatalf("%d messages queued", n)
	}
}

// Bad arguments and bad input through the real binary: the exit code, one
// line on stderr naming the problem, and nothing half-written.
func TestSendmail_Refusals(t *testing.T) {
	tests := []struct {
		name  string
		prog  string
		args  []string
		conf  string // extra configuration
		input string
		code  int
		msg   string
	}{
		{"unknown flag", "sendmail", []string{"-z", "a@example.org"}, "", "x\n", 64, "unknown option -z"},
		{"dash recipient", "sendmail", []string{"--", "-oQ/tmp"}, "", "x\n", 64, "begins with '-'"},
		{"header injection in -f", "sendmail", []string{"-f", "a@b\nBcc: x@y", "c@d.example"}, "", "x\n", 64, "line break"},
		{"header injection in -F", "sendmail", []string{"-F", "N\r\nBcc: x@y", "c@d.example"}, "", "x\n", 64, "line break"},
		{"no recipients", "sendmail", []string{"-i"}, "", "x\n", 64, "no recipients given"},
		{"-t finds none", "sendmail", []string{"-t"}, "", "Subject: s\n\nx\n", 65, "no recipient addresses"},
		{"too large", "sendmail", []string{"-i", "a@example.org"}, "max_message_size = \"1KB\"\n", strings.Repeat("x", 5000), 65, "max_message_size"},
		{"below min_free_space", "sendmail", []string{"-i", "a@example.org"}, "min_free_space = \"1000000GB\"\n", "x\n", 75, "below min_free_space"},
		{"queue: bad ID", "relay", []string{"queue", "show", "../../etc/passwd"}, "", "", 64, "not a queue ID"},
		{"queue: unknown ID", "relay", []string{"queue", "delete", "1K0WJ59K813RZ4B"}, "", "", 66, "no such message"},
		{"relay: unknown command", "relay", []string{"frobnicate"}, "", "", 64, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testbin.NewEnv(t, tt.conf)
			os.MkdirAll(e.Spool, 0o700)
			spool.Create(e.Spool)
			r := testbin.Run(e.Cmd(tt.prog, tt.args...), tt.input)
			if r.Code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.Code, tt.code, r.Stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
			if !strings.Contains(r.Stderr, tt.msg) || (len(lines) != 1 && tt.code != 78) {
				t.Errorf("stderr %q: want one line containing %q", r.Stderr, tt.msg)
			}
			if r.Stdout != "" {
				t.Errorf("stdout %q", r.Stdout)
			}
			left, _ := filepath.Glob(filepath.Join(e.Spool, "*", "*"))
			if len(left) != 0 {
				t.Errorf("left in the spool: %v", left)
			}
		})
	}
}

// A configuration with errors never costs a submitted message (SPEC
// section 12): sendmail queues it and says nothing, exit 0; relay check
// names the error (exit 78). daemon/brokenconfig_test.go follows such
// mail to its delivery after the fix.
func TestSendmail_BrokenConfigurationQueues(t *testing.T) {
	for _, tt := range []struct{ name, conf, msg string }{
		{"broken configuration", "smarthost = 3\n", "relay.toml"},
		{"unknown key", "spoool = \"/x\"\n", `spoool: unknown key; did you mean "spool"?`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// No detached runner: it would still be writing the spool
			// when the test removes it.
			e := testbin.NewEnv(t, tt.conf+"[daemon]\ndetached_delivery = false\n")
			r := testbin.Run(e.Cmd("sendmail", "a@example.org"), "x\n")
			if r.Code != 0 || r.Stderr != "" || r.Stdout != "" {
				t.Errorf("sendmail: exit %d, stdout %q, stderr %q; want 0 and silence", r.Code, r.Stdout, r.Stderr)
			}
			if n := len(e.Messages()); n != 1 {
				t.Errorf("%d messages queued, want 1", n)
			}
			r = testbin.Run(e.Cmd("relay", "check"), "")
			if r.Code != 78 || !strings.Contains(r.Stderr, tt.msg) {
				t.Errorf("relay check: exit %d, stderr %q; want 78 naming %q", r.Code, r.Stderr, tt.msg)
			}
		})
	}
}

func TestSendmail_Flush(t *testing.T) {
	e := testbin.NewEnv(t, "")
	if r := testbin.Run(e.Cmd("sendmail", "-i", "a@example.org"), "x\n"); r.Code != 0 {
		t.Fatal(r)
	}
	sp := e.Open()
	ids, _ := sp.IDs()
	later := time.Now().Add(time.Hour)
	sp.Change(ids[0], time.Second, func(env *spool.Envelope) bool { env.NextAttempt = later; env.Attempts = 1; return true })
	if r := testbin.Run(e.Cmd("sendmail", "-q"), ""); r.Code != 0 || r.Stderr != "" {
		t.Fatal(r)
	}
	m, _ := sp.Read(ids[0])
	if m.NextAttempt.After(time.Now()) {
		t.Errorf("next attempt still %v after sendmail -q", m.NextAttempt)
	}
}
