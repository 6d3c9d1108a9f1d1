package relay_test

// AUTH mechanisms against the fault server, whose server sides of
// CRAM-MD5, SCRAM-SHA-256, XOAUTH2 and OAUTHBEARER are here: computed
// independently of relay's clients (crypto/hmac for CRAM-MD5, xdg-go/scram's
// server for SCRAM, go-sasl's server for OAUTHBEARER).

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
	"github.com/xdg-go/scram"
)

// authBehaviour says how the test-side mechanisms behave.
type authBehaviour struct {
	// Hashed: the server stores hashed passwords, so it refuses every
	// CRAM-MD5 and SCRAM-SHA-256 login (Dovecot with SHA512-CRYPT).
	Hashed bool
	// Token is the only token XOAUTH2 and OAUTHBEARER accept; "" takes
	// the testsmtp.ServerConfig's Password.
	Token string
}

var errAuthHashed = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Error: authentication failed"}

// authServers serves CRAM-MD5, SCRAM-SHA-256, XOAUTH2 and OAUTHBEARER for a
// testsmtp.FaultServer (testsmtp.ServerConfig.AuthServer); pass is the password of testUser.
func authServers(pass string, b authBehaviour) func(string, func(testsmtp.AuthSeen) error) sasl.Server {
	return func(mech string, check func(testsmtp.AuthSeen) error) sasl.Server {
		switch mech {
		case "CRAM-MD5":
			return &cramServer{pass: pass, hashed: b.Hashed, check: check}
		case "SCRAM-SHA-256":
			return newSCRAMServer(pass, b.Hashed, check)
		case "XOAUTH2":
			return &xoauth2Server{check: check}
		case "OAUTHBEARER":
			return newOAuthBearerServer(check)
		}
		return nil
	}
}

// cramServer: RFC 2195, the digest checked with crypto/hmac here. A right
// digest is recorded as the password itself (the client proved it knows
// it); a wrong one as "(wrong digest)".
type cramServer struct {
	pass      string
	hashed    bool
	check     func(testsmtp.AuthSeen) error
	challenge string
}

var cramSeq atomic.Int64

func (s *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if s.challenge == "" {
		s.challenge = fmt.Sprintf("<%d.1700000000@smarthost.test>", cramSeq.Add(1))
		return []byte(s.challenge), false, nil
	}
	user, digest, _ := strings.Cut(string(resp), " ")
	if s.hashed {
		s.check(testsmtp.AuthSeen{User: user, Pass: "(hashed: cannot check)"})
		return nil, true, errAuthHashed
	}
	m := hmac.New(md5.New, []byte(s.pass))
	m.Write([]byte(s.challenge))
	proved := "(wrong digest)"
	if digest == hex.EncodeToString(m.Sum(nil)) {
		proved = s.pass
	}
	return nil, true, s.check(testsmtp.AuthSeen{User: user, Pass: proved})
}

// scramServer wraps xdg-go/scram's server conversation.
type scramServer struct {
	conv   *scram.ServerConversation
	hashed bool
	check  func(testsmtp.AuthSeen) error
	step   int
}

func newSCRAMServer(pass string, hashed bool, check func(testsmtp.AuthSeen) error) *scramServer {
	srv, err := scram.SHA256.NewServer(func(user string) (scram.StoredCredentials, error) {
		c, err := scram.SHA256.NewClient(user, pass, "")
		if err != nil {
			return scram.StoredCredentials{}, err
		}
		return c.GetStoredCredentials(scram.KeyFactors{Salt: "relay-test-salt", Iters: 4096}), nil
	})
	if err != nil {
		panic(err)
	}
	return &scramServer{conv: srv.NewConversation(), hashed: hashed, check: check}
}

