package relay_test

// Black-box tests of a delivery: relay.Dial + (*Conn).Send, and
// relay.Runner.Run over a real spool, against the fault-injecting servers of
// smtpserver_test.go. The rules under test are those of the package
// comment (doc.go): a failure before RCPT defers the whole message and
// never fails a recipient; a 5xx at RCPT (but 552) fails that recipient
// only; a 5xx at or after DATA fails the accepted recipients; everything
// else defers.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

const (
	sender   = "robot@example.test"
	testUser = "robot@example.test"
	// testPass is distinctive so that a leak anywhere can be grepped for.
	testPass = "Pa55-zebra-7Qx"
	rcptA    = "a@example.test"
	rcptB    = "b@example.test"
	rcptC    = "c@example.test"
)

const content = "From: robot@example.test\r\nTo: a@example.test\r\nSubject: test\r\n\r\nHello.\r\n.leading dot\r\n"

func smtpErr(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// smarthost is the configuration Load would produce for a test server on
// 127.0.0.1, without authentication.
func smarthost(port int, tlsMode string) config.Smarthost {
	return config.Smarthost{Name: "127.0.0.1", Host: "127.0.0.1", Port: port, TLS: tlsMode, TLSMinVersion: "1.2"}
}

func withAuth(sh config.Smarthost) config.Smarthost {
	sh.Username = testUser
	sh.Password = testPass
	return sh
}

// plainAuthServer is a server that offers AUTH PLAIN LOGIN over plain
// text (relay allows that to a loopback peer), with cfg's faults.
func plainAuthServer(t *testing.T, cfg serverConfig) *faultServer {
	t.Helper()
	if cfg.AuthMechs == nil {
		cfg.AuthMechs = []string{"PLAIN", "LOGIN"}
	}
	cfg.AllowInsecureAuth = true
	if cfg.Password == "" {
		cfg.Password = testPass
	}
	return newFaultServer(t, cfg)
}

// closedPort returns a port on 127.0.0.1 nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

// shortTimeouts sets relay's timeouts for one test and restores them.
func shortTimeouts(t *testing.T, connect, command, data, writeIdle time.Duration) {
	t.Helper()
	oc, ocmd, od, ow := relay.ConnectTimeout, relay.CommandTimeout, relay.DataTimeout, relay.WriteIdleTimeout
	relay.ConnectTimeout, relay.CommandTimeout, relay.DataTimeout, relay.WriteIdleTimeout = connect, command, data, writeIdle
	t.Cleanup(func() {
		relay.ConnectTimeout, relay.CommandTimeout, relay.DataTimeout, relay.WriteIdleTimeout = oc, ocmd, od, ow
	})
}

// harness is a spool, a configuration and a runner with a clock the test
// moves.
type harness struct {
	t      *testing.T
	sp     *spool.Spool
	cfg    *config.Config
	log    bytes.Buffer
	debug  bytes.Buffer
	now    time.Time
	runner *relay.Runner
}

func newHarness(t *testing.T, sh config.Smarthost) *harness {
	t.Helper()
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t:   t,
		sp:  sp,
		now: time.Now().Truncate(time.Second),
		cfg: &config.Config{
			Smarthosts: []config.Smarthost{sh},
			Queue: config.Queue{
				RetryMin: config.Duration(time.Minute),
				RetryMax: config.Duration(time.Hour),
			},
		},
	}
	h.runner = &relay.Runner{
		Spool:    sp,
		Config:   h.cfg,
		Log:      relay.NewLogger(&h.log),
		HeloName: "relay.test",
		Domain:   testDomain,
		Now:      func() time.Time { return h.now },
		Debug:    &h.debug,
	}
	return h
}

// enqueue queues a message as sendmail would.
func (h *harness) enqueue(body string, rcpts ...string) string {
	h.t.Helper()
	return h.enqueueWith(body, nil, rcpts...)
}

// enqueueWith is enqueue with a change to the envelope before it is
// written (DSN options, the sender).
func (h *harness) enqueueWith(body string, fn func(*spool.Envelope), rcpts ...string) string {
	h.t.Helper()
	d, err := h.sp.NewDraft()
	if err != nil {
		h.t.Fatal(err)
	}
	env := &spool.Envelope{Sender: sender, UID: 1000, User: "robot", Arrival: h.now}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Address: r, Status: spool.Pending})
	}
	if fn != nil {
		fn(env)
	}
	if err := d.WriteEnvelope(env); err != nil {
		h.t.Fatal(err)
	}
	if _, err := d.Write([]byte(body)); err != nil {
		h.t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		h.t.Fatal(err)
	}
	return d.ID
}

func (h *harness) run() relay.Stats {
	h.t.Helper()
	st, err := h.runner.Run(context.Background())
	if err != nil {
		h.t.Fatalf("Run: %v", err)
	}
	return st
}

// read returns the message's envelope, nil when it left the queue.
func (h *harness) read(id string) *spool.Envelope {
	h.t.Helper()
	m, err := h.sp.Read(id)
	if errors.Is(err, spool.ErrNotFound) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return &m.Envelope
}

// mustRead is read for a message that must still be queued.
func (h *harness) mustRead(id string) *spool.Envelope {
	h.t.Helper()
	env := h.read(id)
	if env == nil {
		h.t.Fatalf("message %s left the queue", id)
	}
	return env
}

func rcpt(env *spool.Envelope, addr string) spool.Recipient {
	for _, r := range env.Recipients {
		if r.Address == addr {
			return r
		}
	}
	return spool.Recipient{Address: addr, Status: "missing"}
}

// logLines returns the log lines about recipient addr.
func (h *harness) logLines(addr string) []string {
	var out []string
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(l, "to=<"+addr+">") {
			out = append(out, l)
		}
	}
	return out
}

// wantStatuses checks every recipient's status and, for those not
// delivered, that the reason contains reason.
func wantStatuses(t *testing.T, env *spool.Envelope, want map[string]spool.Status, reason string) {
	t.Helper()
	for addr, st := range want {
		r := rcpt(env, addr)
		if r.Status != st {
			t.Errorf("%s: status %q (reason %q), want %q", addr, r.Status, r.Reason(), st)
		}
		if st != spool.Delivered && !strings.Contains(r.Reason(), reason) {
			t.Errorf("%s: reason %q does not contain %q", addr, r.Reason(), reason)
		}
	}
}

