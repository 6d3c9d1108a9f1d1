package daemon

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
)

func TestRunQueue_MissingSpoolIsAnEmptyQueue(t *testing.T) {
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	var stderr testsmtp.LockedBuffer
	if err := RunQueue(cfg, false, &stderr); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	if _, err := os.Stat(cfg.Spool); !os.IsNotExist(err) {
		t.Errorf("queue run made the spool (%v)", err)
	}
}

func TestRunQueue_DeliversAndLogs(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, true)
	submit(t, sp, "queued@test", false)
	submit(t, sp, "dropped@test", true)
	var stderr testsmtp.LockedBuffer
	if err := RunQueue(cfg, false, &stderr); err != nil {
		t.Fatalf("RunQueue: %v", err)
	}
	if sink.Count("queued@test") != 1 || sink.Count("dropped@test") != 1 {
		t.Errorf("delivered %v, want each message once", sink.Snapshot())
	}
	if n := queueLen(t, sp); n != 0 {
		t.Errorf("%d message(s) left", n)
	}
	if !strings.Contains(stderr.String(), "status=sent") {
		t.Errorf("no delivery in the log: %q", stderr.String())
	}
}

func TestRunQueue_NoSmarthostExits78(t *testing.T) {
	cfg := testConfig(t, 0, "")
	sp := createSpool(t, cfg, false)
	submit(t, sp, "queued@test", false)
	err := RunQueue(cfg, false, &testsmtp.LockedBuffer{})
	if !strings.Contains(err.Error(), "no [[smarthost]] configured") {
		t.Errorf("err %v, want the missing smarthost", err)
	}
}

func TestRunPasses_StandsAsideForTheRunnerAtWork(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, false)
	submit(t, sp, "queued@test", false)
	log := maillog.New(&testsmtp.LockedBuffer{})
	r := relay.NewRunner(cfg, sp, log)
	p := sendmailcompat.NewPickup(cfg, sp, log)

	lock, ok, err := sp.TryRunLock()
	if err != nil || !ok {
		t.Fatalf("run lock: %v %v", ok, err)
	}
	if err := (&passes{sp: sp, r: r, pickup: p, max: maxPasses}).run(context.Background()); err != nil {
		t.Errorf("with the run lock taken: %v, want nil (leave quietly)", err)
	}
	if sink.Count("queued@test") != 0 || queueLen(t, sp) != 1 {
		t.Fatal("a second runner delivered while the first held the run lock")
	}
	lock.Release()
	if err := (&passes{sp: sp, r: r, pickup: p, max: maxPasses}).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.Count("queued@test") != 1 {
		t.Errorf("not delivered after the lock was released: %v", sink.Snapshot())
	}
	if sp.RunnerActive() {
		t.Error("the run lock is still held after the passes")
	}
}

// The linger is woken by its inotify watch. Without one it compares
// directory modification times, which the kernel may keep at a coarse
// clock: a message committed in the same tick as the runner's last
// removal is then seen only when the linger ends (the Due check after
// it), so that fallback is not held to "long before the linger is over".
func TestRunPasses_DeliversMailQueuedWhileLingering(t *testing.T) {
	testRunPasses_DeliversMailQueuedWhileLingering(t, true)
}

func testRunPasses_DeliversMailQueuedWhileLingering(t *testing.T, inotify bool) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, false)
	submit(t, sp, "first@test", false)
	log := maillog.New(&testsmtp.LockedBuffer{})
	r := relay.NewRunner(cfg, sp, log)
	r.KeepConnections = 5 * time.Second
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	watch := lingerWatch(t, sp, inotify)
	go func() { done <- (&passes{sp: sp, r: r, linger: time.Minute, watch: watch, max: maxPasses}).run(ctx) }()
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("first@test") == 1 }) {
		t.Fatal("the first message was not delivered")
	}
	// The runner lingers a minute: a message queued now is taken by it,
	// in a second pass, long before the linger is over.
	submit(t, sp, "second@test", false)
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("second@test") == 1 }) {
		t.Errorf("the message queued during the linger was not delivered: %v", sink.Snapshot())
	}
	cancel()
	waitLeft(t, done, "the runner did not stop when cancelled")
}

// Mail that arrives during the linger while its writer still holds it (a
// flush rewriting a deferred message, a sendmail finishing its commit) is
// taken as soon as the writer lets go, long before the linger is over: the
// runner does not leave because Due skipped a held message.
func TestRunPasses_TakesMailItsWriterStillHolds(t *testing.T) {
	t.Run("inotify", func(t *testing.T) { testRunPasses_TakesMailItsWriterStillHolds(t, true) })
	t.Run("stat", func(t *testing.T) { testRunPasses_TakesMailItsWriterStillHolds(t, false) })
}

func testRunPasses_TakesMailItsWriterStillHolds(t *testing.T, inotify bool) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, false)
	submit(t, sp, "first@test", false)
	flushed := submit(t, sp, "flushed@test", false)
	deferUntil(t, sp, flushed, time.Now().Add(time.Hour))
	r := relay.NewRunner(cfg, sp, maillog.New(&testsmtp.LockedBuffer{}))
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	watch := lingerWatch(t, sp, inotify)
	go func() { done <- (&passes{sp: sp, r: r, linger: time.Minute, watch: watch, max: maxPasses}).run(ctx) }()
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("first@test") == 1 }) {
		t.Fatal("the first message was not delivered")
	}
	time.Sleep(200 * time.Millisecond) // the runner lingers
	l, err := sp.Lock(flushed)
	if err != nil {
		t.Fatal(err)
	}
	l.Env.NextAttempt = time.Now()
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the linger sees the change
	l.Close()
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("flushed@test") == 1 }) {
		t.Errorf("the flushed message was not delivered (runner returned: %v)", len(done) > 0)
	}
	cancel()
	waitLeft(t, done, "the runner did not stop when cancelled")
}

func TestLingerForMail_GivesUpAfterItsTime(t *testing.T) {
	cfg := testConfig(t, 0, "")
	sp := createSpool(t, cfg, false)
	start := time.Now()
	lingerForMail(context.Background(), sp, 50*time.Millisecond, nil)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("returned after %v without a change", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { lingerForMail(ctx, sp, time.Hour, nil); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled linger went on")
	}
}

// lingerWatch is the inotify watch of a detached runner, or nil (the
// linger stats the spool).
func lingerWatch(t *testing.T, sp *spool.Spool, inotify bool) *mailWatch {
	if !inotify {
		return nil
	}
	w := newMailWatch(sp)
	if w == nil {
		t.Fatal("no inotify watch")
	}
	t.Cleanup(w.Close)
	return w
}

func TestLingerForMail_WatchWakesAtOnce(t *testing.T) {
	cfg := testConfig(t, 0, "")
	sp := createSpool(t, cfg, false)
	w := lingerWatch(t, sp, true)
	got := make(chan bool, 1)
	go func() { got <- lingerForMail(context.Background(), sp, time.Hour, w) }()
	submit(t, sp, "new@test", false)
	select {
	case ok := <-got:
		if !ok {
			t.Error("the linger reported nothing new")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a committed message did not end the linger")
	}
	w.drain() // the writer's close, news too
	if lingerForMail(context.Background(), sp, 20*time.Millisecond, w) {
		t.Error("news reported when nothing happened")
	}
}