func (s *scramServer) Next(resp []byte) ([]byte, bool, error) {
	s.step++
	switch {
	case s.step == 1 && resp == nil:
		s.step = 0
		return []byte{}, false, nil // ask for client-first
	case s.step == 1:
		out, err := s.conv.Step(string(resp))
		if err != nil {
			return nil, true, err
		}
		return []byte(out), false, nil
	case s.step == 2:
		out, err := s.conv.Step(string(resp))
		user := s.conv.Username()
		if s.hashed {
			s.check(testsmtp.AuthSeen{User: user, Pass: "(hashed: cannot check)"})
			return nil, true, errAuthHashed
		}
		proved := "(wrong proof)"
		if err == nil && s.conv.Valid() {
			proved = testPass
		}
		if err := s.check(testsmtp.AuthSeen{User: user, Pass: proved}); err != nil {
			return nil, true, err
		}
		return []byte(out), false, nil // server-final: v=signature
	case s.step == 3 && len(resp) == 0:
		return nil, true, nil
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

// xoauth2Server: Google's XOAUTH2. A refused token gets the JSON error
// challenge; only after the client's empty answer comes the 535.
type xoauth2Server struct {
	check  func(testsmtp.AuthSeen) error
	failed error
}

func (s *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if s.failed != nil {
		if len(resp) != 0 {
			return nil, true, errors.New("the answer to the error challenge was not empty")
		}
		return nil, true, s.failed
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, tok string
	for _, f := range strings.Split(string(resp), "\x01") {
		if v, ok := strings.CutPrefix(f, "user="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(f, "auth=Bearer "); ok {
			tok = v
		}
	}
	if err := s.check(testsmtp.AuthSeen{User: user, Pass: tok}); err != nil {
		s.failed = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted. Learn more at https://support.google.com/mail/?p=BadCredentials"}
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	return nil, true, nil
}

// oauthBearerServer is go-sasl's server with its final error as a 535
// (go-smtp would send 454 for it).
type oauthBearerServer struct{ sasl.Server }

func newOAuthBearerServer(check func(testsmtp.AuthSeen) error) *oauthBearerServer {
	return &oauthBearerServer{sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
		if check(testsmtp.AuthSeen{User: o.Username, Pass: o.Token}) != nil {
			return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer", Scope: "https://mail.google.com/"}
		}
		return nil
	})}
}

func (s *oauthBearerServer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := s.Server.Next(resp)
	var oe *sasl.OAuthBearerError
	if errors.As(err, &oe) {
		err = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed: " + oe.Status}
	}
	return ch, done, err
}

// mechServer is a testsmtp.FaultServer that offers mechs, with the test-side
// mechanisms; over plain text on loopback unless cfg says STARTTLS.
func mechServer(t *testing.T, cfg testsmtp.ServerConfig, b authBehaviour, mechs ...string) *testsmtp.FaultServer {
	t.Helper()
	cfg.AuthMechs = mechs
	if cfg.Password == "" {
		cfg.Password = testPass
	}
	if b.Token != "" {
		cfg.Password = b.Token
	}
	cfg.AllowInsecureAuth = !cfg.STARTTLS
	cfg.AuthServer = authServers(testPass, b)
	// What relay remembers of a fallback is per host and port: a later
	// test's server on the same port must start afresh.
	relay.ForgetAuthFallbacks()
	t.Cleanup(relay.ForgetAuthFallbacks)
	return testsmtp.NewFaultServer(t, cfg)
}

// tlsSmarthost is a STARTTLS smarthost for srv, trusting its certificate.
func tlsSmarthost(t *testing.T, srv *testsmtp.FaultServer) config.Smarthost {
	sh := withAuth(smarthost(srv.Port, "starttls"))
	sh.TLSCAFile = srv.Cert.CAFile(t)
	return sh
}

// wantAuths checks the mechanisms the server saw, in order, and that the
// last one carried want as the (proven) secret.
func wantAuths(t *testing.T, srv *testsmtp.FaultServer, want string, mechs ...string) {
	t.Helper()
	a := srv.Auths()
	var got []string
	for _, x := range a {
		got = append(got, x.Mech)
	}
	if strings.Join(got, ",") != strings.Join(mechs, ",") {
		t.Fatalf("server saw AUTH %q, want %q (%+v)", got, mechs, a)
	}
	if last := a[len(a)-1]; last.User != testUser || last.Pass != want {
		t.Errorf("server saw %+v, want user %s with secret %q", last, testUser, want)
	}
}

// TestAuth_EachMechanism_OnlyOneOffered: every password mechanism against
// a server that offers only it, chosen automatically and named in auth.
func TestAuth_EachMechanism_OnlyOneOffered(t *testing.T) {
	for _, mech := range []string{"SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"} {
		for _, auth := range []string{"", strings.ToLower(mech)} {
			t.Run(mech+"/auth="+auth, func(t *testing.T) {
				srv := mechServer(t, testsmtp.ServerConfig{}, authBehaviour{}, mech)
				sh := withAuth(smarthost(srv.Port, "none"))
				sh.Auth = auth
				h := newHarness(t, sh)
				id := h.enqueue(content, rcptA)
				if st := h.run(); st.Delivered != 1 {
					t.Fatalf("stats %+v; log:\n%s", st, h.log.String())
				}
				if h.read(id) != nil {
					t.Error("still queued")
				}
				wantAuths(t, srv, testPass, mech)
				if strings.Contains(h.log.String(), testPass) {
					t.Errorf("log contains the password:\n%s", h.log.String())
				}
			})
		}
	}
}

// TestAuth_Automatic_StrongestOffered: SCRAM-SHA-256 > CRAM-MD5 > PLAIN >
// LOGIN; the token mechanisms never by themselves.
func TestAuth_Automatic_StrongestOffered(t *testing.T) {
	for _, tc := range []struct {
		offered []string
		want    string
	}{
		{[]string{"LOGIN", "PLAIN", "CRAM-MD5", "SCRAM-SHA-256"}, "SCRAM-SHA-256"},
		{[]string{"LOGIN", "CRAM-MD5", "PLAIN"}, "CRAM-MD5"},
		{[]string{"XOAUTH2", "OAUTHBEARER", "LOGIN", "PLAIN"}, "PLAIN"},
		{[]string{"XOAUTH2", "LOGIN"}, "LOGIN"},
	} {
		t.Run(strings.Join(tc.offered, "_"), func(t *testing.T) {
			srv := mechServer(t, testsmtp.ServerConfig{}, authBehaviour{}, tc.offered...)
			h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
			h.enqueue(content, rcptA)
			if st := h.run(); st.Delivered != 1 {
				t.Fatalf("stats %+v; log:\n%s", st, h.log.String())
			}
			wantAuths(t, srv, testPass, tc.want)
		})
	}
	t.Run("OnlyTokenMechanismsOffered", func(t *testing.T) {
		srv := mechServer(t, testsmtp.ServerConfig{}, authBehaviour{}, "XOAUTH2", "OAUTHBEARER")
		h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
		id := h.enqueue(content, rcptA)
		h.run()
		wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "no AUTH mechanism relay supports")
		if len(srv.Auths()) != 0 {
			t.Errorf("server saw %+v: a password sent as a token?", srv.Auths())
		}
	})
}

// TestAuth_WrongPassword_ChallengeResponse: a wrong password with CRAM-MD5
// and SCRAM-SHA-256 defers with the explanation, and never leaks.
func TestAuth_WrongPassword_ChallengeResponse(t *testing.T) {
	for _, mech := range []string{"CRAM-MD5", "SCRAM-SHA-256"} {
		t.Run(mech, func(t *testing.T) {
			srv := mechServer(t, testsmtp.ServerConfig{}, authBehaviour{}, mech)
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.Password = "Wr0ng-zebra-pass"
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			wantHint(t, h, rcptA, "deferred", "refused the username or password")
			h.mustRead(id)
			if a := srv.Auths(); len(a) != 1 || a[0].Pass == testPass || a[0].Pass == sh.Password {
				t.Errorf("server saw %+v", a)
			}
			if strings.Contains(h.log.String(), sh.Password) {
				t.Errorf("log contains the password:\n%s", h.log.String())
			}
		})
	}
}

// TestAuth_FallbackToPlain_OverTLS: a server that offers CRAM-MD5 (or
// SCRAM) but keeps hashed passwords refuses it; relay tries PLAIN over TLS
// on the same connection and delivers. -v shows both tries, redacted.
func TestAuth_FallbackToPlain_OverTLS(t *testing.T) {
	for _, mech := range []string{"CRAM-MD5", "SCRAM-SHA-256"} {
		t.Run(mech, func(t *testing.T) {
			srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, authBehaviour{Hashed: true}, mech, "PLAIN")
			h := newHarness(t, tlsSmarthost(t, srv))
			var dbg bytes.Buffer
			h.runner.Debug = relay.RedactAuth(&dbg)
			id := h.enqueue(content, rcptA)
			if st := h.run(); st.Delivered != 1 {
				t.Fatalf("stats %+v; log:\n%s", st, h.log.String())
			}
			if h.read(id) != nil {
				t.Error("still queued")
			}
			wantAuths(t, srv, testPass, mech, "PLAIN")
			if a := srv.Auths(); a[0].Conn != a[1].Conn || srv.Conns() != 1 {
				t.Errorf("fallback on a new connection: %+v, %d connections", a, srv.Conns())
			}
			d := dbg.String()
			for _, want := range []string{"AUTH " + mech, "535 5.7.8 Error: authentication failed", "AUTH PLAIN ****", "235 2.0.0"} {
				if !strings.Contains(d, want) {
					t.Errorf("-v dialogue lacks %q:\n%s", want, d)
				}
			}
			if strings.Contains(d, testPass) || strings.Contains(d, base64.StdEncoding.EncodeToString([]byte("\x00"+testUser+"\x00"+testPass))) {
				t.Errorf("-v dialogue shows the password:\n%s", d)
			}
		})
	}
}

// TestAuth_Fallback_OnlyAutomaticAndOverTLS: no PLAIN after a refused
// CRAM-MD5 in clear (loopback), nor when auth names CRAM-MD5; both
// refusals defer and explain.
func TestAuth_Fallback_OnlyAutomaticAndOverTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
		auth string
	}{
		{"InClear", false, ""},
		{"Named", true, "cram-md5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: tc.tls}, authBehaviour{Hashed: true}, "CRAM-MD5", "PLAIN")
			sh := withAuth(smarthost(srv.Port, "none"))
			if tc.tls {
				sh = tlsSmarthost(t, srv)
			}
			sh.Auth = tc.auth
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			h.mustRead(id)
			wantHint(t, h, rcptA, "deferred", "refused the username or password")
			if a := srv.Auths(); len(a) != 1 || a[0].Mech != "CRAM-MD5" {
				t.Errorf("server saw %+v, want CRAM-MD5 alone", a)
			}
		})
	}
}