var logStatus = map[spool.Status]string{spool.Delivered: "status=sent", spool.Pending: "status=deferred", spool.Failed: "status=bounced"}

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
		cfg    serverConfig
		want   map[string]spool.Status
		reason string // in the reason of every recipient not delivered
	}{
		{"Greeting421_DefersAll", serverConfig{Greeting: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Service not available")}, all(spool.Pending), "421"},
		{"Greeting554_DefersAll_NeverFails", serverConfig{Greeting: smtpErr(554, smtp.EnhancedCode{5, 3, 2}, "No SMTP service here")}, all(spool.Pending), "554"},
		{"EHLO421_DefersAll", serverConfig{EHLO: smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "Too many connections")}, all(spool.Pending), "421"},
		{"EHLO554_DefersAll_NeverFails", serverConfig{EHLO: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Access denied")}, all(spool.Pending), "554"},
		{"Auth454_DefersAll", serverConfig{AuthErr: smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure")}, all(spool.Pending), "454"},
		{"Auth535_DefersAll_NeverFails", serverConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")}, all(spool.Pending), "535"},
		{"Mail451_DefersAll", serverConfig{MailErr: map[string]*smtp.SMTPError{"*": smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Try again later")}}, all(spool.Pending), "451"},
		{"Mail553_SenderNotOwned_DefersAll_NeverFails", serverConfig{MailErr: map[string]*smtp.SMTPError{sender: smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by auth user")}}, all(spool.Pending), "553 5.7.1 Sender address rejected: not owned by auth user"},
		{"Rcpt450_DefersThatRecipientOnly", serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}}, bOnly(spool.Pending), "450"},
		{"Rcpt550_FailsThatRecipientOnly", serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "Mailbox unavailable")}}, bOnly(spool.Failed), "550 5.1.1 Mailbox unavailable"},
		{"Rcpt552_CountsAsTemporary", serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full")}}, bOnly(spool.Pending), "552"},
		{"RcptAll550_FailsAll_NoData", serverConfig{RcptErr: map[string]*smtp.SMTPError{
			rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "unknown"),
			rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "unknown"),
			rcptC: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "unknown"),
		}}, all(spool.Failed), "550"},
		{"AfterDot451_DefersAll", serverConfig{DataErr: smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Queue full")}, all(spool.Pending), "451"},
		{"AfterDot554_FailsAll", serverConfig{DataErr: smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message content rejected")}, all(spool.Failed), "554 5.6.0 Message content rejected"},
		{"AfterDot554_FailsAcceptedOnly", serverConfig{
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
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA, rcptB, rcptC)
	h.run()
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Delivered, rcptB: spool.Pending, rcptC: spool.Delivered}, "450 4.2.0 Mailbox busy")

	// The retry goes to b only.
	srv.setConfig(func(c *serverConfig) { c.RcptErr = nil })
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
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
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
			srv := newRawServer(t, smtpReplies(nil, map[string]func(string) string{
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
func TestDelivery_ConnectionFailure_DefersPassWithOneConnection(t *testing.T) {
	const n = 4
	untrusted := newFaultServer(t, serverConfig{STARTTLS: true, AuthMechs: []string{"PLAIN"}})
	for _, tc := range []struct {
		name   string
		port   func(t *testing.T) (port int, conns func() int)
		tls    string
		reason string
		stage  string
	}{
		{"ConnectRefused", func(t *testing.T) (int, func() int) { return closedPort(t), nil }, "none", "connection refused", "connect"},
		{"Greeting421", func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, serverConfig{Greeting: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Busy")})
			return s.Port, s.Conns
		}, "none", "421", ""},
		{"Auth535", func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, serverConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")})
			t.Cleanup(func() {
				if a := s.Auths(); len(a) != 1 {
					t.Errorf("%d AUTH attempts for %d messages, want 1", len(a), n)
				}
			})
			return s.Port, s.Conns
		}, "none", "535 5.7.8 Authentication credentials invalid", "auth"},
		{"UntrustedCertificate", func(t *testing.T) (int, func() int) { return untrusted.Port, untrusted.Conns }, "starttls", "certificate", "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, conns := tc.port(t)
			h := newHarness(t, withAuth(smarthost(port, tc.tls)))
			var ids []string
			for range n {
				ids = append(ids, h.enqueue(content, rcptA, rcptB))
			}
			before := 0
			if conns != nil {
				before = conns()
			}
			st := h.run()
			if st != (relay.Stats{Messages: n, Deferred: 2 * n}) {
				t.Errorf("stats %+v, want %d messages with every recipient deferred", st, n)
			}
			if conns != nil {
				if got := conns() - before; got != 1 {
					t.Errorf("%d connections for %d messages, want 1", got, n)
				}
			}
			for _, id := range ids {
				env := h.mustRead(id)
				wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending, rcptB: spool.Pending}, tc.reason)
				if !strings.Contains(env.LastError(), tc.reason) {
					t.Errorf("last error %q does not contain %q", env.LastError(), tc.reason)
				}
			}
			// relay= names the address reached once there was a connection.
			relayField := fmt.Sprintf("relay=127.0.0.1[127.0.0.1]:%d ", port)
			if conns == nil {
				relayField = fmt.Sprintf("relay=127.0.0.1:%d ", port)
			}
			if c := strings.Count(h.log.String(), relayField); c != 2*n {
				t.Errorf("%d log lines with %s, want %d:\n%s", c, relayField, 2*n, h.log.String())
			}
			if tc.stage != "" {
				if c := strings.Count(h.log.String(), "stage="+tc.stage); c != 2*n {
					t.Errorf("%d log lines with stage=%s, want %d:\n%s", c, tc.stage, 2*n, h.log.String())
				}
			}
		})
	}
}

// TestDelivery_SeveralMessages_ShareOneConnection: a pass carries all its
// messages over one connection; a completed transaction needs no RSET, so
// the session has one EHLO (go-smtp says EHLO again after every RSET).
func TestDelivery_SeveralMessages_ShareOneConnection(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	var ids []string
	for i := range 3 {
		ids = append(ids, h.enqueue(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i), rcptA))
	}
	st := h.run()
	if st != (relay.Stats{Messages: 3, Delivered: 3}) {
		t.Errorf("stats %+v", st)
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections for 3 messages, want 1", n)
	}
	if m := srv.MailsOn(); m[1] != 3 {
		t.Errorf("transactions per connection %v, want 3 on connection 1", m)
	}
	if a := srv.Auths(); len(a) != 1 {
		t.Errorf("%d AUTH for one connection", len(a))
	}
	ms := srv.Messages()
	if len(ms) != 3 {
		t.Fatalf("%d messages at the server, want 3", len(ms))
	}
	for i, m := range ms {
		if want := fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i); string(m.Body) != want {
			t.Errorf("message %d: body %q, want %q (arrival order, content as queued)", i, m.Body, want)
		}
	}
	for _, id := range ids {
		if h.read(id) != nil {
			t.Errorf("delivered message %s still queued", id)
		}
	}
	if d := h.debug.String(); strings.Contains(d, "RSET") || strings.Count(d, "EHLO") != 1 {
		t.Errorf("%d RSET and %d EHLO for three completed transactions on one connection, want 0 and 1", strings.Count(d, "RSET"), strings.Count(d, "EHLO"))
	}
}

// TestDelivery_RefusedTransaction_KeepsConnectionForNextMessage: a message
// refused at MAIL FROM or RCPT does not cost the next one a connection.
func TestDelivery_RefusedTransaction_KeepsConnectionForNextMessage(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{
		MailErr: map[string]*smtp.SMTPError{"": smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected")},
		RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")},
	})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	first := h.enqueue(content, rcptB) // every recipient refused
	nullSender := h.enqueue(content, rcptA)
	setSender(t, h, nullSender, "") // the null sender is refused
	last := h.enqueue(content, rcptC)
	st := h.run()
	if st != (relay.Stats{Messages: 3, Delivered: 1, Deferred: 1, Failed: 1}) {
		t.Errorf("stats %+v", st)
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if h.read(first) != nil {
		t.Error("the refused message is still queued although its failure is reported")
	}
	wantBounce(t, h, testUser, map[string]string{rcptB: "550"})
	wantStatuses(t, h.mustRead(nullSender), map[string]spool.Status{rcptA: spool.Pending}, "553")
	if h.read(last) != nil || srv.DeliveredTo(rcptC) != 1 {
		t.Error("the message after two refused ones was not delivered")
	}
}

// setSender rewrites the queued envelope's sender (under the lock, as a
// runner would).
func setSender(t *testing.T, h *harness, id, from string) {
	t.Helper()
	l, err := h.sp.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Env.Sender = from
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
}

// TestDelivery_DisconnectMidData_DefersAndKeepsMessage: the server drops
// the connection while the message is being sent: recipients deferred,
// message still queued, nothing delivered at the server, and the next
// message of the pass gets a new connection.
func TestDelivery_DisconnectMidData_DefersAndKeepsMessage(t *testing.T) {
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 2048) // 2 MB
	for _, tc := range []struct {
		name string
		cfg  serverConfig
		body string
	}{
		{"WhileWriting", serverConfig{DropMidData: true}, big},
		{"AtFinalDot", serverConfig{DropAtDot: true}, content},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, tc.cfg)
			h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
			id1 := h.enqueue(tc.body, rcptA, rcptB)
			id2 := h.enqueue(tc.body, rcptC)
			st := h.run()
			if st != (relay.Stats{Messages: 2, Deferred: 3}) {
				t.Errorf("stats %+v, want every recipient deferred", st)
			}
			wantStatuses(t, h.mustRead(id1), map[string]spool.Status{rcptA: spool.Pending, rcptB: spool.Pending}, "")
			wantStatuses(t, h.mustRead(id2), map[string]spool.Status{rcptC: spool.Pending}, "")
			if m := srv.Messages(); len(m) != 0 {
				t.Errorf("%d messages delivered at the server", len(m))
			}
			if n := srv.Conns(); n != 2 {
				t.Errorf("%d connections, want 2 (a new one after the drop)", n)
			}
			if env := h.mustRead(id1); env.LastError() == "" {
				t.Error("no last error recorded")
			}
		})
	}
}

// TestDelivery_SilentServer_TimesOut: a server that stops answering fails
// the delivery after the matching timeout; the message stays queued.
func TestDelivery_SilentServer_TimesOut(t *testing.T) {
	const short, long = 300 * time.Millisecond, 20 * time.Second
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 998)+"\r\n", 16<<10) // 16 MB
	for _, tc := range []struct {
		name                     string
		command, data, writeIdle time.Duration
		server                   func(t *testing.T) (port int, delivered func() int)
		body                     string
		tls                      string
		stage                    string // the log's stage=, alternatives separated by |
	}{
		{"NoGreeting", short, long, long, func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, serverConfig{Hang: hangGreeting})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "", "greeting"},
		// The TLS handshake of port 465 is bounded as well.
		{"ImplicitTLSNoHandshake", short, long, long, func(t *testing.T) (int, func() int) {
			s := newFaultServer(t, serverConfig{ImplicitTLS: true, Hang: hangGreeting})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "implicit", "tls"},
		{"AfterGreeting", short, long, long, func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, serverConfig{Hang: hangEHLO})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "", "greeting|ehlo"},
		{"AfterRcpt", short, long, long, func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, serverConfig{Hang: hangRcpt})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "", "rcpt"},
		// DataTimeout, not CommandTimeout, bounds the wait for the reply
		// to the final dot.
		{"AfterFinalDot", long, short, long, func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, serverConfig{Hang: hangDot})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "", "data"},
		// A server that stops reading the message: WriteIdleTimeout.
		{"StopsReadingMessage", long, long, short, func(t *testing.T) (int, func() int) {
			s := newRawServer(t, smtpReplies(nil, map[string]func(string) string{
				"DATA": func(string) string { return rawStall + "354 go ahead" },
			}))
			return s.Port, func() int { return len(s.Bodies()) }
		}, big, "", "data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shortTimeouts(t, short, tc.command, tc.data, tc.writeIdle)
			port, delivered := tc.server(t)
			mode := tc.tls
			if mode == "" {
				mode = "none"
			}
			h := newHarness(t, smarthost(port, mode))
			id := h.enqueue(tc.body, rcptA)
			start := time.Now()
			st := h.run()
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the pass took %v: the timeout did not fire", d)
			}
			if st.Deferred != 1 {
				t.Errorf("stats %+v, want the recipient deferred", st)
			}
			env := h.mustRead(id)
			wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "")
			if r := rcpt(env, rcptA).Reason(); !strings.Contains(r, "timeout") && !strings.Contains(r, "deadline exceeded") {
				t.Errorf("reason %q does not mention the timeout", r)
			}
			if n := delivered(); n != 0 {
				t.Errorf("%d messages delivered at the server", n)
			}
			l := h.logLines(rcptA)
			if len(l) != 1 || !slices.ContainsFunc(strings.Split(tc.stage, "|"), func(s string) bool {
				return strings.HasSuffix(l[0], " stage="+s)
			}) {
				t.Errorf("log %q, want stage=%s", l, tc.stage)
			}
		})
	}
}

