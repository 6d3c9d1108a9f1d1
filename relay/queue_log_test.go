package relay_test

// The mail log of the queue: the fields of sent, deferred and bounced
// lines.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
)

// TestLog_Fields_SentDeferredBounced checks the delivery log lines field
// by field and in order: id, to, relay=host[ip]:port, tls, delay, attempt,
// status, dsn, reply (then hint when the failure is explained, and stage
// for a deferral); then the line of the bounce queued and of its delivery.
func TestLog_Fields_SentDeferredBounced(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{
		STARTTLS: true, AuthMechs: []string{"PLAIN"}, Password: testPass,
		RcptErr: map[string]*smtp.SMTPError{
			rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, `<b@example.test>: Recipient address rejected: "b" unknown`),
			rcptC: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy"),
		},
	})
	sh := withAuth(smarthost(srv.Port, "starttls"))
	sh.TLSCAFile = srv.Cert.CAFile(t)
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
	srv.SetConfig(func(c *testsmtp.ServerConfig) { c.RcptErr = nil })
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