// TestAuth_Fallback_BothRefused: the reason names both tries.
func TestAuth_Fallback_BothRefused(t *testing.T) {
	srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, authBehaviour{Hashed: true}, "CRAM-MD5", "PLAIN")
	sh := tlsSmarthost(t, srv)
	sh.Password = "Wr0ng-zebra-pass"
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "(AUTH CRAM-MD5 was refused, then PLAIN)")
	wantHint(t, h, rcptA, "deferred", "refused the username or password")
}

// tlsFront puts implicit TLS with the test certificate in front of a
// testsmtp.RawServer: it returns the port of the TLS side.
func tlsFront(t *testing.T, port int) int {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{testsmtp.LocalhostCert(t).Pair}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{})
				go func() { io.Copy(b, c); b.(*net.TCPConn).CloseWrite(); close(done) }()
				io.Copy(c, b)
				c.Close()
				<-done
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestAuth_Fallback_ServerDropsSessionAfterRefusal: go-smtp's client
// answers a refusal with "*", on which Postfix drops the session ("non-SMTP
// command"); this server does the same. After a 535 the fallback runs on a
// new connection at once and delivers; a 421 (closing) defers, explained,
// with no PLAIN anywhere.
func TestAuth_Fallback_ServerDropsSessionAfterRefusal(t *testing.T) {
	for _, tc := range []struct{ refusal, hint string }{
		{"535 5.7.8 Error: authentication failed", ""},
		{"421 4.7.0 Too many errors, closing", "busy or closing the connection"},
	} {
		t.Run(tc.refusal[:3], func(t *testing.T) {
			srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies([]string{"AUTH CRAM-MD5 PLAIN"}, map[string]func(string) string{
				"AUTH": func(l string) string {
					if strings.HasPrefix(l, "AUTH PLAIN") {
						return "235 2.7.0 Authentication successful"
					}
					return "334 " + base64.StdEncoding.EncodeToString([]byte("<1.2@raw.test>"))
				},
				"*": func(l string) string {
					if l == "*" {
						return testsmtp.RawClose
					}
					return tc.refusal
				},
			}))
			relay.ForgetAuthFallbacks()
			t.Cleanup(relay.ForgetAuthFallbacks)
			sh := withAuth(smarthost(tlsFront(t, srv.Port), "implicit"))
			sh.TLSCAFile = testsmtp.LocalhostCert(t).CAFile(t)
			shortTimeouts(t, 2*time.Second, 2*time.Second, 2*time.Second, 2*time.Second)
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			plain := slices.ContainsFunc(srv.Lines(), func(l string) bool { return strings.HasPrefix(l, "AUTH PLAIN") })
			if tc.hint == "" {
				if h.read(id) != nil || !plain || srv.Conns() != 2 || len(srv.Bodies()) != 1 {
					t.Errorf("want delivery with PLAIN on a second connection; %d connections, server saw %q; log:\n%s", srv.Conns(), srv.Lines(), h.log.String())
				}
				// relay probe (a new process: nothing remembered) says so.
				relay.ForgetAuthFallbacks()
				r := relay.Probe(context.Background(), &sh, relay.ProbeOptions{HeloName: "relay.test"})
				if want := "CRAM-MD5, then PLAIN (on a new connection) as " + testUser + ": ok"; !r.OK() || r.Auth != want {
					t.Errorf("probe: ok %v, Auth %q; want %q (failure %v)", r.OK(), r.Auth, want, r.Failure)
				}
				return
			}
			env := h.mustRead(id)
			wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, tc.refusal[:3])
			wantHint(t, h, rcptA, "deferred", tc.hint)
			if plain || srv.Conns() != 1 {
				t.Errorf("PLAIN or a new connection after a 421: %d connections, %q", srv.Conns(), srv.Lines())
			}
		})
	}
}

