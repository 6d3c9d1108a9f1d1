package relay_test

// The name relay gives in EHLO: the configured one (Runner.HeloName,
// ProbeOptions.HeloName) in every EHLO, the one before STARTTLS included,
// never go-smtp's default "localhost".

import (
	"slices"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// TestDelivery_STARTTLS_EveryEHLOSaysOurName: a delivery over STARTTLS
// says EHLO relay.test before and after STARTTLS, and -v shows the
// dialogue as it went (no greeting of relay's own making after STARTTLS).
func TestDelivery_STARTTLS_EveryEHLOSaysOurName(t *testing.T) {
	s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true})
	sh := smarthost(s.Port, "starttls")
	sh.TLSCAFile = s.Cert.CAFile(t)
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Fatalf("not delivered:\n%s", h.log.String())
	}
	if got := s.Helos(); !slices.Equal(got, []string{"relay.test", "relay.test"}) {
		t.Errorf("the server was greeted as %q, want relay.test before and after STARTTLS", got)
	}
	dialogue := h.debug.String()
	if n := strings.Count(dialogue, "EHLO relay.test\r\n"); n != 2 {
		t.Errorf("-v shows %d EHLO relay.test, want 2:\n%s", n, dialogue)
	}
	if strings.Contains(dialogue, "localhost") || strings.Count(dialogue, "\n220 ") > 1 {
		t.Errorf("-v shows a greeting or name the server never saw:\n%s", dialogue)
	}
	if l := h.logLines(rcptA); len(l) != 1 || !strings.Contains(l[0], "tls=TLSv1.3") {
		t.Errorf("log %q, want tls=TLSv1.3", l)
	}
}

// TestProbe_STARTTLS_EveryEHLOSaysOurName: relay probe greets as a
// delivery does.
func TestProbe_STARTTLS_EveryEHLOSaysOurName(t *testing.T) {
	s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true})
	sh := smarthost(s.Port, "starttls")
	sh.TLSCAFile = s.Cert.CAFile(t)
	r, _ := probeReport(t, sh, relay.ProbeOptions{HeloName: "host1.example.test"})
	if !r.OK() {
		t.Fatalf("probe failed at %s: %v", r.Step, r.Failure)
	}
	if got := s.Helos(); !slices.Equal(got, []string{"host1.example.test", "host1.example.test"}) {
		t.Errorf("the server was greeted as %q, want host1.example.test before and after STARTTLS", got)
	}
}

// TestTLS_STARTTLSRefused_Defers: a 454 to STARTTLS defers with that
// reply, and nothing follows it.
func TestTLS_STARTTLSRefused_Defers(t *testing.T) {
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies([]string{"STARTTLS"}, map[string]func(string) string{
		"STARTTLS": func(string) string { return "454 4.7.0 TLS not available due to temporary reason" },
	}))
	h := newHarness(t, smarthost(srv.Port, "starttls"))
	id := h.enqueue(content, rcptA)
	h.run()
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "454 4.7.0 TLS not available")
	if cmds := srv.Commands(); !slices.Equal(cmds, []string{"EHLO", "STARTTLS"}) {
		t.Errorf("server got %q, want EHLO, STARTTLS and nothing after it", srv.Lines())
	}
	if l := srv.Lines(); len(l) == 0 || l[0] != "EHLO relay.test" {
		t.Errorf("server got %q, want EHLO relay.test first", l)
	}
}
