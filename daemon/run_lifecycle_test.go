package daemon

// How Daemon.Run starts and stops: the locks it takes, the signals that end
// it, its services, and what it tells systemd.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
)

func TestRun_SecondDaemonIsRefused(t *testing.T) {
	keepMemoryLimit(t)
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	sp := createSpool(t, cfg, false)
	first, err := sp.LockDaemon()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	var log testsmtp.LockedBuffer
	d := &Daemon{Spool: sp, Config: cfg, Log: maillog.New(&log)}
	err = d.Run(context.Background())
	if !IsRunning(err) {
		t.Fatalf("Run beside another daemon: %v, want an error IsRunning recognises", err)
	}
	if strings.Contains(log.String(), "status=started") {
		t.Errorf("the second daemon started:\n%s", log.String())
	}
}

// A spool whose watched directory is gone cannot be served: Run says
// which directory, instead of running blind to new mail.
func TestRun_UnwatchableSpoolFails(t *testing.T) {
	keepMemoryLimit(t)
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	sp := createSpool(t, cfg, false)
	dir := sp.WatchDirs()[0]
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err := (&Daemon{Spool: sp, Config: cfg, Log: maillog.New(&testsmtp.LockedBuffer{})}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "daemon: watch "+dir) {
		t.Fatalf("Run: %v, want the watch's failure naming %s", err, dir)
	}
	if _, err := sp.LockDaemon(); err != nil {
		t.Errorf("the daemon lock was kept after the failure: %v", err)
	}
}

func TestRun_StopsOnSIGTERMAndSIGINT(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cfg := testConfig(t, testsmtp.ClosedPort(t), "")
			p := startDaemon(t, &Daemon{Spool: createSpool(t, cfg, false), Config: cfg, Rescan: time.Hour})
			p.waitLog(t, "status=started", 10*time.Second)
			signalSelf(t, sig)
			if err := p.wait(t, 20*time.Second); err != nil {
				t.Errorf("Run after %v: %v, want nil", sig, err)
			}
			if !strings.Contains(p.log.String(), "status=stopping signal="+sig.String()) || !strings.Contains(p.log.String(), "status=stopped") {
				t.Errorf("the stop is not logged:\n%s", p.log.String())
			}
		})
	}
}

// A relay queue run at work holds the run lock: the daemon waits for its
// pass (a SIGHUP meanwhile changes nothing), then starts.
func TestRun_WaitsForAQueueRunsPass(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, false)
	submit(t, sp, "waited@test", false)
	rl, ok, err := sp.TryRunLock()
	if err != nil || !ok {
		t.Fatalf("run lock: %v %v", ok, err)
	}
	p := startDaemon(t, &Daemon{Spool: sp, Config: cfg, Rescan: time.Hour})
	p.waitLog(t, "status=waiting", 10*time.Second)
	signalSelf(t, syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if strings.Contains(p.log.String(), "status=started") || sink.Count("waited@test") != 0 {
		t.Fatalf("the daemon started beside a runner at work:\n%s", p.log.String())
	}
	rl.Release()
	p.waitLog(t, "status=started", 10*time.Second)
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("waited@test") == 1 }) {
		t.Fatalf("not delivered once the runner was gone:\n%s", p.log.String())
	}
	if err := p.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// Told to stop while it waits for the run lock, the daemon leaves without
// starting.
func TestRun_StopWhileWaitingForTheRunLock(t *testing.T) {
	for _, how := range []string{"context", "SIGTERM"} {
		t.Run(how, func(t *testing.T) {
			cfg := testConfig(t, testsmtp.ClosedPort(t), "")
			sp := createSpool(t, cfg, false)
			rl, ok, err := sp.TryRunLock()
			if err != nil || !ok {
				t.Fatalf("run lock: %v %v", ok, err)
			}
			defer rl.Release()
			p := startDaemon(t, &Daemon{Spool: sp, Config: cfg})
			p.waitLog(t, "status=waiting", 10*time.Second)
			if how == "SIGTERM" {
				signalSelf(t, syscall.SIGTERM)
			} else {
				p.cancel()
			}
			if err := p.wait(t, 10*time.Second); err != nil {
				t.Errorf("Run: %v, want nil", err)
			}
			if strings.Contains(p.log.String(), "status=started") {
				t.Errorf("the daemon started:\n%s", p.log.String())
			}
			if _, err := sp.LockDaemon(); err != nil {
				t.Errorf("the daemon lock was kept: %v", err)
			}
		})
	}
}

