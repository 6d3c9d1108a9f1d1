package relay_test

// relay probe against the fault-injecting servers of smtpserver_test.go,
// and the AUTH redaction of the SMTP dialogue (-v).

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
)

func TestRedactAuth(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plainIR := b64("\x00" + testUser + "\x00" + testPass)
	tests := []struct {
		name    string
		in      string
		want    string
		secrets []string
	}{
		{
			name: "AUTH PLAIN with initial response",
			in: "EHLO client.test\r\n250-smarthost.test\r\n250 AUTH PLAIN LOGIN\r\n" +
				"AUTH PLAIN " + plainIR + "\r\n235 2.7.0 Authentication successful\r\nMAIL FROM:<robot@example.test>\r\n250 2.1.0 Ok\r\n",
			want: "EHLO client.test\r\n250-smarthost.test\r\n250 AUTH PLAIN LOGIN\r\n" +
				"AUTH PLAIN ****\r\n235 2.7.0 Authentication successful\r\nMAIL FROM:<robot@example.test>\r\n250 2.1.0 Ok\r\n",
			secrets: []string{plainIR},
		},
		{
			name: "AUTH LOGIN with two 334 challenges",
			in: "AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\n" + b64(testUser) + "\r\n334 UGFzc3dvcmQ6\r\n" + b64(testPass) + "\r\n" +
				"235 2.7.0 Authentication successful\r\nQUIT\r\n221 2.0.0 Bye\r\n",
			want: "AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\n****\r\n334 UGFzc3dvcmQ6\r\n****\r\n" +
				"235 2.7.0 Authentication successful\r\nQUIT\r\n221 2.0.0 Bye\r\n",
			secrets: []string{b64(testUser), b64(testPass)},
		},
		{
			name:    "AUTH LOGIN with the user name as initial response, lower case",
			in:      "auth login " + b64(testUser) + "\r\n334 UGFzc3dvcmQ6\r\n" + b64(testPass) + "\r\n535 5.7.8 Error: authentication failed\r\n",
			want:    "AUTH login ****\r\n334 UGFzc3dvcmQ6\r\n****\r\n535 5.7.8 Error: authentication failed\r\n",
			secrets: []string{b64(testUser), b64(testPass)},
		},
		{
			name:    "an aborted exchange",
			in:      "AUTH CRAM-MD5\r\n334 PDQxOTI5NDIzNDEuMTI4Mjg0NzJAc291cmNlZm91ci5hbmRyZXcuY211LmVkdT4=\r\n*\r\n501 5.7.0 Authentication aborted\r\n",
			want:    "AUTH CRAM-MD5\r\n334 PDQxOTI5NDIzNDEuMTI4Mjg0NzJAc291cmNlZm91ci5hbmRyZXcuY211LmVkdT4=\r\n****\r\n501 5.7.0 Authentication aborted\r\n",
			secrets: nil,
		},
		{
			name:    "a long token",
			in:      "AUTH XOAUTH2 " + strings.Repeat("dG9rZW4", 3000) + "\r\n235 2.7.0 Accepted\r\n",
			want:    "AUTH XOAUTH2 ****\r\n235 2.7.0 Accepted\r\n",
			secrets: []string{"dG9rZW4"},
		},
		{
			name: "no AUTH: unchanged",
			in:   "220 smarthost.test ESMTP\r\nEHLO client.test\r\n250-smarthost.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\nDATA\r\n354 go ahead\r\nAUTHOR: x\r\n",
			want: "220 smarthost.test ESMTP\r\nEHLO client.test\r\n250-smarthost.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\nDATA\r\n354 go ahead\r\nAUTHOR: x\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// In one write, and byte by byte (go-smtp's reads come in
			// any chunks): no part of a secret may get out early.
			for _, chunk := range []int{len(tt.in), 1, 7} {
				var out bytes.Buffer
				w := relay.RedactAuth(&out)
				for i := 0; i < len(tt.in); i += chunk {
					p := tt.in[i:min(i+chunk, len(tt.in))]
					n, err := w.Write([]byte(p))
					if n != len(p) || err != nil {
						t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
					}
					for _, s := range tt.secrets {
						if strings.Contains(out.String(), s) {
							t.Fatalf("chunks of %d: secret %q written:\n%s", chunk, s, out.String())
						}
					}
				}
				if out.String() != tt.want {
					t.Errorf("chunks of %d:\n got %q\nwant %q", chunk, out.String(), tt.want)
				}
			}
		})
	}
}

