package oauth

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/relaymail/relay/config"
)

// Timeouts. Variables so that tests can shorten them; the helper is given
// the values of the process that runs it.
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
	Name string       `json:"name"` // the smarthost's name: relay oauth login NAME
	User string       `json:"user"` // the mailbox logged in as (username)
	Conf config.OAuth `json:"conf"`
	// Proxy is the smarthost's SOCKS5 proxy: the endpoints are reached
	// through it too ("" direct).
	Proxy string `json:"proxy,omitempty"`
	// SourceAddress and IPFamily are the smarthost's source_address and
	// ip_family: without a proxy the endpoints are reached from that
	// address, over that family, as the smarthost is (an egress firewall
	// or a conditional-access policy that knows the registered address
	// sees the same one; a broken family is avoided for both).
	SourceAddress string `json:"source_address,omitempty"`
	IPFamily      string `json:"ip_family,omitempty"`
	// Now is the clock (nil: time.Now).
	Now func() time.Time `json:"-"`
}

// New returns the account of a smarthost that uses OAuth (after
// config.Load).
func New(sh *config.Smarthost) *Account {
	return &Account{Name: sh.Name, User: sh.Username, Conf: sh.OAuth, Proxy: sh.Proxy,
		SourceAddress: sh.SourceAddress, IPFamily: sh.IPFamily}
}

// Clock is the account's time.
func (a *Account) Clock() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// TokenFile is where the account's grant is kept.
func (a *Account) TokenFile() string { return a.Conf.TokenFile }

// Token is an access token for one login, and what relay probe shows
// about it.
type Token struct {
	Access string    `json:"access"`
	Expiry time.Time `json:"expiry"`
	// Fresh: the token endpoint issued it for this call (else it was
	// cached in the token file).
	Fresh bool `json:"fresh,omitempty"`
}

// Error is what goes wrong getting a token, in words that say what to do.
// It never holds a token or a secret.
type Error struct {
	Account string `json:"account"` // the smarthost's name
	// LoginNeeded: no grant, or the endpoint refused it (invalid_grant);
	// only relay oauth login NAME helps.
	LoginNeeded bool   `json:"login_needed,omitempty"`
	Msg         string `json:"msg"`
}

func (e *Error) Error() string { return "OAuth " + e.Account + ": " + e.Msg }

// IsLoginNeeded reports whether err says that relay oauth login must be
// run for the account.
func IsLoginNeeded(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.LoginNeeded
}

// FileError is the *Error of a token file that cannot be used.
func (a *Account) FileError(what, path string, err error) *Error {
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
