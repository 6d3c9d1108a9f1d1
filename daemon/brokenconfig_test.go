package daemon_test

// A configuration with errors never costs a submitted message (SPEC
// section 12; issue #21 items 1-3): sendmail, sendmail -bs and the
// daemon's listener queue, exit 0; delivery holds the mail and says why
// until the file is fixed; a flush without a daemon delivers; a relative
// -C reaches the detached runner.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// brokenCase is one way to break relay.toml: conf is the broken text
// (after the spool and domain lines), fix makes it good again.
type brokenCase struct {
	name  string
	conf  func(e *testbin.Env, port int) string
	prep  func(e *testbin.Env) // before submitting (file modes, secret files)
	fix   func(e *testbin.Env, port int)
	found string // in the hold reason
	// deferral: the file loads, but delivery cannot read what it names;
	// the runner defers on relay's side instead of holding.
	deferral bool
}

func sinkConf(port int, extra string) string {
	return fmt.Sprintf("[queue]\nretry_min = \"1h\"\nretry_max = \"2h\"\n\n[[smarthost]]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\n%s", port, extra)
}

func brokenCases() []brokenCase {
	good := func(e *testbin.Env, port int) {
		e.WriteConf(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s", e.Spool, sinkConf(port, "")))
	}
	return []brokenCase{
		{name: "unknown key",
			conf:  func(e *testbin.Env, port int) string { return "domian = \"x.example\"\n" + sinkConf(port, "") },
			fix:   good,
			found: `domian: unknown key`},
		{name: "bad TOML",
			conf:  func(e *testbin.Env, port int) string { return sinkConf(port, "") + "oops = [\n" },
			fix:   good,
			found: "expected value"},
		{name: "inline password in a world-readable file",
			conf: func(e *testbin.Env, port int) string {
				return sinkConf(port, "username = \"u\"\npassword = \"secret-pass-123\"\n")
			},
			prep:  func(e *testbin.Env) { os.Chmod(e.Conf, 0o644) },
			fix:   good,
			found: "inline password"},
		{name: "unreadable secret file",
			conf: func(e *testbin.Env, port int) string {
				return sinkConf(port, fmt.Sprintf("username = \"u\"\npassword_file = %q\n", filepath.Join(e.Dir, "missing-secret")))
			},
			fix:      good,
			found:    "password_file",
			deferral: true},
	}
}

// brokenEnv writes the broken configuration of c.
func brokenEnv(t *testing.T, c brokenCase, port int) *testbin.Env {
	e := testbin.NewEnv(t, "")
	e.WriteConf(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s", e.Spool, c.conf(e, port)))
	if c.prep != nil {
		c.prep(e)
	}
	return e
}

// reasons gives every delay reason mailq --json shows.
func reasons(t *testing.T, e *testbin.Env) string {
	t.Helper()
	r := testbin.Run(e.Cmd("relay", "queue", "list", "--json"), "")
	return r.Stdout
}

func TestBrokenConfig_SendmailQueuesHoldsAndDeliversAfterFix(t *testing.T) {
	for _, c := range brokenCases() {
		t.Run(c.name, func(t *testing.T) {
			s := testsmtp.NewSink(t, 0, 0)
			e := brokenEnv(t, c, s.Port)
			id := "broken-" + strings.ReplaceAll(c.name, " ", "-") + "@test"
			r := testbin.Run(e.Cmd("sendmail", "-i", "b@example.net"), testMessage(id, "held first\n"))
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("sendmail with a broken configuration: exit %d, stderr %q; want 0 and silence", r.Code, r.Stderr)
			}
			if n := len(e.Messages()); n != 1 {
				t.Fatalf("%d messages queued, want 1", n)
			}
			// Delivery holds it and says why: queue run exits 78, mailq
			// gives the reason, relay check exits 78.
			// (The detached runner sendmail started may still hold the run
			// lock: queue run then leaves at once, exit 0.)
			testsmtp.WaitFor(10*time.Second, func() bool { r = testbin.Run(e.Cmd("relay", "queue", "run"), ""); return r.Code != 0 || c.deferral })
			if !c.deferral && (r.Code != 78 || !strings.Contains(r.Stderr, "held")) {
				t.Errorf("queue run: exit %d stderr %q, want 78 saying the mail is held", r.Code, r.Stderr)
			}
			if got := reasons(t, e); !strings.Contains(got, `"delay_reason":"`) ||
				!c.deferral && (!strings.Contains(got, "held: the configuration "+e.Conf+" has errors") || !strings.Contains(got, c.found)) {
				t.Errorf("mailq reason:\n%s", got)
			}
			if r := testbin.Run(e.Cmd("relay", "check"), ""); r.Code != 78 || !strings.Contains(r.Stderr, c.found) ||
				!c.deferral && !strings.Contains(r.Stderr, "1 message(s)") {
				t.Errorf("check: exit %d stderr %q, want 78 naming the held message", r.Code, r.Stderr)
			}
			if s.Count(id) != 0 {
				t.Fatal("delivered with a broken configuration")
			}
			// Fixed, and a flush without a daemon delivers it.
			c.fix(e, s.Port)
			if r := testbin.Run(e.Cmd("relay", "queue", "flush"), ""); r.Code != 0 {
				t.Fatalf("flush: %+v", r)
			}
			if !testsmtp.WaitFor(20*time.Second, func() bool { return s.Count(id) == 1 }) {
				t.Fatalf("not delivered after the fix and a flush; queue:\n%s", reasons(t, e))
			}
		})
	}
}

func TestBrokenConfig_SendmailBSQueues(t *testing.T) {
	for _, c := range brokenCases() {
		t.Run(c.name, func(t *testing.T) {
			s := testsmtp.NewSink(t, 0, 0)
			e := brokenEnv(t, c, s.Port)
			id := "bs-" + strings.ReplaceAll(c.name, " ", "-") + "@test"
			in := "EHLO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n" +
				strings.ReplaceAll(testMessage(id, "via -bs\n"), "\n", "\r\n") + ".\r\nQUIT\r\n"
			r := testbin.Run(e.Cmd("sendmail", "-bs"), in)
			if r.Code != 0 || !strings.Contains(r.Stdout, "250 2.0.0") {
				t.Fatalf("-bs with a broken configuration: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
			}
			testbin.Run(e.Cmd("relay", "queue", "run"), "")
			if !testsmtp.WaitFor(10*time.Second, func() bool {
				return strings.Contains(reasons(t, e), "held: the configuration") || c.deferral && strings.Contains(reasons(t, e), `"delay_reason":"`)
			}) {
				t.Errorf("not held with the reason:\n%s", reasons(t, e))
			}
			c.fix(e, s.Port)
			if r := testbin.Run(e.Cmd("sendmail", "-q"), ""); r.Code != 0 {
				t.Fatalf("sendmail -q: %+v", r)
			}
			if !testsmtp.WaitFor(20*time.Second, func() bool { return s.Count(id) == 1 }) {
				t.Fatalf("not delivered after the fix and sendmail -q:\n%s", reasons(t, e))
			}
		})
	}
}

// smtpSend submits one message to the listener at addr.
func smtpSend(t *testing.T, addr, msgID string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	expect := func(code string) {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, code) {
				t.Fatalf("want %s, got %q (%v)", code, line, err)
			}
			if len(line) < 4 || line[3] != '-' {
				return
			}
		}
	}
	expect("220")
	for _, step := range []struct{ cmd, code string }{
		{"EHLO client.test", "250"}, {"MAIL FROM:<a@example.com>", "250"}, {"RCPT TO:<b@example.net>", "250"}, {"DATA", "354"},
		{strings.ReplaceAll(testMessage(msgID, "via the listener\n"), "\n", "\r\n") + ".", "250"}, {"QUIT", "221"},
	} {
		fmt.Fprintf(conn, "%s\r\n", step.cmd)
		expect(step.code)
	}
}

