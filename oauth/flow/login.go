package flow

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/relaymail/relay/oauth"
	"golang.org/x/oauth2"
)

// LoginTimeout bounds an authorization-code login (the user's visit to the
// provider); a device login ends when its code expires.
var LoginTimeout = 15 * time.Minute

// Login runs the account's interactive flow and stores the grant: the
// device flow (out gets the verification URL and the user code; the
// endpoint is polled at its interval, slower after slow_down, until it
// grants, refuses or the code expires), or the authorization-code flow
// with PKCE (out gets the URL to open; the code comes back to a loopback
// listener, or the user pastes the redirect URL or the code into in).
// Flows without a login (client_credentials, service_account) fetch a
// first token, which proves the configuration. Nothing printed is a
// token. Every error is an *Error.
func Login(ctx context.Context, a *oauth.Account, in io.Reader, out io.Writer) error {
	var tok *oauth2.Token
	var err error
	endpoint := a.Conf.TokenURL
	switch a.Conf.Flow {
	case "device":
		tok, err = deviceLogin(ctx, a, out)
		if err != nil && !isTokenEndpointErr(err) {
			endpoint = a.Conf.DeviceAuthorizationURL
		}
	case "authcode":
		tok, err = authcodeLogin(ctx, a, in, out)
	default:
		fmt.Fprintf(out, "flow %s needs no login: asking %s for a token\n", a.Conf.Flow, endpointHost(a.Conf.TokenURL))
		tok, err = appToken(withClient(ctx, a), a)
	}
	if err != nil {
		e := describe(a, err, endpoint)
		e.LoginNeeded = false // this is the login
		return e
	}
	if a.Conf.NeedsLogin() && tok.RefreshToken == "" {
		why := "the scopes must allow offline access"
		if a.Conf.Provider == "microsoft" {
			why = "scopes must include offline_access"
		}
		return &oauth.Error{Account: a.Name, Msg: "the authorization server granted no refresh token, so relay could not renew the access token within the hour: " + why}
	}
	now := a.Clock()
	g := a.NewGrant()
	g.LoginTime = now
	g.Keep(tok.AccessToken, tok.TokenType, tok.RefreshToken, tok.Expiry, now)
	unlock, err := a.Lock(ctx)
	if err != nil {
		return a.FileError("cannot lock", a.TokenFile(), err)
	}
	defer unlock()
	if err := a.Save(g); err != nil {
		return a.FileError("cannot write", a.TokenFile(), err)
	}
	fmt.Fprintf(out, "logged in: smarthost %s, account %s; the grant is kept in %s (mode 0600)\n", a.Name, a.User, a.TokenFile())
	return nil
}

// tokenEndpointErr marks the errors of the device flow's polling, which
// come from the token endpoint rather than the device endpoint.
type tokenEndpointErr struct{ error }

func (e tokenEndpointErr) Unwrap() error { return e.error }

func isTokenEndpointErr(err error) bool {
	var t tokenEndpointErr
	return errors.As(err, &t)
}

// deviceLogin is RFC 8628 with x/oauth2: DeviceAuth, then
// DeviceAccessToken, which polls at the server's interval, adds 5 s at
// every slow_down, goes on at authorization_pending, and stops at
// access_denied, expired_token or the code's expiry.
func deviceLogin(ctx context.Context, a *oauth.Account, out io.Writer) (*oauth2.Token, error) {
	c, err := configOf(a)
	if err != nil {
		return nil, &oauth.Error{Account: a.Name, Msg: err.Error()}
	}
	hctx := withClient(ctx, a)
	da, err := c.DeviceAuth(hctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "To let relay send as %s (smarthost %s), open\n\n    %s\n\nand enter the code\n\n    %s\n\n",
		a.User, a.Name, da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(out, "(or open %s)\n", da.VerificationURIComplete)
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(out, "Waiting for the approval (the code expires at %s)…\n", da.Expiry.Local().Format("15:04:05"))
	}
	tok, err := c.DeviceAccessToken(hctx, da)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			switch re.ErrorCode {
			case "access_denied":
				return nil, &oauth.Error{Account: a.Name, Msg: "the sign-in was declined (access_denied): nothing was stored; run relay oauth login " + a.Name + " again to retry"}
			case "expired_token":
				return nil, &oauth.Error{Account: a.Name, Msg: "the code expired before the sign-in was approved (expired_token): run relay oauth login " + a.Name + " again"}
			}
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, &oauth.Error{Account: a.Name, Msg: "the code expired before the sign-in was approved: run relay oauth login " + a.Name + " again"}
		}
		if ctx.Err() != nil {
			return nil, &oauth.Error{Account: a.Name, Msg: "login interrupted: nothing was stored"}
		}
		return nil, tokenEndpointErr{err}
	}
	return tok, nil
}

