package flow

import (
	"context"
	"fmt"
	"time"

	"github.com/relaymail/relay/oauth"
	"golang.org/x/oauth2"
)

// Token is oauth.Account.Token's work in the helper: under the account's
// lock (across processes), the cached access token when it is still valid
// for oauth.RefreshMargin (another process may have just refreshed it),
// else a new one from the token endpoint, stored — a rotated refresh
// token with it — durably before it is returned. A failure is recorded in
// the token file (relay oauth status, relay check). Every error is an
// *oauth.Error.
func Token(ctx context.Context, a *oauth.Account) (oauth.Token, error) {
	path := a.TokenFile()
	unlock, err := a.Lock(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return oauth.Token{}, &oauth.Error{Account: a.Name, Msg: "interrupted while another process refreshed the token"}
		}
		return oauth.Token{}, a.FileError("cannot lock", path, err)
	}
	defer unlock()
	g, err := a.Load()
	if err != nil {
		return oauth.Token{}, a.FileError("cannot read", path, err)
	}
	now := a.Clock()
	if g != nil && g.AccessToken != "" && g.Expiry.After(now.Add(oauth.RefreshMargin)) && a.SameClient(g) {
		return oauth.Token{Access: g.AccessToken, Expiry: g.Expiry}, nil
	}
	if a.Conf.NeedsLogin() {
		switch {
		case g == nil || g.RefreshToken == "":
			return oauth.Token{}, &oauth.Error{Account: a.Name, LoginNeeded: true, Msg: fmt.Sprintf("no grant yet (no refresh token in %s): run relay oauth login %s", path, a.Name)}
		case !a.SameClient(g):
			return oauth.Token{}, &oauth.Error{Account: a.Name, LoginNeeded: true, Msg: fmt.Sprintf("the grant in %s is for another account, client or endpoint than the configuration names: run relay oauth login %s", path, a.Name)}
		}
	}
	if g == nil {
		g = a.NewGrant()
	}
	tok, err := fetch(ctx, a, g)
	if err != nil {
		e := describe(a, err, a.Conf.TokenURL)
		g.LastError, g.LastErrorTime, g.LoginNeeded = e.Msg, now, e.LoginNeeded
		if e.LoginNeeded {
			// A refused grant is dead: keep no access token that
			// could make it look alive.
			g.AccessToken, g.Expiry = "", time.Time{}
		}
		// Recorded for relay oauth status and relay check; the
		// failure to do so changes nothing for the caller.
		a.Save(g)
		return oauth.Token{}, e
	}
	g.Keep(tok.AccessToken, tok.TokenType, tok.RefreshToken, tok.Expiry, now)
	if err := a.Save(g); err != nil {
		// The new refresh token must be on disk before the access token
		// is used: without it, a rotation would lose the grant.
		return oauth.Token{}, a.FileError("cannot store the new token in", path, err)
	}
	return oauth.Token{Access: g.AccessToken, Expiry: g.Expiry, Fresh: true}, nil
}

// fetch asks the token endpoint for a new access token.
func fetch(ctx context.Context, a *oauth.Account, g *oauth.Grant) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(withClient(ctx, a), oauth.HTTPTimeout)
	defer cancel()
	if !a.Conf.NeedsLogin() {
		return appToken(ctx, a)
	}
	c, err := configOf(a)
	if err != nil {
		return nil, &oauth.Error{Account: a.Name, Msg: err.Error()}
	}
	return c.TokenSource(ctx, &oauth2.Token{RefreshToken: g.RefreshToken}).Token()
}