// TestDelivery_QueuedContentReachesServerUnchanged: what the server
// receives is the queued message byte for byte (dot-stuffing undone),
// with the envelope of the spool.
func TestDelivery_QueuedContentReachesServerUnchanged(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	body := "Subject: dots\r\n\r\n.\r\n..\r\n.x\r\n8bit \xe9t\xe9\r\nlast line\r\n"
	h.enqueue(body, rcptA, rcptB)
	h.run()
	ms := srv.Messages()
	if len(ms) != 1 {
		t.Fatalf("%d messages at the server", len(ms))
	}
	if string(ms[0].Body) != body {
		t.Errorf("body %q, want %q", ms[0].Body, body)
	}
	if ms[0].From != sender || !slices.Equal(ms[0].To, []string{rcptA, rcptB}) {
		t.Errorf("envelope MAIL FROM %q RCPT TO %q", ms[0].From, ms[0].To)
	}
}

// --- AUTH ---

// TestAuth_Login_AcceptsAnyPromptText: AUTH LOGIN answers the first
// challenge with the user and the second with the password, whatever they
// say.
func TestAuth_Login_AcceptsAnyPromptText(t *testing.T) {
	for _, prompts := range [][]string{
		{"Username:", "Password:"},
		{"User Name\x00", "Password\x00"},
		{"Benutzername:", "Passwort:"},
		{"", ""},
		{"username:", "password:"},
	} {
		t.Run(fmt.Sprintf("%q", prompts), func(t *testing.T) {
			srv := plainAuthServer(t, serverConfig{AuthMechs: []string{"LOGIN"}, LoginPrompts: prompts})
			h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
			id := h.enqueue(content, rcptA)
			h.run()
			if env := h.read(id); env != nil {
				t.Fatalf("not delivered: %+v", env.Recipients)
			}
			a := srv.Auths()
			if len(a) != 1 || a[0].Mech != "LOGIN" || a[0].User != testUser || a[0].Pass != testPass {
				t.Errorf("server saw %+v", a)
			}
		})
	}
}