// authcodeLogin is the authorization-code flow with PKCE (S256) and a
// state. The redirect goes to a loopback listener; a server without a
// browser gets the redirect URL (or the code) pasted back by the user,
// who opened the link elsewhere and copies the address the browser could
// not load. Whichever comes first counts.
func authcodeLogin(ctx context.Context, a *oauth.Account, in io.Reader, out io.Writer) (*oauth2.Token, error) {
	c, err := configOf(a)
	if err != nil {
		return nil, &oauth.Error{Account: a.Name, Msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, LoginTimeout)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, &oauth.Error{Account: a.Name, Msg: fmt.Sprintf("cannot listen on 127.0.0.1 for the redirect: %v", err)}
	}
	defer ln.Close()
	host := "127.0.0.1"
	if a.Conf.Provider == "microsoft" {
		host = "localhost" // Microsoft's redirect URI for desktop apps
	}
	c.RedirectURL = "http://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)) + "/"
	verifier := oauth2.GenerateVerifier()
	state := randomState()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if a.Conf.Provider == "google" {
		// A refresh token, every time.
		opts = append(opts, oauth2.AccessTypeOffline, oauth2.ApprovalForce)
	}
	if a.User != "" && a.Conf.Provider != "generic" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", a.User))
	}
	fmt.Fprintf(out, "To let relay send as %s (smarthost %s), open this address in a browser and sign in:\n\n    %s\n\n", a.User, a.Name, c.AuthCodeURL(state, opts...))
	fmt.Fprintf(out, "The browser is then sent to %s. On this machine relay receives it by itself.\n", c.RedirectURL)
	fmt.Fprintf(out, "Elsewhere the page will not load: copy the address from the browser's address bar and paste it here.\n")

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 2)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, err := codeFrom(r.URL.Query(), state)
		if code == "" && err == nil {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			http.Error(w, "relay: "+err.Error(), http.StatusBadRequest)
		} else {
			fmt.Fprintln(w, "relay received the authorization: you may close this page.")
		}
		// The page goes out before the login may end (and close the
		// server): the browser would get a reset instead.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		got <- result{code, err}
	})}
	go srv.Serve(ln)
	defer func() {
		// Shutdown, not Close: a handler still answering finishes.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			code, err := pasted(line, state)
			if code == "" && err == nil {
				fmt.Fprintln(out, "That is neither the address the browser was sent to nor a code: paste the whole address (it holds code=…).")
				continue
			}
			got <- result{code, err}
			return
		}
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &oauth.Error{Account: a.Name, Msg: fmt.Sprintf("no authorization came back within %v: run relay oauth login %s again", LoginTimeout, a.Name)}
		}
		return nil, &oauth.Error{Account: a.Name, Msg: "login interrupted: nothing was stored"}
	}
	if res.err != nil {
		return nil, &oauth.Error{Account: a.Name, Msg: res.err.Error()}
	}
	return c.Exchange(withClient(ctx, a), res.code, oauth2.VerifierOption(verifier))
}

// codeFrom takes the code out of a redirect's query, checking the state;
// "" and nil when the query is no redirect at all.
func codeFrom(q url.Values, state string) (string, error) {
	if e := q.Get("error"); e != "" {
		d := shorten(q.Get("error_description"))
		if d != "" {
			e += ": " + d
		}
		return "", fmt.Errorf("the authorization server refused (%s): nothing was stored", e)
	}
	code := q.Get("code")
	if code == "" {
		return "", nil
	}
	if q.Get("state") != state {
		return "", errors.New("the redirect's state does not match this login (an old or foreign link): nothing was stored")
	}
	return code, nil
}

// pasted reads what the user pasted: the redirect address (with its
// state checked) or the code alone.
func pasted(line, state string) (string, error) {
	if strings.Contains(line, "://") || strings.HasPrefix(line, "/?") || strings.HasPrefix(line, "?") {
		raw := line
		if i := strings.IndexByte(raw, '?'); i >= 0 {
			raw = raw[i+1:]
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			return "", nil
		}
		return codeFrom(q, state)
	}
	if strings.ContainsAny(line, " \t") {
		return "", nil
	}
	return line, nil
}

func randomState() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
