package relay_test

// The retry queue (SPEC section 6), through relay.Runner over a real spool
// with a clock the tests move: retries only when due, a recipient at a
// time; failures of relay's own side never bounced but held after the
// lifetime; a message refused for good does not hold up the others.

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// --- retries ---

// TestRetry_Greeting421_TriedAgainOnlyWhenDue: a 421 greeting defers; a
// pass before next_attempt does nothing at all, the first pass at it
// delivers, and the smarthost's down state is forgotten.
func TestRetry_Greeting421_TriedAgainOnlyWhenDue(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{Greeting: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Service not available")})
	sh := withAuth(smarthost(srv.Port, "none"))
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	t0 := h.now
	if st := h.run(); st != (relay.Stats{Messages: 1, Deferred: 1}) {
		t.Errorf("first pass %+v, want the recipient deferred", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "421 4.3.2 Service not available")
	if !env.NextAttempt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("next attempt in %v, want retry_min (1m)", env.NextAttempt.Sub(t0))
	}

	srv.SetConfig(func(c *testsmtp.ServerConfig) { c.Greeting = nil })
	for _, d := range []time.Duration{0, 30 * time.Second, time.Minute - time.Second} {
		h.now = t0.Add(d)
		if st := h.run(); st != (relay.Stats{}) {
			t.Errorf("pass at +%v, before next_attempt: %+v, want nothing done", d, st)
		}
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections before next_attempt, want the first one only", n)
	}
	if a := h.mustRead(id).Attempts; a != 1 {
		t.Errorf("attempts = %d after passes before next_attempt, want 1", a)
	}

	h.now = env.NextAttempt
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
		t.Errorf("pass at next_attempt %+v, want delivered", st)
	}
	if h.read(id) != nil || srv.DeliveredTo(rcptA) != 1 || srv.Conns() != 2 {
		t.Errorf("queued %v, delivered %d times over %d connections; want delivered once by a second connection",
			h.read(id) != nil, srv.DeliveredTo(rcptA), srv.Conns())
	}
	if hs := h.sp.Host(sh.Name); hs != (spool.HostState{}) {
		t.Errorf("host state %+v after a successful connection, want none", hs)
	}
	if l := h.logLines(rcptA); len(l) != 2 || !strings.Contains(l[1], " attempt=2 status=sent ") {
		t.Errorf("log %q, want a deferral and then attempt=2 status=sent", l)
	}
}

// TestRetry_Rcpt450_RetriesThatRecipientOnly_UntilAccepted: of three
// recipients one is deferred twice; the two accepted at once are
// delivered exactly once and never named again, the third on the pass
// after the server accepts it.
func TestRetry_Rcpt450_RetriesThatRecipientOnly_UntilAccepted(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptC: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA, rcptB, rcptC)
	t0 := h.now
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 2, Deferred: 1}) {
		t.Errorf("pass 1: %+v", st)
	}
	h.now = t0.Add(time.Minute)
	if st := h.run(); st != (relay.Stats{Messages: 1, Deferred: 1}) {
		t.Errorf("pass 2: %+v, want c alone deferred again", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Delivered, rcptB: spool.Delivered, rcptC: spool.Pending}, "450 4.2.0 Mailbox busy")
	if env.Attempts != 2 || !env.NextAttempt.Equal(h.now.Add(2*time.Minute)) {
		t.Errorf("attempts %d, next attempt in %v; want 2 and 2m", env.Attempts, env.NextAttempt.Sub(h.now))
	}

	srv.SetConfig(func(c *testsmtp.ServerConfig) { c.RcptErr = nil })
	h.now = env.NextAttempt
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
		t.Errorf("pass 3: %+v, want c delivered", st)
	}
	if h.read(id) != nil {
		t.Error("message still queued after every recipient was delivered")
	}
	for _, a := range []string{rcptA, rcptB, rcptC} {
		if n := srv.DeliveredTo(a); n != 1 {
			t.Errorf("%s delivered %d times, want exactly once", a, n)
		}
	}
	if got := srv.Rcpts(); !slices.Equal(got, []string{rcptA, rcptB, rcptC, rcptC, rcptC}) {
		t.Errorf("RCPT TO seen %q: a and b must never be named again", got)
	}
}

// --- failures of relay's own side ---

