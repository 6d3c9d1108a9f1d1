package oauth

import (
	"context"
	"sync"
	"time"
)

// Token returns an access token valid for at least RefreshMargin: the
// cached one from the token file, read without a lock (a reader sees
// the old file or the new one), or else one from Fetch (the relay-oauth
// helper), which takes the account's lock across processes, asks the
// token endpoint and stores the answer before it returns it. The
// workers of this process take turns first, so that n of them start
// one helper, not n. Every error is an *Error.
func (a *Account) Token(ctx context.Context) (Token, error) {
	if t, ok := a.cached(); ok {
		return t, nil
	}
	m, _ := fetching.LoadOrStore(a.TokenFile(), &sync.Mutex{})
	mu := m.(*sync.Mutex)
	if !tryLock(ctx, mu) {
		return Token{}, &Error{Account: a.Name, Msg: "interrupted while another worker refreshed the token"}
	}
	defer mu.Unlock()
	if t, ok := a.cached(); ok {
		return t, nil
	}
	return Fetch(ctx, a)
}

// fetching holds a mutex per token file: the workers of one process that
// need a new token take turns.
var fetching sync.Map

// cached returns the token file's access token when it is valid for at
// least RefreshMargin and was made for this account and client.
func (a *Account) cached() (Token, bool) {
	g, err := a.Load()
	if err != nil || g == nil || g.AccessToken == "" || !a.SameClient(g) || !g.Expiry.After(a.Clock().Add(RefreshMargin)) {
		return Token{}, false
	}
	return Token{Access: g.AccessToken, Expiry: g.Expiry}, true
}

// SameClient reports whether the grant was made for the configured
// account, client and token endpoint (a grant of another is useless).
func (a *Account) SameClient(g *Grant) bool {
	return g.Account == a.User && g.ClientID == a.Conf.ClientID && g.TokenURL == a.Conf.TokenURL && g.Flow == a.Conf.Flow
}

// NewGrant is an empty grant for this account and client.
func (a *Account) NewGrant() *Grant {
	return &Grant{Account: a.User, Smarthost: a.Name, Provider: a.Conf.Provider, Flow: a.Conf.Flow,
		ClientID: a.Conf.ClientID, TokenURL: a.Conf.TokenURL}
}

// Keep puts a token from the endpoint into the grant: the access token
// and its expiry (DefaultLifetime from now when the answer gave none),
// the refresh token when it was rotated; the last error is cleared.
func (g *Grant) Keep(access, tokenType, refresh string, expiry, now time.Time) {
	g.AccessToken, g.TokenType = access, tokenType
	g.Expiry = expiry
	if g.Expiry.IsZero() {
		g.Expiry = now.Add(DefaultLifetime)
	}
	if refresh != "" && refresh != g.RefreshToken {
		g.RefreshToken, g.RefreshTokenTime = refresh, now
	}
	g.LastRefresh = now
	g.LastError, g.LastErrorTime, g.LoginNeeded = "", time.Time{}, false
}

// Refused forgets the cached access token access after the smarthost
// refused it, so that the next connection asks the endpoint for a new
// one rather than sending it again.
func (a *Account) Refused(ctx context.Context, access string) {
	unlock, err := a.Lock(ctx)
	if err != nil {
		return
	}
	defer unlock()
	g, err := a.Load()
	if err != nil || g == nil || g.AccessToken != access {
		return
	}
	g.AccessToken, g.Expiry = "", time.Time{}
	a.Save(g)
}
