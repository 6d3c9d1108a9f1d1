package relay_test

// Rate limits per smarthost (SPEC §5): mail beyond the limit waits, in
// the spool, across runners; the wait is no attempt and never counts
// toward the lifetime; mailq says what the message waits for.

import (
	"encoding/json"
	"io"
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

// newRunner is another runner on the same spool and clock, as a cron
// `relay queue run` would be next to the daemon.
func (h *harness) newRunner() *relay.Runner {
	return &relay.Runner{Spool: h.sp, Config: h.cfg, Log: h.runner.Log, HeloName: h.runner.HeloName, Domain: h.runner.Domain, Now: h.runner.Now}
}

func TestRateLimit_TenPerMinute_EleventhWaitsForTheWindow(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	sh := named(withAuth(smarthost(srv.Port, "none")), "limited")
	sh.RateLimit = config.RateLimit{N: 10, Per: time.Minute}
	h := newHarness(t, sh)
	h.cfg.Queue.MaxConnections = 4
	h.runner.Debug = nil
	t0 := h.now
	var ids []string
	for range 11 {
		ids = append(ids, h.enqueue(content, rcptA))
	}

	if st := h.run(); st != (relay.Stats{Messages: 11, Delivered: 10, Waiting: 1}) {
		t.Errorf("pass 1: stats %+v, want 10 delivered and 1 waiting", st)
	}
	if c := srv.DeliveredTo(rcptA); c != 10 {
		t.Fatalf("%d messages reached the smarthost, want 10", c)
	}
	var waiting string
	for _, id := range ids {
		if h.read(id) != nil {
			waiting = id
		}
	}
	if waiting == "" {
		t.Fatal("no message left waiting")
	}
	env := h.mustRead(waiting)
	if env.Attempts != 0 || env.RateWait == nil || env.RateWait.Smarthost != "limited" || !env.RateWait.Until.Equal(t0.Add(time.Minute)) {
		t.Errorf("waiting message: attempts %d, rate wait %+v; want no attempt, waiting for limited until %v", env.Attempts, env.RateWait, t0.Add(time.Minute))
	}
	if !env.NextAttempt.Equal(t0.Add(time.Minute)) {
		t.Errorf("next attempt %v, want the end of the window %v", env.NextAttempt, t0.Add(time.Minute))
	}
	if !strings.Contains(h.log.String(), "status=rate-limited") {
		t.Errorf("the log does not say the message waits:\n%s", h.log.String())
	}

	// mailq, text and JSON, say what it waits for.
	var text, js strings.Builder
	if err := mailq.List(&text, io.Discard, h.sp); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "waiting for the rate limit of smarthost limited (10/m) until") {
		t.Errorf("mailq:\n%s", text.String())
	}
	if err := mailq.ListJSON(&js, io.Discard, h.sp); err != nil {
		t.Fatal(err)
	}
	var e mailq.Entry
	if err := json.Unmarshal([]byte(js.String()), &e); err != nil {
		t.Fatalf("mailq --json: %v: %s", err, js.String())
	}
	if e.RateWait == nil || e.RateWait.Smarthost != "limited" || e.RateWait.Until != t0.Add(time.Minute).Unix() ||
		!strings.Contains(e.Recipients[0].DelayReason, "rate limit") {
		t.Errorf("mailq --json: %s", js.String())
	}

	// Half a minute on, a flush and another runner (cron): the window is
	// still full, nothing goes.
	h.now = t0.Add(30 * time.Second)
	if err := mailq.Flush(h.sp, nil, h.now); err != nil {
		t.Fatal(err)
	}
	if _, err := h.newRunner().Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := srv.DeliveredTo(rcptA); c != 10 {
		t.Errorf("%d messages at the smarthost within the minute, want 10", c)
	}
	if env := h.mustRead(waiting); env.Attempts != 0 || env.RateWaited != time.Minute-0 {
		t.Errorf("after the re-hold: attempts %d, waited %v; want 0 and 1m counted once", env.Attempts, env.RateWaited)
	}

	// The window passes: the eleventh goes.
	h.now = t0.Add(time.Minute)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
		t.Errorf("after the window: stats %+v, want the eleventh delivered", st)
	}
	if h.read(waiting) != nil {
		t.Error("the eleventh message is still queued")
	}
	if c := srv.DeliveredTo(rcptA); c != 11 {
		t.Errorf("%d messages at the smarthost, want 11", c)
	}
}

// TestRateLimit_WaitingNeverCountsTowardLifetime: a message that waited an
// hour for the limit, with a lifetime of two minutes, is still retried
// when the smarthost defers it, not given up.
func TestRateLimit_WaitingNeverCountsTowardLifetime(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	sh := named(withAuth(smarthost(srv.Port, "none")), "slow")
	sh.RateLimit = config.RateLimit{N: 1, Per: time.Hour}
	h := newHarness(t, sh)
	h.cfg.Queue.Lifetime = config.Duration(2 * time.Minute)
	t0 := h.now
	h.enqueue(content, rcptA)
	second := h.enqueue(content, rcptB)
	if st := h.run(); st != (relay.Stats{Messages: 2, Delivered: 1, Waiting: 1}) {
		t.Fatalf("stats %+v", st)
	}
	srv.SetConfig(func(c *testsmtp.ServerConfig) {
		c.RcptErr = map[string]*smtp.SMTPError{rcptB: smtpErr(450, smtp.EnhancedCode{4, 2, 1}, "Try again later")}
	})
	h.now = t0.Add(time.Hour)
	if st := h.run(); st != (relay.Stats{Messages: 1, Deferred: 1}) {
		t.Errorf("stats %+v, want the second deferred by the server", st)
	}
	env := h.mustRead(second)
	wantStatuses(t, env, map[string]spool.Status{rcptB: spool.Pending}, "450")
	if env.RateWait != nil || env.Attempts != 1 {
		t.Errorf("rate wait %+v, attempts %d; want cleared by the attempt, 1", env.RateWait, env.Attempts)
	}

	// Past the lifetime counted without the wait: given up (the limit
	// lifted, so that no new wait comes in between).
	h.cfg.Smarthosts[0].RateLimit = config.RateLimit{}
	h.now = t0.Add(time.Hour + 3*time.Minute)
	h.run()
	if l := h.logLines(rcptB); len(l) == 0 || !strings.Contains(l[len(l)-1], "status=bounced") || !strings.Contains(l[len(l)-1], "dsn=5.4.7") {
		t.Errorf("log %q, want the recipient given up once the lifetime passed outside the wait", l)
	}
}

// TestRateLimit_FailedConnectionGivesTheSendBack: a message that never
// reached the smarthost does not use up the limit.
func TestRateLimit_FailedConnectionGivesTheSendBack(t *testing.T) {
	sh := named(smarthost(testsmtp.ClosedPort(t), "none"), "gone")
	sh.RateLimit = config.RateLimit{N: 1, Per: time.Hour}
	h := newHarness(t, sh)
	h.enqueue(content, rcptA)
	h.run()
	if st := h.sp.Rate("gone"); len(st.Sent) != 0 {
		t.Errorf("rate state %+v after a failed connection, want no send counted", st)
	}
}
