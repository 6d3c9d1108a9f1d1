package relay_test

// Several smarthosts and parallel connections (SPEC §5), through
// relay.Runner over a real spool: failover on connection-level failures,
// routing by senders, connections reused and at most max_connections of
// them at once per smarthost.

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// countingProxy forwards TCP connections to a server on 127.0.0.1 and
// counts how many are open at once. Once the first connection has carried
// its first kilobyte of replies (greeting, EHLO, AUTH and a transaction or
// so), it holds that connection's replies back until a second connection
// arrives (at most testsmtp.HangMax), so that a client able to open parallel
// connections does so whatever the scheduler does.
type countingProxy struct {
	Port int

	mu       sync.Mutex
	open     int
	maxOpen  int
	total    int
	second   chan struct{}
	closeOne sync.Once
}

func newCountingProxy(t *testing.T, target int) *countingProxy {
	t.Helper()
	p := &countingProxy{second: make(chan struct{})}
	p.Port = testsmtp.ServeLoopback(t, func(c net.Conn) {
		p.mu.Lock()
		p.open++
		p.total++
		p.maxOpen = max(p.maxOpen, p.open)
		if p.total == 2 {
			close(p.second)
		}
		first := p.total == 1
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.open--
			p.mu.Unlock()
		}()
		defer c.Close()
		s, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", target))
		if err != nil {
			return
		}
		defer s.Close()
		done := make(chan struct{}, 2)
		go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
		go func() {
			var w io.Writer = c
			if first {
				w = &holdAfter{w: c, n: 1024, until: p.second}
			}
			io.Copy(w, s)
			c.(*net.TCPConn).CloseWrite()
			done <- struct{}{}
		}()
		<-done
		<-done
	})
	return p
}

// holdAfter passes n bytes on, then waits for until (at most testsmtp.HangMax)
// before it passes on the rest.
type holdAfter struct {
	w     io.Writer
	n     int
	until chan struct{}
	held  bool
}

func (h *holdAfter) Write(b []byte) (int, error) {
	if !h.held && h.n <= 0 {
		h.held = true
		select {
		case <-h.until:
		case <-time.After(testsmtp.HangMax):
		}
	}
	h.n -= len(b)
	return h.w.Write(b)
}

func (p *countingProxy) counts() (maxOpen, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxOpen, p.total
}

// TestPool_ParallelConnections_AtMostMaxConnections: 60 messages go over
// more than one connection at once but never more than max_connections,
// each message exactly once, one log line per recipient.
func TestPool_ParallelConnections_AtMostMaxConnections(t *testing.T) {
	const n, maxConn = 60, 3
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	proxy := newCountingProxy(t, srv.Port)
	h := newHarness(t, withAuth(smarthost(proxy.Port, "none")))
	h.runner.Debug = nil // the dialogue would limit the pass to one connection
	h.cfg.Queue.MaxConnections = maxConn
	var ids []string
	for i := range n {
		ids = append(ids, h.enqueue(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i), fmt.Sprintf("r%d@example.test", i), rcptA))
	}
	st := h.run()
	if st != (relay.Stats{Messages: n, Delivered: 2 * n}) {
		t.Errorf("stats %+v, want %d messages, %d recipients delivered", st, n, 2*n)
	}
	maxOpen, total := proxy.counts()
	if maxOpen < 2 || maxOpen > maxConn {
		t.Errorf("%d connections open at once, want 2 to %d", maxOpen, maxConn)
	}
	if total > maxConn {
		t.Errorf("%d connections for %d messages, want at most %d (reused)", total, n, maxConn)
	}
	if a := srv.Auths(); len(a) != total {
		t.Errorf("%d AUTH for %d connections", len(a), total)
	}
	for i, id := range ids {
		if h.read(id) != nil {
			t.Errorf("delivered message %s still queued", id)
		}
		if c := srv.DeliveredTo(fmt.Sprintf("r%d@example.test", i)); c != 1 {
			t.Errorf("message %d arrived %d times", i, c)
		}
	}
	if c := strings.Count(h.log.String(), "status=sent"); c != 2*n {
		t.Errorf("%d status=sent lines, want one per recipient (%d)", c, 2*n)
	}
	if c := len(h.logLines(rcptA)); c != n {
		t.Errorf("%d lines for %s, want %d", c, rcptA, n)
	}
}

