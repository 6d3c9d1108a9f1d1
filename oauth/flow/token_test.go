package flow_test

// The access token at delivery: cached, refreshed, rotated, refused,
// bounded, and refreshed once however many ask at the same time.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testoauth"
	"github.com/relaymail/relay/oauth"
	"github.com/relaymail/relay/oauth/flow"
)

// loggedIn is an account after a device login whose access token is
// already within RefreshMargin of its expiry: the next Token refreshes.
func loggedIn(t *testing.T, s testoauth.Script) (*testoauth.Server, *oauth.Account) {
	t.Helper()
	s.AccessLifetime = time.Minute
	srv := testoauth.New(t, s)
	a := account(t, srv, "device")
	if err := flow.Login(context.Background(), a, strings.NewReader(""), io.Discard); err != nil {
		t.Fatal(err)
	}
	srv.Set(func(s *testoauth.Script) { s.AccessLifetime = time.Hour })
	return srv, a
}

// TestToken_RotationStoredBeforeUse: a rotated refresh token is in the
// token file when Token returns the new access token, and the old one is
// dead at the server: only the stored one keeps the grant.
func TestToken_RotationStoredBeforeUse(t *testing.T) {
	srv, a := loggedIn(t, testoauth.Script{Rotate: true})
	before := grantFile(t, a)["refresh_token"]
	tok, err := a.Token(context.Background())
	if err != nil || !tok.Fresh {
		t.Fatalf("refresh: %v (fresh %v)", err, tok.Fresh)
	}
	g := grantFile(t, a)
	if g["refresh_token"] == before || g["access_token"] != tok.Access {
		t.Fatal("the rotated refresh token and the new access token were not stored before Token returned")
	}
	// Another process (a new Account) finds the stored access token.
	b := *a
	again, err := b.Token(context.Background())
	if err != nil || again.Access != tok.Access || again.Fresh {
		t.Errorf("the stored token was not used: %v", err)
	}
	if n := srv.Count("refresh_token"); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

// TestToken_InvalidGrant: a revoked grant is an error that names relay
// oauth login NAME; status and the file say so; no token is shown.
func TestToken_InvalidGrant(t *testing.T) {
	srv, a := loggedIn(t, testoauth.Script{})
	srv.RevokeAll()
	_, tokErr := a.Token(context.Background())
	if !oauth.IsLoginNeeded(tokErr) || !strings.Contains(tokErr.Error(), "refused the grant (invalid_grant") ||
		!strings.Contains(tokErr.Error(), "run relay oauth login testhost") {
		t.Fatalf("error %v, want a refused grant naming relay oauth login testhost", tokErr)
	}
	st, err := a.Status()
	if err != nil || !st.LoginNeeded || !strings.Contains(st.Problem(), "relay oauth login testhost") {
		t.Fatalf("status %+v, %v", st, err)
	}
	var out bytes.Buffer
	st.Write(&out, time.Now())
	for _, want := range []string{"last error:", "invalid_grant", "to do:          run relay oauth login testhost"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	noTokens(t, srv, "status", out.String()+tokErr.Error())
	// The dead grant keeps no access token that could look alive.
	if g := grantFile(t, a); g["access_token"] != nil {
		t.Error("the token file still holds an access token after invalid_grant")
	}
}

// TestToken_NoGrant: before any login, the error says to log in.
func TestToken_NoGrant(t *testing.T) {
	srv := testoauth.New(t, testoauth.Script{})
	a := account(t, srv, "authcode")
	_, err := a.Token(context.Background())
	if !oauth.IsLoginNeeded(err) || !strings.Contains(err.Error(), "no grant yet") {
		t.Fatalf("error %v", err)
	}
	if len(srv.Requests()) != 0 {
		t.Error("the endpoint was asked without a grant")
	}
}

// TestToken_HangingEndpointBounded: a token endpoint that never answers
// costs HTTPTimeout, then an error that says relay tries again.
func TestToken_HangingEndpointBounded(t *testing.T) {
	srv, a := loggedIn(t, testoauth.Script{})
	old := oauth.HTTPTimeout
	oauth.HTTPTimeout = 300 * time.Millisecond
	t.Cleanup(func() { oauth.HTTPTimeout = old })
	srv.Set(func(s *testoauth.Script) { s.TokenHang = true })
	done := make(chan error, 1)
	go func() {
		_, err := a.Token(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		var e *oauth.Error
		if !errors.As(err, &e) || e.LoginNeeded || !strings.Contains(err.Error(), "cannot be reached") || !strings.Contains(err.Error(), "relay tries again") {
			t.Errorf("error %v, want an unreachable endpoint", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Token did not return: the hanging endpoint was not bounded")
	}
	st, _ := a.Status()
	if st.LastError == "" || st.LoginNeeded {
		t.Errorf("status after a hang: %+v", st)
	}
}

// TestToken_ConcurrentWorkersOneRefresh: eight workers of one process
// need a token at once: one refresh, one token for all.
func TestToken_ConcurrentWorkersOneRefresh(t *testing.T) {
	srv, a := loggedIn(t, testoauth.Script{Rotate: true})
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Go(func() {
			b := *a // each worker builds its own Account, as relay does
			tok, err := b.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok.Access
		})
	}
	wg.Wait()
	if n := srv.Count("refresh_token"); n != 1 {
		t.Errorf("%d refreshes for 8 workers, want 1", n)
	}
	for _, tok := range toks {
		if tok != toks[0] || !srv.Valid(tok) {
			t.Error("the workers did not all get the one refreshed token")
		}
	}
}

// TestToken_ConcurrentProcessesOneRefresh: three processes (this test
// binary run as a helper) need a token at once: the file lock makes it
// one refresh.
func TestToken_ConcurrentProcessesOneRefresh(t *testing.T) {
	srv, a := loggedIn(t, testoauth.Script{Rotate: true})
	conf, _ := json.Marshal(a)
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperToken$")
		cmd.Env = append(os.Environ(), "OAUTH_HELPER="+string(conf))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	if n := srv.Count("refresh_token"); n != 1 {
		t.Errorf("%d refreshes for 3 processes, want 1", n)
	}
	for i, out := range outs {
		noTokens(t, srv, "helper output", out.String())
		if !strings.Contains(out.String(), "PASS") {
			t.Errorf("helper %d:\n%s", i, out)
		}
	}
}

// TestHelperToken is the helper process of
// TestToken_ConcurrentProcessesOneRefresh.
func TestHelperToken(t *testing.T) {
	conf := os.Getenv("OAUTH_HELPER")
	if conf == "" {
		t.Skip("helper process only")
	}
	var a oauth.Account
	if err := json.Unmarshal([]byte(conf), &a); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestNew: the account of a smarthost.
func TestNew(t *testing.T) {
	sh := &config.Smarthost{Name: "x", Username: user, OAuth: config.OAuth{Provider: "generic", Flow: "device", TokenFile: "/nonexistent/x.json"}}
	if a := oauth.New(sh); a.Name != "x" || a.User != user || a.TokenFile() != "/nonexistent/x.json" {
		t.Errorf("New: %+v", a)
	}
}

// TestToken_SmarthostsSourceAddressAndFamily: without a proxy the token
// endpoint is reached as the smarthost is, from its source_address and
// over its ip_family (New takes both from the smarthost): the server sees
// 127.0.0.2; ipv6 cannot reach it on 127.0.0.1.
func TestToken_SmarthostsSourceAddressAndFamily(t *testing.T) {
	srv, a := loggedIn(t, testoauth.Script{})
	sh := &config.Smarthost{Name: a.Name, Username: a.User, OAuth: a.Conf, SourceAddress: "127.0.0.2", IPFamily: "ipv4"}
	b := oauth.New(sh)
	if b.SourceAddress != "127.0.0.2" || b.IPFamily != "ipv4" {
		t.Fatalf("New: %+v", b)
	}
	srv.Set(func(s *testoauth.Script) { s.AccessLifetime = time.Minute }) // the next Token refreshes again
	if _, err := b.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if last := reqs[len(reqs)-1]; last.GrantType != "refresh_token" || !strings.HasPrefix(last.RemoteAddr, "127.0.0.2:") {
		t.Errorf("the refresh came from %s (%s), want source_address 127.0.0.2", last.RemoteAddr, last.GrantType)
	}

	c := *b
	c.SourceAddress, c.IPFamily = "", "ipv6"
	if _, err := c.Token(context.Background()); err == nil {
		t.Error("ip_family ipv6 reached the endpoint on 127.0.0.1")
	}
}
