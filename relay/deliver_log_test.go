package relay_test

// The mail log of a delivery: one line per recipient, its status and dsn=.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/internal/testsmtp"
)

// TestLog_OneLinePerRecipient: status=sent/deferred/bounced with dsn= and
// the reply quoted, inner quotes escaped.
func TestLog_OneLinePerRecipient(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{
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
		cfg  testsmtp.ServerConfig
		want []string
	}{
		{"Mail553", testsmtp.ServerConfig{MailErr: map[string]*smtp.SMTPError{"*": smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by auth user")}},
			[]string{"status=deferred", "dsn=4.7.1", `reply="553 5.7.1 Sender address rejected: not owned by auth user"`, "stage=mail"}},
		{"Auth535", testsmtp.ServerConfig{AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")},
			[]string{"status=deferred", "dsn=4.7.8", `reply="535 5.7.8 Authentication credentials invalid"`, "stage=auth"}},
		{"Rcpt552", testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full")}},
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
	srv := plainAuthServer(t, testsmtp.ServerConfig{DataErr: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Message rejected\nsee https://example.test/why\nreally")})
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
