package oauth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"golang.org/x/oauth2"
)

// Token is an access token for one login, and what relay probe shows
// about it.
type Token struct {
	Access string
	Expiry time.Time
	// Fresh: the token endpoint issued it for this call (else it was
	// cached in the token file).
	Fresh bool
}

// Token returns an access token valid for at least RefreshMargin: the
// cached one, or a new one from the token endpoint, stored (a rotated
// refresh token with it) durably before it is returned. One caller at a
// time per account, across the processes too. Every error is an *Error.
func (a *Account) Token(ctx context.Context) (Token, error) {
	path := a.TokenFile()
	unlock, err := lockGrant(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return Token{}, &Error{Account: a.Name, Msg: "interrupted while another process refreshed the token"}
		}
		return Token{}, a.fileError("cannot lock", path, err)
	}
	defer unlock()
	g, err := readGrant(path)
	if err != nil {
		return Token{}, a.fileError("cannot read", path, err)
	}
	now := a.now()
	if g != nil && g.AccessToken != "" && g.Expiry.After(now.Add(RefreshMargin)) && a.sameClient(g) {
		return Token{Access: g.AccessToken, Expiry: g.Expiry}, nil
	}
	if a.Conf.NeedsLogin() {
		switch {
		case g == nil || g.RefreshToken == "":
			return Token{}, &Error{Account: a.Name, LoginNeeded: true, Msg: fmt.Sprintf("no grant yet (no refresh token in %s): run relay oauth login %s", path, a.Name)}
		case !a.sameClient(g):
			return Token{}, &Error{Account: a.Name, LoginNeeded: true, Msg: fmt.Sprintf("the grant in %s is for another account, client or endpoint than the configuration names: run relay oauth login %s", path, a.Name)}
		}
	}
	if g == nil {
		g = a.newGrant()
	}
	tok, err := a.fetch(ctx, g)
	if err != nil {
		e := a.describe(err, a.Conf.TokenURL)
		g.LastError, g.LastErrorTime, g.LoginNeeded = e.Msg, now, e.LoginNeeded
		if e.LoginNeeded {
			// A refused grant is dead: keep no access token that
			// could make it look alive.
			g.AccessToken, g.Expiry = "", time.Time{}
		}
		// Recorded for relay oauth status and relay check; the
		// failure to do so changes nothing for the caller.
		writeGrant(path, g)
		return Token{}, e
	}
	a.keep(g, tok, now)
	if err := writeGrant(path, g); err != nil {
		// The new refresh token must be on disk before the access token
		// is used: without it, a rotation would lose the grant.
		return Token{}, a.fileError("cannot store the new token in", path, err)
	}
	return Token{Access: g.AccessToken, Expiry: g.Expiry, Fresh: true}, nil
}

// fetch asks the token endpoint for a new access token.
func (a *Account) fetch(ctx context.Context, g *grant) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(a.context(ctx), HTTPTimeout)
	defer cancel()
	if !a.Conf.NeedsLogin() {
		return a.appToken(ctx)
	}
	c, err := a.config()
	if err != nil {
		return nil, &Error{Account: a.Name, Msg: err.Error()}
	}
	return c.TokenSource(ctx, &oauth2.Token{RefreshToken: g.RefreshToken}).Token()
}

// keep puts a token from the endpoint into the grant: the access token
// and its expiry, the refresh token when it was rotated.
func (a *Account) keep(g *grant, tok *oauth2.Token, now time.Time) {
	g.AccessToken, g.TokenType = tok.AccessToken, tok.TokenType
	g.Expiry = tok.Expiry
	if g.Expiry.IsZero() {
		g.Expiry = now.Add(DefaultLifetime)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != g.RefreshToken {
		g.RefreshToken, g.RefreshTokenTime = tok.RefreshToken, now
	}
	g.LastRefresh = now
	g.LastError, g.LastErrorTime, g.LoginNeeded = "", time.Time{}, false
}

// newGrant is an empty grant for this account and client.
func (a *Account) newGrant() *grant {
	return &grant{Account: a.User, Smarthost: a.Name, Provider: a.Conf.Provider, Flow: a.Conf.Flow,
		ClientID: a.Conf.ClientID, TokenURL: a.Conf.TokenURL}
}

// sameClient reports whether the grant was made for the configured
// account, client and token endpoint (a grant of another is useless).
func (a *Account) sameClient(g *grant) bool {
	return g.Account == a.User && g.ClientID == a.Conf.ClientID && g.TokenURL == a.Conf.TokenURL && g.Flow == a.Conf.Flow
}

// Refused forgets the cached access token access after the smarthost
// refused it, so that the next connection asks the endpoint for a new
// one rather than sending it again.
func (a *Account) Refused(ctx context.Context, access string) {
	path := a.TokenFile()
	unlock, err := lockGrant(ctx, path)
	if err != nil {
		return
	}
	defer unlock()
	g, err := readGrant(path)
	if err != nil || g == nil || g.AccessToken != access {
		return
	}
	g.AccessToken, g.Expiry = "", time.Time{}
	writeGrant(path, g)
}

func (a *Account) fileError(what, path string, err error) *Error {
	msg := fmt.Sprintf("%s the token file %s: %v", what, path, err)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = fmt.Sprintf("%s the token file %s: %v", what, path, pe.Err)
		if errors.Is(err, fs.ErrPermission) {
			msg += " (relay runs as the spool's owner: the daemon user must own it)"
		}
	}
	return &Error{Account: a.Name, Msg: msg}
}
