package main_test

// Black-box tests of relay daemon: the real binary against an in-process
// go-smtp smarthost that records every message it answered 250 to, and
// can read DATA slowly. Signals are real signals to the real process.
// Tests wait for events with generous deadlines (a hang fails instead of
// blocking CI); none asserts how fast anything was.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// --------------------------------------------------------- the daemon --

// daemonConf is the configuration of a daemon test: the sink on port,
// no detached runners, retries and rescans far away so that only the
// watch explains a prompt delivery.
func daemonConf(port int) string {
	return fmt.Sprintf(`[queue]
retry_min = "1h"
retry_max = "2h"

[daemon]
detached_delivery = false
rescan = "1h"

[[smarthost]]
host = "127.0.0.1"
port = %d
tls = "none"
`, port)
}

type relayd struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *lockedBuf
	done chan struct{}
	code int
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runDaemon starts relay daemon on e's spool and waits until it says it
// started.
func runDaemon(t *testing.T, e *env, global ...string) *relayd {
	t.Helper()
	if _, err := spool.Open(e.spool); err != nil {
		if _, err := spool.Create(e.spool); err != nil {
			t.Fatal(err)
		}
	}
	d := &relayd{t: t, cmd: e.cmd("relay", append(global, "daemon")...), log: &lockedBuf{}, done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		if err != nil && d.code == 0 {
			d.code = -1
		}
		close(d.done)
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
	})
	if !waitFor(10*time.Second, func() bool { return strings.Contains(d.log.String(), "status=started") || d.exited() }) || d.exited() {
		t.Fatalf("relay daemon did not start:\n%s", d.log.String())
	}
	return d
}

func (d *relayd) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits (up to limit) for the daemon to exit; it
// returns how long that took.
func (d *relayd) stop(sig syscall.Signal, limit time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(limit):
		d.t.Fatalf("relay daemon still runs %v after %v:\n%s", limit, sig, d.log.String())
	}
	return time.Since(start)
}

