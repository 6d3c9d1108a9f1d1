package daemon_test

// The daemon under real signals: SIGTERM (also in the middle of DATA),
// SIGHUP (reload, log reopen), SIGKILL at random moments, and systemd's
// sd_notify; a second daemon on the spool is refused.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

func TestDaemon_SecondRefusesAndRunnersStandAside(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := testbin.NewEnv(t, daemonConf(s.Port))
	d := runDaemon(t, e)

	r := testbin.Run(e.Cmd("relay", "daemon"), "")
	if r.Code != 75 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || !strings.Contains(r.Stderr, "already runs") {
		t.Errorf("second daemon: exit %d, stderr %q; want 75 and one line saying a daemon runs", r.Code, r.Stderr)
	}
	if d.exited() {
		t.Fatalf("the first daemon died:\n%s", d.log.String())
	}
	// relay queue run stands aside while the daemon runs (it holds the
	// run lock): exit 0 at once, nothing printed.
	if r := testbin.Run(e.Cmd("relay", "queue", "run"), ""); r.Code != 0 || r.Stderr != "" {
		t.Errorf("queue run beside the daemon: exit %d, stderr %q", r.Code, r.Stderr)
	}
	// relay check of a system install warns about a missing daemon only
	// when there is none (a maildrop makes the spool a system install).
	if err := os.Mkdir(e.Spool+"/maildrop", 0o733); err != nil {
		t.Fatal(err)
	}
	if r := testbin.Run(e.Cmd("relay", "check"), ""); strings.Contains(r.Stderr, "no relay daemon") {
		t.Errorf("relay check warns about a missing daemon while one runs: %s", r.Stderr)
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
	if d.code != 0 {
		t.Errorf("daemon exit %d after SIGTERM:\n%s", d.code, d.log.String())
	}
	if r := testbin.Run(e.Cmd("relay", "check"), ""); !strings.Contains(r.Stderr, "no relay daemon") {
		t.Errorf("relay check without a daemon does not warn: %s", r.Stderr)
	}
	// Once it stopped, another may start.
	d2 := runDaemon(t, e)
	d2.stop(syscall.SIGTERM, 20*time.Second)
}

// TestDaemon_SIGTERMDuring40MBData: a smarthost that reads slowly; SIGTERM
// lands in the middle of DATA. The daemon exits within seconds, the
// message stays queued untouched (no attempt counted) and a restarted
// daemon delivers it once, whole.
func TestDaemon_SIGTERMDuring40MBData(t *testing.T) {
	slow := testsmtp.NewSink(t, 0, 20*time.Millisecond) // ~3 MB/s
	e := testbin.NewEnv(t, daemonConf(slow.Port))
	body := strings.Repeat(strings.Repeat("x", 76)+"\n", 40<<20/77)
	id := "big-" + fmt.Sprint(rand.Int64())
	submitMail(t, e, id, body)
	d := runDaemon(t, e)
	if !testsmtp.WaitFor(60*time.Second, func() bool { return slow.DataRx.Load() > 4<<20 }) {
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
	msgs := e.Messages()
	if len(msgs) != 1 {
		t.Fatalf("queue holds %d messages, want the one cut", len(msgs))
	}
	for _, m := range msgs {
		if m.Attempts != 0 || len(m.Pending()) != 1 || m.Held {
			t.Errorf("cut message changed: attempts %d, pending %d, held %v", m.Attempts, len(m.Pending()), m.Held)
		}
	}
	if !testsmtp.WaitFor(10*time.Second, func() bool { return slow.Aborted.Load() == 1 }) {
		t.Errorf("the smarthost did not see the transaction end without its dot")
	}
	slow.Close()

	fast := testsmtp.NewSink(t, 0, 0)
	e.WriteConf(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s", e.Spool, daemonConf(fast.Port)))
	d2 := runDaemon(t, e)
	if !testsmtp.WaitFor(60*time.Second, func() bool { return fast.Count(id) == 1 }) {
		t.Fatalf("not delivered after the restart:\n%s", d2.log.String())
	}
	if !testsmtp.WaitFor(10*time.Second, func() bool { return queued(t, e) == 0 }) {
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
	e := testbin.NewEnv(t, daemonConf(s.Port))
	good, err := os.ReadFile(e.Conf)
	if err != nil {
		t.Fatal(err)
	}
	// The daemon reads a file of its own: sendmail keeps a good one.
	dconf := e.Dir + "/daemon.toml"
	write := func(text string) {
		if err := os.WriteFile(dconf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(string(good))
	d := runDaemon(t, e, "-C", dconf)

	write(string(good) + "\nthis is = = not toml\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(d.log.String(), "status=reload-refused") }) {
		t.Fatalf("no refusal logged:\n%s", d.log.String())
	}
	id := "hup-" + fmt.Sprint(rand.Int64())
	submitMail(t, e, id, "after a broken reload\n")
	if !testsmtp.WaitFor(30*time.Second, func() bool { return s.Count(id) == 1 }) {
		t.Fatalf("not delivered with the old configuration:\n%s", d.log.String())
	}

	// A good new configuration: another smarthost.
	s2 := testsmtp.NewSink(t, 0, 0)
	write(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s", e.Spool, daemonConf(s2.Port)))
	d.cmd.Process.Signal(syscall.SIGHUP)
	if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(d.log.String(), "status=reloaded") }) {
		t.Fatalf("no reload logged:\n%s", d.log.String())
	}
	id2 := "hup2-" + fmt.Sprint(rand.Int64())
	submitMail(t, e, id2, "after a good reload\n")
	if !testsmtp.WaitFor(30*time.Second, func() bool { return s2.Count(id2) == 1 }) {
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
	e := testbin.NewEnv(t, daemonConf(s.Port))
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
					r := testbin.Run(e.Cmd("sendmail", "-i", "b@example.net"), testMessage(id, body))
					if r.Code != 0 {
						t.Errorf("sendmail: exit %d: %s", r.Code, r.Stderr)
						return
					}
					mu.Lock()
					submitted = append(submitted, id)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(100+rand.IntN(600)) * time.Millisecond)
		// Once the process is gone and the sink has finished reading
		// what the kernel had buffered (a final dot sent just before the
		// kill is still counted after it), the snapshot holds everything
		// the smarthost accepted from the killed daemon, plus what
		// detached runners started by the submissions delivered once.
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		if !s.Settle(30 * time.Second) {
			t.Fatal("the sink is still in DATA 30 s after the kill")
		}
		for id := range s.Snapshot() {
			acceptedBefore[id] = true
		}
		cancel()
		wg.Wait()
	}
	d := runDaemon(t, e)
	if !testsmtp.WaitFor(60*time.Second, func() bool { return queued(t, e) == 0 }) {
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

// TestDaemon_SdNotifyAndLogReopen: with NOTIFY_SOCKET set the daemon
// says READY=1 and, on SIGTERM, STOPPING=1; SIGHUP reopens a log file
// moved away by logrotate.
func TestDaemon_SdNotifyAndLogReopen(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := testbin.NewEnv(t, daemonConf(s.Port))
	logPath := filepath.Join(e.Dir, "relay.log")
	conf, _ := os.ReadFile(e.Conf)
	e.WriteConf(strings.Replace(string(conf), "[queue]", fmt.Sprintf("[log]\nto = %q\n\n[queue]", logPath), 1))

	sock := filepath.Join(e.Dir, "notify.sock")
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

	if _, err := spool.Create(e.Spool); err != nil {
		t.Fatal(err)
	}
	cmd := e.Cmd("relay", "daemon")
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
	d := &relayd{t: t, cmd: cmd, log: &testsmtp.LockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); d.code = cmd.ProcessState.ExitCode(); close(d.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-d.done })
	if !testsmtp.WaitFor(10*time.Second, func() bool { return notified("READY=1") }) {
		t.Fatalf("no READY=1 (got %q):\n%s", got, d.log.String())
	}

	id := "log1-" + fmt.Sprint(rand.Int64())
	submitMail(t, e, id, "one\n")
	if !testsmtp.WaitFor(30*time.Second, func() bool { return s.Count(id) == 1 }) {
		t.Fatal("not delivered")
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if !testsmtp.WaitFor(10*time.Second, func() bool { _, err := os.Stat(logPath); return err == nil }) {
		t.Fatalf("SIGHUP did not reopen the log file:\n%s", d.log.String())
	}
	id2 := "log2-" + fmt.Sprint(rand.Int64())
	submitMail(t, e, id2, "two\n")
	if !testsmtp.WaitFor(30*time.Second, func() bool { return s.Count(id2) == 1 }) {
		t.Fatal("not delivered after SIGHUP")
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
	if !testsmtp.WaitFor(5*time.Second, func() bool { return notified("STOPPING=1") }) {
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