func TestBrokenConfig_ListenerQueuesAndDaemonHoldsUntilReload(t *testing.T) {
	for _, c := range brokenCases() {
		t.Run(c.name, func(t *testing.T) {
			s := testsmtp.NewSink(t, 0, 0)
			port := testsmtp.FreePort(t)
			e := testbin.NewEnv(t, "")
			listen := fmt.Sprintf("[daemon]\nlisten = [\"127.0.0.1:%d\"]\ndetached_delivery = false\nrescan = \"1h\"\n", port)
			// The daemon table first: a syntax error at the end leaves it
			// readable (see config.LoadLenient).
			e.WriteConf(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s%s", e.Spool, listen, c.conf(e, s.Port)))
			if c.prep != nil {
				c.prep(e)
			}
			d := runDaemon(t, e)
			id := "listener-" + strings.ReplaceAll(c.name, " ", "-") + "@test"
			smtpSend(t, fmt.Sprintf("127.0.0.1:%d", port), id)
			if !testsmtp.WaitFor(10*time.Second, func() bool {
				q := reasons(t, e)
				return strings.Contains(d.log.String(), "error: ") &&
					(strings.Contains(q, "held: the configuration") || c.deferral && strings.Contains(q, `"delay_reason":"`))
			}) {
				t.Fatalf("not held with the reason; log:\n%s\nqueue:\n%s", d.log.String(), reasons(t, e))
			}
			if s.Count(id) != 0 {
				t.Fatal("delivered with a broken configuration")
			}
			// The file fixed (the listener kept), a reload delivers.
			c.fix(e, s.Port)
			text, _ := os.ReadFile(e.Conf)
			e.WriteConf(string(text) + listen)
			d.cmd.Process.Signal(syscall.SIGHUP)
			if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(d.log.String(), "status=reloaded") }) {
				t.Fatalf("no reload:\n%s", d.log.String())
			}
			if r := testbin.Run(e.Cmd("relay", "queue", "flush"), ""); r.Code != 0 {
				t.Fatal(r)
			}
			if !testsmtp.WaitFor(20*time.Second, func() bool { return s.Count(id) == 1 }) {
				t.Fatalf("not delivered after the fix and a reload:\n%s", d.log.String())
			}
			d.stop(syscall.SIGTERM, 20*time.Second)
		})
	}
}

