package relay_test

// The retry queue and bounces (SPEC sections 6 and 9), through
// relay.Runner over a real spool with a clock the tests move: retries only
// when due, a recipient at a time; bounces queued as messages of their
// own and delivered by the next pass; failures of relay's own side never
// bounced but held after the lifetime; a bounce never bounced; a
// smarthost remembered as down between passes; delay warnings; the log.

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/bounce"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// --- retries ---

// TestRetry_Greeting421_TriedAgainOnlyWhenDue: a 421 greeting defers; a
// pass before next_attempt does nothing at all, the first pass at it
// delivers, and the smarthost's down state is forgotten.
func TestRetry_Greeting421_TriedAgainOnlyWhenDue(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{Greeting: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Service not available")})
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

	srv.setConfig(func(c *serverConfig) { c.Greeting = nil })
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
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptC: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
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

	srv.setConfig(func(c *serverConfig) { c.RcptErr = nil })
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

// --- bounces ---

// TestBounce_Rcpt550_QueuedThenDeliveredToSender: a recipient refused
// with 550 is reported in a bounce queued as a message of its own; the
// next pass delivers it from bounce_from to the original sender, as an
// RFC 3464 report naming the recipient, the status and the server's
// reply, marked Auto-Submitted: auto-replied.
func TestBounce_Rcpt550_QueuedThenDeliveredToSender(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user here")}})
	sh := withAuth(smarthost(srv.Port, "none"))
	sh.BounceFrom = bounceAddr
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA, rcptB)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1, Failed: 1}) {
		t.Errorf("pass 1: %+v", st)
	}
	if h.read(id) != nil {
		t.Error("original still queued: a delivered, b failed and reported")
	}
	wantBounce(t, h, bounceAddr, map[string]string{rcptB: "550 5.1.1 No such user here"})
	bid := h.reports()[0].ID
	if !strings.Contains(h.log.String(), fmt.Sprintf("id=%s status=bounce bounce_id=%s to=<%s>", id, bid, sender)) {
		t.Errorf("no log line of the bounce queued for %s:\n%s", id, h.log.String())
	}

	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
		t.Errorf("pass 2: %+v, want the bounce delivered", st)
	}
	if q := h.queue(); len(q) != 0 {
		t.Errorf("%d messages still queued after the bounce was delivered", len(q))
	}
	ms := srv.Messages()
	if len(ms) != 2 {
		t.Fatalf("%d messages at the server, want the original and its bounce", len(ms))
	}
	b := ms[1]
	if b.From != bounceAddr || !slices.Equal(b.To, []string{sender}) {
		t.Errorf("bounce sent MAIL FROM <%s> RCPT TO %q, want <%s> to the original sender <%s>", b.From, b.To, bounceAddr, sender)
	}
	if n := srv.DeliveredTo(rcptB); n != 0 {
		t.Errorf("the refused recipient got %d messages", n)
	}

	rep := parseReport(t, b.Body)
	for k, want := range map[string]string{
		"Auto-Submitted":   "auto-replied",
		"Subject":          bounce.FailureSubject,
		"X-Relay-Queue-Id": id,
	} {
		if got := rep.Header.Get(k); got != want {
			t.Errorf("header %s: %q, want %q", k, got, want)
		}
	}
	if to, err := rep.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != sender {
		t.Errorf("To %v (%v), want the original sender", to, err)
	}
	if from, err := rep.Header.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != bounceAddr {
		t.Errorf("From %v (%v), want %s", from, err, bounceAddr)
	}
	if got := rep.PerMessage.Get("Reporting-MTA"); got != "dns; relay.test" {
		t.Errorf("Reporting-MTA %q", got)
	}
	if got := rep.finalRecipients(); !slices.Equal(got, []string{rcptB}) {
		t.Fatalf("report names %q, want b only", got)
	}
	f := rep.rcpt(rcptB)
	for k, want := range map[string]string{
		"Action":          "failed",
		"Status":          "5.1.1",
		"Remote-MTA":      "dns; 127.0.0.1",
		"Diagnostic-Code": "smtp; 550 5.1.1 No such user here",
	} {
		if got := f.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(rep.Human, "550 5.1.1 No such user here") || !strings.Contains(rep.Human, rcptB) {
		t.Errorf("the text for people lacks the recipient or the reply:\n%s", rep.Human)
	}
	// A small original is returned whole.
	if rep.ThirdType != "message/rfc822" || !strings.Contains(string(rep.Third), "Subject: test\r\n") || !strings.Contains(string(rep.Third), "Hello.\r\n") {
		t.Errorf("third part %q:\n%s", rep.ThirdType, rep.Third)
	}
}

