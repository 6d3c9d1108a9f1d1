// Package testoauth is an OAuth 2.0 authorization server for tests,
// scripted per test: the device flow (RFC 8628, with authorization_pending,
// slow_down, access_denied and expired_token on demand), the
// authorization-code flow with PKCE, refresh with or without rotation,
// client_credentials, the JWT bearer grant of service accounts (RFC 7523),
// token introspection (RFC 7662) for Dovecot's oauth2 passdb, revocation,
// and faults (a hanging token endpoint, a forced error). It records every
// request, and every token it issued, so that a test can grep any output
// for them.
//
// It is imported by _test.go files (and the e2e tests) only.
package testoauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Script says how the server behaves; change it with Set while it runs.
type Script struct {
	ClientID     string // the only client accepted ("" any)
	ClientSecret string // required when set (client_credentials, confidential clients)
	// AccessLifetime is the expires_in of access tokens (default 1h).
	AccessLifetime time.Duration
	// Rotate: every refresh issues a new refresh token and revokes the
	// old one at once (no grace).
	Rotate bool
	// Device flow: the code is approved after PendingPolls answers of
	// authorization_pending, the first SlowDowns of which are slow_down
	// instead; Deny answers access_denied, Expire expired_token.
	Interval     int // seconds (default 1)
	PendingPolls int
	SlowDowns    int
	Deny, Expire bool
	// Manual: a device code is pending until the test calls Approve
	// with its user code (after PendingPolls and SlowDowns).
	Manual bool
	// TokenError, when set, is the error code every token request gets
	// (400).
	TokenError string
	// TokenHang makes the token endpoint hold requests until the test
	// ends.
	TokenHang bool
	// JWTKey checks the signature of service-account assertions.
	JWTKey *rsa.PublicKey
	// User is the account the grants are for (default robot@example.test).
	User string
}

// Request is a request the server received.
type Request struct {
	Path      string
	GrantType string
	Form      url.Values
	Time      time.Time
	// RemoteAddr is the client's address (host:port), as the server saw it.
	RemoteAddr string
}

// Server is a running authorization server.
type Server struct {
	URL string // http://127.0.0.1:port

	t       testing.TB
	srv     *httptest.Server
	release chan struct{}

	mu       sync.Mutex
	script   Script
	requests []Request
	issued   []string             // every token issued
	access   map[string]tokenInfo // access token → info
	refresh  map[string]string    // live refresh token → user
	devices  map[string]*device   // device code → state
	codes    map[string]authCode  // authorization code → request
}

type tokenInfo struct {
	user    string
	expiry  time.Time
	revoked bool
}

type device struct {
	polls     int
	lastPoll  time.Time
	userCode  string
	approved  bool // the code was exchanged
	pollTimes []time.Time
	// userApproved: the user signed in and approved (Approve).
	userApproved bool
}

type authCode struct {
	challenge, redirect, clientID string
}

// New starts a server on a free loopback port; it stops at the end of
// the test.
func New(t testing.TB, s Script) *Server { return NewOn(t, "127.0.0.1:0", s) }

// NewOn starts a server on addr (the e2e tests: a fixed port that
// Dovecot's configuration names).
func NewOn(t testing.TB, addr string, s Script) *Server {
	srv := &Server{t: t, script: s, release: make(chan struct{}), access: map[string]tokenInfo{},
		refresh: map[string]string{}, devices: map[string]*device{}, codes: map[string]authCode{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/device", srv.deviceAuth)
	mux.HandleFunc("/token", srv.token)
	mux.HandleFunc("/authorize", srv.authorize)
	mux.HandleFunc("/introspect", srv.introspect)
	hs := httptest.NewUnstartedServer(mux)
	if addr != "127.0.0.1:0" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("testoauth: listen %s: %v", addr, err)
		}
		hs.Listener.Close()
		hs.Listener = ln
	}
	hs.Start()
	srv.srv, srv.URL = hs, hs.URL
	t.Cleanup(func() {
		close(srv.release)
		hs.CloseClientConnections()
		hs.Close()
	})
	return srv
}

// Set changes the script.
func (s *Server) Set(f func(*Script)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.script)
}

// Requests returns the requests so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns how many token requests had the grant type.
func (s *Server) Count(grantType string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.GrantType == grantType {
			n++
		}
	}
	return n
}

// Issued returns every token the server issued (access and refresh).
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// Valid reports whether an access token is live (issued, not expired,
// not revoked).
func (s *Server) Valid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.access[tok]
	return ok && !i.revoked && time.Now().Before(i.expiry)
}

// ExpireAccess makes every access token issued so far expired (at the
// server: the client's cache still believes them).
func (s *Server) ExpireAccess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, i := range s.access {
		i.expiry = time.Now().Add(-time.Second)
		s.access[k] = i
	}
}

// RevokeAll revokes every grant and access token: the next refresh gets
// invalid_grant, introspection says inactive.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh = map[string]string{}
	for k, i := range s.access {
		i.revoked = true
		s.access[k] = i
	}
}

// Approve approves the device code shown as userCode (the user signed
// in); it reports whether there was one.
func (s *Server) Approve(userCode string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode == userCode {
			d.userApproved = true
			return true
		}
	}
	return false
}

// PollTimes returns when the device code was polled, in order.
func (s *Server) PollTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, d := range s.devices {
		out = append(out, d.pollTimes...)
	}
	return out
}

