// Package e2e_test is relay's end-to-end delivery suite: the real binary,
// built once, delivers through the real Postfix + Dovecot smarthost that
// e2e/smarthost.sh runs on loopback.
//
// Gate: the suite runs when `bash e2e/smarthost.sh status` exits 0. When it
// does not, every test is skipped, unless RELAY_E2E=1 is set (as CI does),
// in which case every test fails.
//
//	sudo bash e2e/smarthost.sh install && sudo bash e2e/smarthost.sh start
//	RELAY_E2E=1 go test -count=1 -v ./e2e/
//
// Tests run one after another (none calls t.Parallel): they share one
// Maildir and one Postfix log. Nothing is cleared: each message carries a
// unique Message-ID and is found by it; Postfix's log is read from an offset
// taken before the action.
//
// RELAY_E2E_BIN=/path/to/relay tests that binary instead of building one.
//
// Every command the suite runs of relay goes through run(), which records
// all it printed; the last test greps that for the test passwords.
package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ------------------------------------------------------------ the gate --

var (
	// harnessDown says why the smarthost cannot be used ("" when it can).
	harnessDown string
	// env holds the variables of $RELAY_E2E_DIR/env.
	env map[string]string
	// relayBin is the built binary; sendmailBin a symlink to it named
	// sendmail (argv[0] dispatch).
	relayBin, sendmailBin string
	// workRoot holds every test's configuration and spool until the end,
	// so the last test can also search the spools for passwords.
	workRoot string
)

const startHint = "start the test smarthost first: sudo bash e2e/smarthost.sh install && sudo bash e2e/smarthost.sh start (set RELAY_E2E=1 to make a missing smarthost a failure)"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	harnessDown = checkHarness()
	if harnessDown == "" {
		var err error
		workRoot, err = os.MkdirTemp("", "relay-e2e-suite-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(workRoot)
		// The spools live below: relay refuses nothing about the parent,
		// but keep it private anyway.
		os.Chmod(workRoot, 0o700)
		relayBin = filepath.Join(workRoot, "bin", "relay")
		sendmailBin = filepath.Join(workRoot, "bin", "sendmail")
		if bin := os.Getenv("RELAY_E2E_BIN"); bin != "" {
			// A given binary (a package's, or a deliberately broken one
			// to prove the tests can fail).
			if err := os.MkdirAll(filepath.Dir(relayBin), 0o755); err != nil {
				fmt.Fprintln(os.Stderr, "e2e:", err)
				return 1
			}
			abs, err := filepath.Abs(bin)
			if err == nil {
				err = os.Symlink(abs, relayBin)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "e2e: RELAY_E2E_BIN:", err)
				return 1
			}
		} else {
			build := exec.Command("go", "build", "-o", relayBin, ".")
			build.Dir = ".." // the module root
			if out, err := build.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: go build failed: %v\n%s", err, out)
				return 1
			}
		}
		if err := os.Symlink(relayBin, sendmailBin); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	code := m.Run()
	// A safety net for -shuffle or -run that leaves out the last test.
	if harnessDown == "" {
		if leaks := passwordLeaks(); len(leaks) > 0 && code == 0 {
			fmt.Fprintln(os.Stderr, "e2e: relay printed a password:")
			for _, l := range leaks {
				fmt.Fprintln(os.Stderr, "  ", l)
			}
			code = 1
		}
	}
	return code
}