// TestPool_OneConnection_KeepsArrivalOrder: with max_connections = 1 a
// pass is sequential over one connection, in arrival order.
func TestPool_OneConnection_KeepsArrivalOrder(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	h.cfg.Queue.MaxConnections = 1
	for i := range 10 {
		h.enqueue(fmt.Sprintf("Subject: %d\r\n\r\n", i), rcptA)
	}
	h.run()
	if c := srv.Conns(); c != 1 {
		t.Errorf("%d connections, want 1", c)
	}
	for i, m := range srv.Messages() {
		if want := fmt.Sprintf("Subject: %d\r\n\r\n", i); string(m.Body) != want {
			t.Errorf("message %d at the server is %q, want %q", i, m.Body, want)
		}
	}
}

// twoSmarthosts is a harness whose configuration lists a and b.
func twoSmarthosts(t *testing.T, a, b config.Smarthost) *harness {
	h := newHarness(t, a)
	h.cfg.Smarthosts = append(h.cfg.Smarthosts, b)
	return h
}

func named(sh config.Smarthost, name string) config.Smarthost {
	sh.Name = name
	return sh
}

// TestFailover_FirstRefusesConnections_SecondDelivers: connect refused,
// a 421 greeting, AUTH refused: every message goes through the second
// smarthost in the same pass; the first is remembered as down, and the
// next pass goes straight to the second.
func TestFailover_FirstRefusesConnections_SecondDelivers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  func(t *testing.T) (config.Smarthost, func() int)
		reason string
	}{
		{"ConnectRefused", func(t *testing.T) (config.Smarthost, func() int) {
			return smarthost(testsmtp.ClosedPort(t), "none"), nil
		}, "connection refused"},
		{"Greeting421", func(t *testing.T) (config.Smarthost, func() int) {
			s := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, map[string]func(string) string{
				"GREETING": func(string) string { return "421 4.3.2 Service not available" },
			}))
			return smarthost(s.Port, "none"), s.Conns
		}, "421"},
		{"AuthRefused", func(t *testing.T) (config.Smarthost, func() int) {
			s := plainAuthServer(t, testsmtp.ServerConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")})
			return withAuth(smarthost(s.Port, "none")), s.Conns
		}, "535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, conns := tc.first(t)
			srv := plainAuthServer(t, testsmtp.ServerConfig{})
			h := twoSmarthosts(t, named(first, "primary"), named(withAuth(smarthost(srv.Port, "none")), "backup"))
			var ids []string
			for range 5 {
				ids = append(ids, h.enqueue(content, rcptA))
			}
			if st := h.run(); st != (relay.Stats{Messages: 5, Delivered: 5}) {
				t.Errorf("pass 1: stats %+v, want all 5 delivered", st)
			}
			if c := srv.DeliveredTo(rcptA); c != 5 {
				t.Errorf("the second smarthost received %d messages, want 5", c)
			}
			for _, id := range ids {
				if h.read(id) != nil {
					t.Errorf("%s still queued", id)
				}
			}
			if conns != nil && conns() != 1 {
				t.Errorf("%d connections to the first smarthost, want 1", conns())
			}
			hs := h.sp.Host("primary")
			if hs.Failures != 1 || !strings.Contains(hs.Failure.ReplyLine(), tc.reason) {
				t.Errorf("first smarthost state %+v, want down with %q", hs, tc.reason)
			}
			if !strings.Contains(h.log.String(), "status=failover") || !strings.Contains(h.log.String(), "next=backup") {
				t.Errorf("no failover line in the log:\n%s", h.log.String())
			}

			// Pass 2, while the first is remembered down: no attempt on it.
			h.enqueue(content, rcptB)
			if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
				t.Errorf("pass 2: stats %+v", st)
			}
			if conns != nil && conns() != 1 {
				t.Errorf("pass 2 tried the smarthost remembered as down (%d connections)", conns())
			}
			if srv.DeliveredTo(rcptB) != 1 {
				t.Error("pass 2: the message did not go through the second smarthost")
			}
		})
	}
}