// probeReport probes sh and returns the result and the report as printed.
func probeReport(t *testing.T, sh config.Smarthost, o relay.ProbeOptions) (*relay.ProbeResult, string) {
	t.Helper()
	if o.HeloName == "" {
		o.HeloName = "client.example.test"
	}
	if o.Domain == "" {
		o.Domain = "example.test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := relay.Probe(ctx, &sh, o)
	var b strings.Builder
	r.Format(&b, relay.Explain, time.Now())
	t.Logf("relay probe:\n%s", b.String())
	return r, b.String()
}

// wantExplained checks that the report explains the failure.
func wantExplained(t *testing.T, r *relay.ProbeResult, out string) {
	t.Helper()
	if r.Failure == nil {
		t.Fatal("no failure")
	}
	e := relay.Explain(r.Failure)
	if e == "" {
		t.Errorf("relay.Explain has nothing to say about %v", r.Failure)
		return
	}
	// The explanation is wrapped: compare word by word.
	_, shown, _ := strings.Cut(out, "  explanation: ")
	if !strings.HasPrefix(strings.Join(strings.Fields(shown), " "), e) {
		t.Errorf("the report does not explain the failure with %q", e)
	}
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("the report lacks %q", l)
		}
	}
}

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{testPass, base64.StdEncoding.EncodeToString([]byte(testPass)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPass))} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains the secret %q", what, secret)
		}
	}
}

func TestProbe_STARTTLS_AuthOK_TestMessage(t *testing.T) {
	s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true, AuthMechs: []string{"PLAIN", "LOGIN"}, Password: testPass})
	sh := withAuth(smarthost(s.Port, "starttls"))
	sh.Name = "mail"
	sh.TLSCAFile = s.Cert.CAFile(t)
	var debug bytes.Buffer
	r, out := probeReport(t, sh, relay.ProbeOptions{SendTo: "you@example.org", Hostname: "host1.example.test", Debug: &debug})
	if !r.OK() {
		t.Fatalf("probe failed at %s: %v", r.Step, r.Failure)
	}
	if !strings.HasPrefix(r.TLS, "TLSv1.3, TLS_") {
		t.Errorf("TLS = %q, want TLSv1.3 and a cipher suite", r.TLS)
	}
	if r.Cert == nil || r.Cert.Subject.CommonName != "relay test smarthost" {
		t.Errorf("certificate %v, want the test server's", r.Cert)
	}
	if !slices.Contains(r.EHLO, "AUTH PLAIN LOGIN") || r.EHLOClear {
		t.Errorf("EHLO = %q (before TLS: %v), want the capabilities after STARTTLS with AUTH PLAIN LOGIN", r.EHLO, r.EHLOClear)
	}
	wantLines(t, out,
		`smarthost "mail" 127.0.0.1:`,
		"  route:        direct\n",
		"  connected:    127.0.0.1:",
		"  TLS:          TLSv1.3, TLS_",
		"  certificate:  subject CN=relay test smarthost; issuer CN=relay test smarthost; expires ",
		"verified for 127.0.0.1 against tls_ca_file "+sh.TLSCAFile+"\n",
		"  fingerprint:  sha256:"+s.Cert.Fingerprint+"\n",
		"AUTH PLAIN LOGIN",
		"  AUTH:         PLAIN as robot@example.test: ok\n",
		"  test message: sent to you@example.org as <",
		": 250 ",
		"  result:       OK\n")
	if a := s.Auths(); len(a) != 1 || a[0].Mech != "PLAIN" {
		t.Errorf("server saw AUTH %+v, want one PLAIN", a)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want the test message", len(msgs))
	}
	m := msgs[0]
	if m.From != testUser || !slices.Equal(m.To, []string{"you@example.org"}) {
		t.Errorf("envelope %s → %v, want %s → you@example.org", m.From, m.To, testUser)
	}
	for _, h := range []string{"From: robot@example.test\r\n", "To: you@example.org\r\n", "Subject: relay probe from host1.example.test\r\n", "\r\nDate: ", "\r\nMessage-ID: <"} {
		if !bytes.Contains(m.Body, []byte(h)) {
			t.Errorf("test message lacks %q:\n%s", h, m.Body)
		}
	}
	// -v: the whole dialogue, STARTTLS included, AUTH redacted.
	wantLines(t, debug.String(), "EHLO client.example.test", "STARTTLS", "AUTH PLAIN ****", "MAIL FROM:<robot@example.test>", "QUIT")
	noSecret(t, "the -v dialogue", debug.String())
	noSecret(t, "the report", out)
}