// checkHarness asks the harness whether all four ports greet and loads its
// env file; it returns why it cannot be used, or "".
func checkHarness() string {
	if os.Geteuid() != 0 {
		// Delivered mail is mode 0600 of user nobody, Postfix's queue
		// mode 0700 of postfix: only root can check what arrived.
		return "the suite must run as root: it reads the smarthost's Maildir and Postfix's queue"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "smarthost.sh", "status").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("the test smarthost is not running (bash e2e/smarthost.sh status: %v)\n%s", err, out)
	}
	dir := os.Getenv("RELAY_E2E_DIR")
	if dir == "" {
		dir = "/tmp/relay-e2e"
	}
	e, err := readEnv(filepath.Join(dir, "env"))
	if err != nil {
		return fmt.Sprintf("the test smarthost answers but its env file is unusable: %v", err)
	}
	for _, k := range []string{"SMARTHOST_HOST", "SMARTHOST_NAME", "SMARTHOST_PORT_STARTTLS", "SMARTHOST_PORT_TLS",
		"SMARTHOST_PORT_PLAIN", "SMARTHOST_PORT_WRONGNAME", "SMARTHOST_CA", "SMARTHOST_OTHER_CA",
		"SMARTHOST_CERT_SHA256", "SMARTHOST_WRONG_CERT_SHA256", "SMARTHOST_USER", "SMARTHOST_PASS",
		"SMARTHOST_USER2", "SMARTHOST_PASS2", "SMARTHOST_REFUSED_RCPT", "SMARTHOST_MAILDIR",
		"SMARTHOST_POSTFIX_CONFIG", "SMARTHOST_POSTFIX_LOG"} {
		if e[k] == "" {
			return fmt.Sprintf("the smarthost's env file lacks %s", k)
		}
	}
	env = e
	return ""
}

// readEnv parses the KEY=value / KEY='value' lines smarthost.sh writes.
func readEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		e[k] = v
	}
	return e, nil
}

// needHarness skips (or, with RELAY_E2E=1, fails) a test when the
// smarthost is not there.
func needHarness(t *testing.T) {
	t.Helper()
	if harnessDown == "" {
		return
	}
	if os.Getenv("RELAY_E2E") == "1" {
		t.Fatalf("RELAY_E2E=1 but %s\n%s", harnessDown, startHint)
	}
	t.Skipf("%s\n%s", harnessDown, startHint)
}

func envInt(t *testing.T, k string) int {
	t.Helper()
	n, err := strconv.Atoi(env[k])
	if err != nil {
		t.Fatalf("env %s=%q: %v", k, env[k], err)
	}
	return n
}

// ------------------------------------------- running relay, recorded --

var (
	printedMu sync.Mutex
	// printed is every byte relay wrote to stdout or stderr in this run.
	printed bytes.Buffer
)

type result struct {
	Stdout, Stderr string
	Code           int
	Dur            time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout:\n%s\nstderr:\n%s", r.Code, r.Dur.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// run runs the relay binary (bin is relayBin or sendmailBin) and records
// everything it prints. Safe for concurrent use; reports problems with
// t.Errorf only, so it may be called from goroutines.
func run(t testing.TB, stdin io.Reader, bin string, args ...string) result {
	t.Helper()
	return runEnv(t, cleanEnv(), stdin, bin, args...)
}

// runEnv is run with the environment given (socks_test.go hands relay an
// ALL_PROXY that cleanEnv would strip).
func runEnv(t testing.TB, environ []string, stdin io.Reader, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = environ
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String(), Dur: time.Since(start)}
	printedMu.Lock()
	printed.Write(stdout.Bytes())
	printed.Write(stderr.Bytes())
	printedMu.Unlock()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.Code = ee.ExitCode()
	default:
		r.Code = -1
		t.Errorf("%s %s: %v (%v)", filepath.Base(bin), strings.Join(args, " "), err, ctx.Err())
	}
	return r
}

// cleanEnv is our environment without anything that would make relay read
// another configuration or use a proxy.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "RELAY_CONFIG", "ALL_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// passwordLeaks lists where a test password shows in what relay printed
// or wrote into the spools of the suite.
func passwordLeaks() []string {
	var pws []string
	for _, k := range []string{"SMARTHOST_PASS", "SMARTHOST_PASS2"} {
		if env[k] != "" {
			pws = append(pws, env[k])
		}
	}
	var leaks []string
	printedMu.Lock()
	out := printed.Bytes()
	for _, pw := range pws {
		if i := bytes.Index(out, []byte(pw)); i >= 0 {
			lo, hi := max(0, i-120), min(len(out), i+len(pw)+40)
			leaks = append(leaks, fmt.Sprintf("output contains %q: …%s…", pw, out[lo:hi]))
		}
	}
	printedMu.Unlock()
	// The spools (envelopes with their last errors): the secret files the
	// suite wrote itself are not relay's doing.
	filepath.WalkDir(workRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(p, string(filepath.Separator)+"spool"+string(filepath.Separator)) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, pw := range pws {
			if bytes.Contains(b, []byte(pw)) {
				leaks = append(leaks, fmt.Sprintf("spool file %s contains %q", p, pw))
			}
		}
		return nil
	})
	return leaks
}