// TestAuth_ChoosesMechanism: PLAIN when both are offered and auth is not
// set; the configured one otherwise.
func TestAuth_ChoosesMechanism(t *testing.T) {
	for _, tc := range []struct{ auth, want string }{{"", "PLAIN"}, {"login", "LOGIN"}, {"plain", "PLAIN"}} {
		t.Run("auth="+tc.auth, func(t *testing.T) {
			srv := plainAuthServer(t, serverConfig{AuthMechs: []string{"LOGIN", "PLAIN"}})
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.Auth = tc.auth
			h := newHarness(t, sh)
			h.enqueue(content, rcptA)
			if st := h.run(); st.Delivered != 1 {
				t.Errorf("stats %+v", st)
			}
			a := srv.Auths()
			if len(a) != 1 || a[0].Mech != tc.want || a[0].User != testUser || a[0].Pass != testPass {
				t.Errorf("server saw %+v, want %s", a, tc.want)
			}
		})
	}
}

// TestAuth_Unavailable_DefersWithClearReason: no AUTH offered while a
// username is configured, or not the configured mechanism: deferred,
// nothing sent.
func TestAuth_Unavailable_DefersWithClearReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mechs  []string
		auth   string
		reason string
	}{
		{"NoAuthOffered", []string{}, "", "does not offer AUTH"},
		{"ForcedLoginNotOffered", []string{"PLAIN"}, "login", "LOGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, serverConfig{AuthMechs: tc.mechs})
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.Auth = tc.auth
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, tc.reason)
			if len(srv.Auths()) != 0 || len(srv.Mails()) != 0 {
				t.Errorf("server saw AUTH %v MAIL %v", srv.Auths(), srv.Mails())
			}
		})
	}
}

// TestAuth_WithoutReply235_IsNotAuthenticated: only 235 ends AUTH
// successfully; a server that asks again after the password or answers
// something else gets neither MAIL nor the message.
func TestAuth_WithoutReply235_IsNotAuthenticated(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name string
		mech string
		auth func(step int, line string) string // reply to the step-th AUTH line (0: the AUTH command)
	}{
		{"LoginThirdChallenge", "LOGIN", func(step int, _ string) string {
			return "334 " + b64([]string{"Username:", "Password:", "Password:", "Password:"}[min(step, 3)])
		}},
		{"LoginAnswered250", "LOGIN", func(step int, _ string) string {
			if step < 2 {
				return "334 " + b64([]string{"Username:", "Password:"}[step])
			}
			return "250 2.0.0 Ok"
		}},
		{"PlainChallengeAfterResponse", "PLAIN", func(step int, _ string) string { return "334 " }},
		{"PlainAnswered250", "PLAIN", func(step int, _ string) string { return "250 2.7.0 Authentication successful" }},
		{"PlainAnswered334Garbage", "PLAIN", func(step int, _ string) string { return "334 not base64 at all!" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := -1
			inAuth := false
			srv := newRawServer(t, smtpReplies([]string{"AUTH " + tc.mech}, map[string]func(string) string{
				"AUTH": func(l string) string { inAuth = true; step = 0; return tc.auth(0, l) },
				"*": func(l string) string {
					if l == "*" {
						inAuth = false
						return "501 5.7.0 Authentication aborted"
					}
					if inAuth {
						step++
						return tc.auth(step, l)
					}
					return "502 5.5.2 Error: command not recognized"
				},
			}))
			sh := withAuth(smarthost(srv.Port, "none"))
			c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
			if err == nil {
				c.Close()
				t.Fatalf("Dial succeeded; server saw %q", srv.Lines())
			}
			var f *relay.Failure
			if !errors.As(err, &f) || f.Stage != relay.StageAuth || f.Permanent() {
				t.Errorf("error %v (%#v), want a temporary auth failure", err, f)
			}
			if strings.Contains(err.Error(), testPass) {
				t.Errorf("error %q contains the password", err)
			}
			for _, c := range srv.Commands() {
				if c == "MAIL" || c == "RCPT" || c == "DATA" {
					t.Errorf("server got %s after an AUTH without 235: %q", c, srv.Lines())
				}
			}

			// And through the runner: deferred, still queued.
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "")
		})
	}
}

