package daemon_test

// The daemon's watch, seen from outside: new mail and flushes wake it, a
// system install's maildrop is picked up, its own writes do not.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
)

// TestDaemon_WatchPicksUpAndFlush: with retries and rescans an hour away,
// only the watch can explain that a new message is delivered and that a
// flush (sendmail -q) makes deferred mail go.
func TestDaemon_WatchPicksUpAndFlush(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := testbin.NewEnv(t, daemonConf(s.Port))
	d := runDaemon(t, e)
	id := "pickup-" + fmt.Sprint(rand.Int64())
	submitMail(t, e, id, "hello\n")
	if !testsmtp.WaitFor(30*time.Second, func() bool { return s.Count(id) == 1 }) {
		t.Fatalf("message not delivered by the daemon:\n%s", d.log.String())
	}

	// The smarthost goes down: a message is deferred for an hour.
	s.Down.Store(true)
	id2 := "flush-" + fmt.Sprint(rand.Int64())
	submitMail(t, e, id2, "deferred first\n")
	if !testsmtp.WaitFor(30*time.Second, func() bool { return strings.Contains(d.log.String(), "status=deferred") }) {
		t.Fatalf("no deferral logged:\n%s", d.log.String())
	}
	s.Down.Store(false)
	s2 := s
	time.Sleep(300 * time.Millisecond)
	if s2.Count(id2) != 0 {
		t.Fatal("delivered before the flush: the retry time was not respected")
	}
	if r := testbin.Run(e.Cmd("sendmail", "-q"), ""); r.Code != 0 {
		t.Fatalf("sendmail -q: exit %d %s", r.Code, r.Stderr)
	}
	if !testsmtp.WaitFor(30*time.Second, func() bool { return s2.Count(id2) == 1 }) {
		t.Fatalf("flushed message not delivered:\n%s", d.log.String())
	}
	if !testsmtp.WaitFor(10*time.Second, func() bool { return queued(t, e) == 0 }) {
		t.Errorf("queue not empty: %d", queued(t, e))
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
}

// TestDaemon_SystemInstallMaildrop: root starts the daemon of a system
// install; it continues as relay, and a local user's message, dropped in
// the maildrop, is picked up by the watch and delivered.
func TestDaemon_SystemInstallMaildrop(t *testing.T) {
	s := testbin.NewSysEnv(t)
	sk := testsmtp.NewSink(t, 0, 0)
	conf, err := os.ReadFile(s.Conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Conf, append(conf, daemonConf(sk.Port)...), 0o644); err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, s.Env)
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
	if r := testbin.Run(testbin.As(s.Users[0], s.Cmd("sendmail", "-i", "b@example.net")), testMessage(id, "from a user\n")); r.Code != 0 {
		t.Fatalf("sendmail: %+v", r)
	}
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sk.Count(id) == 1 }) {
		t.Fatalf("dropped message not delivered:\n%s", d.log.String())
	}
	if left, _ := os.ReadDir(filepath.Join(s.Spool, "maildrop")); len(left) != 0 {
		t.Errorf("maildrop after pickup: %v", left)
	}
	if !strings.Contains(d.log.String(), "uid="+s.Users[0].Uid) {
		t.Errorf("no pickup line naming the user's uid:\n%s", d.log.String())
	}
	d.stop(syscall.SIGTERM, 20*time.Second)
}

// TestDaemon_IdleAfterDeferrals: the daemon's own writes (50 deferred
// envelopes rewritten) must not wake it in a loop: once every message is
// deferred it sleeps. Measured as CPU time over two idle seconds, from
// /proc (a spinning daemon burns a whole core: about 200 ticks).
func TestDaemon_IdleAfterDeferrals(t *testing.T) {
	e := testbin.NewEnv(t, daemonConf(testsmtp.ClosedPort(t))) // the smarthost is down
	d := runDaemon(t, e)
	for i := 0; i < 50; i++ {
		submitMail(t, e, fmt.Sprintf("idle-%d-%d", i, rand.Int64()), "deferred\n")
	}
	if !testsmtp.WaitFor(60*time.Second, func() bool { return strings.Count(d.log.String(), "status=deferred") >= 50 }) {
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