// ------------------------------------------------------ configuration --

// smarthost is one [[smarthost]] table; zero fields are left out.
type smarthost struct {
	Host, ServerName, CAFile, Fingerprint string
	Port                                  int
	TLS                                   string
	Username                              string
	// Exactly one of the three password sources.
	PasswordFile    string
	PasswordCommand []string
	Password        string
	// Proxy is the smarthost's own proxy = "socks5://…" (socks_test.go).
	Proxy string
	// Auth is the smarthost's auth = "…" (auth_test.go).
	Auth string
}

// okSmarthost is the working STARTTLS configuration every test starts from.
func okSmarthost(t *testing.T, dir string) smarthost {
	return smarthost{
		Host:         env["SMARTHOST_HOST"],
		Port:         envInt(t, "SMARTHOST_PORT_STARTTLS"),
		TLS:          "starttls",
		ServerName:   env["SMARTHOST_NAME"],
		CAFile:       env["SMARTHOST_CA"],
		Username:     env["SMARTHOST_USER"],
		PasswordFile: secretFile(t, dir, env["SMARTHOST_PASS"]),
	}
}

// secretFile writes pw into a 0600 file of its own and returns its path.
func secretFile(t *testing.T, dir, pw string) string {
	t.Helper()
	p := filepath.Join(dir, "secret-"+token())
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tc is one test's private corner: its directory, spool and configuration.
type tc struct {
	t    *testing.T
	dir  string
	conf string
	// detached: leave detached delivery on (sendmail starts a runner).
	detached bool
}

// newCase makes a directory with a spool and writes relay.toml (0600) for
// sh; extra is appended to the top level (before the table).
func newCase(t *testing.T, sh smarthost, extra string) *tc {
	t.Helper()
	needHarness(t)
	dir := filepath.Join(workRoot, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+token()[:6])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &tc{t: t, dir: dir, conf: filepath.Join(dir, "relay.toml")}
	c.writeConfig(sh, extra)
	return c
}

// dirFor gives a test directory for secret files before newCase.
func dirFor(t *testing.T) string {
	t.Helper()
	needHarness(t)
	d := filepath.Join(workRoot, "secrets")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *tc) writeConfig(sh smarthost, extra string) {
	c.t.Helper()
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "spool = %s\ndomain = \"client.example.test\"\n%s\n", q(filepath.Join(c.dir, "spool")), extra)
	b.WriteString("[[smarthost]]\n")
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s = %s\n", k, q(v))
		}
	}
	kv("host", sh.Host)
	if sh.Port != 0 {
		fmt.Fprintf(&b, "port = %d\n", sh.Port)
	}
	kv("tls", sh.TLS)
	kv("tls_server_name", sh.ServerName)
	kv("tls_ca_file", sh.CAFile)
	kv("tls_fingerprint", sh.Fingerprint)
	kv("username", sh.Username)
	kv("password_file", sh.PasswordFile)
	kv("password", sh.Password)
	kv("proxy", sh.Proxy)
	kv("auth", sh.Auth)
	if len(sh.PasswordCommand) > 0 {
		var parts []string
		for _, a := range sh.PasswordCommand {
			parts = append(parts, q(a))
		}
		fmt.Fprintf(&b, "password_command = [%s]\n", strings.Join(parts, ", "))
	}
	// The tests drive delivery with relay queue run themselves: no runner
	// started behind their back by sendmail.
	if !c.detached {
		b.WriteString("[daemon]\ndetached_delivery = false\n")
	}
	if err := os.WriteFile(c.conf, []byte(b.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
	os.Chmod(c.conf, 0o600) // WriteFile keeps the mode of an existing file
}

// ------------------------------------------------------------ messages --

func token() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// msg is a test message with a unique Message-ID and Subject.
type msg struct {
	ID   string // Message-ID without <>
	Body []byte // the whole message as submitted
}

func newMsg(t *testing.T, from string, to []string, body string) msg {
	tok := token()
	id := tok + "@e2e.relay.test"
	text := fmt.Sprintf("From: %s\nTo: %s\nSubject: relay e2e %s %s\nMessage-ID: <%s>\n\n%s",
		from, strings.Join(to, ", "), t.Name(), tok, id, body)
	return msg{ID: id, Body: []byte(text)}
}

// submit queues m with relay's sendmail (via the symlink named sendmail
// every other time, so both dispatches are used) and fails the test when
// sendmail does not exit 0.
func (c *tc) submit(m msg, from string, to ...string) {
	c.t.Helper()
	if r := c.submitQuiet(c.t, m, from, to...); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		c.t.Fatalf("sendmail: %v", r)
	}
}

