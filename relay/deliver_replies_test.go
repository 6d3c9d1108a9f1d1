package relay_test

// What each reply of the smarthost, at each stage, makes of the message
// and of each recipient.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// The per-stage rules, through the runner: which recipients end delivered,
// deferred or failed, what the server received, what the queue keeps: the
// message while a recipient is pending, and a bounce to the sender naming
// the failed ones.
func TestDelivery_ReplyAtEachStage(t *testing.T) {
	all := func(st spool.Status) map[string]spool.Status {
		return map[string]spool.Status{rcptA: st, rcptB: st, rcptC: st}
	}
	bOnly := func(st spool.Status) map[string]spool.Status {
		return map[string]spool.Status{rcptA: spool.Delivered, rcptB: st, rcptC: spool.Delivered}
	}
	tests := []struct {
		name   string
		cfg    testsmtp.ServerConfig
		want   map[string]spool.Status
		reason string // in the reason of every recipient not delivered
	}{
		{"Greeting421_DefersAll", testsmtp.ServerConfig{Greeting: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Service not available")}, all(spool.Pending), "421"},
		{"Greeting554_DefersAll_NeverFails", testsmtp.ServerConfig{Greeting: smtpErr(554, smtp.EnhancedCode{5, 3, 2}, "No SMTP service here")}, all(spool.Pending), "554"},
		{"EHLO421_DefersAll", testsmtp.ServerConfig{EHLO: smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "Too many connections")}, all(spool.Pending), "421"},
		{"EHLO554_DefersAll_NeverFails", testsmtp.ServerConfig{EHLO: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Access denied")}, all(spool.Pending), "554"},
		{"Auth454_DefersAll", testsmtp.ServerConfig{AuthErr: smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure")}, all(spool.Pending), "454"},
		{"Auth535_DefersAll_NeverFails", testsmtp.ServerConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")}, all(spool.Pending), "535"},
		{"Mail451_DefersAll", testsmtp.ServerConfig{MailErr: map[string]*smtp.SMTPError{"*": smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Try again later")}}, all(spool.Pending), "451"},
		{"Mail553_SenderNotOwned_DefersAll_NeverFails", testsmtp.ServerConfig{MailErr: map[string]*smtp.SMTPError{sender: smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by auth user")}}, all(spool.Pending), "553 5.7.1 Sender address rejected: not owned by auth user"},
		{"Rcpt450_DefersThatRecipientOnly", testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}}, bOnly(spool.Pending), "450"},
		{"Rcpt550_FailsThatRecipientOnly", testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "Mailbox unavailable")}}, bOnly(spool.Failed), "550 5.1.1 Mailbox unavailable"},
		{"Rcpt552_CountsAsTemporary", testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full")}}, bOnly(spool.Pending), "552"},
		{"RcptAll550_FailsAll_NoData", testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{
			rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "unknown"),
			rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "unknown"),
			rcptC: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "unknown"),
		}}, all(spool.Failed), "550"},
		{"AfterDot451_DefersAll", testsmtp.ServerConfig{DataErr: smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Queue full")}, all(spool.Pending), "451"},
		{"AfterDot554_FailsAll", testsmtp.ServerConfig{DataErr: smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message content rejected")}, all(spool.Failed), "554 5.6.0 Message content rejected"},
		{"AfterDot554_FailsAcceptedOnly", testsmtp.ServerConfig{
			RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")},
			DataErr: smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message content rejected"),
		}, map[string]spool.Status{rcptA: spool.Failed, rcptB: spool.Pending, rcptC: spool.Failed}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, tc.cfg)
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.BounceFrom = bounceAddr
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA, rcptB, rcptC)
			st := h.run()

			var want relay.Stats
			want.Messages = 1
			anyPending := false
			for _, s := range tc.want {
				switch s {
				case spool.Delivered:
					want.Delivered++
				case spool.Pending:
					want.Deferred++
					anyPending = true
				case spool.Failed:
					want.Failed++
				}
			}
			if st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
			failed := map[string]string{}
			for addr, s := range tc.want {
				if s == spool.Failed {
					failed[addr] = tc.reason
				}
			}
			// Every recipient delivered or failed and reported: the
			// message leaves the queue; the failed ones are in a bounce.
			env := h.read(id)
			if !anyPending {
				if env != nil {
					t.Errorf("message still queued without a pending recipient: %+v", env.Recipients)
				}
			} else {
				if env == nil {
					t.Fatal("message left the queue although a recipient is pending")
				}
				wantStatuses(t, env, tc.want, tc.reason)
				if env.Attempts != 1 {
					t.Errorf("attempts = %d, want 1", env.Attempts)
				}
				if !env.NextAttempt.Equal(h.now.Add(time.Minute)) {
					t.Errorf("next attempt %v, want now + retry_min", env.NextAttempt.Sub(h.now))
				}
				for addr := range failed {
					if !rcpt(env, addr).Notified {
						t.Errorf("%s: failed but not marked notified although its bounce is queued", addr)
					}
				}
			}
			wantBounce(t, h, bounceAddr, failed)
			for addr, s := range tc.want {
				n := srv.DeliveredTo(addr)
				if s == spool.Delivered && n != 1 {
					t.Errorf("%s: delivered %d times at the server, want exactly once", addr, n)
				}
				if s != spool.Delivered && n != 0 {
					t.Errorf("%s: %v but delivered %d times at the server", addr, s, n)
				}
				lines := h.logLines(addr)
				if len(lines) != 1 || !strings.Contains(lines[0], logStatus[s]+" ") {
					t.Errorf("%s: log lines %q, want one with %s", addr, lines, logStatus[s])
				}
			}
		})
	}
}

// TestDelivery_TemporaryFail_Partial: of three recipients one is deferred
// at RCPT; the other two are delivered exactly once, now and on the retry.
func TestDelivery_TemporaryFail_Partial(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA, rcptB, rcptC)
	h.run()
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Delivered, rcptB: spool.Pending, rcptC: spool.Delivered}, "450 4.2.0 Mailbox busy")

	// The retry goes to b only.
	srv.SetConfig(func(c *testsmtp.ServerConfig) { c.RcptErr = nil })
	h.now = env.NextAttempt
	st := h.run()
	if st.Delivered != 1 || st.Deferred != 0 {
		t.Errorf("retry stats %+v, want 1 delivered", st)
	}
	if h.read(id) != nil {
		t.Error("message still queued after every recipient was delivered")
	}
	for _, a := range []string{rcptA, rcptB, rcptC} {
		if n := srv.DeliveredTo(a); n != 1 {
			t.Errorf("%s delivered %d times, want exactly once", a, n)
		}
	}
	if got := srv.Rcpts(); !slices.Equal(got, []string{rcptA, rcptB, rcptC, rcptB}) {
		t.Errorf("RCPT TO seen %q: the retry must ask for b only", got)
	}
	ms := srv.Messages()
	if len(ms) != 2 || string(ms[0].Body) != content || string(ms[1].Body) != content {
		t.Errorf("messages at the server: %d, bodies not the queued content", len(ms))
	}
}

// TestDelivery_PermanentFail_Partial: one recipient refused for good of
// three; the others are delivered exactly once, the message leaves the
// queue with a bounce for the refused one queued, and it is never tried
// again: the next pass carries the bounce only.
func TestDelivery_PermanentFail_Partial(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA, rcptB, rcptC)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 2, Failed: 1}) {
		t.Errorf("stats %+v", st)
	}
	if env := h.read(id); env != nil {
		t.Errorf("message still queued after every recipient was delivered or failed and reported: %+v", env.Recipients)
	}
	wantBounce(t, h, testUser, map[string]string{rcptB: "550 5.1.1 No such user"})
	h.now = h.now.Add(24 * time.Hour)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
		t.Errorf("second pass %+v, want the bounce alone delivered", st)
	}
	if n := srv.Conns(); n != 2 {
		t.Errorf("%d connections, want 2 (the message, then its bounce)", n)
	}
	if got := srv.Rcpts(); !slices.Equal(got, []string{rcptA, rcptB, rcptC, sender}) {
		t.Errorf("RCPT TO seen %q: the original's recipients must never be tried again", got)
	}
	for _, a := range []string{rcptA, rcptC} {
		if n := srv.DeliveredTo(a); n != 1 {
			t.Errorf("%s delivered %d times, want exactly once", a, n)
		}
	}
	if q := h.queue(); len(q) != 0 {
		t.Errorf("%d messages queued after the bounce was delivered", len(q))
	}
}

