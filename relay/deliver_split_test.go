package relay_test

// Routing by recipient (split.go): a message whose recipients go to
// different smarthosts is delivered as one transaction per smarthost,
// each recipient keeping its own state; a failure of one part leaves the
// others delivered, is retried alone and bounced alone.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

const (
	corpA = "a@corp.example.com"
	corpC = "c@mx.corp.example.com" // a subdomain: "@.corp.example.com"
	netB  = "b@example.net"
)

// splitHarness has two smarthosts: "corp" for the company's domain and
// its subdomains, "provider" for the rest.
func splitHarness(t *testing.T, corp, provider int) *harness {
	t.Helper()
	c := smarthost(corp, "none")
	c.Name, c.Recipients = "corp", []string{"*@corp.example.com", "@.corp.example.com"}
	p := smarthost(provider, "none")
	p.Name = "provider"
	h := newHarness(t, c)
	h.cfg.Smarthosts = append(h.cfg.Smarthosts, p)
	h.cfg.Queue.Lifetime = config.Duration(5 * 24 * time.Hour)
	return h
}

func rcptsOf(ms []testsmtp.Received) [][]string {
	var out [][]string
	for _, m := range ms {
		out = append(out, m.To)
	}
	return out
}

// TestSplit_TwoSmarthosts_OneTransactionEach: a@corp and c@mx.corp go to
// corp in one transaction, b@example.net to provider in another; the
// message counts once.
func TestSplit_TwoSmarthosts_OneTransactionEach(t *testing.T) {
	corp := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	prov := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	h := splitHarness(t, corp.Port, prov.Port)
	id := h.enqueue(content, corpA, netB, corpC)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 3}) {
		t.Errorf("pass: %+v", st)
	}
	if h.read(id) != nil {
		t.Errorf("message still queued:\n%s", h.log.String())
	}
	if got := rcptsOf(corp.Messages()); !slices.EqualFunc(got, [][]string{{corpA, corpC}}, slices.Equal) {
		t.Errorf("corp received %v, want one transaction to %s and %s", got, corpA, corpC)
	}
	if got := rcptsOf(prov.Messages()); !slices.EqualFunc(got, [][]string{{netB}}, slices.Equal) {
		t.Errorf("provider received %v, want one transaction to %s", got, netB)
	}
	for addr, port := range map[string]int{corpA: corp.Port, corpC: corp.Port, netB: prov.Port} {
		l := h.logLines(addr)
		if len(l) != 1 || !strings.Contains(l[0], "status=sent") || !strings.Contains(l[0], ":"+itoa(port)+" ") {
			t.Errorf("log of %s: %q, want sent through port %d", addr, l, port)
		}
	}
}

// TestSplit_OnePartDeferred_OtherDelivered_OnlyItRetried: corp answers
// 451 to RCPT: b@example.net is delivered, a@corp deferred, with one
// attempt counted; the retry goes to corp alone, and provider never sees
// the message again.
func TestSplit_OnePartDeferred_OtherDelivered_OnlyItRetried(t *testing.T) {
	corp := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{corpA: smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "try later")}})
	prov := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	h := splitHarness(t, corp.Port, prov.Port)
	id := h.enqueue(content, corpA, netB)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1, Deferred: 1}) {
		t.Errorf("pass 1: %+v", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{corpA: spool.Pending, netB: spool.Delivered}, "451")
	if env.Attempts != 1 || !env.NextAttempt.Equal(h.now.Add(time.Minute)) {
		t.Errorf("attempts %d, next %v; want 1 attempt, next after retry_min", env.Attempts, env.NextAttempt.Sub(h.now))
	}

	corp.SetConfig(func(c *testsmtp.ServerConfig) { c.RcptErr = nil })
	h.now = h.now.Add(time.Minute)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
		t.Errorf("pass 2: %+v", st)
	}
	if h.read(id) != nil {
		t.Error("message still queued after the retry")
	}
	if got := rcptsOf(prov.Messages()); len(got) != 1 {
		t.Errorf("provider received %v, want the one first transaction only", got)
	}
	if got := rcptsOf(corp.Messages()); !slices.EqualFunc(got, [][]string{{corpA}}, slices.Equal) {
		t.Errorf("corp received %v, want the retry to %s", got, corpA)
	}
}

// TestSplit_SmarthostDown_OtherPartDelivered: corp cannot be reached:
// its recipient waits (remembered as down), provider's is delivered.
func TestSplit_SmarthostDown_OtherPartDelivered(t *testing.T) {
	prov := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	h := splitHarness(t, testsmtp.ClosedPort(t), prov.Port)
	id := h.enqueue(content, netB, corpA)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1, Deferred: 1}) {
		t.Errorf("pass 1: %+v", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{corpA: spool.Pending, netB: spool.Delivered}, "connect")
	if hs := h.sp.Host("corp"); hs.Failures != 1 {
		t.Errorf("corp's host state %+v, want one failure", hs)
	}
	if hs := h.sp.Host("provider"); hs.Failures != 0 {
		t.Errorf("provider's host state %+v, want none", hs)
	}
}