// TestFailover_AllDown_DefersUntilTheFirstComesBack: when every candidate
// fails, the message is deferred (own side, never bounced) until the
// earliest of them is up again.
func TestFailover_AllDown_DefersUntilTheFirstComesBack(t *testing.T) {
	h := twoSmarthosts(t, named(smarthost(testsmtp.ClosedPort(t), "none"), "one"), named(smarthost(testsmtp.ClosedPort(t), "none"), "two"))
	id := h.enqueue(content, rcptA)
	if st := h.run(); st != (relay.Stats{Messages: 1, Deferred: 1}) {
		t.Errorf("stats %+v", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "connection refused")
	if !env.OwnSide() || env.Attempts != 1 {
		t.Errorf("own side %v, attempts %d; want an own-side failure, one attempt", env.OwnSide(), env.Attempts)
	}
	one, two := h.sp.Host("one"), h.sp.Host("two")
	if one.Failures != 1 || two.Failures != 1 {
		t.Errorf("host states %+v %+v, want both down", one, two)
	}
	if want := one.DownUntil; !env.NextAttempt.Equal(want) {
		t.Errorf("next attempt %v, want %v (when the first is up again)", env.NextAttempt, want)
	}
}

// TestRouting_TwoSendersTwoSmarthosts: each sender's mail goes through
// the smarthost whose senders name it, with that smarthost's envelope_from;
// a sender no smarthost serves waits with a clear reason.
func TestRouting_TwoSendersTwoSmarthosts(t *testing.T) {
	srvA := plainAuthServer(t, testsmtp.ServerConfig{})
	srvB := plainAuthServer(t, testsmtp.ServerConfig{})
	a := named(withAuth(smarthost(srvA.Port, "none")), "a")
	a.Senders = []string{"*@a.example"}
	b := named(withAuth(smarthost(srvB.Port, "none")), "b")
	b.Senders = []string{"@b.example", "carol@c.example"}
	b.EnvelopeFrom = "robot@b.example"
	h := twoSmarthosts(t, a, b)
	from := func(s string) func(*spool.Envelope) { return func(e *spool.Envelope) { e.Sender = s } }
	h.enqueueWith(content, from("alice@a.example"), rcptA)
	h.enqueueWith(content, from("bob@b.example"), rcptB)
	h.enqueueWith(content, from("carol@c.example"), rcptC)
	stray := h.enqueueWith(content, from("dave@d.example"), rcptA)

	if st := h.run(); st != (relay.Stats{Messages: 4, Delivered: 3, Deferred: 1}) {
		t.Errorf("stats %+v", st)
	}
	if ms := srvA.Messages(); len(ms) != 1 || ms[0].From != "alice@a.example" || ms[0].To[0] != rcptA {
		t.Errorf("smarthost a received %+v, want alice's message only", ms)
	}
	ms := srvB.Messages()
	if len(ms) != 2 {
		t.Fatalf("smarthost b received %d messages, want bob's and carol's", len(ms))
	}
	for _, m := range ms {
		if m.From != "robot@b.example" {
			t.Errorf("b: MAIL FROM %q, want envelope_from robot@b.example", m.From)
		}
	}
	env := h.mustRead(stray)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "no smarthost serves the sender <dave@d.example>")
	if !env.OwnSide() {
		t.Error("an unrouted sender is not marked as relay's own side")
	}
	// alice's message goes to rcptA too, logged by a worker at the same
	// time: look at the unrouted message's own line.
	var strayLines []string
	for _, l := range h.logLines(rcptA) {
		if strings.Contains(l, "id="+stray+" ") {
			strayLines = append(strayLines, l)
		}
	}
	if len(strayLines) != 1 || !strings.Contains(strayLines[0], "relay=none") {
		t.Errorf("log %q, want one line with relay=none for the unrouted message", strayLines)
	}
	var out strings.Builder
	if err := mailq.List(&out, io.Discard, h.sp); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no smarthost serves the sender") {
		t.Errorf("mailq does not say why:\n%s", out.String())
	}
}

// senderMap is a Rewriter with a fixed sender map.
type senderMap map[string]string

