package relay_test

// TLS during a delivery: STARTTLS required, the plain loopback exception,
// certificate verification.

import (
	"slices"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// TestTLS_StartTLSNotOffered_SendsNothingAfterEHLO: tls = "starttls" and
// a server without STARTTLS: no fallback, no AUTH, no MAIL.
func TestTLS_StartTLSNotOffered_SendsNothingAfterEHLO(t *testing.T) {
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies([]string{"AUTH PLAIN LOGIN"}, nil))
	h := newHarness(t, withAuth(smarthost(srv.Port, "starttls")))
	id := h.enqueue(content, rcptA)
	h.run()
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "STARTTLS")
	if cmds := srv.Commands(); !slices.Equal(cmds, []string{"EHLO"}) {
		t.Errorf("server got %q, want EHLO and nothing after it", srv.Lines())
	}
}

// TestTLS_None_LoopbackMayAuthenticate: without TLS, AUTH is allowed to a
// loopback peer.
func TestTLS_None_LoopbackMayAuthenticate(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Fatal("not delivered")
	}
	if a := srv.Auths(); len(a) != 1 || a[0].Pass != testPass {
		t.Errorf("server saw %+v", a)
	}
	if l := h.logLines(rcptA); len(l) != 1 || strings.Contains(l[0], "tls=") {
		t.Errorf("log %q: a connection without TLS logs no tls=", l)
	}
}

func TestTLS_Verification(t *testing.T) {
	cert := testsmtp.LocalhostCert(t)
	wrong := strings.Repeat("ab", 32)
	for _, mode := range []string{"starttls", "implicit"} {
		for _, tc := range []struct {
			name    string
			setup   func(sh *config.Smarthost)
			deliver bool
			reason  string
		}{
			{"Untrusted_Defers", func(*config.Smarthost) {}, false, "certificate"},
			{"TrustedViaCAFile_Delivers", func(sh *config.Smarthost) { sh.TLSCAFile = cert.CAFile(t) }, true, ""},
			{"WrongServerName_Defers", func(sh *config.Smarthost) {
				sh.TLSCAFile = cert.CAFile(t)
				sh.TLSServerName = "wrong.test"
			}, false, "certificate"},
			{"FingerprintRight_Delivers", func(sh *config.Smarthost) { sh.TLSFingerprint = cert.Fingerprint }, true, ""},
			{"FingerprintWrong_Defers", func(sh *config.Smarthost) { sh.TLSFingerprint = wrong }, false, "fingerprint"},
			{"FingerprintWrongDespiteTrustedCA_Defers", func(sh *config.Smarthost) {
				sh.TLSCAFile = cert.CAFile(t)
				sh.TLSFingerprint = wrong
			}, false, "fingerprint"},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{
					STARTTLS:    mode == "starttls",
					ImplicitTLS: mode == "implicit",
					AuthMechs:   []string{"PLAIN"},
					Password:    testPass,
				})
				sh := withAuth(smarthost(srv.Port, mode))
				tc.setup(&sh)
				h := newHarness(t, sh)
				id := h.enqueue(content, rcptA)
				h.run()
				if tc.deliver {
					if env := h.read(id); env != nil {
						t.Fatalf("not delivered: %+v", env.Recipients)
					}
					if l := h.logLines(rcptA); len(l) != 1 || !strings.Contains(l[0], "tls=TLSv1.3") {
						t.Errorf("log %q, want tls=TLSv1.3", l)
					}
					if a := srv.Auths(); len(a) != 1 || a[0].Pass != testPass {
						t.Errorf("server saw AUTH %+v", a)
					}
					if hs := srv.Helos(); len(hs) == 0 || hs[len(hs)-1] != "relay.test" {
						t.Errorf("EHLO names %q, want HeloName inside TLS", hs)
					}
					return
				}
				env := h.mustRead(id)
				wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, tc.reason)
				if len(srv.Auths()) != 0 || len(srv.Mails()) != 0 {
					t.Errorf("server got AUTH %v MAIL %v over an unverified connection", srv.Auths(), srv.Mails())
				}
				if l := h.logLines(rcptA); len(l) != 1 || !strings.Contains(l[0], "stage=tls") {
					t.Errorf("log %q, want stage=tls", l)
				}
			})
		}
	}
}