// TestSplit_PartRefused_BounceNamesOnlyIt: corp refuses a@corp with 550:
// the bounce names a@corp alone, b@example.net is delivered.
func TestSplit_PartRefused_BounceNamesOnlyIt(t *testing.T) {
	corp := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{corpA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user here")}})
	prov := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	h := splitHarness(t, corp.Port, prov.Port)
	h.cfg.Smarthosts[0].BounceFrom = bounceAddr
	id := h.enqueue(content, corpA, netB)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1, Failed: 1}) {
		t.Errorf("pass 1: %+v", st)
	}
	if h.read(id) != nil {
		t.Error("original still queued: b delivered, a failed and reported")
	}
	rep := wantBounce(t, h, bounceAddr, map[string]string{corpA: "550 5.1.1 No such user here"})
	if rep != nil && strings.Contains(rep.Human, netB) {
		t.Errorf("the bounce names the delivered %s:\n%s", netB, rep.Human)
	}
}

// TestSplit_RecipientWithoutRoute_WaitsOthersGo: every smarthost has
// recipients: b@example.net has none and waits with the reason, a@corp
// is delivered; it is never bounced.
func TestSplit_RecipientWithoutRoute_WaitsOthersGo(t *testing.T) {
	corp := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	h := splitHarness(t, corp.Port, 1)
	h.cfg.Smarthosts = h.cfg.Smarthosts[:1]
	id := h.enqueue(content, corpA, netB)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1, Deferred: 1}) {
		t.Errorf("pass 1: %+v", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{corpA: spool.Delivered, netB: spool.Pending}, "no smarthost serves <b@example.net>")
	if !env.OwnSide() {
		t.Error("a recipient without a route does not count as relay's own side (it would bounce after lifetime)")
	}
}

// TestSplit_Pinned_EveryRecipientThroughIt: a message queued with
// sendmail -a provider goes to provider for every recipient, a@corp too.
func TestSplit_Pinned_EveryRecipientThroughIt(t *testing.T) {
	corp := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	prov := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	h := splitHarness(t, corp.Port, prov.Port)
	id := h.enqueueWith(content, func(e *spool.Envelope) { e.Smarthost = "provider" }, corpA, netB)
	h.run()
	if h.read(id) != nil {
		t.Fatalf("not delivered:\n%s", h.log.String())
	}
	if n := len(corp.Messages()); n != 0 {
		t.Errorf("corp received %d messages, want none", n)
	}
	if got := rcptsOf(prov.Messages()); !slices.EqualFunc(got, [][]string{{corpA, netB}}, slices.Equal) {
		t.Errorf("provider received %v, want one transaction to both", got)
	}

	// A name no longer configured: the mail waits, with the reason.
	id = h.enqueueWith(content, func(e *spool.Envelope) { e.Smarthost = "gone" }, netB)
	h.run()
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{netB: spool.Pending}, `smarthost "gone" named with -a`)
}

// TestSplit_PastLifetime_EachPartJudgedAlone: past lifetime, the part the
// provider keeps deferring is given up and bounced, while the part whose
// smarthost cannot be reached (relay's own side) puts the message on
// hold: one part's own-side failure does not keep the other's recipients
// from their bounce.
func TestSplit_PastLifetime_EachPartJudgedAlone(t *testing.T) {
	prov := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{netB: smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "try later")}})
	h := splitHarness(t, testsmtp.ClosedPort(t), prov.Port)
	h.cfg.Queue.Lifetime = config.Duration(time.Hour)
	h.cfg.Queue.RetryMax = config.Duration(time.Hour)
	id := h.enqueue(content, netB, corpA)
	h.run() // both deferred: a by the outage, b by the 451
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{corpA: spool.Pending, netB: spool.Pending}, "")

	h.now = h.now.Add(2 * time.Hour)
	h.run()
	env := h.mustRead(id)
	if rc := rcpt(env, netB); rc.Status != spool.Failed || !rc.Notified {
		t.Errorf("%s: %+v, want failed (gave up) and reported", netB, rc)
	}
	if rc := rcpt(env, corpA); rc.Status != spool.Pending || !env.Held {
		t.Errorf("%s: %s, held %v; want pending, the message held", corpA, rc.Status, env.Held)
	}
	if reps := h.reports(); len(reps) != 1 {
		t.Errorf("%d reports, want one bounce for %s", len(reps), netB)
	}
}
