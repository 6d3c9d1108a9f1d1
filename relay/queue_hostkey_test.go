package relay_test

// What a remembered "host down" state is about: a change of any setting
// that decides whether a connection works voids it, so that a corrected
// configuration is tried at once, not after the outage's backoff.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// writeLater writes data to path and dates it a second after its present
// modification time: an administrator's edit comes after the failure it
// corrects, while the test may run within one tick of the file clock.
func writeLater(t *testing.T, path string, data []byte) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	later := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
}

func TestHostDown_CorrectedConfiguration_TriedAtOnce(t *testing.T) {
	cert := testsmtp.LocalhostCert(t)
	other, err := testsmtp.MakeCert()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tls    string
		broken func(t *testing.T, sh *config.Smarthost)
		fix    func(t *testing.T, sh *config.Smarthost) // nil: nothing changes
	}{
		{"TLSCAFile_Changed", "implicit",
			func(t *testing.T, sh *config.Smarthost) { sh.TLSCAFile = other.CAFile(t) },
			func(t *testing.T, sh *config.Smarthost) { sh.TLSCAFile = cert.CAFile(t) }},
		{"TLSCAFile_ReplacedInPlace", "starttls",
			func(t *testing.T, sh *config.Smarthost) { sh.TLSCAFile = other.CAFile(t) },
			func(t *testing.T, sh *config.Smarthost) { writeLater(t, sh.TLSCAFile, cert.PEM) }},
		{"TLSFingerprint_Changed", "implicit",
			func(t *testing.T, sh *config.Smarthost) { sh.TLSFingerprint = other.Fingerprint },
			func(t *testing.T, sh *config.Smarthost) { sh.TLSFingerprint = cert.Fingerprint }},
		{"TLSServerName_Changed", "starttls",
			func(t *testing.T, sh *config.Smarthost) {
				sh.TLSCAFile = cert.CAFile(t)
				sh.TLSServerName = "wrong.test"
			},
			func(t *testing.T, sh *config.Smarthost) { sh.TLSServerName = "" }},
		{"PasswordFile_Corrected", "implicit",
			func(t *testing.T, sh *config.Smarthost) {
				sh.TLSFingerprint = cert.Fingerprint
				sh.Password = ""
				sh.PasswordFile = filepath.Join(t.TempDir(), "secret")
				os.WriteFile(sh.PasswordFile, []byte("wrong-password\n"), 0o600)
			},
			func(t *testing.T, sh *config.Smarthost) { writeLater(t, sh.PasswordFile, []byte(testPass+"\n")) }},
		{"Unchanged_StaysDown", "implicit",
			func(t *testing.T, sh *config.Smarthost) { sh.TLSCAFile = other.CAFile(t) },
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{
				STARTTLS:    tc.tls == "starttls",
				ImplicitTLS: tc.tls == "implicit",
				AuthMechs:   []string{"PLAIN"},
				Password:    testPass,
			})
			sh := withAuth(smarthost(srv.Port, tc.tls))
			tc.broken(t, &sh)
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			if hs := h.sp.Host(sh.Name); hs.Failures != 1 || !hs.DownUntil.After(h.now) {
				t.Fatalf("host state %+v after the failed pass, want down", hs)
			}
			if c := srv.Conns(); c != 1 {
				t.Fatalf("%d connections in the failed pass, want 1", c)
			}

			// The administrator corrects the configuration (or not); the
			// message is due again (a flush of the message only: the
			// host's state is not forgotten), well before the host is.
			if tc.fix != nil {
				tc.fix(t, &h.cfg.Smarthosts[0])
			}
			h.now = h.now.Add(time.Second)
			if err := mailq.Flush(h.sp, nil, h.now); err != nil {
				t.Fatal(err)
			}
			h.run()
			if tc.fix == nil {
				if c := srv.Conns(); c != 1 {
					t.Errorf("%d connections with the configuration unchanged, want none new: the host is down", c)
				}
				env := h.mustRead(id)
				wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "down until")
				return
			}
			if c := srv.Conns(); c != 2 {
				t.Errorf("%d connections in all, want one new right after the correction", c)
			}
			if env := h.read(id); env != nil {
				t.Errorf("not delivered after the correction: %+v", env.Recipients)
			}
			if hs := h.sp.Host(sh.Name); hs != (spool.HostState{}) {
				t.Errorf("host state %+v after a working connection, want forgotten", hs)
			}
		})
	}
}

// TestHostDown_StateHoldsNoSecret: what the spool remembers about a down
// host names neither the password nor a proxy's.
func TestHostDown_StateHoldsNoSecret(t *testing.T) {
	port, _ := closingServer(t)
	sh := withAuth(smarthost(port, "none"))
	sh.Proxy = "socks5://proxyuser:Proxy-Secret-9z@127.0.0.1:1"
	h := newHarness(t, sh)
	h.enqueue(content, rcptA)
	h.run()
	hs := h.sp.Host(sh.Name)
	if hs.Failures != 1 {
		t.Fatalf("host state %+v, want down", hs)
	}
	if s := fmt.Sprintf("%+v", hs); strings.Contains(s, testPass) || strings.Contains(s, "Proxy-Secret-9z") || !strings.Contains(hs.Addr, "settings=") {
		t.Errorf("host state %s: a secret, or no settings digest", s)
	}
}

// TestHostDown_TopLevelHeloNameCorrected_TriedAtOnce: a smarthost that
// refuses the name relay gives in EHLO is remembered as down; the
// administrator sets the top-level helo_name (no helo_name of the
// smarthost's own) and reloads: the next pass connects at once with
// the new name, as after a change of the smarthost's own helo_name.
func TestHostDown_TopLevelHeloNameCorrected_TriedAtOnce(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{
		EHLO: &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Helo command rejected: need fully-qualified hostname"},
	})
	h := newHarness(t, smarthost(srv.Port, "none"))
	h.runner.HeloName = "localhost"
	id := h.enqueue(content, rcptA)
	h.run()
	if hs := h.sp.Host(h.cfg.Smarthosts[0].Name); hs.Failures != 1 || !hs.DownUntil.After(h.now) {
		t.Fatalf("host state %+v after EHLO was refused, want down", hs)
	}
	srv.SetConfig(func(c *testsmtp.ServerConfig) { c.EHLO = nil })
	h.cfg.HeloName = "mx1.example.test"
	h.runner.HeloName = relay.HeloName(h.cfg) // what a reload makes
	h.now = h.now.Add(time.Second)
	if err := mailq.Flush(h.sp, nil, h.now); err != nil {
		t.Fatal(err)
	}
	h.run()
	if c := srv.Conns(); c != 2 {
		t.Errorf("%d connections in all, want one new right after helo_name was set", c)
	}
	if env := h.read(id); env != nil {
		t.Errorf("not delivered after the correction: %+v", env.Recipients)
	}
	if got := srv.Helos(); len(got) != 2 || got[1] != "mx1.example.test" {
		t.Errorf("EHLO names %q, want mx1.example.test last", got)
	}
}