// The reply to the DATA command itself (go-smtp's server always says 354,
// hence the scripted server): a 4xx defers and a 5xx fails the accepted
// recipients; one refused at RCPT keeps its own outcome.
func TestDelivery_DataCommandReply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reply    string
		accepted spool.Status
	}{
		{"451_DefersAccepted", "451 4.3.0 Try again later", spool.Pending},
		{"554_FailsAccepted", "554 5.5.1 No valid recipients", spool.Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, map[string]func(string) string{
				"RCPT": func(l string) string {
					if strings.Contains(l, rcptB) {
						return "550 5.1.1 No such user"
					}
					return "250 2.1.5 Ok"
				},
				"DATA": func(string) string { return tc.reply },
			}))
			h := newHarness(t, smarthost(srv.Port, "none"))
			id := h.enqueue(content, rcptA, rcptB, rcptC)
			h.run()
			failed := map[string]string{rcptB: "550 5.1.1 No such user"}
			if tc.accepted == spool.Pending {
				env := h.mustRead(id)
				wantStatuses(t, env, map[string]spool.Status{rcptA: tc.accepted, rcptC: tc.accepted}, tc.reply)
				wantStatuses(t, env, map[string]spool.Status{rcptB: spool.Failed}, "550 5.1.1 No such user")
			} else {
				if env := h.read(id); env != nil {
					t.Errorf("message still queued with every recipient failed and reported: %+v", env.Recipients)
				}
				failed[rcptA], failed[rcptC] = tc.reply, tc.reply
			}
			// No username: the bounce comes from MAILER-DAEMON.
			wantBounce(t, h, "MAILER-DAEMON@"+testDomain, failed)
			if b := srv.Bodies(); len(b) != 0 {
				t.Errorf("a message was sent after the DATA command was refused: %q", b)
			}
		})
	}
}

// TestDelivery_ConnectionFailure_DefersPassWithOneConnection: when the
// connection fails (refused, greeting, TLS, AUTH), every due message of the
// pass is deferred with the same reason, and the server sees one
// connection for all of them.