// TestBounce_NotWanted_NoReport_OriginalRemoved: NOTIFY without FAILURE
// or the null sender: the failure is not reported, and the message leaves
// the queue all the same.
func TestBounce_NotWanted_NoReport_OriginalRemoved(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(*spool.Envelope)
	}{
		{"NotifyNever", func(e *spool.Envelope) { e.DSN.Notify = []string{"NEVER"} }},
		{"NotifySuccessDelay", func(e *spool.Envelope) { e.DSN.Notify = []string{"SUCCESS", "DELAY"} }},
		{"NullSender", func(e *spool.Envelope) { e.Sender = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
			h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
			id := h.enqueueWith(content, tc.fn, rcptA, rcptB)
			if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1, Failed: 1}) {
				t.Errorf("stats %+v", st)
			}
			if h.read(id) != nil {
				t.Error("message still queued: every recipient delivered or failed with no report wanted")
			}
			if q := h.queue(); len(q) != 0 {
				t.Errorf("%d messages queued, want none (no bounce)", len(q))
			}
			if l := h.logLines(rcptB); len(l) != 1 || !strings.Contains(l[0], "status=bounced") {
				t.Errorf("log %q, want the failure logged", l)
			}
			h.now = h.now.Add(time.Hour)
			if st := h.run(); st != (relay.Stats{}) {
				t.Errorf("second pass %+v, want nothing", st)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Errorf("%d messages at the server, want the original only", n)
			}
		})
	}
}

// TestBounce_FromAddress: the bounce's envelope sender is bounce_from,
// else the smarthost login when it is an address, else MAILER-DAEMON at
// the mail domain; never the null sender.
func TestBounce_FromAddress(t *testing.T) {
	for _, tc := range []struct {
		name, username, bounceFrom, want string
	}{
		{"BounceFrom", "login@example.test", bounceAddr, bounceAddr},
		{"Login", "login@example.test", "", "login@example.test"},
		{"LoginNotAnAddress", "login", "", "MAILER-DAEMON@" + testDomain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.Username, sh.BounceFrom = tc.username, tc.bounceFrom
			h := newHarness(t, sh)
			h.enqueue(content, rcptA)
			h.run()
			wantBounce(t, h, tc.want, map[string]string{rcptA: "550 5.1.1 No such user"})
			h.run()
			if ms := srv.Messages(); len(ms) != 1 || ms[0].From != tc.want {
				t.Errorf("server got %d messages, want the bounce from %s", len(ms), tc.want)
			}
		})
	}
}