var submitCount int64
var submitMu sync.Mutex

func (c *tc) submitQuiet(t testing.TB, m msg, from string, to ...string) result {
	submitMu.Lock()
	submitCount++
	viaLink := submitCount%2 == 0
	submitMu.Unlock()
	args := []string{"-C", c.conf, "-i", "-f", from}
	if viaLink {
		return run(t, bytes.NewReader(m.Body), sendmailBin, append(args, to...)...)
	}
	return run(t, bytes.NewReader(m.Body), relayBin, append([]string{"sendmail"}, append(args, to...)...)...)
}

// queueRun makes one delivery pass and returns its log lines.
func (c *tc) queueRun() (result, []logLine) {
	c.t.Helper()
	r := run(c.t, nil, relayBin, "-C", c.conf, "queue", "run")
	lines := parseLog(r.Stderr)
	for _, l := range lines {
		c.t.Logf("relay: %s", l.raw)
	}
	return r, lines
}

// queueEntry is one line of `relay queue list --json`.
type queueEntry struct {
	QueueName  string `json:"queue_name"`
	QueueID    string `json:"queue_id"`
	Sender     string `json:"sender"`
	Recipients []struct {
		Address     string `json:"address"`
		DelayReason string `json:"delay_reason"`
	} `json:"recipients"`
	Attempts    int   `json:"attempts"`
	NextAttempt int64 `json:"next_attempt"`
}

func (c *tc) queueList() []queueEntry {
	c.t.Helper()
	r := run(c.t, nil, relayBin, "-C", c.conf, "queue", "list", "--json")
	if r.Code != 0 {
		c.t.Fatalf("queue list --json: %v", r)
	}
	var out []queueEntry
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if line == "" {
			continue
		}
		var e queueEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			c.t.Fatalf("queue list --json: %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func (c *tc) mailq() string {
	c.t.Helper()
	r := run(c.t, nil, relayBin, "-C", c.conf, "mailq")
	if r.Code != 0 {
		c.t.Fatalf("mailq: %v", r)
	}
	return r.Stdout
}

// expectEmptyQueue fails unless both listings say the queue is empty.
func (c *tc) expectEmptyQueue() {
	c.t.Helper()
	if q := c.queueList(); len(q) != 0 {
		c.t.Errorf("queue list --json: %d message(s) left, want none: %+v", len(q), q)
	}
	if out := c.mailq(); strings.TrimSpace(out) != "Mail queue is empty" {
		c.t.Errorf("mailq = %q, want \"Mail queue is empty\"", out)
	}
}

// ------------------------------------------------------- relay's log --

type logLine struct {
	raw string
	kv  map[string]string
}

var kvRE = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// parseLog reads relay's key=value lines (lines without id= are kept too).
func parseLog(s string) []logLine {
	var out []logLine
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		l := logLine{raw: line, kv: map[string]string{}}
		for _, m := range kvRE.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if strings.HasPrefix(v, `"`) {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				} else {
					v = strings.Trim(v, `"`)
				}
			}
			l.kv[m[1]] = v
		}
		out = append(out, l)
	}
	return out
}