// --- TLS ---

// TestTLS_StartTLSNotOffered_SendsNothingAfterEHLO: tls = "starttls" and
// a server without STARTTLS: no fallback, no AUTH, no MAIL.
func TestTLS_StartTLSNotOffered_SendsNothingAfterEHLO(t *testing.T) {
	srv := newRawServer(t, smtpReplies([]string{"AUTH PLAIN LOGIN"}, nil))
	h := newHarness(t, withAuth(smarthost(srv.Port, "starttls")))
	id := h.enqueue(content, rcptA)
	h.run()
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "STARTTLS")
	if cmds := srv.Commands(); !slices.Equal(cmds, []string{"EHLO"}) {
		t.Errorf("server got %q, want EHLO and nothing after it", srv.Lines())
	}
}

// TestTLS_None_LoopbackMayAuthenticate: without TLS, AUTH is allowed to a
// loopback peer.
func TestTLS_None_LoopbackMayAuthenticate(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Fatal("not delivered")
	}
	if a := srv.Auths(); len(a) != 1 || a[0].Pass != testPass {
		t.Errorf("server saw %+v", a)
	}
	if l := h.logLines(rcptA); len(l) != 1 || strings.Contains(l[0], "tls=") {
		t.Errorf("log %q: a connection without TLS logs no tls=", l)
	}
}

func TestTLS_Verification(t *testing.T) {
	cert := localhostCert(t)
	wrong := strings.Repeat("ab", 32)
	for _, mode := range []string{"starttls", "implicit"} {
		for _, tc := range []struct {
			name    string
			setup   func(sh *config.Smarthost)
			deliver bool
			reason  string
		}{
			{"Untrusted_Defers", func(*config.Smarthost) {}, false, "certificate"},
			{"TrustedViaCAFile_Delivers", func(sh *config.Smarthost) { sh.TLSCAFile = cert.caFile(t) }, true, ""},
			{"WrongServerName_Defers", func(sh *config.Smarthost) {
				sh.TLSCAFile = cert.caFile(t)
				sh.TLSServerName = "wrong.test"
			}, false, "certificate"},
			{"FingerprintRight_Delivers", func(sh *config.Smarthost) { sh.TLSFingerprint = cert.Fingerprint }, true, ""},
			{"FingerprintWrong_Defers", func(sh *config.Smarthost) { sh.TLSFingerprint = wrong }, false, "fingerprint"},
			{"FingerprintWrongDespiteTrustedCA_Defers", func(sh *config.Smarthost) {
				sh.TLSCAFile = cert.caFile(t)
				sh.TLSFingerprint = wrong
			}, false, "fingerprint"},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				srv := newFaultServer(t, serverConfig{
					STARTTLS:    mode == "starttls",
					ImplicitTLS: mode == "implicit",
					AuthMechs:   []string{"PLAIN"},
					Password:    testPass,
				})
				sh := withAuth(smarthost(srv.Port, mode))
				tc.setup(&sh)
				h := newHarness(t, sh)
				id := h.enqueue(content, rcptA)
				h.run()
				if tc.deliver {
					if env := h.read(id); env != nil {
						t.Fatalf("not delivered: %+v", env.Recipients)
					}
					if l := h.logLines(rcptA); len(l) != 1 || !strings.Contains(l[0], "tls=TLSv1.3") {
						t.Errorf("log %q, want tls=TLSv1.3", l)
					}
					if a := srv.Auths(); len(a) != 1 || a[0].Pass != testPass {
						t.Errorf("server saw AUTH %+v", a)
					}
					if hs := srv.Helos(); len(hs) == 0 || hs[len(hs)-1] != "relay.test" {
						t.Errorf("EHLO names %q, want HeloName inside TLS", hs)
					}
					return
				}
				env := h.mustRead(id)
				wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, tc.reason)
				if len(srv.Auths()) != 0 || len(srv.Mails()) != 0 {
					t.Errorf("server got AUTH %v MAIL %v over an unverified connection", srv.Auths(), srv.Mails())
				}
				if l := h.logLines(rcptA); len(l) != 1 || !strings.Contains(l[0], "stage=tls") {
					t.Errorf("log %q, want stage=tls", l)
				}
			})
		}
	}
}

// --- secrets ---

// writeScript writes an executable shell script for password_command.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasswordCommand_FirstLineReachesServer(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{Password: "cmd-s3cret-9"})
	sh := smarthost(srv.Port, "none")
	sh.Username = testUser
	sh.PasswordCommand = []string{writeScript(t, "echo cmd-s3cret-9\necho second line\n")}
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Error("not delivered")
	}
	if a := srv.Auths(); len(a) != 1 || a[0].Pass != "cmd-s3cret-9" || a[0].User != testUser {
		t.Errorf("server saw %+v", a)
	}
	if strings.Contains(h.log.String(), "cmd-s3cret-9") {
		t.Errorf("log contains the password:\n%s", h.log.String())
	}
}

func TestPasswordCommand_Failing_DefersWithoutLeakingOutput(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{})
	sh := smarthost(srv.Port, "none")
	sh.Username = testUser
	sh.PasswordCommand = []string{writeScript(t, "echo stdout-leak-1\necho stderr-leak-2 >&2\nexit 3\n")}
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	id2 := h.enqueue(content, rcptB)
	st := h.run()
	if st.Deferred != 2 {
		t.Errorf("stats %+v, want both deferred", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "password_command")
	h.mustRead(id2)
	for where, s := range map[string]string{"log": h.log.String(), "reason": rcpt(env, rcptA).Reason(), "last error": env.LastError()} {
		for _, leak := range []string{"stdout-leak-1", "stderr-leak-2"} {
			if strings.Contains(s, leak) {
				t.Errorf("%s contains the command's output %q: %s", where, leak, s)
			}
		}
	}
	if len(srv.Auths()) != 0 || len(srv.Mails()) != 0 {
		t.Errorf("server saw AUTH %v MAIL %v", srv.Auths(), srv.Mails())
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections for 2 messages, want 1", n)
	}
}

