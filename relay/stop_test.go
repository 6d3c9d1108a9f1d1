package relay_test

// A stop (the context of Runner.Run or Probe cancelled: SIGTERM, SIGINT)
// ends every network wait at once, except the wait for the reply to a
// final dot that is out: the server has the message then, and only its
// reply says whether relay may forget it. See DialOptions.Abort.

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// silentServer accepts connections and never says a word (nor reads
// TLS): a server that never greets, or a port-465 server spoken to as
// STARTTLS. It returns the port and the number of connections taken.
func silentServer(t *testing.T) (int, func() int) {
	t.Helper()
	accepted := make(chan struct{}, 100)
	port := testsmtp.ServeLoopback(t, func(c net.Conn) {
		accepted <- struct{}{}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, c) // until relay closes it
		c.Close()
	})
	return port, func() int { return len(accepted) }
}

// runAsync starts a pass under ctx; the channel gets its stats.
func runAsync(h *harness, ctx context.Context) <-chan relay.Stats {
	done := make(chan relay.Stats, 1)
	go func() {
		st, err := h.runner.Run(ctx)
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
		done <- st
	}()
	return done
}

// stopped waits (at most limit) for the pass to end after a stop.
func stopped(t *testing.T, done <-chan relay.Stats, limit time.Duration) relay.Stats {
	t.Helper()
	select {
	case st := <-done:
		return st
	case <-time.After(limit):
		t.Fatalf("the pass still runs %v after the stop", limit)
	}
	return relay.Stats{}
}

// TestStop_DuringReplyToDot_DeliveredOnce: the stop comes while the
// server, which has the whole message, takes its time to answer the dot.
// relay waits for the 250, records the delivery and ends; a next pass
// sends nothing. Plain and over STARTTLS (the reply is read through TLS).
func TestStop_DuringReplyToDot_DeliveredOnce(t *testing.T) {
	for _, mode := range []string{"none", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: mode == "starttls", DotDelay: time.Second})
			sh := smarthost(s.Port, mode)
			sh.TLSCAFile = s.Cert.CAFile(t)
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA, rcptB)
			ctx, stop := context.WithCancel(context.Background())
			done := runAsync(h, ctx)
			if !testsmtp.WaitFor(10*time.Second, func() bool { return len(s.Messages()) == 1 }) {
				t.Fatalf("the server did not get the message:\n%s", h.log.String())
			}
			stop()
			st := stopped(t, done, 10*time.Second)
			if st.Delivered != 2 {
				t.Errorf("stats %+v, want both recipients delivered", st)
			}
			if l := h.log.String(); !strings.Contains(l, "status=stopping") || !strings.Contains(l, "at_most=5m0s") {
				t.Errorf("the log does not say why the stop waits:\n%s", l)
			}
			if h.read(id) != nil {
				t.Fatalf("the message is still queued after its 250:\n%s", h.log.String())
			}
			h.run()
			if n := len(s.Messages()); n != 1 {
				t.Errorf("the server got %d copies, want 1", n)
			}
		})
	}
}

// TestStop_DuringReplyToDot_WaitsACommandTimeoutAtMost: a server that
// never answers the dot keeps a stopping relay no longer than
// CommandTimeout (DataTimeout is far longer here); the message stays
// queued as it was, since nobody knows whether the server took it.
func TestStop_DuringReplyToDot_WaitsACommandTimeoutAtMost(t *testing.T) {
	shortTimeouts(t, 5*time.Second, 500*time.Millisecond, time.Minute, time.Minute)
	s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{Hang: testsmtp.HangDot})
	h := newHarness(t, smarthost(s.Port, "none"))
	id := h.enqueue(content, rcptA)
	ctx, stop := context.WithCancel(context.Background())
	done := runAsync(h, ctx)
	if !testsmtp.WaitFor(10*time.Second, func() bool { return len(s.Rcpts()) == 1 }) {
		t.Fatalf("no transaction:\n%s", h.log.String())
	}
	time.Sleep(200 * time.Millisecond) // the message and its dot are out
	stop()
	stopped(t, done, 3*time.Second)
	env := h.mustRead(id)
	if env.Attempts != 0 || rcpt(env, rcptA).Status != spool.Pending {
		t.Errorf("attempts %d, status %q: want the message untouched", env.Attempts, rcpt(env, rcptA).Status)
	}
}

