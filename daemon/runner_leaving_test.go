package daemon

// How a detached runner leaves without stranding a message that a
// sendmail commits at that moment (passes.run): it looks for work once
// more after releasing the run lock, a runner started before its
// sendmail's commit does not leave before that commit ends, and one that
// leaves at its bound of passes with mail due hands it over.

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// leavingRunner is a runner over a fresh spool that delivers to a sink.
func leavingRunner(t *testing.T) (*testsmtp.Sink, *spool.Spool, *relay.Runner) {
	t.Helper()
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, false)
	r := relay.NewRunner(cfg, sp, maillog.New(&testsmtp.LockedBuffer{}))
	t.Cleanup(r.Close)
	return sink, sp, r
}

// runEarly runs passes.run as a runner started before its sendmail's
// commit: it returns what passes.run returns, and the sendmail's end of the
// commit pipe.
func runEarly(t *testing.T, sp *spool.Spool, r *relay.Runner) (<-chan error, *os.File) {
	t.Helper()
	commitR, commitW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { commitR.Close(); commitW.Close() })
	done := make(chan error, 1)
	go func() {
		done <- (&passes{sp: sp, r: r, linger: 20 * time.Millisecond, commit: commitR, max: maxPasses}).run(context.Background())
	}()
	return done, commitW
}

// waitLeft waits for passes.run to return, without error, within 30 s.
func waitLeft(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal(what)
	}
}

// A message committed in the instant between a runner's last look and the
// release of its run lock: its sendmail, looking for a runner after the
// commit, finds this one at work and starts none. The runner, looking
// once more after the release, delivers it.
func TestRunPasses_MailCommittedAsTheRunnerLeaves(t *testing.T) {
	sink, sp, r := leavingRunner(t)
	submit(t, sp, "first@test", false)
	committed := false
	testHookLeaving = func() {
		if committed {
			return
		}
		committed = true
		submit(t, sp, "as-it-leaves@test", false)
		if !sp.RunnerActive() {
			t.Error("the run lock is not held where a sendmail would see the runner at work")
		}
	}
	t.Cleanup(func() { testHookLeaving = nil })
	if err := (&passes{sp: sp, r: r, linger: 20 * time.Millisecond, max: maxPasses}).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !committed {
		t.Fatal("the runner never came to leave")
	}
	if sink.Count("first@test") != 1 || sink.Count("as-it-leaves@test") != 1 {
		t.Errorf("delivered %v, want both messages once", sink.Snapshot())
	}
	if n := queueLen(t, sp); n != 0 {
		t.Errorf("%d message(s) left in the queue", n)
	}
}

// A runner started before its sendmail's commit (--commit-fd) that finds
// nothing and lingers in vain does not leave while the commit goes on:
// the message, committed after the linger, is delivered once the
// sendmail closes its end of the pipe.
func TestRunPasses_EarlyRunnerAwaitsTheCommit(t *testing.T) {
	sink, sp, r := leavingRunner(t)
	done, commitW := runEarly(t, sp, r)
	// Long past its pass and its linger: it waits for the commit.
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the runner left (%v) before its sendmail's commit ended", err)
	default:
	}
	submit(t, sp, "late-commit@test", false)
	commitW.Close()
	waitLeft(t, done, "the runner did not leave after the commit")
	if sink.Count("late-commit@test") != 1 {
		t.Errorf("delivered %v, want the message committed late once", sink.Snapshot())
	}
}

// An early runner that finds another at work gives way, but only after
// its sendmail's commit: the other may have left meanwhile (here it
// releases the lock without looking again), so it tries once more.
func TestRunPasses_EarlyRunnerBesideAnotherTriesAgainAfterTheCommit(t *testing.T) {
	sink, sp, r := leavingRunner(t)
	other, ok, err := sp.TryRunLock()
	if err != nil || !ok {
		t.Fatalf("run lock: %v %v", ok, err)
	}
	done, commitW := runEarly(t, sp, r)
	time.Sleep(200 * time.Millisecond)
	submit(t, sp, "beside@test", false)
	other.Release()
	commitW.Close()
	waitLeft(t, done, "the runner did not leave")
	if sink.Count("beside@test") != 1 {
		t.Errorf("delivered %v, want the message once", sink.Snapshot())
	}
}

// A sendmail that dies during its commit closes the pipe too (the kernel
// does): the early runner leaves at once, and a commit stuck for longer
// than commitWait does not keep it forever.
func TestAwaitCommit_EndsAtEOFOrCancel(t *testing.T) {
	commitR, commitW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer commitR.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { awaitCommit(ctx, commitR); close(done) }()
	select {
	case <-done:
		t.Fatal("returned with the pipe open")
	case <-time.After(100 * time.Millisecond):
	}
	commitW.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not ended by end of file")
	}
	r2, w2, _ := os.Pipe()
	defer r2.Close()
	defer w2.Close()
	done2 := make(chan struct{})
	go func() { awaitCommit(ctx, r2); close(done2) }()
	cancel()
	select {
	case <-done2:
	case <-time.After(10 * time.Second):
		t.Fatal("not ended by a stop")
	}
}

// A runner that reaches its bound of passes while mail keeps coming
// leaves mail due that nobody else will take: each of its sendmails saw
// it at work and started no runner. It hands the mail over (CI caught the
// last of 100 sequential sendmails left queued when its runner made its
// 100th pass). Here the bound is one pass, and the second message comes
// during the linger after it.
func TestPasses_HandOverAtTheBound(t *testing.T) {
	sink, sp, r := leavingRunner(t)
	var logged testsmtp.LockedBuffer
	r.Log = maillog.New(&logged)
	submit(t, sp, "first@test", false)
	handedOver := 0
	p := &passes{sp: sp, r: r, linger: time.Minute, watch: lingerWatch(t, sp, true), max: 1,
		handOver: func() bool {
			handedOver++
			if sp.RunnerActive() {
				t.Error("handed over while still holding the run lock")
			}
			next := &passes{sp: sp, r: r, max: maxPasses}
			if err := next.run(context.Background()); err != nil {
				t.Error(err)
			}
			return true
		}}
	done := make(chan error, 1)
	go func() { done <- p.run(context.Background()) }()
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("first@test") == 1 }) {
		t.Fatal("the first message was not delivered")
	}
	time.Sleep(100 * time.Millisecond) // the runner lingers
	submit(t, sp, "after-the-bound@test", false)
	waitLeft(t, done, "the runner did not leave at its bound")
	if handedOver != 1 {
		t.Fatalf("handed over %d times, want once", handedOver)
	}
	if !strings.Contains(logged.String(), `status=handed-over reason="made its 1 passes`) {
		t.Errorf("the hand-over is not logged:\n%s", logged.String())
	}
	if sink.Count("after-the-bound@test") != 1 || queueLen(t, sp) != 0 {
		t.Errorf("delivered %v with %d left queued, want the second message delivered once", sink.Snapshot(), queueLen(t, sp))
	}
}