// TestPasswordCommand_Hanging_BoundedByTimeout: a password_command that
// does not finish (a script waiting on a child, as `pass` waits on gpg) is
// given up after PasswordCommandTimeout and the mail deferred.
func TestPasswordCommand_Hanging_BoundedByTimeout(t *testing.T) {
	old := relay.PasswordCommandTimeout
	relay.PasswordCommandTimeout = 300 * time.Millisecond
	t.Cleanup(func() { relay.PasswordCommandTimeout = old })
	srv := plainAuthServer(t, serverConfig{})
	sh := smarthost(srv.Port, "none")
	sh.Username = testUser
	// The shell's child keeps the command's stdout open after the shell
	// is killed.
	sh.PasswordCommand = []string{writeScript(t, "sleep 4\necho late-password\n")}
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	start := time.Now()
	h.run()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the pass took %v with PasswordCommandTimeout = %v: the command's child kept it waiting", d, relay.PasswordCommandTimeout)
	}
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "password_command")
	if len(srv.Auths()) != 0 {
		t.Errorf("server saw AUTH %+v", srv.Auths())
	}
}

func TestPasswordFile_FirstLineIsPassword(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{Password: "file-s3cret"})
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("file-s3cret\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sh := smarthost(srv.Port, "none")
	sh.Username = testUser
	sh.PasswordFile = p
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Errorf("not delivered; server saw %+v", srv.Auths())
	}
}

// TestSecrets_PasswordNeverInLogOrErrors runs deliveries that succeed and
// fail at every stage and greps everything relay says for the password.
func TestSecrets_PasswordNeverInLogOrErrors(t *testing.T) {
	cfgs := map[string]serverConfig{
		"ok":       {},
		"auth535":  {AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")},
		"auth454":  {AuthErr: smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Try again")},
		"wrongpw":  {Password: "something-else"},
		"mail553":  {MailErr: map[string]*smtp.SMTPError{"*": smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "not owned by auth user")}},
		"rcpt550":  {RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}},
		"data554":  {DataErr: smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Rejected")},
		"drop":     {DropAtDot: true},
		"loginOdd": {AuthMechs: []string{"LOGIN"}, LoginPrompts: []string{"Passwort:", "Username:"}},
	}
	for name, cfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			srv := plainAuthServer(t, cfg)
			sh := withAuth(smarthost(srv.Port, "none"))
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			outputs := map[string]string{"log": h.log.String()}
			if env := h.read(id); env != nil {
				outputs["last error"] = env.LastError()
				for _, r := range env.Recipients {
					outputs["reason of "+r.Address] = r.Reason()
				}
			}
			c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
			if err != nil {
				outputs["Dial error"] = err.Error()
				outputs["Dial error %#v"] = fmt.Sprintf("%#v", err)
			} else {
				out, err := c.Send(&spool.Envelope{ID: "X", Sender: sender, Recipients: []spool.Recipient{{Address: rcptA, Status: spool.Pending}}}, sender, strings.NewReader(content), int64(len(content)))
				if err != nil {
					outputs["Send error"] = err.Error()
				}
				for _, r := range out.Results {
					if r.Err != nil {
						outputs["Send result"] = r.Err.Error() + " " + r.Err.ReplyLine()
					}
				}
				c.Close()
			}
			for where, s := range outputs {
				if strings.Contains(s, testPass) {
					t.Errorf("%s contains the password: %s", where, s)
				}
			}
		})
	}
}

// --- retries ---

// TestRetry_BackoffDoublesUpToRetryMax: next_attempt is retry_min after
// the first failure, doubling per attempt, at most retry_max; a message is
// not tried before it is due.
func TestRetry_BackoffDoublesUpToRetryMax(t *testing.T) {
	h := newHarness(t, smarthost(closedPort(t), "none"))
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
	srv := plainAuthServer(t, serverConfig{})
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

// --- the log ---

// TestLog_OneLinePerRecipient: status=sent/deferred/bounced with dsn= and
// the reply quoted, inner quotes escaped.
func TestLog_OneLinePerRecipient(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{
		rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, `<b@example.test>: Recipient address rejected: "b" is unknown \ here`),
		rcptC: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy"),
	}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA, rcptB, rcptC)
	h.run()
	relayField := fmt.Sprintf("relay=127.0.0.1[127.0.0.1]:%d", srv.Port)
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{rcptA, []string{"status=sent", "dsn=2.0.0", `reply="250 2.0.0 OK: queued"`}},
		{rcptB, []string{"status=bounced", "dsn=5.1.1", `reply="550 5.1.1 <b@example.test>: Recipient address rejected: \"b\" is unknown \\ here"`}},
		{rcptC, []string{"status=deferred", "dsn=4.2.0", `reply="450 4.2.0 Mailbox busy"`, "stage=rcpt"}},
	} {
		lines := h.logLines(tc.addr)
		if len(lines) != 1 {
			t.Errorf("%s: %d log lines, want 1:\n%s", tc.addr, len(lines), h.log.String())
			continue
		}
		for _, w := range append(tc.want, "id="+id, relayField, "attempt=1") {
			if !strings.Contains(lines[0], w) {
				t.Errorf("%s: log line %q lacks %q", tc.addr, lines[0], w)
			}
		}
	}
	// Every line is key=value pairs, values bare or quoted.
	pair := regexp.MustCompile(`^(\w+=("([^"\\]|\\.)*"|[^ "]*))( \w+=("([^"\\]|\\.)*"|[^ "]*))*$`)
	for _, l := range strings.Split(strings.TrimSpace(h.log.String()), "\n") {
		if !pair.MatchString(l) {
			t.Errorf("log line is not key=value pairs: %q", l)
		}
	}
}

