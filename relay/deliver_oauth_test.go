package relay_test

// Delivery with [smarthost.oauth]: the token from the scripted
// authorization server of internal/testoauth, checked by the test
// smarthost against it; the mechanism chosen by what the server offers;
// a refused grant, an unreachable token endpoint and a refused valid
// token defer the mail as relay's own side, with the explanation; no
// token in the log or the dialogue.

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testoauth"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/oauth"
	"github.com/relaymail/relay/oauth/flow"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// The runner's tokens come from flow.Token in this process, not from the
// relay-oauth helper, which the tests of this package do not build.
func init() { oauth.Fetch = flow.Token }

// oauthServer is a test smarthost offering mechs over plain text on
// loopback, whose XOAUTH2 and OAUTHBEARER accept the tokens as live at
// the authorization server.
func oauthServer(t *testing.T, as *testoauth.Server, cfg testsmtp.ServerConfig, mechs ...string) *testsmtp.FaultServer {
	t.Helper()
	cfg.AuthMechs, cfg.AllowInsecureAuth = mechs, true
	servers := authServers(testPass, authBehaviour{})
	cfg.AuthServer = func(mech string, check func(testsmtp.AuthSeen) error) sasl.Server {
		return servers(mech, func(a testsmtp.AuthSeen) error {
			if !as.Valid(a.Pass) {
				check(a)
				return errors.New("token not active")
			}
			return check(a)
		})
	}
	return testsmtp.NewFaultServer(t, cfg)
}

// oauthHarness is a harness whose smarthost logs in with OAuth (a generic
// provider, device flow), logged in already; its access token is within
// the refresh margin, so the first connection refreshes it.
func oauthHarness(t *testing.T, as *testoauth.Server, port int) *harness {
	t.Helper()
	sh := smarthost(port, "none")
	sh.Name, sh.Username = "oauthhost", testUser
	sh.OAuth = config.OAuth{Provider: "generic", Flow: "device", ClientID: "relay-test-client",
		DeviceAuthorizationURL: as.URL + "/device", TokenURL: as.URL + "/token", Scopes: []string{"mail"},
		TokenFile: filepath.Join(t.TempDir(), "oauth", "oauthhost.json")}
	as.Set(func(s *testoauth.Script) { s.AccessLifetime = time.Minute })
	if err := flow.Login(context.Background(), oauth.New(&sh), strings.NewReader(""), io.Discard); err != nil {
		t.Fatal(err)
	}
	as.Set(func(s *testoauth.Script) { s.AccessLifetime = time.Hour })
	return newHarness(t, sh)
}

// noIssuedTokens fails when a token of as shows in the harness's log or
// dialogue.
func noIssuedTokens(t *testing.T, h *harness, as *testoauth.Server) {
	t.Helper()
	out := h.log.String() + h.debug.String()
	for _, tok := range as.Issued() {
		if strings.Contains(out, tok) {
			t.Errorf("a token (%s…) shows in the log or the dialogue", tok[:5])
		}
	}
}

func TestOAuth_MechanismByWhatTheServerOffers(t *testing.T) {
	for _, c := range []struct {
		offered []string
		want    string
	}{
		{[]string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}, "OAUTHBEARER"},
		{[]string{"PLAIN", "XOAUTH2"}, "XOAUTH2"},
	} {
		as := testoauth.New(t, testoauth.Script{})
		srv := oauthServer(t, as, testsmtp.ServerConfig{}, c.offered...)
		h := oauthHarness(t, as, srv.Port)
		id := h.enqueue(content, rcptA)
		if st := h.run(); st.Delivered != 1 {
			t.Fatalf("offered %v: %+v\n%s", c.offered, st, h.log.String())
		}
		if h.read(id) != nil {
			t.Error("the message is still queued")
		}
		auths := srv.Auths()
		if len(auths) != 1 || auths[0].Mech != c.want || auths[0].User != testUser || !as.Valid(auths[0].Pass) {
			t.Errorf("offered %v: AUTH %+v, want %s with a live token", c.offered, auths, c.want)
		}
		if n := as.Count("refresh_token"); n != 1 {
			t.Errorf("%d refreshes, want 1 (the token was within its margin)", n)
		}
		if !strings.Contains(h.debug.String(), "AUTH "+c.want) {
			t.Errorf("the dialogue does not show AUTH %s:\n%s", c.want, h.debug.String())
		}
		noIssuedTokens(t, h, as)
	}
}

