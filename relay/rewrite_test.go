package relay_test

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// aliasingRewriter maps the sender and expands recipients as package
// rewrite does: robot@example.test's mail goes to admin@example.test.
type aliasingRewriter struct{ mapped string }

func (a aliasingRewriter) Sender(env *spool.Envelope) string {
	if env.Bounce || a.mapped == "" {
		return env.Sender
	}
	return a.mapped
}

func (aliasingRewriter) Content(_ *spool.Envelope, _ *config.Smarthost, _ string, c io.Reader) io.Reader {
	return c
}

func (aliasingRewriter) Recipients(in []spool.Recipient) ([]spool.Recipient, []string) {
	var out []spool.Recipient
	for _, r := range in {
		if r.Address == sender {
			r.Original, r.Address = r.Address, "admin@example.test"
		}
		out = append(out, r)
	}
	return out, nil
}

// TestBounce_ToLocalSender_Aliased: a bounce to a local sender goes where
// that sender's mail goes (root@server1.lan means a person), and the
// Rewriter's sender map is used for the original, never for the bounce.
func TestBounce_ToLocalSender_Aliased(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user here")}})
	sh := withAuth(smarthost(srv.Port, "none"))
	sh.BounceFrom = bounceAddr
	h := newHarness(t, sh)
	h.runner.Rewrite = aliasingRewriter{mapped: "mapped@example.test"}
	h.enqueue(content, rcptA, rcptB)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 1, Failed: 1}) {
		t.Errorf("pass 1: %+v", st)
	}
	reps := h.reports()
	if len(reps) != 1 {
		t.Fatalf("%d reports, want 1", len(reps))
	}
	if rc := reps[0].Env.Recipients; len(rc) != 1 || rc[0].Address != "admin@example.test" || rc[0].Original != sender {
		t.Errorf("bounce recipients %+v, want admin@example.test (aliased from %s)", rc, sender)
	}
	h.run()
	ms := srv.Messages()
	if len(ms) != 2 || ms[0].From != "mapped@example.test" || ms[1].From != bounceAddr || !slices.Equal(ms[1].To, []string{"admin@example.test"}) {
		var got []string
		for _, m := range ms {
			got = append(got, m.From+" -> "+strings.Join(m.To, ","))
		}
		t.Errorf("at the server: %q; want the original from mapped@example.test, the bounce from %s to admin@example.test", got, bounceAddr)
	}
}