// TestOwnSide_DefersNeverBounces_HeldAfterLifetime: a 535 at AUTH and a
// 553 at MAIL FROM defer the message, mark it own-side and never bounce
// it; once the lifetime is over it goes on hold (mailq "!") and stays in
// the queue, never tried, deleted or bounced.
func TestOwnSide_DefersNeverBounces_HeldAfterLifetime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   testsmtp.ServerConfig
		reply string
	}{
		{"Auth535", testsmtp.ServerConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")}, "535 5.7.8 Authentication credentials invalid"},
		{"Mail553", testsmtp.ServerConfig{MailErr: map[string]*smtp.SMTPError{"*": smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by auth user")}}, "553 5.7.1 Sender address rejected: not owned by auth user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, tc.cfg)
			h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
			h.cfg.Queue.Lifetime = config.Duration(2 * time.Hour)
			h.cfg.Queue.WarnAfter = 0
			id := h.enqueue(content, rcptA, rcptB)
			t0 := h.now
			for i, d := range []time.Duration{0, time.Hour} {
				h.now = t0.Add(d)
				if st := h.run(); st != (relay.Stats{Messages: 1, Deferred: 2}) {
					t.Errorf("pass %d at +%v: %+v, want deferred", i+1, d, st)
				}
				env := h.mustRead(id)
				wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending, rcptB: spool.Pending}, tc.reply)
				if !env.OwnSide() || env.Held || !strings.Contains(env.LastError(), tc.reply) {
					t.Errorf("pass %d: own side %v, held %v, last error %q; want own side, not held, the reply", i+1, env.OwnSide(), env.Held, env.LastError())
				}
			}
			if r := h.reports(); len(r) != 0 {
				t.Errorf("%d reports queued for a failure of relay's own side", len(r))
			}

			// The lifetime is over: on hold.
			h.now = t0.Add(2 * time.Hour)
			if st := h.run(); st != (relay.Stats{Messages: 1, Deferred: 2, Held: 1}) {
				t.Errorf("pass at the lifetime: %+v, want deferred and held", st)
			}
			env := h.mustRead(id)
			wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending, rcptB: spool.Pending}, tc.reply)
			if !env.Held || !env.OwnSide() {
				t.Errorf("held %v, own side %v; want both", env.Held, env.OwnSide())
			}
			if l := h.logLines(rcptA); len(l) != 3 || !strings.Contains(l[2], " status=held ") {
				t.Errorf("log %q, want the last line status=held", l)
			}
			var list bytes.Buffer
			if err := mailq.List(&list, &list, h.sp); err != nil || !strings.Contains(list.String(), id+"!") {
				t.Errorf("mailq (%v):\n%s\nwant %s marked held (!)", err, list.String(), id)
			}

			// Never tried, deleted or bounced after that.
			conns := srv.Conns()
			for _, d := range []time.Duration{3 * time.Hour, 5 * 24 * time.Hour, 60 * 24 * time.Hour} {
				h.now = t0.Add(d)
				if st := h.run(); st != (relay.Stats{}) {
					t.Errorf("pass at +%v: %+v, want a held message left alone", d, st)
				}
			}
			if n := srv.Conns(); n != conns {
				t.Errorf("%d connections after the hold, want none", n-conns)
			}
			if q := h.queue(); len(q) != 1 || q[0].ID != id || !q[0].Env.Held {
				t.Errorf("queue %+v, want the held message alone", q)
			}
		})
	}
}

// --- one message does not hold up the others ---

// TestDelivery_PermanentFailure_DoesNotBlockLaterMessages: a message
// refused for every recipient, first in the queue, does not keep the one
// after it from being delivered in the same pass over the same
// connection.
func TestDelivery_PermanentFailure_DoesNotBlockLaterMessages(t *testing.T) {
	const x, y = "x@example.test", "y@example.test"
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{
		x: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user"),
		y: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user"),
	}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	bad := h.enqueue(content, x, y)
	good := h.enqueue(content, rcptC)
	if st := h.run(); st != (relay.Stats{Messages: 2, Delivered: 1, Failed: 2}) {
		t.Errorf("stats %+v", st)
	}
	if srv.DeliveredTo(rcptC) != 1 || h.read(good) != nil {
		t.Error("the good message was not delivered in the same pass")
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if h.read(bad) != nil {
		t.Error("the refused message is still queued although reported")
	}
	wantBounce(t, h, testUser, map[string]string{x: "550 5.1.1", y: "550 5.1.1"})
}
