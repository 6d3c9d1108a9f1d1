package relay_test

// Bounces (SPEC section 9), through relay.Runner over a real spool with a
// clock the tests move: a bounce is queued as a message of its own and
// delivered by the next pass; one that cannot be delivered goes to the
// postmaster, then is held; a bounce is never bounced; a recipient
// deferred past the lifetime gives up and bounces.

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/bounce"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// --- bounces ---

// TestBounce_Rcpt550_QueuedThenDeliveredToSender: a recipient refused
// with 550 is reported in a bounce queued as a message of its own; the
// next pass delivers it from bounce_from to the original sender, as an
// RFC 3464 report naming the recipient, the status and the server's
// reply, marked Auto-Submitted: auto-replied.
func TestBounce_Rcpt550_QueuedThenDeliveredToSender(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user here")}})
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
			srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
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
			srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
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
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
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

// --- the lifetime of a recipient deferral ---

// TestRetry_Rcpt450PastLifetime_GivesUpAndBounces: a recipient the
// smarthost keeps deferring is given up once the lifetime is over: failed,
// logged as bounced with 5.4.7, and reported with Status 5.4.7 and the
// last reply.
func TestRetry_Rcpt450PastLifetime_GivesUpAndBounces(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
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
			srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: refuse})
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
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{
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
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
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