// A service that fails (the SMTP listener's socket broke) stops the
// daemon with its error; the others are stopped and waited for.
func TestRun_AFailedServiceStopsTheDaemon(t *testing.T) {
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	broke := errors.New("listener broke")
	var stopped atomic.Bool
	fail := make(chan struct{})
	d := &Daemon{Spool: createSpool(t, cfg, false), Config: cfg, Rescan: time.Hour, Services: []func(context.Context) error{
		func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(100 * time.Millisecond) // Run must wait for it
			stopped.Store(true)
			return nil
		},
		func(ctx context.Context) error {
			<-fail
			return broke
		},
	}}
	p := startDaemon(t, d)
	p.waitLog(t, "status=started", 10*time.Second)
	close(fail)
	if err := p.wait(t, 20*time.Second); err != broke {
		t.Fatalf("Run: %v, want the service's error", err)
	}
	if !stopped.Load() {
		t.Error("Run returned before the other service had stopped")
	}
	if !strings.Contains(p.log.String(), `reason="a service failed: listener broke"`) {
		t.Errorf("the failure is not logged:\n%s", p.log.String())
	}
}

// Services run for the daemon's life: they are stopped with it, and an
// error they return while stopping is no failure.
func TestRun_ServicesStopWithTheDaemon(t *testing.T) {
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	var running sync.WaitGroup
	running.Add(1)
	d := &Daemon{Spool: createSpool(t, cfg, false), Config: cfg, Rescan: time.Hour, Services: []func(context.Context) error{
		func(ctx context.Context) error {
			running.Done()
			<-ctx.Done()
			return ctx.Err()
		},
	}}
	p := startDaemon(t, d)
	running.Wait()
	p.waitLog(t, "status=started", 10*time.Second)
	if err := p.stop(t); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
}

// With NOTIFY_SOCKET set (systemd's Type=notify) the daemon says READY=1
// once it serves, again after a SIGHUP, and STOPPING=1 when it stops.
func TestRun_NotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	got := listenNotify(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	p := startDaemon(t, &Daemon{Spool: createSpool(t, cfg, false), Config: cfg, Rescan: time.Hour})
	if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(got(), "READY=1") }) {
		t.Fatalf("no READY=1 (got %q):\n%s", got(), p.log.String())
	}
	signalSelf(t, syscall.SIGHUP)
	if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Count(got(), "READY=1") == 2 }) {
		t.Errorf("no READY=1 after SIGHUP (got %q)", got())
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	if !testsmtp.WaitFor(5*time.Second, func() bool { return strings.Contains(got(), "STOPPING=1") }) {
		t.Errorf("no STOPPING=1 (got %q)", got())
	}
}

// listenNotify listens on the unix datagram socket name (a leading "@":
// the abstract namespace) and returns what was received so far, one
// datagram a line.
func listenNotify(t *testing.T, name string) func() string {
	t.Helper()
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var got testsmtp.LockedBuffer
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := pc.Read(buf)
			if err != nil {
				return
			}
			fmt.Fprintf(&got, "%s\n", buf[:n])
		}
	}()
	return got.String
}

func TestNotify(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify.sock"),
		fmt.Sprintf("@relay-daemon-test-%d", os.Getpid()),
	} {
		got := listenNotify(t, name)
		t.Setenv("NOTIFY_SOCKET", name)
		notify("STATUS=testing")
		if !testsmtp.WaitFor(5*time.Second, func() bool { return got() == "STATUS=testing\n" }) {
			t.Errorf("%s: got %q", name, got())
		}
	}
	// Nobody listening, or no socket asked for: nothing happens.
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	notify("READY=1")
	t.Setenv("NOTIFY_SOCKET", "")
	notify("READY=1")
}

// The daemon lives in little memory: unless GOMEMLIMIT says otherwise it
// sets the runtime's soft limit to MemoryLimit.
func TestRun_LowersTheMemoryLimit(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set: the daemon leaves the limit to it")
	}
	keepMemoryLimit(t)
	debug.SetMemoryLimit(math.MaxInt64)
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	p := startDaemon(t, &Daemon{Spool: createSpool(t, cfg, false), Config: cfg, Rescan: time.Hour})
	p.waitLog(t, "status=started", 10*time.Second)
	if got := debug.SetMemoryLimit(-1); got != MemoryLimit {
		t.Errorf("memory limit %d, want %d", got, MemoryLimit)
	}
}