func TestProbe_AuthRefused(t *testing.T) {
	s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true, AuthMechs: []string{"PLAIN", "LOGIN"}, Password: "the-right-one"})
	sh := withAuth(smarthost(s.Port, "starttls"))
	sh.TLSCAFile = s.Cert.CAFile(t)
	r, out := probeReport(t, sh, relay.ProbeOptions{SendTo: "you@example.org"})
	if r.Step != "AUTH" || r.Failure == nil || r.Failure.Code != 535 {
		t.Fatalf("probe failed at %q with %v, want AUTH with a 535", r.Step, r.Failure)
	}
	wantLines(t, out,
		"  TLS:          TLSv1.3",
		"  AUTH:         PLAIN as robot@example.test: failed: 535 5.7.8 ",
		"  result:       FAILED at AUTH\n")
	if strings.Contains(out, "test message:") || len(s.Mails()) != 0 {
		t.Errorf("a test message was tried after AUTH failed")
	}
	wantExplained(t, r, out)
	noSecret(t, "the report", out)
}

func TestProbe_UntrustedCertificate(t *testing.T) {
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: mode == "starttls", ImplicitTLS: mode == "implicit", AuthMechs: []string{"PLAIN"}})
			sh := withAuth(smarthost(s.Port, mode)) // the system roots do not know the test CA
			r, out := probeReport(t, sh, relay.ProbeOptions{})
			if r.Step != "TLS" {
				t.Fatalf("probe failed at %q (%v), want TLS", r.Step, r.Failure)
			}
			if r.Cert == nil || r.Cert.Subject.CommonName != "relay test smarthost" {
				t.Errorf("certificate %v: the unverified certificate should still be described", r.Cert)
			}
			wantLines(t, out,
				"  TLS:          failed: ",
				"certificate signed by unknown authority",
				"  certificate:  subject CN=relay test smarthost; issuer CN=relay test smarthost; ",
				"NOT verified: for 127.0.0.1 against the system roots",
				"  result:       FAILED at TLS\n")
			if strings.Contains(out, "AUTH:") || len(s.Auths()) != 0 {
				t.Errorf("AUTH tried over an unverified connection")
			}
			wantExplained(t, r, out)
		})
	}
}

func TestProbe_FingerprintMismatch_ShowsCertificate(t *testing.T) {
	s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true})
	sh := smarthost(s.Port, "starttls")
	sh.TLSFingerprint = strings.Repeat("ab", 32)
	r, out := probeReport(t, sh, relay.ProbeOptions{})
	if r.Step != "TLS" || r.Cert == nil {
		t.Fatalf("probe failed at %q, certificate %v; want TLS and the certificate", r.Step, r.Cert)
	}
	wantLines(t, out, "does not match tls_fingerprint", "NOT verified: pinned by tls_fingerprint", "  fingerprint:  sha256:"+s.Cert.Fingerprint)
}

