package relay_test

// Black-box tests of a delivery: relay.Dial + (*Conn).Send, and
// relay.Runner.Run over a real spool, against the fault-injecting servers of
// internal/testsmtp. The rules under test are those of the package
// comment (doc.go): a failure before RCPT defers the whole message and
// never fails a recipient; a 5xx at RCPT (but 552) fails that recipient
// only; a 5xx at or after DATA fails the accepted recipients; everything
// else defers.
//
// This file holds what those tests share: the smarthost settings and the
// harness, a runner over a spool of its own.

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
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
func plainAuthServer(t *testing.T, cfg testsmtp.ServerConfig) *testsmtp.FaultServer {
	t.Helper()
	if cfg.AuthMechs == nil {
		cfg.AuthMechs = []string{"PLAIN", "LOGIN"}
	}
	cfg.AllowInsecureAuth = true
	if cfg.Password == "" {
		cfg.Password = testPass
	}
	return testsmtp.NewFaultServer(t, cfg)
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
