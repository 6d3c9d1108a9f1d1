package relay_test

// The connection: a failure to connect, several messages over one
// connection, a connection cut or a server gone silent mid-session.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

func TestDelivery_ConnectionFailure_DefersPassWithOneConnection(t *testing.T) {
	const n = 4
	untrusted := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true, AuthMechs: []string{"PLAIN"}})
	for _, tc := range []struct {
		name   string
		port   func(t *testing.T) (port int, conns func() int)
		tls    string
		reason string
		stage  string
	}{
		{"ConnectRefused", func(t *testing.T) (int, func() int) { return testsmtp.ClosedPort(t), nil }, "none", "connection refused", "connect"},
		{"Greeting421", func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, testsmtp.ServerConfig{Greeting: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Busy")})
			return s.Port, s.Conns
		}, "none", "421", ""},
		{"Auth535", func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, testsmtp.ServerConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")})
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
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
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
	srv := plainAuthServer(t, testsmtp.ServerConfig{
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
		cfg  testsmtp.ServerConfig
		body string
	}{
		{"WhileWriting", testsmtp.ServerConfig{DropMidData: true}, big},
		{"AtFinalDot", testsmtp.ServerConfig{DropAtDot: true}, content},
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
			s := plainAuthServer(t, testsmtp.ServerConfig{Hang: testsmtp.HangGreeting})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "", "greeting"},
		// The TLS handshake of port 465 is bounded as well.
		{"ImplicitTLSNoHandshake", short, long, long, func(t *testing.T) (int, func() int) {
			s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{ImplicitTLS: true, Hang: testsmtp.HangGreeting})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "implicit", "tls"},
		{"AfterGreeting", short, long, long, func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, testsmtp.ServerConfig{Hang: testsmtp.HangEHLO})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "", "greeting|ehlo"},
		{"AfterRcpt", short, long, long, func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, testsmtp.ServerConfig{Hang: testsmtp.HangRcpt})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "", "rcpt"},
		// DataTimeout, not CommandTimeout, bounds the wait for the reply
		// to the final dot.
		{"AfterFinalDot", long, short, long, func(t *testing.T) (int, func() int) {
			s := plainAuthServer(t, testsmtp.ServerConfig{Hang: testsmtp.HangDot})
			return s.Port, func() int { return len(s.Messages()) }
		}, content, "", "data"},
		// A server that stops reading the message: WriteIdleTimeout.
		{"StopsReadingMessage", long, long, short, func(t *testing.T) (int, func() int) {
			s := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, map[string]func(string) string{
				"DATA": func(string) string { return testsmtp.RawStall + "354 go ahead" },
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
			// The other timeouts are long: a pass that ends well before
			// them ended by the short one (the reason says so too). Half
			// of long leaves room for a slow machine, where -race and
			// -cover make writing the 16 MB message take seconds.
			if d := time.Since(start); d > long/2 {
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
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
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