// TestStop_DuringData_AbandonsWithoutDot: a stop while the message is
// being written (the server reads nothing) ends the pass at once; the
// server never sees a dot, the message stays queued untouched.
func TestStop_DuringData_AbandonsWithoutDot(t *testing.T) {
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, map[string]func(string) string{
		"DATA": func(string) string { return testsmtp.RawStall + "354 go ahead" },
	}))
	h := newHarness(t, smarthost(srv.Port, "none"))
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 998)+"\r\n", 8<<10) // 8 MB
	id := h.enqueue(big, rcptA)
	ctx, stop := context.WithCancel(context.Background())
	done := runAsync(h, ctx)
	if !testsmtp.WaitFor(10*time.Second, func() bool { return len(srv.Commands()) > 0 && srv.Commands()[len(srv.Commands())-1] == "DATA" }) {
		t.Fatalf("no DATA: %q", srv.Lines())
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	stopped(t, done, time.Second)
	if n := len(srv.Bodies()); n != 0 {
		t.Errorf("the server got %d messages up to their dot", n)
	}
	env := h.mustRead(id)
	if env.Attempts != 0 || rcpt(env, rcptA).Status != spool.Pending {
		t.Errorf("attempts %d, status %q: want the message untouched", env.Attempts, rcpt(env, rcptA).Status)
	}
}

// TestStop_ServerNeverGreets: a pass and a probe waiting for a greeting
// that never comes end at once on a stop; without one, CommandTimeout
// bounds the wait. tls = "starttls" against a server that waits for a
// TLS handshake (port 465) is the same wait.
func TestStop_ServerNeverGreets(t *testing.T) {
	for _, mode := range []string{"none", "starttls", "implicit"} {
		t.Run("Run_"+mode, func(t *testing.T) {
			port, conns := silentServer(t)
			h := newHarness(t, smarthost(port, mode))
			id := h.enqueue(content, rcptA)
			ctx, stop := context.WithCancel(context.Background())
			done := runAsync(h, ctx)
			if !testsmtp.WaitFor(10*time.Second, func() bool { return conns() == 1 }) {
				t.Fatal("no connection")
			}
			time.Sleep(100 * time.Millisecond)
			stop()
			stopped(t, done, time.Second)
			if env := h.mustRead(id); env.Attempts != 0 {
				t.Errorf("a stop counted as an attempt: %d", env.Attempts)
			}
		})
		t.Run("Probe_"+mode, func(t *testing.T) {
			port, conns := silentServer(t)
			sh := smarthost(port, mode)
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan *relay.ProbeResult, 1)
			go func() { done <- relay.Probe(ctx, &sh, relay.ProbeOptions{HeloName: "client.example.test"}) }()
			if !testsmtp.WaitFor(10*time.Second, func() bool { return conns() == 1 }) {
				t.Fatal("no connection")
			}
			time.Sleep(100 * time.Millisecond)
			stop()
			select {
			case r := <-done:
				if r.OK() || !strings.Contains(r.Failure.ReplyLine(), "told to stop") {
					t.Errorf("probe result %+v, want a failure that says it was stopped", r.Failure)
				}
			case <-time.After(time.Second):
				t.Fatal("relay probe still waits for the greeting 1s after the stop")
			}
		})
		t.Run("ProbeBounded_"+mode, func(t *testing.T) {
			shortTimeouts(t, time.Second, 300*time.Millisecond, time.Minute, time.Minute)
			port, _ := silentServer(t)
			sh := smarthost(port, mode)
			start := time.Now()
			r := relay.Probe(context.Background(), &sh, relay.ProbeOptions{HeloName: "client.example.test"})
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the probe took %v with a CommandTimeout of 300ms", d)
			}
			if r.OK() {
				t.Error("probe of a silent server succeeded")
			}
		})
	}
}