// TestAuth_Fallback_Remembered: after a fallback, the next connection to
// the same smarthost starts with PLAIN (no refusal, no Dovecot delay).
func TestAuth_Fallback_Remembered(t *testing.T) {
	srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, authBehaviour{Hashed: true}, "SCRAM-SHA-256", "PLAIN")
	h := newHarness(t, tlsSmarthost(t, srv))
	h.enqueue(content, rcptA)
	h.run()
	h.enqueue(content, rcptB)
	h.run()
	var got []string
	for _, a := range srv.Auths() {
		got = append(got, fmt.Sprintf("%d:%s", a.Conn, a.Mech))
	}
	if strings.Join(got, " ") != "1:SCRAM-SHA-256 1:PLAIN 2:PLAIN" {
		t.Errorf("server saw AUTH %q, want SCRAM then PLAIN on the first connection, PLAIN alone on the second", got)
	}
	if len(srv.Messages()) != 2 {
		t.Errorf("%d messages delivered, want 2", len(srv.Messages()))
	}
}

// tokenScript writes a password_command that prints token-N for its N-th
// run and counts its runs in a file.
func tokenScript(t *testing.T) (cmd []string, runs func() int) {
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	script := writeScript(t, fmt.Sprintf("n=$(cat %[1]s 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > %[1]s\necho tok-Zq9-$n\n", count))
	return []string{script}, func() int {
		b, _ := os.ReadFile(count)
		var n int
		fmt.Sscan(string(b), &n)
		return n
	}
}

