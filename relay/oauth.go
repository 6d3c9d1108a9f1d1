package relay

// AUTH with an OAuth 2.0 token that relay obtains itself ([smarthost.oauth],
// package oauth). The mechanism is the one auth names, else OAUTHBEARER
// (RFC 7628) when the server offers it, else XOAUTH2 (Microsoft offers only
// that). The token comes from oauth.Account.Token for each new connection:
// the cached one, or a new one from the token endpoint. Any failure to get
// one (no grant, a refused grant, an endpoint that cannot be reached) is a
// failure of relay's own side at stage local: the mail waits, never bounces,
// and the text names what to run (relay oauth login NAME). A token the
// smarthost refuses is forgotten (oauth.Account.Refused), so the next
// connection asks the endpoint for a new one; the reply says the token was
// relay's own ("a valid token of relay oauth"), for the explanation.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/oauth"
)

// OAuthAccount is the OAuth account of a smarthost that uses OAuth; its
// endpoints are reached the way the smarthost is (through its proxy, else
// from its source_address over its ip_family).
func OAuthAccount(sh *config.Smarthost) *oauth.Account { return oauth.New(sh) }

// OAuthLogin is what relay probe shows about an OAuth login.
type OAuthLogin struct {
	Mechanism string
	Expiry    time.Time // of the access token used
	Fresh     bool      // issued by the token endpoint for this connection
}

// oauthMechanism picks XOAUTH2 or OAUTHBEARER (see the file comment).
func oauthMechanism(auth string, offered func(string) bool) (string, error) {
	if auth != "" {
		return chooseMechanism(auth, offered)
	}
	for _, m := range []string{"OAUTHBEARER", "XOAUTH2"} {
		if offered(m) {
			return m, nil
		}
	}
	return "", errors.New("the server offers neither OAUTHBEARER nor XOAUTH2, which a login with [smarthost.oauth] needs")
}

// authenticateOAuth logs in with the account's access token.
func (c *Conn) authenticateOAuth(ctx context.Context) (tried []string, err error) {
	sh := c.Host
	mech, err := oauthMechanism(sh.Auth, c.client.SupportsAuth)
	if err != nil {
		return nil, &Failure{Stage: StageAuth, Err: err}
	}
	acct := OAuthAccount(sh)
	tok, err := acct.Token(ctx)
	if err != nil {
		return nil, &Failure{Stage: StageLocal, Err: err}
	}
	c.OAuth = &OAuthLogin{Mechanism: mech, Expiry: tok.Expiry, Fresh: tok.Fresh}
	f := c.authWith(mech, tok.Access)
	if f == nil {
		return []string{mech}, nil
	}
	if f.Code/100 == 5 {
		acct.Refused(ctx, tok.Access)
		f.Text += fmt.Sprintf(" (a valid token of relay oauth, until %s: enable SMTP AUTH for the mailbox, or run relay oauth login %s)", tok.Expiry.UTC().Format(time.RFC3339), sh.Name)
	}
	return []string{mech}, f
}
