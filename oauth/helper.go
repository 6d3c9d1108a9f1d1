package oauth

// The relay-oauth helper: the OAuth flows need an HTTP client
// (golang.org/x/oauth2 over net/http), and a Go binary initialises every
// package it links at every start, so linked into relay they would cost
// every sendmail run their initialisation, for a token that one delivery
// in an hour needs. They live in package oauth/flow, linked into the
// helper binary relay-oauth only, which relay runs (beside its own
// executable) for a token it has no valid copy of, and for relay oauth
// login. The request goes in the environment (RELAY_OAUTH_REQUEST: the
// account's settings and relay's timeouts, never a secret); a token comes
// back on the helper's standard output as JSON, the only place it ever
// travels besides the token file.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// HelperName is the helper binary's name, installed beside relay.
const HelperName = "relay-oauth"

// RequestEnv is the environment variable that carries a Request.
const RequestEnv = "RELAY_OAUTH_REQUEST"

// Request is what relay asks the helper.
type Request struct {
	Account         Account       `json:"account"`
	HTTPTimeout     time.Duration `json:"http_timeout"`
	RefreshMargin   time.Duration `json:"refresh_margin"`
	DefaultLifetime time.Duration `json:"default_lifetime"`
}

// Response is the helper's answer to "token": a token or an error.
type Response struct {
	Token *Token `json:"token,omitempty"`
	Error *Error `json:"error,omitempty"`
}

// Fetch gets a token the cache cannot give: by default the helper's
// "token" (flow.Token in a process of its own). Tests of packages that
// cannot run the helper set flow.Token here.
var Fetch = func(ctx context.Context, a *Account) (Token, error) {
	var out bytes.Buffer
	// The helper may wait for another process's refresh (the lock), then
	// make its own request.
	ctx, cancel := context.WithTimeout(ctx, 3*HTTPTimeout)
	defer cancel()
	cmd, err := a.helper(ctx, "token")
	if err != nil {
		return Token{}, err
	}
	cmd.Stdout = &out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	var resp Response
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.Token == nil && resp.Error == nil {
		if ctx.Err() != nil {
			return Token{}, &Error{Account: a.Name, Msg: fmt.Sprintf("%s did not answer within %v; relay tries again", HelperName, 3*HTTPTimeout)}
		}
		return Token{}, &Error{Account: a.Name, Msg: fmt.Sprintf("%s failed (%v): %s", HelperName, runErr, firstLine(stderr.String()))}
	}
	if resp.Error != nil {
		return Token{}, resp.Error
	}
	return *resp.Token, nil
}

// Login runs relay-oauth login for the account, with the caller's
// terminal: it prints the instructions and reads a pasted redirect.
func (a *Account) Login(ctx context.Context, in io.Reader, out, errw io.Writer) error {
	cmd, err := a.helper(ctx, "login")
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, errw
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &Error{Account: a.Name, Msg: "no grant was stored (the reason is above)"}
		}
		return &Error{Account: a.Name, Msg: fmt.Sprintf("%s: %v", HelperName, err)}
	}
	return nil
}

// HelperPath is where relay-oauth is; "" means beside relay's own
// executable (a variable for tests).
var HelperPath = ""

func helperPath() (string, error) {
	if HelperPath != "" {
		return HelperPath, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(exe), HelperName), nil
}

// helper prepares the helper with the request in its environment.
func (a *Account) helper(ctx context.Context, cmd string) (*exec.Cmd, error) {
	path, err := helperPath()
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		return nil, &Error{Account: a.Name, Msg: fmt.Sprintf("the OAuth helper %s is missing (%v): install it beside relay", HelperName, err)}
	}
	req, _ := json.Marshal(Request{Account: *a, HTTPTimeout: HTTPTimeout, RefreshMargin: RefreshMargin, DefaultLifetime: DefaultLifetime})
	c := exec.CommandContext(ctx, path, cmd)
	c.Env = append(os.Environ(), RequestEnv+"="+string(req))
	c.WaitDelay = time.Second
	return c, nil
}

// ReadRequest is the helper's side: the request from its environment,
// with relay's timeouts applied to this process.
func ReadRequest() (*Account, error) {
	var req Request
	if err := json.Unmarshal([]byte(os.Getenv(RequestEnv)), &req); err != nil {
		return nil, fmt.Errorf("%s is run by relay, with %s set", HelperName, RequestEnv)
	}
	if req.HTTPTimeout > 0 {
		HTTPTimeout = req.HTTPTimeout
	}
	if req.RefreshMargin > 0 {
		RefreshMargin = req.RefreshMargin
	}
	if req.DefaultLifetime > 0 {
		DefaultLifetime = req.DefaultLifetime
	}
	return &req.Account, nil
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