// TestAuth_Token_FromPasswordCommand: XOAUTH2 and OAUTHBEARER (named in
// auth) with the token password_command prints: delivered; the token never
// shows in the log.
func TestAuth_Token_FromPasswordCommand(t *testing.T) {
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, authBehaviour{Token: "tok-Zq9-1"}, "PLAIN", mech)
			sh := tlsSmarthost(t, srv)
			sh.Password = ""
			sh.Auth = strings.ToLower(mech)
			sh.PasswordCommand, _ = tokenScript(t)
			h := newHarness(t, sh)
			var dbg bytes.Buffer
			h.runner.Debug = relay.RedactAuth(&dbg)
			id := h.enqueue(content, rcptA)
			if st := h.run(); st.Delivered != 1 {
				t.Fatalf("stats %+v; log:\n%s", st, h.log.String())
			}
			h.read(id)
			wantAuths(t, srv, "tok-Zq9-1", mech)
			for where, s := range map[string]string{"log": h.log.String(), "-v": dbg.String()} {
				if strings.Contains(s, "tok-Zq9") {
					t.Errorf("%s shows the token:\n%s", where, s)
				}
			}
			if !strings.Contains(dbg.String(), "AUTH "+mech+" ****") {
				t.Errorf("-v dialogue lacks the redacted AUTH %s:\n%s", mech, dbg.String())
			}
		})
	}
}