func TestProbe_STARTTLSNotOffered(t *testing.T) {
	s := plainAuthServer(t, testsmtp.ServerConfig{}) // AUTH in clear, no STARTTLS
	sh := withAuth(smarthost(s.Port, "starttls"))
	var debug bytes.Buffer
	r, out := probeReport(t, sh, relay.ProbeOptions{Debug: &debug})
	if r.Step != "TLS" {
		t.Fatalf("probe failed at %q (%v), want TLS", r.Step, r.Failure)
	}
	if !r.EHLOClear || !slices.Contains(r.EHLO, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO = %q (before TLS: %v), want the plain-text capabilities", r.EHLO, r.EHLOClear)
	}
	wantLines(t, out, "does not offer STARTTLS", "AUTH PLAIN LOGIN", "   (before TLS)\n", "  result:       FAILED at TLS\n")
	if len(s.Auths()) != 0 || strings.Contains(out, "AUTH:") {
		t.Errorf("AUTH was tried")
	}
	wantLines(t, debug.String(), "220 ", "EHLO ", "250-AUTH PLAIN LOGIN")
	wantExplained(t, r, out)
}

func TestProbe_AuthLogin_DialogueRedacted(t *testing.T) {
	s := plainAuthServer(t, testsmtp.ServerConfig{})
	sh := withAuth(smarthost(s.Port, "none"))
	sh.Auth = "login"
	var debug bytes.Buffer
	r, out := probeReport(t, sh, relay.ProbeOptions{Debug: &debug})
	if !r.OK() {
		t.Fatalf("probe failed at %s: %v", r.Step, r.Failure)
	}
	wantLines(t, out, `  TLS:          none (tls = "none")`, "  AUTH:         LOGIN as robot@example.test: ok\n")
	wantLines(t, debug.String(), "AUTH LOGIN\r\n334 ", "\r\n****\r\n334 ", "235 ")
	if n := strings.Count(debug.String(), "****"); n != 2 {
		t.Errorf("%d lines redacted, want 2 (user name and password):\n%s", n, debug.String())
	}
	noSecret(t, "the -v dialogue", debug.String())
	if strings.Contains(debug.String(), base64.StdEncoding.EncodeToString([]byte(testUser))) {
		t.Errorf("the -v dialogue shows the user name's AUTH LOGIN answer")
	}
}

func TestProbe_Refusals(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		r, out := probeReport(t, smarthost(testsmtp.ClosedPort(t), "starttls"), relay.ProbeOptions{})
		if r.Step != "connect" {
			t.Fatalf("probe failed at %q, want connect", r.Step)
		}
		wantLines(t, out, "  connected:    failed: ", "connection refused", "  result:       FAILED at connect\n")
		wantExplained(t, r, out)
	})
	t.Run("421 greeting", func(t *testing.T) {
		s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{Greeting: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Service not available")})
		r, out := probeReport(t, smarthost(s.Port, "starttls"), relay.ProbeOptions{})
		if r.Failure == nil || r.Failure.Code != 421 {
			t.Fatalf("probe failed at %q with %v, want a 421", r.Step, r.Failure)
		}
		wantLines(t, out, "  greeting:     failed: 421 4.3.2 Service not available\n", "  result:       FAILED at greeting\n")
		wantExplained(t, r, out)
	})
	t.Run("proxy down: never direct", func(t *testing.T) {
		s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
		sh := smarthost(s.Port, "none")
		proxyPort := testsmtp.ClosedPort(t)
		sh.Proxy = fmt.Sprintf("socks5://tor:hunter22@127.0.0.1:%d", proxyPort)
		r, out := probeReport(t, sh, relay.ProbeOptions{})
		if r.OK() || s.Conns() != 0 {
			t.Fatalf("probe with a proxy it cannot use: OK=%v, %d direct connections", r.OK(), s.Conns())
		}
		wantLines(t, out, fmt.Sprintf("  route:        via socks5://tor:xxx@127.0.0.1:%d\n", proxyPort),
			"  connected:    failed: proxy socks5://tor:xxx@", "connection refused")
		if strings.Contains(out, "hunter22") {
			t.Errorf("the proxy password shows")
		}
	})
}