// TestSendmailQ_BesideADaemonOnlyWakesIt: with the daemon's locks held
// (as a running daemon holds them), sendmail -q and relay queue flush
// make the mail due and start no runner: nothing is delivered by them.
func TestSendmailQ_BesideADaemonOnlyWakesIt(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := testbin.NewEnv(t, sinkConf(s.Port, ""))
	id := "beside-daemon@test"
	sp, err := spool.Create(e.Spool)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := sp.LockDaemon()
	if err != nil {
		t.Fatal(err)
	}
	rl, ok, err := sp.TryRunLock()
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if r := testbin.Run(e.Cmd("sendmail", "-i", "b@example.net"), testMessage(id, "x\n")); r.Code != 0 {
		t.Fatal(r)
	}
	ids, _ := sp.IDs()
	later := time.Now().Add(time.Hour)
	sp.Change(ids[0], time.Second, func(env *spool.Envelope) bool { env.NextAttempt = later; env.Attempts = 1; return true })
	for _, args := range [][]string{{"sendmail", "-q"}, {"relay", "queue", "flush"}} {
		if r := testbin.Run(e.Cmd(args[0], args[1:]...), ""); r.Code != 0 {
			t.Fatal(args, r)
		}
	}
	m, _ := sp.Read(ids[0])
	if m.NextAttempt.After(time.Now()) {
		t.Error("not made due")
	}
	time.Sleep(time.Second)
	if s.Count(id) != 0 {
		t.Fatal("a flush beside the daemon delivered itself")
	}
	// The daemon gone, the same flush delivers.
	rl.Release()
	dl.Release()
	if r := testbin.Run(e.Cmd("relay", "queue", "flush"), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if !testsmtp.WaitFor(20*time.Second, func() bool { return s.Count(id) == 1 }) {
		t.Fatal("flush without a daemon delivered nothing")
	}
}

// TestRelativeConfig_DetachedRunnerDelivers: relay -C relay.toml, a path
// relative to the working directory; the detached runner works in /.
func TestRelativeConfig_DetachedRunnerDelivers(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := testbin.NewEnv(t, sinkConf(s.Port, ""))
	id := "relative-c@test"
	c := e.Cmd("relay", "-C", "relay.toml", "sendmail", "-i", "b@example.net")
	c.Env = os.Environ()
	c.Dir = e.Dir
	if r := testbin.Run(c, testMessage(id, "x\n")); r.Code != 0 {
		t.Fatal(r)
	}
	if !testsmtp.WaitFor(20*time.Second, func() bool { return s.Count(id) == 1 }) {
		t.Fatal("nothing delivered by the detached runner of a relative -C")
	}
}