// TestAuth_Token_Refused: a token the server refuses (after its JSON error
// challenge, answered so that the final 535 arrives) defers with the
// token's explanation, not the password's.
func TestAuth_Token_Refused(t *testing.T) {
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, authBehaviour{Token: "the-right-token"}, mech)
			sh := tlsSmarthost(t, srv)
			sh.Password = ""
			sh.Auth = strings.ToLower(mech)
			sh.PasswordCommand, _ = tokenScript(t)
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			env := h.mustRead(id)
			wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "535 5.7.8")
			wantHint(t, h, rcptA, "deferred", "refused the OAuth access token: password_command must print a current access token")
			reason := rcpt(env, rcptA).Reason()
			if !strings.Contains(reason, "(AUTH "+mech+": token refused, status ") {
				t.Errorf("reason %q does not say the token was refused", reason)
			}
			if got := relay.Explain(rcpt(env, rcptA).Failure); !strings.Contains(got, "OAuth access token") {
				t.Errorf("the stored reason explains as %q", got)
			}
			for where, s := range map[string]string{"log": h.log.String(), "reason": reason, "last error": env.LastError()} {
				if strings.Contains(s, "tok-Zq9") {
					t.Errorf("%s shows the token: %s", where, s)
				}
			}
			if a := srv.Auths(); len(a) != 1 || a[0].Pass != "tok-Zq9-1" {
				t.Errorf("server saw %+v", a)
			}
		})
	}
}