// TestLog_DeferredFiveHundred_LogsSoftDSN: a 5xx that only defers (before
// RCPT) is logged as status=deferred with a 4.x.x dsn, the reply intact.
func TestLog_DeferredFiveHundred_LogsSoftDSN(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  serverConfig
		want []string
	}{
		{"Mail553", serverConfig{MailErr: map[string]*smtp.SMTPError{"*": smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by auth user")}},
			[]string{"status=deferred", "dsn=4.7.1", `reply="553 5.7.1 Sender address rejected: not owned by auth user"`, "stage=mail"}},
		{"Auth535", serverConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")},
			[]string{"status=deferred", "dsn=4.7.8", `reply="535 5.7.8 Authentication credentials invalid"`, "stage=auth"}},
		{"Rcpt552", serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full")}},
			[]string{"status=deferred", "dsn=4.2.2", `reply="552 5.2.2 Mailbox full"`, "stage=rcpt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, tc.cfg)
			h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
			h.enqueue(content, rcptA)
			h.run()
			lines := h.logLines(rcptA)
			if len(lines) != 1 {
				t.Fatalf("log:\n%s", h.log.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("log line %q lacks %q", lines[0], w)
				}
			}
		})
	}
}

// TestLog_MultiLineReplyOnOneLine: a multi-line reply stays on one log
// line.
func TestLog_MultiLineReplyOnOneLine(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{DataErr: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Message rejected\nsee https://example.test/why\nreally")})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA)
	h.run()
	lines := h.logLines(rcptA)
	if len(lines) != 1 || !strings.Contains(lines[0], `reply="554 5.7.1 Message rejected; see https://example.test/why; really"`) {
		t.Errorf("log:\n%s", h.log.String())
	}
	if h.read(id) != nil {
		t.Error("message still queued with its only recipient failed and reported")
	}
	// The reason went into the bounce joined on one line.
	wantBounce(t, h, testUser, map[string]string{rcptA: "554 5.7.1 Message rejected; see https://example.test/why; really"})
}

// --- Dial and Send directly ---

// TestDial_FailuresAreNeverPermanent: every failure of Dial is a
// *relay.Failure of relay's own side that never fails a recipient.
func TestDial_FailuresAreNeverPermanent(t *testing.T) {
	shortTimeouts(t, 2*time.Second, 2*time.Second, 2*time.Second, 2*time.Second)
	failingCmd := writeScript(t, "exit 1\n")
	for _, tc := range []struct {
		name  string
		sh    func(t *testing.T) config.Smarthost
		stage relay.Stage
		code  int
	}{
		{"ConnectRefused", func(t *testing.T) config.Smarthost { return withAuth(smarthost(closedPort(t), "none")) }, relay.StageConnect, 0},
		{"EHLO554", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(plainAuthServer(t, serverConfig{EHLO: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "no")}).Port, "none"))
		}, relay.StageEHLO, 554},
		{"NoStartTLS", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(plainAuthServer(t, serverConfig{}).Port, "starttls"))
		}, relay.StageTLS, 0},
		{"ImplicitTLSToPlainServer", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(plainAuthServer(t, serverConfig{}).Port, "implicit"))
		}, relay.StageTLS, 0},
		{"Auth535", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(plainAuthServer(t, serverConfig{Password: "other"}).Port, "none"))
		}, relay.StageAuth, 535},
		{"PasswordCommandFails", func(t *testing.T) config.Smarthost {
			sh := smarthost(plainAuthServer(t, serverConfig{}).Port, "none")
			sh.Username = testUser
			sh.PasswordCommand = []string{failingCmd}
			return sh
		}, relay.StageLocal, 0},
		{"BadCAFile", func(t *testing.T) config.Smarthost {
			sh := withAuth(smarthost(closedPort(t), "starttls"))
			sh.TLSCAFile = filepath.Join(t.TempDir(), "missing.pem")
			return sh
		}, relay.StageLocal, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := tc.sh(t)
			c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			var f *relay.Failure
			if !errors.As(err, &f) {
				t.Fatalf("error %T %v is not a *relay.Failure", err, err)
			}
			if f.Stage != tc.stage || f.Code != tc.code {
				t.Errorf("failure stage %q code %d, want %q %d (%v)", f.Stage, f.Code, tc.stage, tc.code, err)
			}
			if f.Permanent() || !f.OwnSide() {
				t.Errorf("Permanent() = %v, OwnSide() = %v for %v", f.Permanent(), f.OwnSide(), err)
			}
		})
	}
}

// TestDial_ReportsTLSVersionAndSaysQUIT: an open connection knows its TLS
// version, and Close ends the session with QUIT.
func TestDial_ReportsTLSVersionAndSaysQUIT(t *testing.T) {
	srv := newFaultServer(t, serverConfig{STARTTLS: true, AuthMechs: []string{"PLAIN"}, Password: testPass})
	sh := withAuth(smarthost(srv.Port, "starttls"))
	sh.TLSCAFile = srv.Cert.caFile(t)
	var debug bytes.Buffer
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test", Debug: &debug})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS != "TLSv1.3" || !c.Usable() {
		t.Errorf("TLS %q usable %v", c.TLS, c.Usable())
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !strings.Contains(debug.String(), "QUIT") {
		t.Errorf("no QUIT in the dialogue:\n%s", debug.String())
	}
	if !strings.Contains(debug.String(), "EHLO relay.test") {
		t.Errorf("EHLO does not use HeloName:\n%s", debug.String())
	}
}

func sendEnv(rcpts ...string) *spool.Envelope {
	env := &spool.Envelope{ID: "0000000000ABCDE", Sender: sender}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Address: r, Status: spool.Pending})
	}
	return env
}