func waitFor(limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// closedPort returns a port bound but not listening: connecting to it is
// refused, and nothing else can take it during the test.
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// queued counts the queue (the daemon may remove a message at any time:
// only the names are read).
func queued(t *testing.T, e *env) int {
	t.Helper()
	ids, err := e.open().IDs()
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

func testMessage(msgID string, body string) string {
	return fmt.Sprintf("From: a@example.com\nTo: b@example.net\nSubject: daemon test\nMessage-ID: <%s>\n\n%s", msgID, body)
}

func (e *env) submit(t *testing.T, msgID, body string) {
	t.Helper()
	if r := run(e.cmd("sendmail", "-i", "b@example.net"), testMessage(msgID, body)); r.code != 0 {
		t.Fatalf("sendmail: exit %d: %s", r.code, r.stderr)
	}
}

// --------------------------------------------------------------- tests --

func TestDaemon_SecondRefusesAndRunnersStandAside(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := newEnv(t, daemonConf(s.Port))
	d := runDaemon(t, e)

	r := run(e.cmd("relay", "daemon"), "")
	if r.code != 75 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "already runs") {
		t.Errorf("second daemon: exit %d, stderr %q; want 75 and one line saying a daemon runs", r.code, r.stderr)
	}
	if d.exited() {
		t.Fatalf("the first daemon died:\n%s", d.log.String())
	}
	// relay queue run stands aside while the daemon runs (it holds the
	// run lock): exit 0 at once, nothing printed.
	if r := run(e.cmd("relay", "queue", "run"), ""); r.code != 0 || r.stderr != "" {
		t.Errorf("queue run beside the daemon: exit %d, stderr %q", r.code, r.stderr)
	}
	// relay check of a system install warns about a missing daemon only
	// when there is none (a maildrop makes the spool a system install).
	if err := os.Mkdir(e.spool+"/maildrop", 0o733); err != nil {
		t.Fatal(err)
	}
	if r := run(e.cmd("relay", "check"), ""); strings.Contains(r.stderr, "no relay daemon") {
		t.Errorf("relay check warns about a missing daemon while one runs: %s", r.stderr)
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
	if d.code != 0 {
		t.Errorf("daemon exit %d after SIGTERM:\n%s", d.code, d.log.String())
	}
	if r := run(e.cmd("relay", "check"), ""); !strings.Contains(r.stderr, "no relay daemon") {
		t.Errorf("relay check without a daemon does not warn: %s", r.stderr)
	}
	// Once it stopped, another may start.
	d2 := runDaemon(t, e)
	d2.stop(syscall.SIGTERM, 20*time.Second)
}

// TestDaemon_WatchPicksUpAndFlush: with retries and rescans an hour away,
// only the watch can explain that a new message is delivered and that a
// flush (sendmail -q) makes deferred mail go.
func TestDaemon_WatchPicksUpAndFlush(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := newEnv(t, daemonConf(s.Port))
	d := runDaemon(t, e)
	id := "pickup-" + fmt.Sprint(rand.Int64())
	e.submit(t, id, "hello\n")
	if !waitFor(30*time.Second, func() bool { return s.Count(id) == 1 }) {
		t.Fatalf("message not delivered by the daemon:\n%s", d.log.String())
	}

	// The smarthost goes down: a message is deferred for an hour.
	s.Down.Store(true)
	id2 := "flush-" + fmt.Sprint(rand.Int64())
	e.submit(t, id2, "deferred first\n")
	if !waitFor(30*time.Second, func() bool { return strings.Contains(d.log.String(), "status=deferred") }) {
		t.Fatalf("no deferral logged:\n%s", d.log.String())
	}
	s.Down.Store(false)
	s2 := s
	time.Sleep(300 * time.Millisecond)
	if s2.Count(id2) != 0 {
		t.Fatal("delivered before the flush: the retry time was not respected")
	}
	if r := run(e.cmd("sendmail", "-q"), ""); r.code != 0 {
		t.Fatalf("sendmail -q: exit %d %s", r.code, r.stderr)
	}
	if !waitFor(30*time.Second, func() bool { return s2.Count(id2) == 1 }) {
		t.Fatalf("flushed message not delivered:\n%s", d.log.String())
	}
	if !waitFor(10*time.Second, func() bool { return queued(t, e) == 0 }) {
		t.Errorf("queue not empty: %d", queued(t, e))
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
}

// TestDaemon_SIGTERMDuring40MBData: a smarthost that reads slowly; SIGTERM
// lands in the middle of DATA. The daemon exits within seconds, the
// message stays queued untouched (no attempt counted) and a restarted
// daemon delivers it once, whole.
func TestDaemon_SIGTERMDuring40MBData(t *testing.T) {
	slow := testsmtp.NewSink(t, 0, 20*time.Millisecond) // ~3 MB/s
	e := newEnv(t, daemonConf(slow.Port))
	body := strings.Repeat(strings.Repeat("x", 76)+"\n", 40<<20/77)
	id := "big-" + fmt.Sprint(rand.Int64())
	e.submit(t, id, body)
	d := runDaemon(t, e)
	if !waitFor(60*time.Second, func() bool { return slow.DataRx.Load() > 4<<20 }) {
		t.Fatalf("DATA did not start:\n%s", d.log.String())
	}
	took := d.stop(syscall.SIGTERM, 15*time.Second)
	t.Logf("SIGTERM after %d MB of DATA: the daemon exited after %v", slow.DataRx.Load()>>20, took.Round(time.Millisecond))
	if d.code != 0 {
		t.Errorf("exit %d after SIGTERM", d.code)
	}
	if slow.Count(id) != 0 {
		t.Fatal("the smarthost accepted the cut message")
	}
	msgs := e.messages()
	if len(msgs) != 1 {
		t.Fatalf("queue holds %d messages, want the one cut", len(msgs))
	}
	for _, m := range msgs {
		if m.Attempts != 0 || len(m.Pending()) != 1 || m.Held {
			t.Errorf("cut message changed: attempts %d, pending %d, held %v", m.Attempts, len(m.Pending()), m.Held)
		}
	}
	if !waitFor(10*time.Second, func() bool { return slow.Aborted.Load() == 1 }) {
		t.Errorf("the smarthost did not see the transaction end without its dot")
	}
	slow.Close()

	fast := testsmtp.NewSink(t, 0, 0)
	e.writeConf(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s", e.spool, daemonConf(fast.Port)))
	d2 := runDaemon(t, e)
	if !waitFor(60*time.Second, func() bool { return fast.Count(id) == 1 }) {
		t.Fatalf("not delivered after the restart:\n%s", d2.log.String())
	}
	if !waitFor(10*time.Second, func() bool { return queued(t, e) == 0 }) {
		t.Errorf("queue not empty after delivery")
	}
	if got := fast.DataRx.Load(); got < int64(len(body)) {
		t.Errorf("smarthost read %d bytes, the body alone has %d", got, len(body))
	}
	d2.stop(syscall.SIGTERM, 20*time.Second)
}

// TestDaemon_SIGHUP: a broken configuration is refused (logged) and the
// daemon keeps delivering with the old one; a good one takes effect.
func TestDaemon_SIGHUP(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := newEnv(t, daemonConf(s.Port))
	good, err := os.ReadFile(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	// The daemon reads a file of its own: sendmail keeps a good one.
	dconf := e.dir + "/daemon.toml"
	write := func(text string) {
		if err := os.WriteFile(dconf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(string(good))
	d := runDaemon(t, e, "-C", dconf)

	write(string(good) + "\nthis is = = not toml\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(10*time.Second, func() bool { return strings.Contains(d.log.String(), "status=reload-refused") }) {
		t.Fatalf("no refusal logged:\n%s", d.log.String())
	}
	id := "hup-" + fmt.Sprint(rand.Int64())
	e.submit(t, id, "after a broken reload\n")
	if !waitFor(30*time.Second, func() bool { return s.Count(id) == 1 }) {
		t.Fatalf("not delivered with the old configuration:\n%s", d.log.String())
	}

	// A good new configuration: another smarthost.
	s2 := testsmtp.NewSink(t, 0, 0)
	write(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s", e.spool, daemonConf(s2.Port)))
	d.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(10*time.Second, func() bool { return strings.Contains(d.log.String(), "status=reloaded") }) {
		t.Fatalf("no reload logged:\n%s", d.log.String())
	}
	id2 := "hup2-" + fmt.Sprint(rand.Int64())
	e.submit(t, id2, "after a good reload\n")
	if !waitFor(30*time.Second, func() bool { return s2.Count(id2) == 1 }) {
		t.Fatalf("not delivered to the new smarthost:\n%s", d.log.String())
	}
	if s.Count(id2) != 0 {
		t.Error("delivered to the old smarthost after the reload")
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
	if d.code != 0 {
		t.Errorf("exit %d", d.code)
	}
}

// TestDaemon_SIGKILLWhileDelivering: a stream of submissions while the
// daemon is killed at random moments, many times. After the last restart
// every accepted message has arrived, and a message arrived twice only if
// the smarthost had accepted it (ended its DATA for the 250) before one
// of the kills. This proves atomicity against a crashed process, not
// durability against power loss.
func TestDaemon_SIGKILLWhileDelivering(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for tens of seconds")
	}
	s := testsmtp.NewSink(t, 0, 0)
	e := newEnv(t, daemonConf(s.Port))
	var (
		submitted []string
		// acceptedBefore: messages the smarthost had accepted at the time
		// of some kill; only those may arrive twice.
		acceptedBefore = map[string]bool{}
	)
	body := strings.Repeat("line of a message in the stream\n", 300)
	runs := 40
	for i := 0; i < runs; i++ {
		d := runDaemon(t, e)
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					id := fmt.Sprintf("kill-%d-%d", i, rand.Int64())
					r := run(e.cmd("sendmail", "-i", "b@example.net"), testMessage(id, body))
					if r.code != 0 {
						t.Errorf("sendmail: exit %d: %s", r.code, r.stderr)
						return
					}
					mu.Lock()
					submitted = append(submitted, id)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(100+rand.IntN(600)) * time.Millisecond)
		// Once the process is gone nothing more can be accepted: the
		// snapshot holds exactly what the smarthost accepted before the
		// kill.
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		for id := range s.Snapshot() {
			acceptedBefore[id] = true
		}
		cancel()
		wg.Wait()
	}
	d := runDaemon(t, e)
	if !waitFor(60*time.Second, func() bool { return queued(t, e) == 0 }) {
		t.Fatalf("queue not drained after the last restart: %d left\n%s", queued(t, e), d.log.String())
	}
	d.stop(syscall.SIGTERM, 20*time.Second)

	got := s.Snapshot()
	missing, dups := 0, 0
	for _, id := range submitted {
		switch n := got[id]; {
		case n == 0:
			missing++
			t.Errorf("%s never arrived", id)
		case n > 1:
			dups++
			if !acceptedBefore[id] {
				t.Errorf("%s arrived %d times but had not been accepted before any kill", id, n)
			}
		}
	}
	t.Logf("%d kills, %d messages submitted, %d missing, %d duplicates (all accepted before a kill)", runs, len(submitted), missing, dups)
	if len(submitted) < runs {
		t.Errorf("only %d messages submitted in %d runs", len(submitted), runs)
	}
}

// TestDaemon_SystemInstallMaildrop: root starts the daemon of a system
// install; it continues as relay, and a local user's message, dropped in
// the maildrop, is picked up by the watch and delivered.
func TestDaemon_SystemInstallMaildrop(t *testing.T) {
	s := newSysEnv(t)
	sk := testsmtp.NewSink(t, 0, 0)
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.conf, append(conf, daemonConf(sk.Port)...), 0o644); err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, s.env)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	relayUser, _ := user.Lookup("relay")
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[0] == "Uid:" && (f[1] != relayUser.Uid || f[2] != relayUser.Uid) {
			t.Errorf("daemon runs as %s, want relay (%s)", l, relayUser.Uid)
		}
	}
	id := "drop-" + fmt.Sprint(rand.Int64())
	if r := run(as(s.users[0], s.cmd("sendmail", "-i", "b@example.net")), testMessage(id, "from a user\n")); r.code != 0 {
		t.Fatalf("sendmail: %+v", r)
	}
	if !waitFor(30*time.Second, func() bool { return sk.Count(id) == 1 }) {
		t.Fatalf("dropped message not delivered:\n%s", d.log.String())
	}
	if left, _ := os.ReadDir(filepath.Join(s.spool, "maildrop")); len(left) != 0 {
		t.Errorf("maildrop after pickup: %v", left)
	}
	if !strings.Contains(d.log.String(), "uid="+s.users[0].Uid) {
		t.Errorf("no pickup line naming the user's uid:\n%s", d.log.String())
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
}

// TestDaemon_IdleAfterDeferrals: the daemon's own writes (50 deferred
// envelopes rewritten) must not wake it in a loop: once every message is
// deferred it sleeps. Measured as CPU time over two idle seconds, from
// /proc (a spinning daemon burns a whole core: about 200 ticks).
func TestDaemon_IdleAfterDeferrals(t *testing.T) {
	e := newEnv(t, daemonConf(closedPort(t))) // the smarthost is down
	d := runDaemon(t, e)
	for i := 0; i < 50; i++ {
		e.submit(t, fmt.Sprintf("idle-%d-%d", i, rand.Int64()), "deferred\n")
	}
	if !waitFor(60*time.Second, func() bool { return strings.Count(d.log.String(), "status=deferred") >= 50 }) {
		t.Fatalf("not every message deferred:\n%s", d.log.String())
	}
	time.Sleep(300 * time.Millisecond) // the last pass's scan
	ticks := func() int {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		var u, s int
		fmt.Sscan(f[11], &u)
		fmt.Sscan(f[12], &s)
		return u + s
	}
	before := ticks()
	time.Sleep(2 * time.Second)
	used := ticks() - before
	t.Logf("CPU over 2 idle seconds with 50 deferred messages: %d ticks", used)
	if used > 20 {
		t.Errorf("the daemon used %d ticks of CPU in 2 idle seconds: it does not sleep", used)
	}
	if n := strings.Count(d.log.String(), "status=deferred"); n != 50 {
		t.Errorf("%d deferral lines for 50 messages: the daemon retried before retry_min", n)
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
}

// TestDaemon_SdNotifyAndLogReopen: with NOTIFY_SOCKET set the daemon
// says READY=1 and, on SIGTERM, STOPPING=1; SIGHUP reopens a log file
// moved away by logrotate.
func TestDaemon_SdNotifyAndLogReopen(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := newEnv(t, daemonConf(s.Port))
	logPath := filepath.Join(e.dir, "relay.log")
	conf, _ := os.ReadFile(e.conf)
	e.writeConf(strings.Replace(string(conf), "[queue]", fmt.Sprintf("[log]\nto = %q\n\n[queue]", logPath), 1))

	sock := filepath.Join(e.dir, "notify.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := pc.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, string(buf[:n]))
			mu.Unlock()
		}
	}()
	notified := func(state string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, g := range got {
			if strings.Contains(g, state) {
				return true
			}
		}
		return false
	}

	if _, err := spool.Create(e.spool); err != nil {
		t.Fatal(err)
	}
	cmd := e.cmd("relay", "daemon")
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
	d := &relayd{t: t, cmd: cmd, log: &lockedBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); d.code = cmd.ProcessState.ExitCode(); close(d.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-d.done })
	if !waitFor(10*time.Second, func() bool { return notified("READY=1") }) {
		t.Fatalf("no READY=1 (got %q):\n%s", got, d.log.String())
	}

	id := "log1-" + fmt.Sprint(rand.Int64())
	e.submit(t, id, "one\n")
	if !waitFor(30*time.Second, func() bool { return s.Count(id) == 1 }) {
		t.Fatal("not delivered")
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(logPath); return err == nil }) {
		t.Fatalf("SIGHUP did not reopen the log file:\n%s", d.log.String())
	}
	id2 := "log2-" + fmt.Sprint(rand.Int64())
	e.submit(t, id2, "two\n")
	if !waitFor(30*time.Second, func() bool { return s.Count(id2) == 1 }) {
		t.Fatal("not delivered after SIGHUP")
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
	if !waitFor(5*time.Second, func() bool { return notified("STOPPING=1") }) {
		t.Errorf("no STOPPING=1 (got %q)", got)
	}
	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	if !strings.Contains(string(old), "status=started") || strings.Contains(string(old), "status=stopped") {
		t.Errorf("old log file:\n%s", old)
	}
	if !strings.Contains(string(cur), "status=reloaded") || !strings.Contains(string(cur), "status=sent") || !strings.Contains(string(cur), "status=stopped") {
		t.Errorf("new log file lacks the lines after SIGHUP:\n%s", cur)
	}
}