func (m senderMap) Sender(env *spool.Envelope) string {
	if s, ok := m[env.Sender]; ok {
		return s
	}
	return env.Sender
}

func (m senderMap) Content(_ *spool.Envelope, _ *config.Smarthost, _ string, r io.Reader) io.Reader {
	return r
}

// TestRouting_OnTheRewrittenSender: the sender map applies first, routing
// looks at its result (SPEC §5's order), the preset's rule last.
func TestRouting_OnTheRewrittenSender(t *testing.T) {
	srvA := plainAuthServer(t, testsmtp.ServerConfig{})
	srvB := plainAuthServer(t, testsmtp.ServerConfig{})
	a := named(withAuth(smarthost(srvA.Port, "none")), "a")
	b := named(withAuth(smarthost(srvB.Port, "none")), "b")
	b.Senders = []string{"*@example.org"}
	b.Preset = "yandex"
	b.Username = "robot@yandex.test"
	h := twoSmarthosts(t, a, b)
	h.runner.Rewrite = senderMap{"root@host.local": "ops@example.org"}
	h.enqueueWith(content, func(e *spool.Envelope) { e.Sender = "root@host.local" }, rcptA)
	h.run()
	if len(srvA.Messages()) != 0 {
		t.Error("routed on the sender before the sender map")
	}
	if ms := srvB.Messages(); len(ms) != 1 || ms[0].From != "robot@yandex.test" {
		t.Errorf("b received %+v, want one message from the login (preset rule)", ms)
	}
}

// TestPool_KeepConnections_NextPassReusesTheConnection: with
// KeepConnections, pass after pass under one context goes over one
// connection; Close closes it (the server's leak check sees it closed).
// Without it, each pass has its own.
func TestPool_KeepConnections_NextPassReusesTheConnection(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	h.runner.KeepConnections = time.Minute
	for i := range 3 {
		h.enqueue(content, rcptA)
		if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
			t.Errorf("pass %d: %+v", i+1, st)
		}
	}
	if c := srv.Conns(); c != 1 {
		t.Errorf("%d connections for 3 passes, want 1", c)
	}
	h.runner.Close()
	h.runner.KeepConnections = 0
	h.enqueue(content, rcptA)
	h.run()
	h.enqueue(content, rcptA)
	h.run()
	if c := srv.Conns(); c != 3 {
		t.Errorf("%d connections, want 2 more without KeepConnections", c)
	}
}

// TestPool_SmarthostDown_OneConnectionAttempt: with max_connections = 4
// a smarthost that is down costs the pass one connection, not four: more
// connections open only once one has worked.
func TestPool_SmarthostDown_OneConnectionAttempt(t *testing.T) {
	port, conns := closingServer(t)
	h := newHarness(t, smarthost(port, "none"))
	h.runner.Debug = nil
	h.cfg.Queue.MaxConnections = 4
	for range 20 {
		h.enqueue(content, rcptA)
	}
	if st := h.run(); st != (relay.Stats{Messages: 20, Deferred: 20}) {
		t.Errorf("stats %+v", st)
	}
	if c := conns(); c != 1 {
		t.Errorf("%d connections to a smarthost that is down, want 1", c)
	}
}

// TestPool_KeptConnectionDroppedByServer: a kept connection that the
// server closed while it was idle is found out by a NOOP before the next
// message, which then goes over a new connection instead of being
// deferred with "connection lost".
func TestPool_KeptConnectionDroppedByServer(t *testing.T) {
	defer relay.SetFreshFor(0)()
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	h.runner.KeepConnections = time.Minute
	defer h.runner.Close()
	h.enqueue(content, rcptA)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
		t.Fatalf("first pass: %+v", st)
	}
	srv.DropAll()
	id := h.enqueue(content, rcptB)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1}) {
		t.Errorf("after the server dropped the idle session: %+v, want delivered over a new connection (log:\n%s)", st, h.log.String())
	}
	if h.read(id) != nil {
		t.Error("the message is still queued")
	}
	if c := srv.Conns(); c != 2 {
		t.Errorf("%d connections, want 2", c)
	}
	if d := h.debug.String(); !strings.Contains(d, "NOOP") {
		t.Error("no NOOP probe before reusing the idle connection")
	}
}