// TestBounce_ReportIsNeverAnsweredWithAnother: a message that is itself a
// delivery status notification (multipart/report; report-type=
// delivery-status, Auto-Submitted: auto-replied) with a non-null sender —
// as relay's own bounces are when another relay, a container's say, sends
// them through this one — is never answered with a bounce (package
// bounce's IsAutoSubmitted exists for this).
func TestBounce_ReportIsNeverAnsweredWithAnother(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	// A report as another relay makes it.
	var rep bytes.Buffer
	if _, err := bounce.Build(&rep, &bounce.Report{
		Kind: bounce.Failure, ReportingMTA: "container.test", From: sender, To: rcptA,
		Recipients: []bounce.Recipient{{Address: "x@example.test", Status: "5.1.1", Diagnostic: "550 5.1.1 unknown"}},
		Original:   strings.NewReader(content), OriginalSize: int64(len(content)), FullLimit: 1 << 20,
	}); err != nil {
		t.Fatal(err)
	}
	id := h.enqueue(rep.String(), rcptA)
	h.run()
	for _, q := range h.queue() {
		if q.ID != id && slices.ContainsFunc(q.Env.Recipients, func(r spool.Recipient) bool { return r.Address == sender }) {
			t.Errorf("a report to %s was answered with a bounce to its sender (queued as %s)", rcptA, q.ID)
		}
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
		cfg   serverConfig
		reply string
	}{
		{"Auth535", serverConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")}, "535 5.7.8 Authentication credentials invalid"},
		{"Mail553", serverConfig{MailErr: map[string]*smtp.SMTPError{"*": smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by auth user")}}, "553 5.7.1 Sender address rejected: not owned by auth user"},
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

// --- the lifetime of a recipient deferral ---

// TestRetry_Rcpt450PastLifetime_GivesUpAndBounces: a recipient the
// smarthost keeps deferring is given up once the lifetime is over: failed,
// logged as bounced with 5.4.7, and reported with Status 5.4.7 and the
// last reply.
func TestRetry_Rcpt450PastLifetime_GivesUpAndBounces(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
	sh := withAuth(smarthost(srv.Port, "none"))
	sh.BounceFrom = bounceAddr
	h := newHarness(t, sh)
	h.cfg.Queue.Lifetime = config.Duration(2 * time.Hour)
	id := h.enqueue(content, rcptA, rcptB)
	t0 := h.now
	h.run()
	h.now = t0.Add(time.Hour)
	if st := h.run(); st != (relay.Stats{Messages: 1, Deferred: 1}) {
		t.Errorf("pass within the lifetime: %+v, want deferred", st)
	}
	if r := h.reports(); len(r) != 0 {
		t.Fatalf("%d reports within the lifetime", len(r))
	}
	h.now = t0.Add(2 * time.Hour)
	if st := h.run(); st != (relay.Stats{Messages: 1, Failed: 1}) {
		t.Errorf("pass at the lifetime: %+v, want a failed", st)
	}
	if h.read(id) != nil {
		t.Error("message still queued: b delivered, a given up and reported")
	}
	rep := wantBounce(t, h, bounceAddr, map[string]string{rcptA: "450 4.2.0 Mailbox busy"})
	// Diagnostic-Code is the server's last reply, as RFC 3464 wants it;
	// the giving up is said in words for people.
	if f := rep.rcpt(rcptA); f.Get("Status") != "5.4.7" || f.Get("Diagnostic-Code") != "smtp; 450 4.2.0 Mailbox busy" {
		t.Errorf("Status %q Diagnostic-Code %q, want 5.4.7 and the last reply", f.Get("Status"), f.Get("Diagnostic-Code"))
	}
	if !strings.Contains(strings.Join(strings.Fields(rep.Human), " "), "relay gave up after 2h") {
		t.Errorf("the text for people does not say relay gave up:\n%s", rep.Human)
	}
	l := h.logLines(rcptA)
	if len(l) != 3 {
		t.Fatalf("log %q", l)
	}
	_, v := logFields(t, l[2])
	if v["status"] != "bounced" || v["dsn"] != "5.4.7" || v["attempt"] != "3" || !strings.Contains(v["reply"], "450 4.2.0 Mailbox busy") {
		t.Errorf("log line %q, want status=bounced dsn=5.4.7 attempt=3 with the last reply", l[2])
	}
	if n := srv.DeliveredTo(rcptB); n != 1 {
		t.Errorf("b delivered %d times", n)
	}
}

// TestBounce_Undeliverable_GoesToPostmaster_ThenHeld: a bounce whose
// delivery fails for good is redirected to postmaster@Domain; when
// postmaster is refused too it is held. No bounce of a bounce ever
// appears: the queue never holds more than the one report.
func TestBounce_Undeliverable_GoesToPostmaster_ThenHeld(t *testing.T) {
	for _, postmasterRefused := range []bool{false, true} {
		t.Run(fmt.Sprintf("PostmasterRefused=%v", postmasterRefused), func(t *testing.T) {
			refuse := map[string]*smtp.SMTPError{
				rcptB:  smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user"),
				sender: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "Sender mailbox gone"),
			}
			if postmasterRefused {
				refuse[postmaster] = smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No postmaster here")
			}
			srv := plainAuthServer(t, serverConfig{RcptErr: refuse})
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.BounceFrom = bounceAddr
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA, rcptB)

			h.run() // a delivered, b bounced
			if h.read(id) != nil {
				t.Fatal("original still queued")
			}
			wantBounce(t, h, bounceAddr, map[string]string{rcptB: "550 5.1.1 No such user"})
			bid := h.reports()[0].ID

			// The bounce to the sender is refused: redirected, no new message.
			if st := h.run(); st.Messages != 1 || st.Delivered != 0 {
				t.Errorf("pass 2: %+v", st)
			}
			q := h.queue()
			if len(q) != 1 || q[0].ID != bid {
				t.Fatalf("queue after the bounce was refused: %d messages, want the bounce alone", len(q))
			}
			if rs := q[0].Env.Recipients; len(rs) != 1 || rs[0].Address != postmaster || rs[0].Status != spool.Pending || rs[0].Original != sender {
				t.Errorf("bounce recipients %+v, want %s pending (originally %s)", rs, postmaster, sender)
			}
			if !strings.Contains(h.log.String(), fmt.Sprintf("id=%s to=<%s> status=redirected orig_to=<%s>", bid, sender, postmaster)) {
				t.Errorf("no redirection logged:\n%s", h.log.String())
			}

			// Pass 3 sends it to postmaster.
			st := h.run()
			if got := srv.Rcpts(); !slices.Equal(got, []string{rcptA, rcptB, sender, postmaster}) {
				t.Errorf("RCPT TO seen %q", got)
			}
			if !postmasterRefused {
				if st != (relay.Stats{Messages: 1, Delivered: 1}) {
					t.Errorf("pass 3: %+v, want delivered to postmaster", st)
				}
				ms := srv.Messages()
				if len(ms) != 2 || ms[1].From != bounceAddr || !slices.Equal(ms[1].To, []string{postmaster}) {
					t.Fatalf("server messages %+v, want the bounce to postmaster", ms)
				}
				if rep := parseReport(t, ms[1].Body); rep.rcpt(rcptB) == nil {
					t.Errorf("postmaster got a report not naming %s: %q", rcptB, rep.finalRecipients())
				}
				if q := h.queue(); len(q) != 0 {
					t.Errorf("%d messages queued after postmaster got the bounce", len(q))
				}
				return
			}
			if st != (relay.Stats{Messages: 1, Failed: 1, Held: 1}) {
				t.Errorf("pass 3: %+v, want refused and held", st)
			}
			for _, d := range []time.Duration{time.Hour, 24 * time.Hour, 30 * 24 * time.Hour} {
				h.now = h.now.Add(d)
				if st := h.run(); st != (relay.Stats{}) {
					t.Errorf("pass after +%v: %+v, want a held bounce left alone", d, st)
				}
			}
			q = h.queue()
			if len(q) != 1 || q[0].ID != bid || !q[0].Env.Held {
				t.Fatalf("queue %+v, want the held bounce alone (no bounce of a bounce)", q)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Errorf("%d messages at the server, want the original only", n)
			}
			if n := len(srv.Rcpts()); n != 4 {
				t.Errorf("%d RCPT TO, want 4: a held bounce is never tried", n)
			}
			var list bytes.Buffer
			if err := mailq.List(&list, &list, h.sp); err != nil || !strings.Contains(list.String(), bid+"!") {
				t.Errorf("mailq (%v):\n%s\nwant the bounce held (!)", err, list.String())
			}
		})
	}
}

// TestBounce_DeferredPastLifetime_Held: a bounce the smarthost keeps
// deferring is not given up after the lifetime (that would bounce a
// bounce, or lose it): it goes on hold.
func TestBounce_DeferredPastLifetime_Held(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{
		rcptA:  smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user"),
		sender: smtpErr(450, smtp.EnhancedCode{4, 2, 1}, "Mailbox temporarily disabled"),
	}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	h.cfg.Queue.Lifetime = config.Duration(2 * time.Hour)
	h.enqueue(content, rcptA)
	t0 := h.now
	h.run()
	reps := h.reports()
	if len(reps) != 1 {
		t.Fatalf("%d reports", len(reps))
	}
	bid := reps[0].ID
	for _, d := range []time.Duration{0, time.Hour, 2 * time.Hour, 3 * time.Hour, 30 * 24 * time.Hour} {
		h.now = t0.Add(d)
		h.run()
	}
	q := h.queue()
	if len(q) != 1 || q[0].ID != bid {
		t.Fatalf("queue %d messages, want the bounce alone", len(q))
	}
	if r := q[0].Env.Recipients; !q[0].Env.Held || len(r) != 1 || r[0].Address != sender || r[0].Status != spool.Pending {
		t.Errorf("bounce held %v, recipients %+v; want held, still pending for %s", q[0].Env.Held, r, sender)
	}
	if n := srv.DeliveredTo(postmaster); n != 0 {
		t.Errorf("a bounce deferred past its lifetime went to postmaster %d times", n)
	}
}

// TestSoftBounce_Rcpt550_StaysPending: with soft_bounce a 550 at RCPT
// defers the recipient: logged as deferred, retried, never bounced.
func TestSoftBounce_Rcpt550_StaysPending(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	h.cfg.Queue.SoftBounce = true
	id := h.enqueue(content, rcptA, rcptB)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1, Deferred: 1}) {
		t.Errorf("stats %+v, want a deferred", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending, rcptB: spool.Delivered}, "550 5.1.1 No such user")
	if env.OwnSide() || !env.NextAttempt.Equal(h.now.Add(time.Minute)) {
		t.Errorf("own side %v, next attempt in %v; want a recipient deferral due after retry_min", env.OwnSide(), env.NextAttempt.Sub(h.now))
	}
	if l := h.logLines(rcptA); len(l) != 1 || !strings.Contains(l[0], " status=deferred ") || !strings.Contains(l[0], `reply="550 5.1.1 No such user"`) {
		t.Errorf("log %q, want status=deferred with the reply", l)
	}
	h.now = env.NextAttempt
	if st := h.run(); st != (relay.Stats{Messages: 1, Deferred: 1}) {
		t.Errorf("retry %+v, want a deferred again", st)
	}
	if q := h.queue(); len(q) != 1 || q[0].ID != id {
		t.Errorf("queue holds %d messages, want the original alone (no bounce)", len(q))
	}
}

// --- a smarthost remembered as down ---

// closingServer accepts connections and closes them at once, counting
// them.
func closingServer(t *testing.T) (port int, conns func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port, func() int { return int(n.Load()) }
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
			s := newRawServer(t, smtpReplies(nil, map[string]func(string) string{
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
			if hs.Failures != 1 || !hs.DownUntil.Equal(t0.Add(time.Minute)) || !strings.Contains(hs.Reason, tc.reason) {
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

// --- delay warnings ---

// countDelayReports counts the delay warnings queued and delivered.
func countDelayReports(t *testing.T, h *harness, srv *faultServer) int {
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
			srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
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

// --- one message does not hold up the others ---

// TestDelivery_PermanentFailure_DoesNotBlockLaterMessages: a message
// refused for every recipient, first in the queue, does not keep the one
// after it from being delivered in the same pass over the same
// connection.
func TestDelivery_PermanentFailure_DoesNotBlockLaterMessages(t *testing.T) {
	const x, y = "x@example.test", "y@example.test"
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{
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

// --- the log ---

// TestLog_Fields_SentDeferredBounced checks the delivery log lines field
// by field and in order: id, to, relay=host[ip]:port, tls, delay, attempt,
// status, dsn, reply (then hint when the failure is explained, and stage
// for a deferral); then the line of the bounce queued and of its delivery.
func TestLog_Fields_SentDeferredBounced(t *testing.T) {
	srv := newFaultServer(t, serverConfig{
		STARTTLS: true, AuthMechs: []string{"PLAIN"}, Password: testPass,
		RcptErr: map[string]*smtp.SMTPError{
			rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, `<b@example.test>: Recipient address rejected: "b" unknown`),
			rcptC: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy"),
		},
	})
	sh := withAuth(smarthost(srv.Port, "starttls"))
	sh.TLSCAFile = srv.Cert.caFile(t)
	sh.BounceFrom = bounceAddr
	h := newHarness(t, sh)
	sent := h.enqueue(content, rcptA)
	deferred := h.enqueue(content, rcptC)
	bounced := h.enqueue(content, rcptB)
	t0 := h.now
	h.now = t0.Add(2500 * time.Millisecond)
	h.run()
	relayField := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", srv.Port)
	keys := []string{"id", "to", "relay", "tls", "delay", "attempt", "status", "dsn", "reply"}
	for _, tc := range []struct {
		addr, id string
		keys     []string
		want     map[string]string
	}{
		{rcptA, sent, keys, map[string]string{"status": "sent", "dsn": "2.0.0", "reply": "250 2.0.0 OK: queued"}},
		{rcptC, deferred, append(keys, "stage"), map[string]string{"status": "deferred", "dsn": "4.2.0", "reply": "450 4.2.0 Mailbox busy", "stage": "rcpt"}},
		{rcptB, bounced, append(keys, "hint"), map[string]string{"status": "bounced", "dsn": "5.1.1", "reply": `550 5.1.1 <b@example.test>: Recipient address rejected: "b" unknown`,
			"hint": relay.Explain(&relay.Failure{Stage: relay.StageRcpt, Code: 550, Enhanced: "5.1.1"})}},
	} {
		l := h.logLines(tc.addr)
		if len(l) != 1 {
			t.Errorf("%s: %d log lines:\n%s", tc.addr, len(l), h.log.String())
			continue
		}
		gotKeys, v := logFields(t, l[0])
		if !slices.Equal(gotKeys, tc.keys) {
			t.Errorf("%s: fields %q, want %q", tc.addr, gotKeys, tc.keys)
		}
		want := map[string]string{"id": tc.id, "to": "<" + tc.addr + ">", "relay": relayField, "tls": "TLSv1.3", "delay": "2.5s", "attempt": "1"}
		for k, w := range tc.want {
			want[k] = w
		}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("%s: %s=%q, want %q (line %q)", tc.addr, k, v[k], w, l[0])
			}
		}
	}

	// The bounce queued for b.
	reps := h.reports()
	if len(reps) != 1 {
		t.Fatalf("%d reports", len(reps))
	}
	var bl []string
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(l, "status=bounce ") {
			bl = append(bl, l)
		}
	}
	if len(bl) != 1 {
		t.Fatalf("bounce lines %q", bl)
	}
	gotKeys, v := logFields(t, bl[0])
	if !slices.Equal(gotKeys, []string{"id", "status", "bounce_id", "to", "nrcpt"}) ||
		v["id"] != bounced || v["bounce_id"] != reps[0].ID || v["to"] != "<"+sender+">" || v["nrcpt"] != "1" {
		t.Errorf("bounce line %q", bl[0])
	}

	// An hour later: the deferral's second attempt, and the bounce sent.
	h.log.Reset()
	srv.setConfig(func(c *serverConfig) { c.RcptErr = nil })
	h.now = t0.Add(time.Hour)
	h.run()
	l := h.logLines(rcptC)
	if len(l) != 1 {
		t.Fatalf("log:\n%s", h.log.String())
	}
	if _, v := logFields(t, l[0]); v["attempt"] != "2" || v["delay"] != "3600.0s" || v["status"] != "sent" {
		t.Errorf("retry line %q, want attempt=2 delay=3600.0s status=sent", l[0])
	}
	l = h.logLines(sender)
	if len(l) != 1 {
		t.Fatalf("log:\n%s", h.log.String())
	}
	if _, v := logFields(t, l[0]); v["id"] != reps[0].ID || v["status"] != "sent" || v["attempt"] != "1" || v["tls"] != "TLSv1.3" {
		t.Errorf("bounce delivery line %q", l[0])
	}
}
