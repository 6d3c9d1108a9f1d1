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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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
			// relay, and beside it its OAuth helper, as shipped.
			for pkg, out := range map[string]string{".": relayBin, "./cmd/relay-oauth": filepath.Join(filepath.Dir(relayBin), "relay-oauth")} {
				build := exec.Command("go", "build", "-o", out, pkg)
				build.Dir = ".." // the module root
				if out, err := build.CombinedOutput(); err != nil {
					fmt.Fprintf(os.Stderr, "e2e: go build failed: %v\n%s", err, out)
					return 1
				}
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
	// No env file: no smarthost was ever started here, and probing its
	// ports would only wait for each to time out.
	dir := os.Getenv("RELAY_E2E_DIR")
	if dir == "" {
		dir = "/tmp/relay-e2e"
	}
	e, err := readEnv(filepath.Join(dir, "env"))
	if err != nil {
		return fmt.Sprintf("the test smarthost was never started here (%v): bash e2e/smarthost.sh install && bash e2e/smarthost.sh start", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "smarthost.sh", "status").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("the test smarthost is not running (bash e2e/smarthost.sh status: %v)\n%s", err, out)
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
