package relay_test

// When a deferred message is tried again.

import (
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
)

// TestRetry_BackoffDoublesUpToRetryMax: next_attempt is retry_min after
// the first failure, doubling per attempt, at most retry_max; a message is
// not tried before it is due.
func TestRetry_BackoffDoublesUpToRetryMax(t *testing.T) {
	h := newHarness(t, smarthost(testsmtp.ClosedPort(t), "none"))
	h.cfg.Queue = config.Queue{RetryMin: config.Duration(time.Minute), RetryMax: config.Duration(10 * time.Minute)}
	id := h.enqueue(content, rcptA)
	for i, want := range []time.Duration{1, 2, 4, 8, 10, 10, 10} {
		if st := h.run(); st.Messages != 1 || st.Deferred != 1 {
			t.Fatalf("attempt %d: stats %+v", i+1, st)
		}
		env := h.mustRead(id)
		if env.Attempts != i+1 {
			t.Errorf("attempts = %d, want %d", env.Attempts, i+1)
		}
		if got := env.NextAttempt.Sub(h.now); got != want*time.Minute {
			t.Errorf("attempt %d: next attempt in %v, want %v", i+1, got, want*time.Minute)
		}
		// Not due a second before: not tried.
		h.now = env.NextAttempt.Add(-time.Second)
		if st := h.run(); st.Messages != 0 {
			t.Errorf("attempt %d: tried before its next attempt time: %+v", i+1, st)
		}
		if a := h.mustRead(id).Attempts; a != i+1 {
			t.Errorf("a pass before the due time counted an attempt (%d)", a)
		}
		h.now = env.NextAttempt
	}
}

// TestRetry_HeldMessageNotTried: a held message waits even when due.
func TestRetry_HeldMessageNotTried(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA)
	l, err := h.sp.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	l.Env.Held = true
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if st := h.run(); st.Messages != 0 || srv.Conns() != 0 {
		t.Errorf("held message tried: %+v, %d connections", st, srv.Conns())
	}
}
