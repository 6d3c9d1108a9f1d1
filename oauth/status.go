package oauth

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Status is what relay oauth status and relay check show about an
// account: never a token.
type Status struct {
	Name, Account, Provider, Flow, File string
	// Grant: a refresh token is kept (device, authcode), or a token was
	// cached (client_credentials, service_account).
	Grant            bool
	OtherClient      bool // the file is for another account, client or endpoint
	LoginTime        time.Time
	RefreshTokenTime time.Time
	Expiry           time.Time // of the cached access token; zero: none
	LastRefresh      time.Time
	LastError        string
	LastErrorTime    time.Time
	LoginNeeded      bool // relay oauth login NAME is the only way on
}

// Status reads the token file (without the lock: a reader sees the old
// file or the new one). An error is one of reading it.
func (a *Account) Status() (*Status, error) {
	st := &Status{Name: a.Name, Account: a.User, Provider: a.Conf.Provider, Flow: a.Conf.Flow, File: a.TokenFile()}
	g, err := readGrant(a.TokenFile())
	if err != nil {
		return st, a.FileError("cannot read", a.TokenFile(), err)
	}
	if g == nil {
		st.LoginNeeded = a.Conf.NeedsLogin()
		return st, nil
	}
	st.OtherClient = !a.SameClient(g)
	st.Grant = g.RefreshToken != "" || !a.Conf.NeedsLogin() && g.AccessToken != ""
	st.LoginTime, st.RefreshTokenTime, st.LastRefresh = g.LoginTime, g.RefreshTokenTime, g.LastRefresh
	if g.AccessToken != "" {
		st.Expiry = g.Expiry
	}
	st.LastError, st.LastErrorTime = g.LastError, g.LastErrorTime
	st.LoginNeeded = a.Conf.NeedsLogin() && (g.LoginNeeded || g.RefreshToken == "" || st.OtherClient)
	return st, nil
}

// Problem says in one line why mail through the account cannot go now,
// with what to run; "" when nothing is known to be wrong.
func (st *Status) Problem() string {
	switch {
	case st.OtherClient && st.LoginNeeded:
		return fmt.Sprintf("smarthost %s: the OAuth grant in %s is for another account or client: run relay oauth login %s", st.Name, st.File, st.Name)
	case st.LoginNeeded && st.LastError != "":
		return fmt.Sprintf("smarthost %s: OAuth grant refused (%s): run relay oauth login %s", st.Name, st.LastError, st.Name)
	case st.LoginNeeded:
		return fmt.Sprintf("smarthost %s: no OAuth grant yet: run relay oauth login %s", st.Name, st.Name)
	}
	return ""
}

// Write prints the status, one "key: value" line each, for relay oauth
// status.
func (st *Status) Write(w io.Writer, now time.Time) {
	fmt.Fprintf(w, "smarthost %s\n", st.Name)
	fmt.Fprintf(w, "  account:        %s (%s, flow %s)\n", st.Account, st.Provider, st.Flow)
	fmt.Fprintf(w, "  token file:     %s\n", st.File)
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.RFC3339), age(now.Sub(t)))
	}
	switch {
	case st.Flow == "device" || st.Flow == "authcode":
		if st.Grant {
			fmt.Fprintf(w, "  logged in:      %s\n", when(st.LoginTime))
			fmt.Fprintf(w, "  refresh token:  issued %s\n", when(st.RefreshTokenTime))
		} else {
			fmt.Fprintf(w, "  refresh token:  none\n")
		}
	default:
		fmt.Fprintf(w, "  login:          not needed (%s)\n", st.Flow)
	}
	switch {
	case st.Expiry.IsZero():
		fmt.Fprintf(w, "  access token:   none cached\n")
	case st.Expiry.After(now):
		fmt.Fprintf(w, "  access token:   valid until %s (%s left)\n", st.Expiry.Local().Format(time.RFC3339), age(st.Expiry.Sub(now)))
	default:
		fmt.Fprintf(w, "  access token:   expired at %s (renewed at the next connection)\n", st.Expiry.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "  last refresh:   %s\n", when(st.LastRefresh))
	if st.LastError != "" {
		fmt.Fprintf(w, "  last error:     %s: %s\n", st.LastErrorTime.Local().Format(time.RFC3339), st.LastError)
	}
	if p := st.Problem(); p != "" {
		fmt.Fprintf(w, "  to do:          run relay oauth login %s\n", st.Name)
	}
}

func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Logout forgets the grant: the token file is removed. The grant stays
// valid at the provider until it is revoked there (the account's
// security page lists the apps).
func (a *Account) Logout(ctx context.Context) (existed bool, err error) {
	unlock, err := lockGrant(ctx, a.TokenFile())
	if err != nil {
		return false, a.FileError("cannot lock", a.TokenFile(), err)
	}
	defer unlock()
	g, err := readGrant(a.TokenFile())
	if err != nil {
		return false, a.FileError("cannot read", a.TokenFile(), err)
	}
	if err := removeGrant(a.TokenFile()); err != nil {
		return false, a.FileError("cannot remove", a.TokenFile(), err)
	}
	return g != nil, nil
}