func (s *Server) record(r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, GrantType: r.PostForm.Get("grant_type"), Form: r.PostForm, Time: time.Now(), RemoteAddr: r.RemoteAddr})
	s.mu.Unlock()
}

func randomToken(prefix string) string {
	b := make([]byte, 18)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": "testoauth says " + code})
}

func (s *Server) user() string {
	if s.script.User != "" {
		return s.script.User
	}
	return "robot@example.test"
}

// issue makes an access token (and a refresh token when refresh is set);
// s.mu is held.
func (s *Server) issue(w http.ResponseWriter, refresh bool) {
	life := s.script.AccessLifetime
	if life == 0 {
		life = time.Hour
	}
	at := randomToken("AT-")
	s.access[at] = tokenInfo{user: s.user(), expiry: time.Now().Add(life)}
	s.issued = append(s.issued, at)
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(life.Seconds())}
	if refresh {
		rt := randomToken("RT-")
		s.refresh[rt] = s.user()
		s.issued = append(s.issued, rt)
		resp["refresh_token"] = rt
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) deviceAuth(w http.ResponseWriter, r *http.Request) {
	s.record(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.script.ClientID != "" && r.PostForm.Get("client_id") != s.script.ClientID {
		oauthError(w, "invalid_client")
		return
	}
	interval := s.script.Interval
	if interval == 0 {
		interval = 1
	}
	dc, uc := randomToken("DC-"), fmt.Sprintf("UC-%04d", len(s.devices)+1)
	s.devices[dc] = &device{userCode: uc}
	writeJSON(w, http.StatusOK, map[string]any{"device_code": dc, "user_code": uc,
		"verification_uri": s.URL + "/verify", "expires_in": 600, "interval": interval})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.record(r)
	s.mu.Lock()
	hang := s.script.TokenHang
	s.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.PostForm
	if e := s.script.TokenError; e != "" {
		oauthError(w, e)
		return
	}
	gt := f.Get("grant_type")
	if gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		if s.script.ClientID != "" && f.Get("client_id") != s.script.ClientID {
			oauthError(w, "invalid_client")
			return
		}
		if s.script.ClientSecret != "" && f.Get("client_secret") != s.script.ClientSecret {
			oauthError(w, "invalid_client")
			return
		}
	}
	switch gt {
	case "urn:ietf:params:oauth:grant-type:device_code":
		d := s.devices[f.Get("device_code")]
		if d == nil || d.approved {
			oauthError(w, "invalid_grant")
			return
		}
		d.polls++
		d.pollTimes = append(d.pollTimes, time.Now())
		switch {
		case s.script.Deny:
			oauthError(w, "access_denied")
		case s.script.Expire:
			oauthError(w, "expired_token")
		case d.polls <= s.script.SlowDowns:
			oauthError(w, "slow_down")
		case d.polls <= s.script.PendingPolls, s.script.Manual && !d.userApproved:
			oauthError(w, "authorization_pending")
		default:
			d.approved = true // used: the next poll gets invalid_grant
			s.issue(w, true)
		}
	case "authorization_code":
		c, ok := s.codes[f.Get("code")]
		delete(s.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case !ok, f.Get("redirect_uri") != c.redirect:
			oauthError(w, "invalid_grant")
		case base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
			oauthError(w, "invalid_grant") // PKCE: the verifier does not match
		default:
			s.issue(w, true)
		}
	case "refresh_token":
		rt := f.Get("refresh_token")
		if _, ok := s.refresh[rt]; !ok {
			oauthError(w, "invalid_grant")
			return
		}
		if s.script.Rotate {
			delete(s.refresh, rt)
			s.issue(w, true)
			return
		}
		s.issue(w, false)
	case "client_credentials":
		s.issue(w, false)
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		if err := s.checkJWT(f.Get("assertion")); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": err.Error()})
			return
		}
		s.issue(w, false)
	default:
		oauthError(w, "unsupported_grant_type")
	}
}

// checkJWT checks a service account's assertion: RS256 with JWTKey, the
// audience is the token endpoint, a subject and a scope; s.mu is held.
func (s *Server) checkJWT(a string) error {
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	if s.script.JWTKey != nil {
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			return err
		}
		h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(s.script.JWTKey, crypto.SHA256, h[:], sig); err != nil {
			return fmt.Errorf("bad signature")
		}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err
	}
	var c struct {
		Iss, Sub, Aud, Scope string
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	if c.Aud != s.URL+"/token" || c.Sub != s.user() || c.Scope == "" || c.Iss == "" {
		return fmt.Errorf("claims %+v", c)
	}
	return nil
}

// authorize approves at once: it redirects to redirect_uri with a code
// (the user signed in and consented).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	s.record(r)
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "PKCE required", http.StatusBadRequest)
		return
	}
	code := randomToken("AC-")
	s.codes[code] = authCode{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), clientID: q.Get("client_id")}
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := url.Values{"code": {code}, "state": {q.Get("state")}}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// introspect is RFC 7662 (Dovecot: introspection_mode = post): active,
// username, exp.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	s.record(r)
	tok := r.PostForm.Get("token")
	if tok == "" {
		// Dovecot's "auth" mode sends the token as a Bearer header.
		tok, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	s.mu.Lock()
	i, ok := s.access[tok]
	s.mu.Unlock()
	if !ok || i.revoked || !time.Now().Before(i.expiry) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "username": i.user, "exp": i.expiry.Unix(), "token_type": "Bearer"})
}

// Fingerprint is a short digest of a token, for test messages that must
// not print the token.
func Fingerprint(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:4])
}
