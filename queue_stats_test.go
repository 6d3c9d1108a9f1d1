package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/spool"
)

// relay queue check speaks the monitoring plugins' exit codes, not
// sysexits: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for a bad
// argument); one line on stdout.
func TestQueueCheck_PluginExitCodes(t *testing.T) {
	e := testbin.NewEnv(t, "[daemon]\ndetached_delivery = false\n")
	check := func(args ...string) testbin.Result {
		return testbin.Run(e.Cmd("relay", append([]string{"queue", "check"}, args...)...), "")
	}
	if r := check(); r.Code != 0 || !strings.HasPrefix(r.Stdout, "RELAY QUEUE OK: 0 waiting") {
		t.Errorf("empty queue: %+v", r)
	}
	for i := range 3 {
		if r := testbin.Run(e.Cmd("sendmail", "-i", "ops@example.org"), "Subject: "+string(rune('a'+i))+"\n\nx\n"); r.Code != 0 {
			t.Fatal(r)
		}
	}
	cases := []struct {
		args []string
		code int
		text string
	}{
		{nil, 0, "RELAY QUEUE OK: 3 waiting, 0 held"},
		{[]string{"--warn-count", "3"}, 1, "RELAY QUEUE WARNING: 3 messages waiting (warning at 3)"},
		{[]string{"--warn-count", "2", "--crit-count", "3"}, 2, "RELAY QUEUE CRITICAL: 3 messages waiting (critical at 3)"},
		{[]string{"--warn-age", "0s", "--crit-age", "1ns"}, 2, "RELAY QUEUE CRITICAL: oldest waiting"},
		{[]string{"--warn-count"}, 3, "RELAY QUEUE UNKNOWN: --warn-count needs a value"},
		{[]string{"--warn-age", "soon"}, 3, "RELAY QUEUE UNKNOWN: --warn-age takes a duration"},
		{[]string{"--held", "maybe"}, 3, "RELAY QUEUE UNKNOWN: --held takes ok, warning or critical"},
	}
	for _, c := range cases {
		r := check(c.args...)
		if r.Code != c.code || !strings.HasPrefix(r.Stdout, c.text) || strings.Count(r.Stdout, "\n") != 1 {
			t.Errorf("check %q: exit %d, %q; want %d and %q", c.args, r.Code, r.Stdout, c.code, c.text)
		}
	}
	// Held mail is critical by default.
	sp := e.Open()
	ids, _ := sp.IDs()
	if r := testbin.Run(e.Cmd("relay", "queue", "hold", ids[0]), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := check(); r.Code != 2 || !strings.Contains(r.Stdout, "1 held") || !strings.Contains(r.Stdout, "| waiting=2;10;100;0 ") {
		t.Errorf("held: %+v", r)
	}
	// The usage says it, since its codes differ from every other command's.
	if r := testbin.Run(e.Cmd("relay", "queue", "--help"), ""); !strings.Contains(r.Stdout, "NOT sysexits") {
		t.Errorf("relay queue --help does not say check's codes are not sysexits:\n%s", r.Stdout)
	}
}

func TestQueueStats_CommandLine(t *testing.T) {
	e := testbin.NewEnv(t, "[daemon]\ndetached_delivery = false\n[[smarthost]]\nname = \"main\"\nhost = \"smtp.example.org\"\n")
	for _, to := range []string{"a@example.org", "b@example.net"} {
		if r := testbin.Run(e.Cmd("sendmail", "-i", to), "Subject: x\n\nbody\n"); r.Code != 0 {
			t.Fatal(r)
		}
	}
	out := filepath.Join(e.Dir, "textfile", "relay.prom")
	os.Mkdir(filepath.Dir(out), 0o755)
	if r := testbin.Run(e.Cmd("relay", "queue", "stats", "--format", "prometheus", "--output", out, "--domains", "1"), ""); r.Code != 0 || r.Stdout != "" {
		t.Fatalf("stats --output: %+v", r)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), `relay_queue_messages{state="incoming"} 2`) || strings.Count(string(b), "relay_queue_domain_messages{") != 1 ||
		!strings.Contains(string(b), `relay_queue_smarthost_messages{smarthost="main"} 2`) {
		t.Errorf("textfile:\n%s", b)
	}
	if r := testbin.Run(e.Cmd("relay", "queue", "stats", "--json"), ""); r.Code != 0 || !strings.Contains(r.Stdout, `"incoming": {`) {
		t.Errorf("--json: %+v", r)
	}
	for _, bad := range [][]string{{"--format", "xml"}, {"--domains", "-1"}, {"--output"}, {"--nope"}} {
		if r := testbin.Run(e.Cmd("relay", append([]string{"queue", "stats"}, bad...)...), ""); r.Code != 64 || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("stats %q: %+v, want exit 64 and one line", bad, r)
		}
	}
}

func TestQueueShow_BodyAndHeaders(t *testing.T) {
	e := testbin.NewEnv(t, "[daemon]\ndetached_delivery = false\n")
	if r := testbin.Run(e.Cmd("sendmail", "-i", "ops@example.org"), "Subject: the subject\n\nfirst line\nsecond line\n"); r.Code != 0 {
		t.Fatal(r)
	}
	ids, _ := e.Open().IDs()
	body := testbin.Run(e.Cmd("relay", "queue", "show", ids[0], "--body"), "")
	if body.Code != 0 || !strings.Contains(body.Stdout, "Subject: the subject\n") || !strings.HasSuffix(body.Stdout, "\n\nfirst line\nsecond line\n") {
		t.Errorf("--body: %+v", body)
	}
	head := testbin.Run(e.Cmd("relay", "queue", "show", "--headers", ids[0]), "")
	if head.Code != 0 || !strings.Contains(head.Stdout, "Subject: the subject\n") || strings.Contains(head.Stdout, "first line") || strings.Contains(head.Stdout, "\n\n") {
		t.Errorf("--headers: %+v", head)
	}
	if r := testbin.Run(e.Cmd("relay", "queue", "show", spool.NewID(time.Now()), "--body"), ""); r.Code != 66 {
		t.Errorf("missing message: %+v, want 66", r)
	}
}
