package flow_test

// Each flow against the scripted authorization server of
// internal/testoauth: the device flow (pending, slow_down, denied,
// expired), the authorization-code flow with PKCE (loopback listener and
// pasted redirect), client_credentials and the service account's JWT.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testoauth"
	"github.com/relaymail/relay/oauth"
	"github.com/relaymail/relay/oauth/flow"
)

const user = "robot@example.test"

// TestMain: oauth.Account.Token gets its tokens in this process, from
// flow.Token, instead of from the relay-oauth helper.
func TestMain(m *testing.M) {
	oauth.Fetch = flow.Token
	os.Exit(m.Run())
}

// account is a generic account against srv, its token file in a
// directory of the test's own.
func account(t *testing.T, srv *testoauth.Server, flow string) *oauth.Account {
	t.Helper()
	return &oauth.Account{Name: "testhost", User: user, Conf: config.OAuth{
		Provider: "generic", Flow: flow, ClientID: "relay-test-client",
		DeviceAuthorizationURL: srv.URL + "/device", AuthorizationURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token",
		Scopes: []string{"mail.send", "offline_access"}, Subject: user,
		TokenFile: filepath.Join(t.TempDir(), "oauth", "testhost.json"),
	}}
}

// noTokens fails the test when any token srv issued appears in out.
func noTokens(t *testing.T, srv *testoauth.Server, what, out string) {
	t.Helper()
	for _, tok := range srv.Issued() {
		if strings.Contains(out, tok) {
			t.Errorf("%s shows a token (%s…):\n%s", what, tok[:5], out)
		}
	}
}

