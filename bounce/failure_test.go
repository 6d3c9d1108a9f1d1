package bounce_test

import (
	"strings"
	"testing"

	"github.com/relaymail/relay/bounce"
	"github.com/relaymail/relay/failure"
)

// TestRecipientOf: a report's recipient is described from its stored
// failure: the server's reply as the diagnostic, its status code, and what
// it means, or that relay gave up after the lifetime.
func TestRecipientOf(t *testing.T) {
	unknown := &failure.Failure{Stage: failure.StageRcpt, Code: 550, Enhanced: "5.1.1", Text: "<b@example.net>: User unknown"}
	gaveUp := &failure.Failure{Stage: failure.StageRcpt, Code: 452, Enhanced: "4.2.2", Text: "Mailbox full", GaveUpAfter: "5d"}
	for _, tc := range []struct {
		name        string
		kind        bounce.Kind
		f           *failure.Failure
		status      string
		diagnostic  string
		explanation string // a phrase
	}{
		{"refused", bounce.Failure, unknown, "5.1.1", "550 5.1.1 <b@example.net>: User unknown", "does not exist at its domain"},
		{"gave up", bounce.Failure, gaveUp, "5.4.7", "452 4.2.2 Mailbox full", "relay gave up after 5d (lifetime)"},
		{"delayed", bounce.Delay, &failure.Failure{Stage: failure.StageRcpt, Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"}, "4.4.7", "452 4.2.2 Mailbox full", "mailbox is full"},
		{"delayed, never tried", bounce.Delay, nil, "4.4.7", "", ""},
		{"no failure recorded", bounce.Failure, nil, "5.0.0", "", ""},
	} {
		rc := bounce.RecipientOf(tc.kind, "b@example.net", "bee", tc.f)
		if rc.Address != "b@example.net" || rc.Original != "bee" || rc.Status != tc.status || rc.Diagnostic != tc.diagnostic ||
			!strings.Contains(rc.Explanation, tc.explanation) || tc.explanation == "" && rc.Explanation != "" {
			t.Errorf("%s: %+v; want status %s, diagnostic %q, explanation with %q", tc.name, rc, tc.status, tc.diagnostic, tc.explanation)
		}
	}
}