// recipientLines keeps the per-recipient delivery lines (those with to=).
func recipientLines(lines []logLine) []logLine {
	var out []logLine
	for _, l := range lines {
		if l.kv["to"] != "" {
			out = append(out, l)
		}
	}
	return out
}

// ---------------------------------------------------------- the Maildir --

type delivered struct {
	path, msgID, deliveredTo string
}

var (
	maildirMu    sync.Mutex
	maildirIndex = map[string]delivered{} // by file name (new/ or cur/)
)

// maildir rescans the shared Maildir (new/ and cur/) and returns every
// delivered message; files are read once (their header only).
func maildir(t testing.TB) []delivered {
	t.Helper()
	maildirMu.Lock()
	defer maildirMu.Unlock()
	var out []delivered
	for _, sub := range []string{"new", "cur"} {
		d := filepath.Join(env["SMARTHOST_MAILDIR"], sub)
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatalf("Maildir: %v", err)
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if m, ok := maildirIndex[p]; ok {
				out = append(out, m)
				continue
			}
			m, err := readDelivered(p)
			if err != nil {
				continue // moved or half-written: next scan
			}
			maildirIndex[p] = m
			out = append(out, m)
		}
	}
	return out
}

func readDelivered(p string) (delivered, error) {
	f, err := os.Open(p)
	if err != nil {
		return delivered{}, err
	}
	defer f.Close()
	m := delivered{path: p}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" || err != nil {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "message-id":
			m.msgID = strings.Trim(strings.TrimSpace(v), "<>")
		case "delivered-to":
			if m.deliveredTo == "" {
				m.deliveredTo = strings.TrimSpace(v)
			}
		}
	}
	if m.msgID == "" {
		return m, errors.New("no Message-ID yet")
	}
	return m, nil
}

// copiesOf returns the delivered copies of each Message-ID in ids.
func copiesOf(t testing.TB, ids ...string) map[string][]delivered {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[string][]delivered{}
	for _, m := range maildir(t) {
		if want[m.msgID] {
			out[m.msgID] = append(out[m.msgID], m)
		}
	}
	return out
}

