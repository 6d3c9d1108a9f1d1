package daemon

// When a running Daemon makes its passes: at a message's due time, when a
// message another process held is let go, never again before a deferred
// message's retry time; and what a stop does to the pass at work.

import (
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// deferUntil makes queued message id due at at, as a failed attempt does.
func deferUntil(t *testing.T, sp *spool.Spool, id string, at time.Time) {
	t.Helper()
	l, err := sp.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Env.NextAttempt, l.Env.Attempts = at, 1
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
}

// A message deferred until shortly goes at its time, without an event
// (the rescan is an hour away), and not before.
func TestRun_DeferredMessageGoesWhenDue(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, false)
	id := submit(t, sp, "due-soon@test", false)
	due := time.Now().Add(2 * time.Second)
	deferUntil(t, sp, id, due)
	p := startDaemon(t, &Daemon{Spool: sp, Config: cfg, Rescan: time.Hour})
	for time.Now().Before(due.Add(-200 * time.Millisecond)) {
		if sink.Count("due-soon@test") != 0 {
			t.Fatalf("delivered before its retry time %v:\n%s", due, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("due-soon@test") == 1 }) {
		t.Fatalf("not delivered at its due time:\n%s", p.log.String())
	}
}

// A flush (relay queue flush, sendmail -q) rewrites a deferred message's
// envelope while it holds the message: the daemon sees it due but locked,
// waits for the flush to let go, and then delivers it (the rescan is an
// hour away).
func TestRun_FlushedMessageGoesOnceLetGo(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, false)
	id := submit(t, sp, "flushed@test", false)
	deferUntil(t, sp, id, time.Now().Add(time.Hour))
	p := startDaemon(t, &Daemon{Spool: sp, Config: cfg, Rescan: time.Hour})
	p.waitLog(t, "status=started", 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the first pass, which finds nothing due

	l, err := sp.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	l.Env.NextAttempt = time.Now()
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if sink.Count("flushed@test") != 0 {
		t.Fatal("delivered while another process held it")
	}
	l.Close()
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("flushed@test") == 1 }) {
		t.Fatalf("not delivered once the flush let go:\n%s", p.log.String())
	}
}

// The daemon's own writes (the deferred envelopes it rewrites) do not wake
// it into retrying before retry_min.
func TestRun_DeferredMailIsNotRetriedEarly(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	sink.Down.Store(true)
	cfg := testConfig(t, sink.Port, "[queue]\nretry_min = \"1h\"\nretry_max = \"2h\"\n")
	sp := createSpool(t, cfg, false)
	p := startDaemon(t, &Daemon{Spool: sp, Config: cfg, Rescan: time.Hour})
	p.waitLog(t, "status=started", 10*time.Second)
	for _, msgID := range []string{"deferred1@test", "deferred2@test", "deferred3@test"} {
		submit(t, sp, msgID, false)
	}
	deferrals := func() int { return strings.Count(p.log.String(), "status=deferred") }
	if !testsmtp.WaitFor(30*time.Second, func() bool { return deferrals() >= 3 }) {
		t.Fatalf("not every message deferred:\n%s", p.log.String())
	}
	time.Sleep(time.Second)
	if n := deferrals(); n != 3 {
		t.Errorf("%d deferrals for 3 messages: the daemon retried before retry_min:\n%s", n, p.log.String())
	}
	if n := queueLen(t, sp); n != 3 {
		t.Errorf("%d messages queued, want the 3 deferred", n)
	}
}

// Stopping in the middle of DATA cuts the transaction without its final
// dot: the message stays queued untouched (no attempt counted).
func TestRun_StopCutsTheTransaction(t *testing.T) {
	slow := testsmtp.NewSink(t, 0, 50*time.Millisecond) // ~1.3 MB/s: DATA lasts seconds
	cfg := testConfig(t, slow.Port, "")
	sp := createSpool(t, cfg, false)
	body := strings.Repeat(strings.Repeat("x", 76)+"\n", 8<<20/77)
	id := submitBody(t, sp, "cut@test", body)
	p := startDaemon(t, &Daemon{Spool: sp, Config: cfg, Rescan: time.Hour})
	if !testsmtp.WaitFor(60*time.Second, func() bool { return slow.DataRx.Load() > 512<<10 }) {
		t.Fatalf("DATA did not start:\n%s", p.log.String())
	}
	if err := p.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	if slow.Count("cut@test") != 0 {
		t.Fatal("the smarthost accepted the cut message")
	}
	m, err := sp.Read(id)
	if err != nil {
		t.Fatalf("the cut message left the queue: %v", err)
	}
	if m.Attempts != 0 || len(m.Pending()) != 1 || m.Held || m.Active {
		t.Errorf("cut message changed: attempts %d, pending %d, held %v, locked %v", m.Attempts, len(m.Pending()), m.Held, m.Active)
	}
	if !testsmtp.WaitFor(10*time.Second, func() bool { return slow.Aborted.Load() == 1 }) {
		t.Error("the smarthost did not see the transaction end without its dot")
	}
}

// Without a smarthost the daemon logs why nothing goes and keeps the mail
// (and keeps running: a reload may bring one).
func TestRun_NoSmarthostIsLoggedAndMailWaits(t *testing.T) {
	cfg := testConfig(t, 0, "")
	sp := createSpool(t, cfg, false)
	submit(t, sp, "waiting@test", false)
	p := startDaemon(t, &Daemon{Spool: sp, Config: cfg, Rescan: time.Hour})
	p.waitLog(t, "no [[smarthost]] configured", 10*time.Second)
	if n := queueLen(t, sp); n != 1 {
		t.Errorf("%d messages queued, want the one waiting", n)
	}
	if err := p.stop(t); err != nil {
		t.Errorf("Run: %v, want nil: a missing smarthost does not stop the daemon", err)
	}
}
