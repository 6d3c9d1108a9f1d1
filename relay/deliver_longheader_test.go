package relay_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// A server that refuses lines over 998 octets, as strict ones do, gets a
// message whose header lines were longer: folded where there is white
// space, encoded words for a Subject without any, and a message whose
// Message-ID cannot be folded fails at once with a reason that names it
// instead of waiting on the server's 554 (issue #21 item 16).
func TestDelivery_LongHeaderLines_StrictServer(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{MaxLineOctets: 998})
	sh := smarthost(srv.Port, "none")
	sh.BounceFrom = bounceAddr
	h := newHarness(t, sh)

	to := strings.TrimSuffix(strings.Repeat("someone@example.org, ", 100), ", ")
	subject := strings.Repeat("Ü", 700)
	ok := h.enqueue("From: robot@example.test\nTo: "+to+"\nSubject: "+subject+"\n\nbody\n", rcptA)
	bad := h.enqueue("From: robot@example.test\nMessage-ID: <"+strings.Repeat("m", 1200)+"@example.test>\n\nbody\n", rcptB)
	h.run()

	if env := h.read(ok); env != nil {
		t.Fatalf("the message with long header lines is still queued: %s", rcpt(env, rcptA).Reason())
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("the server kept %d messages, want 1", len(msgs))
	}
	for _, l := range bytes.Split(msgs[0].Body, []byte("\n")) {
		if len(bytes.TrimSuffix(l, []byte("\r"))) > 998 {
			t.Errorf("a line of %d octets went out", len(l))
		}
	}
	if !bytes.Contains(msgs[0].Body, []byte("To: someone@example.org,")) || !bytes.Contains(msgs[0].Body, []byte("Subject: =?utf-8?q?=C3=9C")) {
		t.Errorf("header as sent:\n%.600s", msgs[0].Body)
	}

	env := h.read(bad)
	if env != nil {
		r := rcpt(env, rcptB)
		if r.Status != spool.Failed {
			t.Fatalf("the unfoldable message: %s %s, want failed", r.Status, r.Reason())
		}
	}
	if !strings.Contains(h.log.String(), "the header field Message-ID has a line of 1227 octets without white space") {
		t.Errorf("the log does not say why:\n%s", h.log.String())
	}
}