// TestAuth_XOAUTH2_ErrorChallengeAnsweredEmpty: on the wire, the JSON error
// challenge gets an empty line (not "*"), and the 535 that follows is what
// relay reports.
func TestAuth_XOAUTH2_ErrorChallengeAnsweredEmpty(t *testing.T) {
	greeted := 0
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies([]string{"AUTH XOAUTH2"}, map[string]func(string) string{
		"AUTH": func(string) string {
			return "334 " + base64.StdEncoding.EncodeToString([]byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`))
		},
		// The empty answer reads like the greeting's call ("") to
		// testsmtp.SMTPReplies: the first one is the greeting.
		"GREETING": func(string) string {
			greeted++
			if greeted == 1 {
				return "220 raw.test ESMTP"
			}
			return "535-5.7.8 Username and Password not accepted.\n535 5.7.8 Learn more"
		},
		"*": func(l string) string { return "500 5.5.2 not the empty line: " + l },
	}))
	sh := withAuth(smarthost(srv.Port, "none"))
	sh.Auth = "xoauth2"
	_, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	var f *relay.Failure
	if !errors.As(err, &f) || f.Code != 535 || !strings.Contains(f.Text, "(AUTH XOAUTH2: token refused, status 400, scope https://mail.google.com/)") {
		t.Fatalf("Dial error %v, want the 535 with the token's refusal", err)
	}
	lines := srv.Lines()
	for i, l := range lines {
		if strings.HasPrefix(l, "AUTH XOAUTH2 ") {
			if i+1 >= len(lines) || lines[i+1] != "" {
				t.Errorf("the answer to the error challenge was %q, want an empty line: %q", lines[min(i+1, len(lines)-1)], lines)
			}
			return
		}
	}
	t.Errorf("no AUTH XOAUTH2 sent: %q", lines)
}

// TestAuth_PasswordCommand_RunsPerConnection: two connections, the command
// ran twice, and each connection carried the token of its own run.
func TestAuth_PasswordCommand_RunsPerConnection(t *testing.T) {
	srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, authBehaviour{}, "XOAUTH2")
	// Any token of the script is good; what matters is which one came.
	srv.SetConfig(func(c *testsmtp.ServerConfig) {
		c.AuthServer = func(mech string, check func(testsmtp.AuthSeen) error) sasl.Server {
			return &xoauth2Server{check: func(a testsmtp.AuthSeen) error {
				check(a)
				if !strings.HasPrefix(a.Pass, "tok-Zq9-") {
					return smtp.ErrAuthFailed
				}
				return nil
			}}
		}
		c.Password = ""
	})
	sh := tlsSmarthost(t, srv)
	sh.Password = ""
	sh.Auth = "xoauth2"
	var runs func() int
	sh.PasswordCommand, runs = tokenScript(t)
	h := newHarness(t, sh)
	h.enqueue(content, rcptA)
	h.run() // connection 1
	h.enqueue(content, rcptB)
	h.run() // connection 2
	if n := runs(); n != 2 {
		t.Errorf("password_command ran %d times for 2 connections", n)
	}
	a := srv.Auths()
	if len(a) != 2 || a[0].Conn != 1 || a[0].Pass != "tok-Zq9-1" || a[1].Conn != 2 || a[1].Pass != "tok-Zq9-2" {
		t.Errorf("server saw %+v, want tok-Zq9-1 on connection 1 and tok-Zq9-2 on connection 2", a)
	}
	if len(srv.Messages()) != 2 {
		t.Errorf("%d messages delivered, want 2", len(srv.Messages()))
	}
}

// TestAuth_SCRAM_ServerWithoutProof: a server that says 235 without its
// SCRAM signature has not proved it knows the password: no MAIL.
func TestAuth_SCRAM_ServerWithoutProof(t *testing.T) {
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies([]string{"AUTH SCRAM-SHA-256"}, map[string]func(string) string{
		"AUTH": func(l string) string {
			f := strings.Fields(l)
			first, _ := base64.StdEncoding.DecodeString(f[len(f)-1])
			_, nonce, _ := strings.Cut(string(first), ",r=")
			return "334 " + base64.StdEncoding.EncodeToString([]byte("r="+nonce+"srv,s="+base64.StdEncoding.EncodeToString([]byte("salt"))+",i=4096"))
		},
		"*": func(string) string { return "235 2.7.0 Authentication successful" },
	}))
	sh := withAuth(smarthost(srv.Port, "none"))
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	h.mustRead(id)
	wantHint(t, h, rcptA, "deferred", "SCRAM-SHA-256 login did not check out")
	for _, c := range srv.Commands() {
		if c == "MAIL" {
			t.Errorf("MAIL after an unproven SCRAM login: %q", srv.Lines())
		}
	}
}

// TestProbe_ShowsMechanismUsed: relay probe names the mechanism, and both
// after a fallback.
func TestProbe_ShowsMechanismUsed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      authBehaviour
		mechs  []string
		want   string
		wantOK bool
	}{
		{"SCRAM", authBehaviour{}, []string{"PLAIN", "CRAM-MD5", "SCRAM-SHA-256"}, "SCRAM-SHA-256 as " + testUser + ": ok", true},
		{"Fallback", authBehaviour{Hashed: true}, []string{"PLAIN", "CRAM-MD5"}, "CRAM-MD5, then PLAIN as " + testUser + ": ok", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, tc.b, tc.mechs...)
			sh := tlsSmarthost(t, srv)
			r := relay.Probe(context.Background(), &sh, relay.ProbeOptions{HeloName: "relay.test"})
			if r.OK() != tc.wantOK || r.Auth != tc.want {
				t.Errorf("probe: ok %v, Auth %q; want %q (failure %v)", r.OK(), r.Auth, tc.want, r.Failure)
			}
			var out bytes.Buffer
			r.Format(&out, relay.Explain, time.Now())
			if !strings.Contains(out.String(), "AUTH:         "+tc.want) {
				t.Errorf("probe report lacks the AUTH line %q:\n%s", tc.want, out.String())
			}
		})
	}
}
