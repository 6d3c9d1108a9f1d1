package main_test

// Black-box tests of the relay binary: they build it once and run it as
// sendmail, mailq and relay, the way callers and administrators do.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/spool"
)

var relayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relay-bin-")
	if err != nil {
		panic(err)
	}
	relayBin = filepath.Join(dir, "relay")
	// The binary as shipped: static, without cgo (see README).
	build := exec.Command("go", "build", "-o", relayBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	for _, name := range []string{"sendmail", "mailq", "newaliases"} {
		os.Symlink(relayBin, filepath.Join(dir, name))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one spool with its configuration.
type env struct {
	t     *testing.T
	dir   string
	conf  string
	spool string
}

func newEnv(t *testing.T, extra string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, conf: filepath.Join(dir, "relay.toml"), spool: filepath.Join(dir, "spool")}
	e.writeConf(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s", e.spool, extra))
	return e
}

func (e *env) writeConf(s string) {
	if err := os.WriteFile(e.conf, []byte(s), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// cmd prepares name (sendmail, mailq, relay) with args and this env's
// configuration in RELAY_CONFIG.
func (e *env) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(filepath.Dir(relayBin), name), args...)
	c.Env = append(os.Environ(), "RELAY_CONFIG="+e.conf)
	return c
}

type result struct {
	code           int
	stdout, stderr string
}

func run(c *exec.Cmd, stdin string) result {
	c.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return result{code, out.String(), errb.String()}
}

func (e *env) open() *spool.Spool {
	sp, err := spool.Open(e.spool)
	if err != nil {
		e.t.Fatal(err)
	}
	return sp
}

// messages returns every queued message, failing on an unreadable one.
func (e *env) messages() map[string]*spool.Message {
	e.t.Helper()
	sp := e.open()
	ids, err := sp.IDs()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*spool.Message{}
	for _, id := range ids {
		m, err := sp.Read(id)
		if err != nil {
			e.t.Fatalf("queue holds an unreadable message: %v", err)
		}
		out[id] = m
	}
	return out
}

func (e *env) content(id string) string {
	f, err := e.open().OpenContent(id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

func TestSendmail_SilentOnSuccess(t *testing.T) {
	e := newEnv(t, "")
	r := run(e.cmd("sendmail", "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"),
		"From: root (Cron Daemon)\nTo: root\nSubject: test\n\nhello\n")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := len(e.messages()); n != 1 {
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
		{"broken configuration", "sendmail", []string{"a@example.org"}, "smarthost = 3\n", "x\n", 78, "relay.toml"},
		{"unknown key", "sendmail", []string{"a@example.org"}, "spoool = \"/x\"\n", "x\n", 78, `spoool: unknown key; did you mean "spool"?`},
		{"queue: bad ID", "relay", []string{"queue", "show", "../../etc/passwd"}, "", "", 64, "not a queue ID"},
		{"queue: unknown ID", "relay", []string{"queue", "delete", "1K0WJ59K813RZ4B"}, "", "", 66, "no such message"},
		{"relay: unknown command", "relay", []string{"frobnicate"}, "", "", 64, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.conf)
			os.MkdirAll(e.spool, 0o700)
			spool.Create(e.spool)
			r := run(e.cmd(tt.prog, tt.args...), tt.input)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if !strings.Contains(r.stderr, tt.msg) || (len(lines) != 1 && tt.code != 78) {
				t.Errorf("stderr %q: want one line containing %q", r.stderr, tt.msg)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
			left, _ := filepath.Glob(filepath.Join(e.spool, "*", "*"))
			if len(left) != 0 {
				t.Errorf("left in the spool: %v", left)
			}
		})
	}
}

func TestSendmail_Flush(t *testing.T) {
	e := newEnv(t, "")
	if r := run(e.cmd("sendmail", "-i", "a@example.org"), "x\n"); r.code != 0 {
		t.Fatal(r)
	}
	sp := e.open()
	ids, _ := sp.IDs()
	later := time.Now().Add(time.Hour)
	sp.Change(ids[0], time.Second, func(env *spool.Envelope) bool { env.NextAttempt = later; env.Attempts = 1; return true })
	if r := run(e.cmd("sendmail", "-q"), ""); r.code != 0 || r.stderr != "" {
		t.Fatal(r)
	}
	m, _ := sp.Read(ids[0])
	if m.NextAttempt.After(time.Now()) {
		t.Errorf("next attempt still %v after sendmail -q", m.NextAttempt)
	}
}

func TestQueueCommands(t *testing.T) {
	e := newEnv(t, "")
	for i, args := range [][]string{{"-i", "-f", "alice@example.org", "bob@example.org"}, {"-i", "-f", "<>", "carol@example.org", "dave"}} {
		if r := run(e.cmd("sendmail", args...), fmt.Sprintf("Subject: m%d\n\nbody\n", i)); r.code != 0 {
			t.Fatal(r)
		}
	}
	ids, _ := e.open().IDs()
	if len(ids) != 2 {
		t.Fatalf("queued %v", ids)
	}

	r := run(e.cmd("mailq"), "")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "-Queue ID-") || !strings.Contains(r.stdout, "alice@example.org") ||
		!strings.Contains(r.stdout, "MAILER-DAEMON") || !strings.Contains(r.stdout, "dave@server1.example.com") ||
		!strings.HasSuffix(r.stdout, "in 2 Requests.\n") {
		t.Errorf("mailq: %+v", r)
	}
	if r2 := run(e.cmd("sendmail", "-bp"), ""); r2.stdout != r.stdout {
		t.Errorf("sendmail -bp differs from mailq:\n%s", r2.stdout)
	}

	r = run(e.cmd("relay", "queue", "list", "--json"), "")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("json: %q", r.stdout)
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

	r = run(e.cmd("relay", "queue", "show", ids[1]), "")
	if r.code != 0 || !strings.Contains(r.stdout, "Sender:       <>") || !strings.Contains(r.stdout, "Subject: m1") {
		t.Errorf("show: %+v", r)
	}

	if r := run(e.cmd("relay", "queue", "hold", ids[0]), ""); r.code != 0 {
		t.Fatal(r)
	}
	if r := run(e.cmd("mailq"), ""); !strings.Contains(r.stdout, ids[0]+"!") {
		t.Errorf("held message not marked:\n%s", r.stdout)
	}
	if r := run(e.cmd("relay", "queue", "release", ids[0]), ""); r.code != 0 {
		t.Fatal(r)
	}
	if r := run(e.cmd("mailq"), ""); strings.Contains(r.stdout, ids[0]+"!") {
		t.Errorf("released message still held:\n%s", r.stdout)
	}

	// A message being delivered is marked '*' and cannot be deleted under
	// the runner: the delete waits, then fails.
	l, err := e.open().Lock(ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if r := run(e.cmd("mailq"), ""); !strings.Contains(r.stdout, ids[1]+"*") {
		t.Errorf("locked message not marked active:\n%s", r.stdout)
	}
	l.Close()

	if r := run(e.cmd("relay", "queue", "delete", ids[0]), ""); r.code != 0 {
		t.Fatal(r)
	}
	if r := run(e.cmd("relay", "queue", "delete", "--all"), ""); r.code != 0 {
		t.Fatal(r)
	}
	if r := run(e.cmd("mailq"), ""); r.stdout != "Mail queue is empty\n" {
		t.Errorf("after delete --all: %q", r.stdout)
	}
}

// Users without access to the spool get a one-line refusal and 77.
func TestQueue_PermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a command as another user")
	}
	e := newEnv(t, "")
	if r := run(e.cmd("sendmail", "-i", "a@example.org"), "x\n"); r.code != 0 {
		t.Fatal(r)
	}
	// nobody may read the configuration and run the binary, not the spool.
	for _, d := range []string{filepath.Dir(relayBin), e.dir, filepath.Dir(e.dir)} {
		os.Chmod(d, 0o755)
	}
	os.Chmod(e.conf, 0o644)
	for _, args := range [][]string{{"mailq"}, {"relay", "queue", "list"}, {"relay", "queue", "flush"}} {
		c := e.cmd(args[0], args[1:]...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		r := run(c, "")
		if r.code != 77 || !strings.Contains(r.stderr, "permission denied") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v as nobody: %+v", args, r)
		}
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t, "")
	r := run(e.cmd("relay", "check"), "")
	if r.code != 0 || !strings.Contains(r.stdout, "OK") || !strings.Contains(r.stderr, "warning") {
		t.Errorf("check: %+v", r)
	}
	e.writeConf("spool = \"relative/path\"\n[queue]\nretry_min = \"soon\"\n")
	r = run(e.cmd("relay", "check"), "")
	if r.code != 78 {
		t.Errorf("check of a broken file: %+v", r)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if !strings.HasPrefix(line, "relay: "+e.conf+":") {
			t.Errorf("line not of the form file:line: %q", line)
		}
	}
	if !strings.Contains(r.stderr, e.conf+":1:") || !strings.Contains(r.stderr, e.conf+":3:") {
		t.Errorf("line numbers missing: %s", r.stderr)
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
	e := newEnv(t, "")
	body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 4<<20/64)
	input := append([]byte("Subject: big\n\n"), body...)
	inPath := filepath.Join(e.dir, "input")
	os.WriteFile(inPath, input, 0o600)

	send := func(i int, kill time.Duration) (exited0 bool) {
		f, _ := os.Open(inPath)
		defer f.Close()
		c := e.cmd("sendmail", "-i", fmt.Sprintf("run%d@example.org", i))
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
	for id, m := range e.messages() {
		if len(m.Recipients) != 1 {
			t.Fatalf("%s: %d recipients", id, len(m.Recipients))
		}
		if c := e.content(id); !strings.HasSuffix(c, "\n\n"+string(body)) {
			t.Fatalf("%s: incomplete message (%d bytes)", id, len(c))
		}
		found[m.Recipients[0].Address] = true
	}
	for rcpt := range ok {
		if !found[rcpt] {
			t.Errorf("%s: sendmail exited 0 but its message is not in the queue", rcpt)
		}
	}
	tmp, _ := filepath.Glob(filepath.Join(e.spool, "tmp", "*"))
	t.Logf("%d runs, typical enqueue %v: %d exited 0, %d complete messages queued, %d drafts left in tmp/ by killed writers",
		runs, typical, len(ok), len(found)-3, len(tmp))
	if len(ok) == 0 || len(ok) == runs {
		t.Errorf("the kills never (or always) landed during an enqueue: %d of %d exited 0", len(ok), runs)
	}
}

// 200 simultaneous sendmail runs give 200 distinct complete messages.
func TestConcurrentSubmissions(t *testing.T) {
	const n = 200
	e := newEnv(t, "")
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(e.cmd("sendmail", "-i", fmt.Sprintf("r%d@example.org", i)), fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("run %d: %+v", i, r)
		}
	}
	msgs := e.messages()
	var rcpts []string
	for id, m := range msgs {
		rcpts = append(rcpts, m.Recipients[0].Address)
		var i int
		fmt.Sscanf(m.Recipients[0].Address, "r%d@", &i)
		if !strings.HasSuffix(e.content(id), fmt.Sprintf("\nbody %d\n", i)) {
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
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	e := newEnv(t, "min_free_space = 0\n")
	if err := os.MkdirAll(e.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", e.spool).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer exec.Command("umount", e.spool).Run()

	small := run(e.cmd("sendmail", "-i", "a@example.org"), "Subject: fits\n\nsmall\n")
	if small.code != 0 {
		t.Fatalf("small message: %+v", small)
	}
	big := run(e.cmd("sendmail", "-i", "b@example.org"), "Subject: too big\n\n"+strings.Repeat("x", 3<<20))
	if big.code != 75 || strings.Count(big.stderr, "\n") != 1 || !strings.Contains(big.stderr, "no space left") {
		t.Errorf("disk full: %+v", big)
	}
	msgs := e.messages()
	if len(msgs) != 1 {
		t.Errorf("%d messages queued, want the small one only", len(msgs))
	}
	if tmp, _ := filepath.Glob(filepath.Join(e.spool, "tmp", "*")); len(tmp) != 0 {
		t.Errorf("partial files left: %v", tmp)
	}
	// And with min_free_space above what is left: refused before writing.
	e.writeConf(fmt.Sprintf("spool = %q\nmin_free_space = \"1MB\"\n", e.spool))
	full := run(e.cmd("sendmail", "-i", "c@example.org"), "Subject: s\n\nx\n")
	if full.code != 0 {
		// 2 MB tmpfs with one small message still has over 1 MB free.
		t.Errorf("min_free_space 1MB on a nearly empty 2MB spool: %+v", full)
	}
	e.writeConf(fmt.Sprintf("spool = %q\nmin_free_space = \"3MB\"\n", e.spool))
	full = run(e.cmd("sendmail", "-i", "c@example.org"), "Subject: s\n\nx\n")
	if full.code != 75 || !strings.Contains(full.stderr, "min_free_space") {
		t.Errorf("below min_free_space: %+v", full)
	}
}
