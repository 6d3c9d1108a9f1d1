package relay_test

// Delay warnings: one report to the sender once a message has waited
// warn_after.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/bounce"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// countDelayReports counts the delay warnings queued and delivered.
func countDelayReports(t *testing.T, h *harness, srv *testsmtp.FaultServer) int {
	t.Helper()
	var raws [][]byte
	for _, q := range h.reports() {
		raws = append(raws, q.Content)
	}
	for _, m := range srv.Messages() {
		if slices.Equal(m.To, []string{sender}) {
			raws = append(raws, m.Body)
		}
	}
	n := 0
	for _, raw := range raws {
		rep := parseReport(t, raw)
		for _, f := range rep.Rcpts {
			if f.Get("Action") == "delayed" {
				n++
				break
			}
		}
	}
	return n
}

// TestDelayWarning_OnceAfterWarnAfter: a recipient deferred for longer
// than warn_after gets its sender exactly one delay report, never a second
// one; none when NOTIFY lacks DELAY or warn_after is 0.
func TestDelayWarning_OnceAfterWarnAfter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		notify    []string
		warnAfter time.Duration
		want      int
	}{
		{"Default", nil, time.Hour, 1},
		{"NotifyDelay", []string{"DELAY", "FAILURE"}, time.Hour, 1},
		{"NotifyFailureOnly", []string{"FAILURE"}, time.Hour, 0},
		{"NotifyNever", []string{"NEVER"}, time.Hour, 0},
		{"WarnAfterZero", nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.BounceFrom = bounceAddr
			h := newHarness(t, sh)
			h.cfg.Queue.WarnAfter = config.Duration(tc.warnAfter)
			h.cfg.Queue.Lifetime = config.Duration(5 * 24 * time.Hour)
			id := h.enqueueWith(content, func(e *spool.Envelope) { e.DSN.Notify = tc.notify }, rcptA, rcptB)
			t0 := h.now
			for _, d := range []time.Duration{0, 30 * time.Minute, 59 * time.Minute} {
				h.now = t0.Add(d)
				h.run()
			}
			if n := countDelayReports(t, h, srv); n != 0 {
				t.Fatalf("%d delay reports before warn_after", n)
			}
			// The next attempt, past warn_after.
			h.now = h.mustRead(id).NextAttempt
			if h.now.Sub(t0) < time.Hour {
				t.Fatalf("next attempt at +%v, within warn_after", h.now.Sub(t0))
			}
			h.run()
			if n := countDelayReports(t, h, srv); n != tc.want {
				t.Fatalf("%d delay reports after warn_after, want %d", n, tc.want)
			}
			if tc.want == 1 {
				rep := parseReport(t, h.reports()[0].Content)
				if got := rep.finalRecipients(); !slices.Equal(got, []string{rcptA}) {
					t.Errorf("delay report names %q, want the deferred recipient alone", got)
				}
				f := rep.rcpt(rcptA)
				if f.Get("Action") != "delayed" || !strings.HasPrefix(f.Get("Status"), "4.") || !strings.Contains(f.Get("Diagnostic-Code"), "450 4.2.0 Mailbox busy") || f.Get("Will-Retry-Until") == "" {
					t.Errorf("fields %v, want Action delayed, a 4.x.x status, the reply and Will-Retry-Until", f)
				}
				if rep.Header.Get("Subject") != bounce.DelaySubject || rep.Header.Get("Auto-Submitted") != "auto-replied" {
					t.Errorf("header %v", rep.Header)
				}
				if !h.mustRead(id).Warned {
					t.Error("original not marked warned")
				}
			}
			// Later passes (the warning itself is delivered meanwhile):
			// never a second one.
			for _, d := range []time.Duration{2 * time.Hour, 5 * time.Hour, 24 * time.Hour, 48 * time.Hour} {
				h.now = t0.Add(d)
				h.run()
			}
			if n := countDelayReports(t, h, srv); n != tc.want {
				t.Errorf("%d delay reports after later passes, want %d", n, tc.want)
			}
			if env := h.mustRead(id); rcpt(env, rcptA).Status != spool.Pending {
				t.Errorf("a: %+v, want still pending", rcpt(env, rcptA))
			}
		})
	}
}