// TestSend_ResultPerRecipient: Send reports each recipient's outcome with
// its stage and reply, and the server's answer to the message.
func TestSend_ResultPerRecipient(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{
		rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user"),
		rcptC: smtpErr(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full"),
	}})
	sh := withAuth(smarthost(srv.Port, "none"))
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := sendEnv(rcptA, rcptB, rcptC)
	env.Recipients = append(env.Recipients, spool.Recipient{Address: "done@example.test", Status: spool.Delivered})
	out, err := c.Send(env, env.Sender, strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	if out.Reply != "250 2.0.0 OK: queued" {
		t.Errorf("reply %q", out.Reply)
	}
	got := map[string]*relay.Failure{}
	for _, r := range out.Results {
		got[r.Rcpt.Address] = r.Err
	}
	if len(out.Results) != 3 {
		t.Errorf("%d results, want one per pending recipient (3)", len(out.Results))
	}
	if got[rcptA] != nil {
		t.Errorf("a: %v, want delivered", got[rcptA])
	}
	if f := got[rcptB]; f == nil || f.Stage != relay.StageRcpt || f.Code != 550 || f.Enhanced != "5.1.1" || !f.Permanent() || f.OwnSide() || f.DSN() != "5.1.1" {
		t.Errorf("b: %#v, want a permanent RCPT failure 550 5.1.1", f)
	}
	if f := got[rcptC]; f == nil || f.Code != 552 || f.Permanent() {
		t.Errorf("c: %#v, want a temporary 552", f)
	}
	if !c.Usable() {
		t.Error("connection unusable after an ordinary transaction")
	}
	if srv.DeliveredTo("done@example.test") != 0 {
		t.Error("a delivered recipient was sent again")
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestSend_SpoolReadError_NeverEndsData: when the queued message cannot be
// read to its end, the final dot is never sent (the server must not get
// half a message) and the recipients are deferred with a local failure.
func TestSend_SpoolReadError_NeverEndsData(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{})
	sh := withAuth(smarthost(srv.Port, "none"))
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &failingReader{data: "Subject: half\r\n\r\nfirst half\r\n", err: errors.New("disk read error")}
	out, err := c.Send(sendEnv(rcptA, rcptB), sender, r, 1000)
	if err == nil || c.Usable() {
		t.Errorf("Send error %v, usable %v: the connection must be dropped", err, c.Usable())
	}
	for _, res := range out.Results {
		if res.Err == nil || res.Err.Permanent() || res.Err.Stage != relay.StageLocal {
			t.Errorf("%s: %v, want deferred at stage local", res.Rcpt.Address, res.Err)
		}
	}
	c.Close()
	time.Sleep(50 * time.Millisecond) // let the server see the end
	if m := srv.Messages(); len(m) != 0 {
		t.Errorf("the server accepted half a message: %q", m[0].Body)
	}
}

// TestSend_ResultsInEnvelopeOrder: Outcome.Results is documented to be in
// envelope order.
func TestSend_ResultsInEnvelopeOrder(t *testing.T) {
	srv := plainAuthServer(t, serverConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
	sh := withAuth(smarthost(srv.Port, "none"))
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Send(sendEnv(rcptA, rcptB, rcptC), sender, strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range out.Results {
		order = append(order, r.Rcpt.Address)
	}
	if !slices.Equal(order, []string{rcptA, rcptB, rcptC}) {
		t.Errorf("results in order %q, want envelope order", order)
	}
}

// TestSend_ConnectionLostAtRcpt_KeepsEarlierRefusal: a recipient refused
// with 550 stays failed when the connection is lost at a later RCPT; the
// others are deferred.
func TestSend_ConnectionLostAtRcpt_KeepsEarlierRefusal(t *testing.T) {
	srv := newRawServer(t, smtpReplies(nil, map[string]func(string) string{
		"RCPT": func(l string) string {
			switch {
			case strings.Contains(l, rcptA):
				return "550 5.1.1 No such user"
			case strings.Contains(l, rcptB):
				return "250 2.1.5 Ok"
			}
			return rawClose
		},
	}))
	sh := smarthost(srv.Port, "none")
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Send(sendEnv(rcptA, rcptB, rcptC), sender, strings.NewReader(content), int64(len(content)))
	if err == nil {
		t.Error("Send returned no error for a lost connection")
	}
	if c.Usable() {
		t.Error("connection still usable after it was lost")
	}
	got := map[string]*relay.Failure{}
	for _, r := range out.Results {
		got[r.Rcpt.Address] = r.Err
	}
	if f := got[rcptA]; f == nil || f.Code != 550 || !f.Permanent() {
		t.Errorf("a (refused with 550 before the loss): %v, want failed with the 550", f)
	}
	for _, a := range []string{rcptB, rcptC} {
		if f := got[a]; f == nil || f.Permanent() {
			t.Errorf("%s: %v, want deferred", a, f)
		}
	}
}

// TestRun_Cancel_CutsDataAndKeepsMessageAsItWas: cancelling a pass (the
// daemon's SIGTERM) in the middle of a DATA that the server stopped
// reading closes the connection at once, without the final dot, and
// leaves the message queued exactly as it was: no attempt counted, still
// due, the host not marked down.
func TestRun_Cancel_CutsDataAndKeepsMessageAsItWas(t *testing.T) {
	const long = 20 * time.Second
	shortTimeouts(t, long, long, long, long)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 998)+"\r\n", 16<<10) // 16 MB
	dataSeen := make(chan struct{})
	var once sync.Once
	srv := newRawServer(t, smtpReplies(nil, map[string]func(string) string{
		"DATA": func(string) string {
			once.Do(func() { close(dataSeen) })
			return rawStall + "354 go ahead"
		},
	}))
	h := newHarness(t, smarthost(srv.Port, "none"))
	id := h.enqueue(big, rcptA)
	before := h.mustRead(id)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan relay.Stats)
	go func() {
		st, err := h.runner.Run(ctx)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- st
	}()
	select {
	case <-dataSeen:
	case <-time.After(long):
		t.Fatal("the server never saw DATA")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(long):
		t.Fatal("the cancelled pass did not return: the DATA was not cut")
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "")
	if env.Attempts != before.Attempts || !env.NextAttempt.Equal(before.NextAttempt) {
		t.Errorf("attempts %d next %v, want %d %v: a stop is no attempt", env.Attempts, env.NextAttempt, before.Attempts, before.NextAttempt)
	}
	if n := len(srv.Bodies()); n != 0 {
		t.Errorf("%d bodies ended at the server", n)
	}
	if hs := h.sp.Host(h.cfg.Smarthosts[0].Name); !hs.DownUntil.IsZero() {
		t.Errorf("host remembered as down until %v after a stop", hs.DownUntil)
	}
	if l := h.logLines(rcptA); len(l) != 1 || !strings.Contains(l[0], "relay is stopping") {
		t.Errorf("log %q, want one deferred line saying relay is stopping", l)
	}
}
