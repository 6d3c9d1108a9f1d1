// Package flow is the network side of relay's OAuth 2.0 (package oauth):
// the flows of golang.org/x/oauth2 (the device flow, the authorization
// code with PKCE, refresh, clientcredentials, jwt) and the HTTP client
// they use. It is linked into the helper binary relay-oauth only, never
// into relay: net/http's package initialisation would cost every sendmail
// run (see oauth/helper.go). Main is the helper's command line.
package flow

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

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/oauth"
	"golang.org/x/net/proxy"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"
)

// withClient gives ctx the HTTP client x/oauth2 is to use: bounded by
// oauth.HTTPTimeout, through the smarthost's proxy when it has one (never
// one from the environment), else from its source_address over its
// ip_family, no redirect followed (a token endpoint that redirects could
// send the secret where it does not belong).
func withClient(ctx context.Context, a *oauth.Account) context.Context {
	d := &net.Dialer{Timeout: oauth.HTTPTimeout}
	dial := d.DialContext
	if a.Proxy == "" {
		if ip := net.ParseIP(a.SourceAddress); ip != nil { // config.Load checked it
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
		if family := map[string]string{"ipv4": "tcp4", "ipv6": "tcp6"}[a.IPFamily]; family != "" {
			dial = func(ctx context.Context, _, addr string) (net.Conn, error) {
				return d.DialContext(ctx, family, addr)
			}
		}
	} else {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			p, err := config.ParseProxy(a.Proxy)
			if err != nil {
				return nil, err
			}
			var auth *proxy.Auth
			if p.Username != "" {
				auth = &proxy.Auth{User: p.Username, Password: p.Password}
			}
			sd, err := proxy.SOCKS5(p.Network, p.Address, auth, d)
			if err != nil {
				return nil, fmt.Errorf("proxy %s: %w", p, err)
			}
			c, err := sd.(proxy.ContextDialer).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, fmt.Errorf("proxy %s: %w", p, err)
			}
			return c, nil
		}
	}
	c := &http.Client{
		Timeout: oauth.HTTPTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dial,
			TLSHandshakeTimeout: oauth.HTTPTimeout,
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

// configOf is the x/oauth2 configuration of the device and authcode
// flows (and their refresh).
func configOf(a *oauth.Account) (*oauth2.Config, error) {
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
func appToken(ctx context.Context, a *oauth.Account) (*oauth2.Token, error) {
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
		c, err := jwtConfig(a)
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
func jwtConfig(a *oauth.Account) (*jwt.Config, error) {
	b, err := os.ReadFile(a.Conf.ServiceAccountFile)
	if err != nil {
		return nil, fmt.Errorf("service_account_file: %w", err)
	}
	var key struct {
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

// describe makes an *oauth.Error of what x/oauth2 or the network
// returned. The endpoint's answer gives only its error code, a shortened
// description and the HTTP status: never its body.
func describe(a *oauth.Account, err error, endpoint string) *oauth.Error {
	var e *oauth.Error
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
			return &oauth.Error{Account: a.Name, LoginNeeded: true, Msg: fmt.Sprintf(
				"the token endpoint %s refused the grant (%s): it was revoked, expired or the password changed; run relay oauth login %s", host, what, a.Name)}
		case "invalid_client", "unauthorized_client":
			return &oauth.Error{Account: a.Name, Msg: fmt.Sprintf(
				"the token endpoint %s refused the client (%s): check client_id and client_secret_file and the app registration", host, what)}
		case "invalid_scope":
			return &oauth.Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s refused the scopes (%s): check scopes and the app's API permissions", host, what)}
		case "":
			status := ""
			if re.Response != nil {
				status = re.Response.Status
			}
			return &oauth.Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s failed (HTTP %s): relay tries again", host, status)}
		}
		return &oauth.Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s answered %s: relay tries again", host, what)}
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return &oauth.Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s cannot be reached: no answer within %v; relay tries again (relay oauth status %s shows the last error)", host, oauth.HTTPTimeout, a.Name)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &oauth.Error{Account: a.Name, Msg: fmt.Sprintf("the token endpoint %s cannot be reached (%v); relay tries again (relay oauth status %s shows the last error)", host, ue.Err, a.Name)}
	}
	msg := strings.TrimPrefix(err.Error(), "oauth2: ")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return &oauth.Error{Account: a.Name, Msg: msg}
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
