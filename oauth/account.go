package oauth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"
)

// Timeouts. Variables so that tests can shorten them.
var (
	// HTTPTimeout bounds each request to an OAuth endpoint, from the
	// connection to the end of the answer.
	HTTPTimeout = 30 * time.Second
	// RefreshMargin: a cached access token is used while it is valid for
	// at least this much longer; then it is refreshed.
	RefreshMargin = 2 * time.Minute
	// DefaultLifetime is assumed for an access token whose answer gave no
	// expires_in.
	DefaultLifetime = time.Hour
)

// Account is the OAuth side of one smarthost.
type Account struct {
	Name string // the smarthost's name: relay oauth login NAME
	User string // the mailbox logged in as (username)
	Conf config.OAuth
	// Dial opens the connections to the endpoints (package relay passes
	// the smarthost's SOCKS proxy); nil: direct.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) `json:"-"`
	// Now is the clock (nil: time.Now).
	Now func() time.Time `json:"-"`
}

// New returns the account of a smarthost that uses OAuth (after
// config.Load).
func New(sh *config.Smarthost) *Account {
	return &Account{Name: sh.Name, User: sh.Username, Conf: sh.OAuth}
}

func (a *Account) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// TokenFile is where the account's grant is kept.
func (a *Account) TokenFile() string { return a.Conf.TokenFile }

// context gives ctx the HTTP client x/oauth2 is to use: bounded by
// HTTPTimeout, through Dial, no proxy from the environment, no redirect
// followed (a token endpoint that redirects could send the secret to
// where it does not belong).
func (a *Account) context(ctx context.Context) context.Context {
	d := &net.Dialer{Timeout: HTTPTimeout}
	dial := d.DialContext
	if a.Dial != nil {
		dial = a.Dial
	}
	c := &http.Client{
		Timeout: HTTPTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dial,
			TLSHandshakeTimeout: HTTPTimeout,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return context.WithValue(ctx, oauth2.HTTPClient, c)
}

// readSecretFile returns the first line of a secret file.
func readSecretFile(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	s := strings.TrimSpace(string(line))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return s, nil
}

// config is the x/oauth2 configuration of the device and authcode flows
// (and their refresh).
func (a *Account) config() (*oauth2.Config, error) {
	c := &oauth2.Config{
		ClientID: a.Conf.ClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:       a.Conf.AuthorizationURL,
			DeviceAuthURL: a.Conf.DeviceAuthorizationURL,
			TokenURL:      a.Conf.TokenURL,
			// In the body, as public clients must: no probing of both
			// styles, which doubles every poll and every refused grant.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		Scopes: a.Conf.Scopes,
	}
	if a.Conf.ClientSecretFile != "" {
		s, err := readSecretFile("client_secret_file", a.Conf.ClientSecretFile)
		if err != nil {
			return nil, err
		}
		c.ClientSecret = s
	}
	return c, nil
}

// appToken gets an access token with a secret alone: client_credentials
// (Microsoft 365 app-only, SMTP.SendAsApp) or a service account's JWT
// (RFC 7523, Google Workspace domain-wide delegation).
func (a *Account) appToken(ctx context.Context) (*oauth2.Token, error) {
	switch a.Conf.Flow {
	case "client_credentials":
		secret, err := readSecretFile("client_secret_file", a.Conf.ClientSecretFile)
		if err != nil {
			return nil, err
		}
		c := &clientcredentials.Config{ClientID: a.Conf.ClientID, ClientSecret: secret, TokenURL: a.Conf.TokenURL,
			Scopes: a.Conf.Scopes, AuthStyle: oauth2.AuthStyleInParams}
		return c.Token(ctx)
	case "service_account":
		c, err := a.jwtConfig()
		if err != nil {
			return nil, err
		}
		return c.TokenSource(ctx).Token()
	}
	return nil, fmt.Errorf("flow %q needs relay oauth login", a.Conf.Flow)
}

// jwtConfig reads the service account's JSON key (the file Google Cloud's
// console gives) into x/oauth2's jwt configuration. token_url, when the
// key has none, is the configured one.
func (a *Account) jwtConfig() (*jwt.Config, error) {
	b, err := os.ReadFile(a.Conf.ServiceAccountFile)
	if err != nil {
		return nil, fmt.Errorf("service_account_file: %w", err)
	}
	var key struct {
		Type         string `json:"type"`
		ClientEmail  string `json:"client_email"`
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
		TokenURI     string `json:"token_uri"`
	}
	if err := json.Unmarshal(b, &key); err != nil || key.ClientEmail == "" || key.PrivateKey == "" {
		return nil, fmt.Errorf("service_account_file: %s is not a service account's JSON key (client_email and private_key)", a.Conf.ServiceAccountFile)
	}
	tokenURL := a.Conf.TokenURL
	if tokenURL == "" {
		tokenURL = key.TokenURI
	}
	return &jwt.Config{Email: key.ClientEmail, PrivateKey: []byte(key.PrivateKey), PrivateKeyID: key.PrivateKeyID,
		Subject: a.Conf.Subject, Scopes: a.Conf.Scopes, TokenURL: tokenURL}, nil
}

// endpointHost names an endpoint in messages: its host.
func endpointHost(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// Error is what goes wrong getting a token, in words that say what to do.
// It never holds a token or a secret.
type Error struct {
	Account string // the smarthost's name
	// LoginNeeded: no grant, or the endpoint refused it (invalid_grant);
	// only relay oauth login NAME helps.
	LoginNeeded bool
	Msg         string
}

func (e *Error) Error() string { return "OAuth " + e.Account + ": " + e.Msg }

// IsLoginNeeded reports whether err says that relay oauth login must be
// run for the account.
func IsLoginNeeded(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.LoginNeeded
}

// describe makes an *Error of what x/oauth2 or the network returned. The
// endpoint's answer gives only its error code, a shortened description
// and the HTTP status: never its body.
func (a *Account) describe(err error, endpoint string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	host := endpointHost(endpoint)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		what := re.ErrorCode
		if d := shorten(re.ErrorDescription); d != "" {
			what += ": " + d
		}
		switch re.ErrorCode {
		case "invalid_grant":
			return &Error{Account: a.Name, LoginNeeded: true, Msg: fmt.Sprintf(
				"the token endpoint %s refused the grant (%s): it was revoked, expired or the password changed; run relay oauth login %s", host, what, a.Name)}
		case "invalid_client", "unauthorized_client":
			return &Error{Account: a.Name, Msg: fmt.Sprintf(
				"the token endpoint %s refused the client (%s): check client_id and client_secret_file and the app registration", host, what)}
		case "invalid_scope":
			return &Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s refused the scopes (%s): check scopes and the app's API permissions", host, what)}
		case "":
			status := ""
			if re.Response != nil {
				status = re.Response.Status
			}
			return &Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s failed (HTTP %s): relay tries again", host, status)}
		}
		return &Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s answered %s: relay tries again", host, what)}
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return &Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s cannot be reached: no answer within %v; relay tries again (relay oauth status %s shows the last error)", host, HTTPTimeout, a.Name)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s cannot be reached (%v); relay tries again (relay oauth status %s shows the last error)", host, ue.Err, a.Name)}
	}
	msg := strings.TrimPrefix(err.Error(), "oauth2: ")
	if strings.Contains(msg, "\n") {
		msg = msg[:strings.IndexByte(msg, '\n')]
	}
	return &Error{Account: a.Name, Msg: msg}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// shorten keeps the first line of an endpoint's error description, at
// most 200 bytes (Microsoft's carry trace IDs and timestamps).
func shorten(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r", ""))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
