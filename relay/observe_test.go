package relay_test

// The Observer (the daemon's metrics) is told about every transaction,
// recipient and connection, for each part of a split message as for an
// unsplit one, and (TokenObserver) about the OAuth token a connection
// logged in with.

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testoauth"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/oauth"
	"github.com/relaymail/relay/relay"
)

// recorder is an Observer (and TokenObserver) that keeps what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
	tokens map[string]time.Time
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, a...))
}

func (r *recorder) Connection(sh, result string, _ time.Time) { r.add("connection %s %s", sh, result) }
func (r *recorder) Recipient(sh, result string, _ time.Duration) {
	r.add("recipient %s %s", sh, result)
}
func (r *recorder) Transaction(sh string, _ time.Duration) { r.add("transaction %s", sh) }
func (r *recorder) Report(kind string)                     { r.add("report %s", kind) }
func (r *recorder) RateLimited(sh string)                  { r.add("rate-limited %s", sh) }
func (r *recorder) TokenExpiry(sh string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tokens == nil {
		r.tokens = map[string]time.Time{}
	}
	r.tokens[sh] = at
}

func (r *recorder) sorted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.events)
	slices.Sort(out)
	return out
}

// TestObserver_SplitMessage_EveryPartObserved: a message split between
// corp and provider is one transaction, one connection and its
// recipients' results on each smarthost's series.
func TestObserver_SplitMessage_EveryPartObserved(t *testing.T) {
	corp := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	prov := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	h := splitHarness(t, corp.Port, prov.Port)
	rec := &recorder{}
	h.runner.Observer = rec
	h.enqueue(content, corpA, netB, corpC)
	if st := h.run(); st != (relay.Stats{Messages: 1, Delivered: 3}) {
		t.Fatalf("pass: %+v\n%s", st, h.log.String())
	}
	want := []string{
		"connection corp ok", "connection provider ok",
		"recipient corp sent", "recipient corp sent", "recipient provider sent",
		"transaction corp", "transaction provider",
	}
	if got := rec.sorted(); !slices.Equal(got, want) {
		t.Errorf("observed %q\nwant     %q", got, want)
	}
}

// TestObserver_OAuthTokenExpiry: a connection that logs in with OAuth
// tells a TokenObserver when its access token expires (the token the
// account caches), for relay_oauth_token_expiry_timestamp_seconds.
func TestObserver_OAuthTokenExpiry(t *testing.T) {
	as := testoauth.New(t, testoauth.Script{})
	srv := oauthServer(t, as, testsmtp.ServerConfig{}, "XOAUTH2")
	h := oauthHarness(t, as, srv.Port)
	rec := &recorder{}
	h.runner.Observer = rec
	h.enqueue(content, rcptA)
	if st := h.run(); st.Delivered != 1 {
		t.Fatalf("pass: %+v\n%s", st, h.log.String())
	}
	st, err := oauth.New(&h.cfg.Smarthosts[0]).Status()
	if err != nil || st.Expiry.IsZero() {
		t.Fatalf("no cached token after the delivery: %+v, %v", st, err)
	}
	got, ok := rec.tokens["oauthhost"]
	if !ok || !got.Equal(st.Expiry) {
		t.Errorf("token expiry observed %v (%v), want the cached token's %v", got, ok, st.Expiry)
	}
	if !slices.Contains(rec.sorted(), "connection oauthhost ok") {
		t.Errorf("observed %q", rec.sorted())
	}
}