// settle waits until Postfix has nothing left to deliver: every message
// relay handed over (Postfix queued it before its 250, and relay got that
// before `queue run` returned) is then in the Maildir, so counting
// afterwards counts duplicates too.
func settle(t testing.TB, timeout time.Duration) {
	t.Helper()
	qdir := postfixQueueDir(t)
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		// Not deferred/ or hold/: mail someone else left stuck there must
		// not stall the suite; what relay hands over goes through these.
		for _, sub := range []string{"maildrop", "incoming", "active"} {
			err := filepath.WalkDir(filepath.Join(qdir, sub), func(_ string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() {
					n++
				}
				return nil
			})
			if err != nil {
				t.Fatalf("reading Postfix's queue: %v", err)
			}
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix still holds %d message(s) in %s after %v", n, qdir, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	pfQueueOnce sync.Once
	pfQueueDir  string
	pfQueueErr  error
)

func postfixQueueDir(t testing.TB) string {
	pfQueueOnce.Do(func() {
		out, err := exec.Command("postconf", "-c", env["SMARTHOST_POSTFIX_CONFIG"], "-h", "queue_directory").Output()
		pfQueueDir, pfQueueErr = strings.TrimSpace(string(out)), err
	})
	if pfQueueErr != nil || pfQueueDir == "" {
		t.Fatalf("postconf queue_directory: %v", pfQueueErr)
	}
	return pfQueueDir
}

// waitCopies waits (up to timeout) until Postfix has delivered everything
// it accepted, then returns the copies of each id found in the Maildir.
func waitCopies(t testing.TB, timeout time.Duration, ids ...string) map[string][]delivered {
	t.Helper()
	settle(t, timeout)
	return copiesOf(t, ids...)
}

// ------------------------------------------------------ Postfix's log --

// logMark is an offset in Postfix's log: what follows happened after it.
func logMark(t testing.TB) int64 {
	t.Helper()
	fi, err := os.Stat(env["SMARTHOST_POSTFIX_LOG"])
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// session is one smtpd connection as Postfix logged it.
type session struct {
	service    string // syslog name such as "starttls-2587"
	pid        string
	lines      []string
	disconnect string // the "disconnect from … ehlo=1 … commands=…" line
}

func (s session) String() string { return strings.Join(s.lines, "\n") }

// commands gives the per-command counters of the disconnect line, such as
// {"ehlo": "2", "auth": "0/1", "mail": "1"}.
func (s session) commands() map[string]string {
	out := map[string]string{}
	_, stats, _ := strings.Cut(s.disconnect, "]")
	for _, f := range strings.Fields(stats) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

var smtpdRE = regexp.MustCompile(`postfix/([^/\s]+)/smtpd\[(\d+)\]: (.*)$`)

// sessions returns the smtpd sessions of service that began after mark,
// waiting (Postfix logs through postlogd, a moment later) until each has
// its disconnect line.
func sessions(t testing.TB, mark int64, service string) []session {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ss, complete := readSessions(t, mark, service)
		if complete || time.Now().After(deadline) {
			if !complete {
				t.Logf("Postfix log: some %s sessions have no disconnect line yet", service)
			}
			return ss
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func postfixLogSince(t testing.TB, mark int64) string {
	t.Helper()
	f, err := os.Open(env["SMARTHOST_POSTFIX_LOG"])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(mark, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readSessions(t testing.TB, mark int64, service string) ([]session, bool) {
	current := map[string]*session{} // by smtpd pid
	var order []*session
	for _, line := range strings.Split(postfixLogSince(t, mark), "\n") {
		m := smtpdRE.FindStringSubmatch(line)
		if m == nil || m[1] != service {
			continue
		}
		if strings.HasPrefix(m[3], "connect from ") {
			// A new session (one smtpd process serves many in turn).
			s := &session{service: m[1], pid: m[2]}
			current[m[2]] = s
			order = append(order, s)
		}
		s := current[m[2]]
		if s == nil {
			continue // began before the mark
		}
		s.lines = append(s.lines, line)
		if strings.HasPrefix(m[3], "disconnect from ") {
			s.disconnect = m[3]
		}
	}
	complete := true
	out := make([]session, 0, len(order))
	for _, s := range order {
		if s.disconnect == "" {
			complete = false
		}
		if isProbe(s) {
			continue
		}
		out = append(out, *s)
	}
	return out, complete
}

// isProbe tells a bare "QUIT" session, such as `smarthost.sh status` makes
// (with or without TLS), from a client's: relay never quits without EHLO.
func isProbe(s *session) bool {
	c := s.commands()
	return s.disconnect != "" && len(c) == 2 && c["quit"] == "1" && c["commands"] == "1"
}

// expectNoMailOrAuth fails when one of the sessions got as far as AUTH or
// MAIL FROM, and when there is no session at all (relay never connected:
// the test would prove nothing).
func expectNoMailOrAuth(t *testing.T, ss []session, what string) {
	t.Helper()
	if len(ss) == 0 {
		t.Errorf("%s: Postfix logged no session: relay did not even connect", what)
		return
	}
	for _, s := range ss {
		c := s.commands()
		if c["auth"] != "" || c["mail"] != "" {
			t.Errorf("%s: Postfix saw AUTH or MAIL in the session (auth=%q mail=%q):\n%s", what, c["auth"], c["mail"], s)
		}
	}
}

// ------------------------------------------------------------- checks --

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s: %q does not contain %q", what, s, sub)
		}
	}
}

// missingAndDuplicated waits up to timeout for the Message-IDs in the
// Maildir and counts those that never came and those there more than once.
func missingAndDuplicated(t *testing.T, timeout time.Duration, ids ...string) (missing, dup int) {
	t.Helper()
	copies := waitCopies(t, timeout, ids...)
	for _, id := range ids {
		switch n := len(copies[id]); {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
	}
	return missing, dup
}