// grantFile reads the token file as JSON.
func grantFile(t *testing.T, a *oauth.Account) map[string]any {
	t.Helper()
	fi, err := os.Stat(a.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(a.TokenFile())
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeviceLogin_PendingThenApproved(t *testing.T) {
	srv := testoauth.New(t, testoauth.Script{ClientID: "relay-test-client", PendingPolls: 2})
	a := account(t, srv, "device")
	var out bytes.Buffer
	if err := flow.Login(context.Background(), a, strings.NewReader(""), &out); err != nil {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), srv.URL+"/verify") || !regexp.MustCompile(`\bUC-\d{4}\b`).MatchString(out.String()) {
		t.Errorf("the login did not show the verification URL and the user code:\n%s", out.String())
	}
	if n := srv.Count("urn:ietf:params:oauth:grant-type:device_code"); n != 3 {
		t.Errorf("%d polls, want 3 (two authorization_pending, then the grant)", n)
	}
	g := grantFile(t, a)
	issued := srv.Issued()
	if g["refresh_token"] != issued[1] || g["access_token"] != issued[0] {
		t.Errorf("the token file does not hold the grant")
	}
	noTokens(t, srv, "login output", out.String())
	// The device flow sends client_id in the body (public client).
	for _, r := range srv.Requests() {
		if r.Form.Get("client_id") != "relay-test-client" {
			t.Errorf("%s without client_id in the body", r.Path)
		}
	}
}

// TestDeviceLogin_SlowDown: after slow_down the interval grows by 5
// seconds (RFC 8628 3.5): the next poll comes no sooner.
func TestDeviceLogin_SlowDown(t *testing.T) {
	srv := testoauth.New(t, testoauth.Script{SlowDowns: 1, PendingPolls: 1})
	a := account(t, srv, "device")
	if err := flow.Login(context.Background(), a, strings.NewReader(""), io.Discard); err != nil {
		t.Fatal(err)
	}
	polls := srv.PollTimes()
	if len(polls) != 2 {
		t.Fatalf("%d polls, want 2", len(polls))
	}
	if gap := polls[1].Sub(polls[0]); gap < 5900*time.Millisecond {
		t.Errorf("the poll after slow_down came %v later, want the interval plus 5 s (6 s)", gap)
	}
}

func TestDeviceLogin_DeniedAndExpired(t *testing.T) {
	for _, c := range []struct {
		script testoauth.Script
		want   string
	}{
		{testoauth.Script{Deny: true}, "the sign-in was declined (access_denied)"},
		{testoauth.Script{Expire: true}, "the code expired before the sign-in was approved (expired_token)"},
	} {
		srv := testoauth.New(t, c.script)
		a := account(t, srv, "device")
		err := flow.Login(context.Background(), a, strings.NewReader(""), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("login error %v, want %q", err, c.want)
		}
		if _, err := os.Stat(a.TokenFile()); !os.IsNotExist(err) {
			t.Errorf("a refused login left a token file (%v)", err)
		}
	}
}

// syncBuffer is a buffer the login writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var authURL = regexp.MustCompile(`(?m)^\s+(http://\S+/authorize\?\S+)$`)

// startAuthcode starts a login and returns the address it asks the user
// to open, the user's input, and the login's result.
func startAuthcode(t *testing.T, a *oauth.Account) (string, *io.PipeWriter, *syncBuffer, chan error) {
	t.Helper()
	in, w := io.Pipe()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- flow.Login(context.Background(), a, in, out) }()
	for range 500 {
		if m := authURL.FindStringSubmatch(out.String()); m != nil {
			return m[1], w, out, done
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no authorization URL shown:\n%s", out.String())
	return "", nil, nil, nil
}

// TestAuthcodeLogin_LoopbackListener: the browser (here an HTTP client
// that follows the redirect) brings the code back to relay's listener.
func TestAuthcodeLogin_LoopbackListener(t *testing.T) {
	srv := testoauth.New(t, testoauth.Script{})
	a := account(t, srv, "authcode")
	u, w, out, done := startAuthcode(t, a)
	defer w.Close()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	if !strings.Contains(string(body), "relay received the authorization") {
		t.Errorf("the redirect page said %q", body)
	}
	if n := srv.Count("authorization_code"); n != 1 {
		t.Errorf("%d code exchanges, want 1 (with the PKCE verifier the server checked)", n)
	}
	if g := grantFile(t, a); g["refresh_token"] == nil {
		t.Error("no refresh token stored")
	}
	noTokens(t, srv, "login output", out.String())
}

// TestAuthcodeLogin_PastedRedirect: on a server without a browser, the
// user pastes the address the browser could not load.
func TestAuthcodeLogin_PastedRedirect(t *testing.T) {
	srv := testoauth.New(t, testoauth.Script{})
	a := account(t, srv, "authcode")
	u, w, out, done := startAuthcode(t, a)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	io.WriteString(w, "not an address\n"+loc+"\n")
	if err := <-done; err != nil {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "neither the address") {
		t.Errorf("a wrong paste was not answered:\n%s", out.String())
	}
	if g := grantFile(t, a); g["refresh_token"] == nil {
		t.Error("no refresh token stored")
	}
}

// TestAuthcodeLogin_ForeignState: a redirect of another login (its state
// differs) is refused and nothing is stored.
func TestAuthcodeLogin_ForeignState(t *testing.T) {
	srv := testoauth.New(t, testoauth.Script{})
	a := account(t, srv, "authcode")
	_, w, _, done := startAuthcode(t, a)
	io.WriteString(w, "http://127.0.0.1:1/?code=AC-x&state=forged\n")
	if err := <-done; err == nil || !strings.Contains(err.Error(), "state does not match") {
		t.Errorf("login error %v, want a state mismatch", err)
	}
	if _, err := os.Stat(a.TokenFile()); !os.IsNotExist(err) {
		t.Error("a refused login left a token file")
	}
}

func TestClientCredentials(t *testing.T) {
	srv := testoauth.New(t, testoauth.Script{ClientID: "relay-test-client", ClientSecret: "s3cret-zebra"})
	a := account(t, srv, "client_credentials")
	a.Conf.ClientSecretFile = filepath.Join(t.TempDir(), "secret")
	os.WriteFile(a.Conf.ClientSecretFile, []byte("s3cret-zebra\n"), 0o600)
	tok, err := a.Token(context.Background())
	if err != nil || !tok.Fresh || !srv.Valid(tok.Access) {
		t.Fatalf("token %v fresh %v, err %v", srv.Valid(tok.Access), tok.Fresh, err)
	}
	again, err := a.Token(context.Background())
	if err != nil || again.Access != tok.Access || again.Fresh {
		t.Errorf("the second call did not use the cached token (err %v)", err)
	}
	if n := srv.Count("client_credentials"); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	st, _ := a.Status()
	var out bytes.Buffer
	st.Write(&out, time.Now())
	noTokens(t, srv, "status", out.String())
	if strings.Contains(out.String(), "s3cret-zebra") || st.Problem() != "" {
		t.Errorf("status:\n%s", out.String())
	}
}

// TestServiceAccount: a JWT signed with the key of the service account's
// JSON file, for the mailbox in subject (RFC 7523).
func TestServiceAccount(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := testoauth.New(t, testoauth.Script{JWTKey: &key.PublicKey})
	a := account(t, srv, "service_account")
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": "relay@project.iam.example",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "private_key_id": "k1"})
	a.Conf.ServiceAccountFile = filepath.Join(t.TempDir(), "sa.json")
	os.WriteFile(a.Conf.ServiceAccountFile, keyFile, 0o600)
	tok, err := a.Token(context.Background())
	if err != nil || !srv.Valid(tok.Access) {
		t.Fatalf("service account token: %v", err)
	}
	if n := srv.Count("urn:ietf:params:oauth:grant-type:jwt-bearer"); n != 1 {
		t.Errorf("%d JWT bearer requests, want 1", n)
	}
}