// TestOAuth_InvalidGrantDefersAndExplains: a revoked grant defers the
// mail (never a bounce) as relay's own side, with an error line that
// names relay oauth login NAME and the explanation; the smarthost is not
// even asked.
func TestOAuth_InvalidGrantDefersAndExplains(t *testing.T) {
	as := testoauth.New(t, testoauth.Script{})
	srv := oauthServer(t, as, testsmtp.ServerConfig{}, "XOAUTH2")
	h := oauthHarness(t, as, srv.Port)
	as.RevokeAll()
	id := h.enqueue(content, rcptA)
	st := h.run()
	if st.Deferred != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v, want one deferral", st)
	}
	env := h.mustRead(id)
	r := rcpt(env, rcptA)
	if r.Status != spool.Pending || r.Failure == nil || r.Failure.Stage != relay.StageLocal || !env.OwnSide() {
		t.Fatalf("recipient %+v: want pending, failed at stage local (relay's own side)", r)
	}
	if !strings.Contains(r.Reason(), "run relay oauth login oauthhost") {
		t.Errorf("reason %q does not name relay oauth login oauthhost", r.Reason())
	}
	lines := h.logLines(rcptA)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") ||
		!strings.Contains(lines[0], "status=deferred") || !strings.Contains(lines[0], `hint="relay has no usable OAuth grant`) {
		t.Errorf("log line %q: want an error, deferred, with the explanation", lines)
	}
	if len(srv.Auths()) != 0 {
		t.Error("AUTH was sent without a token")
	}
	noIssuedTokens(t, h, as)
}

// TestOAuth_UnreachableTokenEndpointDefers: an endpoint that hangs is
// bounded by oauth.HTTPTimeout; the mail waits, explained.
func TestOAuth_UnreachableTokenEndpointDefers(t *testing.T) {
	old := oauth.HTTPTimeout
	oauth.HTTPTimeout = 300 * time.Millisecond
	t.Cleanup(func() { oauth.HTTPTimeout = old })
	as := testoauth.New(t, testoauth.Script{})
	srv := oauthServer(t, as, testsmtp.ServerConfig{}, "XOAUTH2")
	h := oauthHarness(t, as, srv.Port)
	as.Set(func(s *testoauth.Script) { s.TokenHang = true })
	id := h.enqueue(content, rcptA)
	if st := h.run(); st.Deferred != 1 {
		t.Fatalf("stats %+v", st)
	}
	r := rcpt(h.mustRead(id), rcptA)
	if !strings.Contains(r.Reason(), "cannot be reached") || relay.Explain(r.Failure) == "" ||
		!strings.Contains(relay.Explain(r.Failure), "relay tries again") {
		t.Errorf("reason %q, explanation %q", r.Reason(), relay.Explain(r.Failure))
	}
}

// TestOAuth_ValidTokenRefusedDefers: the smarthost refuses a token the
// endpoint just issued (SMTP AUTH disabled for the mailbox): deferred
// with its own explanation, and the token forgotten so that the next
// connection gets a new one.
func TestOAuth_ValidTokenRefusedDefers(t *testing.T) {
	as := testoauth.New(t, testoauth.Script{})
	srv := oauthServer(t, as, testsmtp.ServerConfig{AuthErr: &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 139},
		Message: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox"}}, "XOAUTH2")
	h := oauthHarness(t, as, srv.Port)
	id := h.enqueue(content, rcptA)
	if st := h.run(); st.Deferred != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	r := rcpt(h.mustRead(id), rcptA)
	if !strings.Contains(r.Reason(), "a valid token of relay oauth") || !strings.Contains(r.Reason(), "relay oauth login oauthhost") ||
		!strings.Contains(relay.Explain(r.Failure), "refused a valid OAuth access token") {
		t.Errorf("reason %q, explanation %q", r.Reason(), relay.Explain(r.Failure))
	}
	st, _ := oauth.New(&h.cfg.Smarthosts[0]).Status()
	if !st.Expiry.IsZero() {
		t.Error("the refused access token is still cached")
	}
	noIssuedTokens(t, h, as)
}
