package daemon

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
)

// inProcess is a Daemon running in a goroutine of the test: the daemon's
// tests run here whatever does not need a process of its own (see
// process_test.go for what does), so that coverage counts it.
type inProcess struct {
	d      *Daemon
	log    *testsmtp.LockedBuffer // d.Log's lines, unless the test gave its own Log
	cancel context.CancelFunc
	done   chan error // Run's result
}

// startDaemon runs d until the test ends (or stop). Without a Log, d logs
// to a buffer the test reads.
func startDaemon(t *testing.T, d *Daemon) *inProcess {
	t.Helper()
	p := &inProcess{d: d, log: &testsmtp.LockedBuffer{}, done: make(chan error, 1)}
	if d.Log == nil {
		d.Log = maillog.New(p.log)
	}
	keepMemoryLimit(t)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Error("the daemon did not stop at the end of the test")
		}
	})
	return p
}

// waitLog waits until the log holds s, failing the test when it does not
// within limit or Run returned.
func (p *inProcess) waitLog(t *testing.T, s string, limit time.Duration) {
	t.Helper()
	if !testsmtp.WaitFor(limit, func() bool { return strings.Contains(p.log.String(), s) || len(p.done) > 0 }) ||
		!strings.Contains(p.log.String(), s) {
		t.Fatalf("no %q in the log:\n%s", s, p.log.String())
	}
}

// wait returns Run's result, failing the test when Run does not return
// within limit.
func (p *inProcess) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(limit):
		t.Fatalf("the daemon still runs after %v:\n%s", limit, p.log.String())
		return nil
	}
}

// stop cancels Run's context and returns its result.
func (p *inProcess) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	return p.wait(t, 20*time.Second)
}

// signalSelf sends sig to the test process, where a running Daemon
// catches it (Run's signal.Notify). The test catches it as well, so that
// it never ends the test binary, even when no Daemon listens; send it only
// once the Daemon logged that it waits or started (it listens by then).
func signalSelf(t *testing.T, sig syscall.Signal) {
	t.Helper()
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, sig)
	t.Cleanup(func() { signal.Stop(caught) })
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

// stopServe sends SIGTERM to the test process and expects the Serve
// running in the background (its result arrives on done) to return nil
// within 20 s; stderr is its log, shown when it does not stop.
func stopServe(t *testing.T, done <-chan error, stderr fmt.Stringer) {
	t.Helper()
	signalSelf(t, syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Serve still runs after SIGTERM:\n%s", stderr.String())
	}
}

// keepMemoryLimit restores the process's memory limit at the end of the
// test: Daemon.Run lowers it (MemoryLimit), as it should in relay daemon,
// and the tests after this one are to run with the limit they had.
func keepMemoryLimit(t *testing.T) {
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(limit) })
}
