package relay_test

// A smarthost remembered as down between passes: one failed connection
// per queue, not one per message, until the host is due again.

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// closingServer accepts connections and closes them at once, counting
// them.
func closingServer(t *testing.T) (port int, conns func() int) {
	t.Helper()
	var n atomic.Int64
	port = testsmtp.ServeLoopback(t, func(c net.Conn) {
		n.Add(1)
		c.Close()
	})
	return port, func() int { return int(n.Load()) }
}

// TestHostDown_RememberedBetweenPasses: a queue of 50 costs one failed
// connection; until the host's down-until time every due message — even
// one queued since — is deferred with the remembered failure without a
// connection; after it one new attempt is made, and a success forgets the
// host's state.
func TestHostDown_RememberedBetweenPasses(t *testing.T) {
	const n = 50
	for _, tc := range []struct {
		name   string
		server func(t *testing.T, up *atomic.Bool) (port int, conns func() int)
		reason string
	}{
		{"Greeting421", func(t *testing.T, up *atomic.Bool) (int, func() int) {
			s := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, map[string]func(string) string{
				"GREETING": func(string) string {
					if up.Load() {
						return "220 raw.test ESMTP"
					}
					return "421 4.3.2 Service not available, closing channel"
				},
			}))
			return s.Port, s.Conns
		}, "421"},
		{"AcceptAndClose", func(t *testing.T, up *atomic.Bool) (int, func() int) {
			// Never comes up: the last step is skipped.
			return closingServer(t)
		}, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var up atomic.Bool
			port, conns := tc.server(t, &up)
			sh := smarthost(port, "none")
			h := newHarness(t, sh)
			t0 := h.now
			var ids []string
			for range n {
				ids = append(ids, h.enqueue(content, rcptA))
			}
			if st := h.run(); st != (relay.Stats{Messages: n, Deferred: n}) {
				t.Errorf("pass 1: %+v", st)
			}
			if c := conns(); c != 1 {
				t.Errorf("pass 1: %d connections for %d messages, want 1", c, n)
			}
			hs := h.sp.Host(sh.Name)
			if hs.Failures != 1 || !hs.DownUntil.Equal(t0.Add(time.Minute)) || !strings.Contains(hs.Failure.ReplyLine(), tc.reason) {
				t.Fatalf("host state %+v, want 1 failure, down for retry_min, reason with %q", hs, tc.reason)
			}

			// Before down-until: due messages (flushed, or new) are
			// deferred without a connection.
			h.now = t0.Add(30 * time.Second)
			if err := mailq.Flush(h.sp, nil, h.now); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, h.enqueue(content, rcptB))
			if st := h.run(); st != (relay.Stats{Messages: n + 1, Deferred: n + 1}) {
				t.Errorf("pass 2: %+v, want all %d deferred", st, n+1)
			}
			if c := conns(); c != 1 {
				t.Errorf("pass 2, before down-until: %d new connections, want 0", c-1)
			}
			for _, id := range ids {
				env := h.mustRead(id)
				for _, r := range env.Recipients {
					if r.Status != spool.Pending || !strings.Contains(r.Reason(), "down until") || !strings.Contains(r.Reason(), tc.reason) {
						t.Fatalf("%s: %+v, want pending with the remembered failure", id, r)
					}
				}
				if env.NextAttempt.Before(hs.DownUntil) {
					t.Errorf("%s: next attempt %v before the host's down-until %v", id, env.NextAttempt, hs.DownUntil)
				}
			}
			if h2 := h.sp.Host(sh.Name); h2 != hs {
				t.Errorf("host state %+v changed by a pass without a connection (was %+v)", h2, hs)
			}

			// After down-until: one new attempt.
			up.Store(true)
			h.now = hs.DownUntil
			if err := mailq.Flush(h.sp, nil, h.now); err != nil {
				t.Fatal(err)
			}
			st := h.run()
			if c := conns(); c != 2 {
				t.Errorf("pass 3, after down-until: %d new connections, want 1", c-1)
			}
			if tc.name == "AcceptAndClose" {
				if hs := h.sp.Host(sh.Name); hs.Failures != 2 {
					t.Errorf("host state %+v, want a second failure", hs)
				}
				return
			}
			if st != (relay.Stats{Messages: n + 1, Delivered: n + 1}) {
				t.Errorf("pass 3: %+v, want all delivered", st)
			}
			if hs := h.sp.Host(sh.Name); hs != (spool.HostState{}) {
				t.Errorf("host state %+v after a successful connection, want zero", hs)
			}
			if q := h.queue(); len(q) != 0 {
				t.Errorf("%d messages still queued", len(q))
			}
		})
	}
}

// TestHostDown_BackoffDoublesUpToRetryMax: each failed connection keeps
// the host down twice as long as the one before, at most retry_max.
func TestHostDown_BackoffDoublesUpToRetryMax(t *testing.T) {
	port, conns := closingServer(t)
	sh := smarthost(port, "none")
	h := newHarness(t, sh)
	h.cfg.Queue = config.Queue{RetryMin: config.Duration(time.Minute), RetryMax: config.Duration(10 * time.Minute)}
	for i, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		h.enqueue(content, rcptA) // due now, whatever the others
		h.run()
		hs := h.sp.Host(sh.Name)
		if hs.Failures != i+1 || hs.DownUntil.Sub(h.now) != want*time.Minute {
			t.Errorf("failure %d: host state %+v, want down for %v", i+1, hs, want*time.Minute)
		}
		if c := conns(); c != i+1 {
			t.Fatalf("failure %d: %d connections in all, want %d", i+1, c, i+1)
		}
		// A message's own backoff is shorter: it waits for the host.
		for _, q := range h.queue() {
			if q.Env.NextAttempt.Before(hs.DownUntil) {
				t.Errorf("failure %d: %s due in %v, before the host is (%v)", i+1, q.ID, q.Env.NextAttempt.Sub(h.now), hs.DownUntil.Sub(h.now))
			}
		}
		h.now = hs.DownUntil
	}
}

// TestHostDown_ForgetHosts: spool.ForgetHosts (relay queue flush) clears
// the remembered state, so the next pass connects at once.
func TestHostDown_ForgetHosts(t *testing.T) {
	port, conns := closingServer(t)
	sh := smarthost(port, "none")
	h := newHarness(t, sh)
	h.enqueue(content, rcptA)
	h.run()
	if hs := h.sp.Host(sh.Name); hs.Failures != 1 {
		t.Fatalf("host state %+v, want down", hs)
	}
	if err := h.sp.ForgetHosts(); err != nil {
		t.Fatal(err)
	}
	if hs := h.sp.Host(sh.Name); hs != (spool.HostState{}) {
		t.Errorf("host state %+v after ForgetHosts, want zero", hs)
	}
	if err := h.sp.ForgetHosts(); err != nil {
		t.Errorf("ForgetHosts with nothing remembered: %v", err)
	}
	if err := mailq.Flush(h.sp, nil, h.now); err != nil {
		t.Fatal(err)
	}
	h.run()
	if c := conns(); c != 2 {
		t.Errorf("%d connections, want a new one right after ForgetHosts", c)
	}
}
