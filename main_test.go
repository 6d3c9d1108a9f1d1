package main_test

// Black-box tests of the relay binary: they build it once and run it as
// sendmail, mailq and relay, the way callers and administrators do.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/relaymail/relay/internal/testqueue"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

func TestQueueCommands(t *testing.T) {
	e := testbin.NewEnv(t, "")
	for i, args := range [][]string{{"-i", "-f", "alice@example.org", "bob@example.org"}, {"-i", "-f", "<>", "carol@example.org", "dave"}} {
		if r := testbin.Run(e.Cmd("sendmail", args...), fmt.Sprintf("Subject: m%d\n\nbody\n", i)); r.Code != 0 {
			t.Fatal(r)
		}
	}
	ids, _ := e.Open().IDs()
	if len(ids) != 2 {
		t.Fatalf("queued %v", ids)
	}

	r := testbin.Run(e.Cmd("mailq"), "")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "-Queue ID-") || !strings.Contains(r.Stdout, "alice@example.org") ||
		!strings.Contains(r.Stdout, "MAILER-DAEMON") || !strings.Contains(r.Stdout, "dave@server1.example.com") ||
		!strings.HasSuffix(r.Stdout, "in 2 Requests.\n") {
		t.Errorf("mailq: %+v", r)
	}
	if r2 := testbin.Run(e.Cmd("sendmail", "-bp"), ""); r2.Stdout != r.Stdout {
		t.Errorf("sendmail -bp differs from mailq:\n%s", r2.Stdout)
	}

	r = testbin.Run(e.Cmd("relay", "queue", "list", "--json"), "")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("json: %q", r.Stdout)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"queue_name", "queue_id", "arrival_time", "message_size", "sender", "recipients", "attempts", "next_attempt"} {
		if _, ok := first[k]; !ok {
			t.Errorf("json lacks %q: %s", k, lines[0])
		}
	}
	if first["queue_id"] != ids[0] || first["sender"] != "alice@example.org" {
		t.Errorf("json first = %v", first)
	}

	r = testbin.Run(e.Cmd("relay", "queue", "show", ids[1]), "")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Sender:       <>") || !strings.Contains(r.Stdout, "Subject: m1") {
		t.Errorf("show: %+v", r)
	}

	if r := testbin.Run(e.Cmd("relay", "queue", "hold", ids[0]), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(e.Cmd("mailq"), ""); !strings.Contains(r.Stdout, ids[0]+"!") {
		t.Errorf("held message not marked:\n%s", r.Stdout)
	}
	if r := testbin.Run(e.Cmd("relay", "queue", "release", ids[0]), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(e.Cmd("mailq"), ""); strings.Contains(r.Stdout, ids[0]+"!") {
		t.Errorf("released message still held:\n%s", r.Stdout)
	}

	// A message being delivered is marked '*' and cannot be deleted under
	// the runner: the delete waits, then fails.
	l, err := e.Open().Lock(ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if r := testbin.Run(e.Cmd("mailq"), ""); !strings.Contains(r.Stdout, ids[1]+"*") {
		t.Errorf("locked message not marked active:\n%s", r.Stdout)
	}
	l.Close()

	if r := testbin.Run(e.Cmd("relay", "queue", "delete", ids[0]), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(e.Cmd("relay", "queue", "delete", "--all"), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(e.Cmd("mailq"), ""); r.Stdout != "Mail queue is empty\n" {
		t.Errorf("after delete --all: %q", r.Stdout)
	}
}

// Users without access to the spool get a one-line refusal and 77.
func TestQueue_PermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a command as another user")
	}
	e := testbin.NewEnv(t, "")
	if r := testbin.Run(e.Cmd("sendmail", "-i", "a@example.org"), "x\n"); r.Code != 0 {
		t.Fatal(r)
	}
	// nobody may read the configuration and run the binary, not the spool.
	for _, d := range []string{testbin.Dir(t), e.Dir, filepath.Dir(e.Dir)} {
		os.Chmod(d, 0o755)
	}
	os.Chmod(e.Conf, 0o644)
	for _, args := range [][]string{{"mailq"}, {"relay", "queue", "list"}, {"relay", "queue", "flush"}} {
		c := e.Cmd(args[0], args[1:]...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		r := testbin.Run(c, "")
		if r.Code != 77 || !strings.Contains(r.Stderr, "permission denied") || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("%v as nobody: %+v", args, r)
		}
	}
}

func TestCheck(t *testing.T) {
	e := testbin.NewEnv(t, "")
	r := testbin.Run(e.Cmd("relay", "check"), "")
	if r.Code != 0 || !strings.Contains(r.Stdout, "OK") || !strings.Contains(r.Stderr, "warning") {
		t.Errorf("check: %+v", r)
	}
	e.WriteConf("spool = \"relative/path\"\n[queue]\nretry_min = \"soon\"\n")
	r = testbin.Run(e.Cmd("relay", "check"), "")
	if r.Code != 78 {
		t.Errorf("check of a broken file: %+v", r)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		if !strings.HasPrefix(line, "relay: "+e.Conf+":") {
			t.Errorf("line not of the form file:line: %q", line)
		}
	}
	if !strings.Contains(r.Stderr, e.Conf+":1:") || !strings.Contains(r.Stderr, e.Conf+":3:") {
		t.Errorf("line numbers missing: %s", r.Stderr)
	}
}

// SIGKILL sendmail at random moments while it enqueues a 4 MB message.
// Afterwards every file in the queue is a complete message, and every run
// that exited 0 left its message. This proves atomicity against a crash of
// the process (the kernel still writes what was written); it does not prove
// durability against power loss, which rests on the fsyncs.
func TestCrash_SIGKILLDuringEnqueue(t *testing.T) {
	runs := 300
	if testing.Short() {
		runs = 40
	}
	if s := os.Getenv("RELAY_CRASH_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	e := testbin.NewEnv(t, "")
	body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 4<<20/64)
	input := append([]byte("Subject: big\n\n"), body...)
	inPath := filepath.Join(e.Dir, "input")
	os.WriteFile(inPath, input, 0o600)

	send := func(i int, kill time.Duration) (exited0 bool) {
		f, _ := os.Open(inPath)
		defer f.Close()
		c := e.Cmd("sendmail", "-i", fmt.Sprintf("run%d@example.org", i))
		c.Stdin = f
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			return err == nil
		case <-time.After(kill):
			c.Process.Signal(syscall.SIGKILL)
			return <-done == nil
		}
	}
	// How long one enqueue takes here decides the range of kill moments.
	start := time.Now()
	for i := 0; i < 3; i++ {
		if !send(-1-i, time.Minute) {
			t.Fatal("enqueue failed without a kill")
		}
	}
	typical := time.Since(start) / 3

	ok := map[string]bool{}
	for i := 0; i < runs; i++ {
		kill := time.Duration(rand.Int64N(int64(typical) * 5 / 4))
		if send(i, kill) {
			ok[fmt.Sprintf("run%d@example.org", i)] = true
		}
	}
	found := map[string]bool{}
	for id, m := range e.Messages() {
		if len(m.Recipients) != 1 {
			t.Fatalf("%s: %d recipients", id, len(m.Recipients))
		}
		if c := e.Content(id); !strings.HasSuffix(c, "\n\n"+string(body)) {
			t.Fatalf("%s: incomplete message (%d bytes)", id, len(c))
		}
		found[m.Recipients[0].Address] = true
	}
	for rcpt := range ok {
		if !found[rcpt] {
			t.Errorf("%s: sendmail exited 0 but its message is not in the queue", rcpt)
		}
	}
	tmp, _ := filepath.Glob(filepath.Join(e.Spool, "tmp", "*"))
	t.Logf("%d runs, typical enqueue %v: %d exited 0, %d complete messages queued, %d drafts left in tmp/ by killed writers",
		runs, typical, len(ok), len(found)-3, len(tmp))
	if len(ok) == 0 || len(ok) == runs {
		t.Errorf("the kills never (or always) landed during an enqueue: %d of %d exited 0", len(ok), runs)
	}
}

// 200 simultaneous sendmail runs give 200 distinct complete messages.
func TestConcurrentSubmissions(t *testing.T) {
	const n = 200
	e := testbin.NewEnv(t, "")
	var wg sync.WaitGroup
	results := make([]testbin.Result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = testbin.Run(e.Cmd("sendmail", "-i", fmt.Sprintf("r%d@example.org", i)), fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("run %d: %+v", i, r)
		}
	}
	msgs := e.Messages()
	var rcpts []string
	for id, m := range msgs {
		rcpts = append(rcpts, m.Recipients[0].Address)
		var i int
		fmt.Sscanf(m.Recipients[0].Address, "r%d@", &i)
		if !strings.HasSuffix(e.Content(id), fmt.Sprintf("\nbody %d\n", i)) {
			t.Errorf("%s: wrong or incomplete content", id)
		}
	}
	sort.Strings(rcpts)
	if len(msgs) != n || len(dedupe(rcpts)) != n {
		t.Errorf("%d messages for %d distinct recipients, want %d", len(msgs), len(dedupe(rcpts)), n)
	}
}

func dedupe(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// A spool on a full file system: exit 75 (try again later) and no partial
// file anywhere in the spool.
func TestDiskFull(t *testing.T) {
	e := testbin.NewEnv(t, "min_free_space = 0\n")
	testqueue.SmallFileSystem(t, e.Spool, "2m")

	small := testbin.Run(e.Cmd("sendmail", "-i", "a@example.org"), "Subject: fits\n\nsmall\n")
	if small.Code != 0 {
		t.Fatalf("small message: %+v", small)
	}
	big := testbin.Run(e.Cmd("sendmail", "-i", "b@example.org"), "Subject: too big\n\n"+strings.Repeat("x", 3<<20))
	if big.Code != 75 || strings.Count(big.Stderr, "\n") != 1 || !strings.Contains(big.Stderr, "no space left") {
		t.Errorf("disk full: %+v", big)
	}
	msgs := e.Messages()
	if len(msgs) != 1 {
		t.Errorf("%d messages queued, want the small one only", len(msgs))
	}
	if tmp, _ := filepath.Glob(filepath.Join(e.Spool, "tmp", "*")); len(tmp) != 0 {
		t.Errorf("partial files left: %v", tmp)
	}
	// And with min_free_space above what is left: refused before writing.
	e.WriteConf(fmt.Sprintf("spool = %q\nmin_free_space = \"1MB\"\n", e.Spool))
	full := testbin.Run(e.Cmd("sendmail", "-i", "c@example.org"), "Subject: s\n\nx\n")
	if full.Code != 0 {
		// 2 MB tmpfs with one small message still has over 1 MB free.
		t.Errorf("min_free_space 1MB on a nearly empty 2MB spool: %+v", full)
	}
	e.WriteConf(fmt.Sprintf("spool = %q\nmin_free_space = \"3MB\"\n", e.Spool))
	full = testbin.Run(e.Cmd("sendmail", "-i", "c@example.org"), "Subject: s\n\nx\n")
	if full.Code != 75 || !strings.Contains(full.Stderr, "min_free_space") {
		t.Errorf("below min_free_space: %+v", full)
	}
}
