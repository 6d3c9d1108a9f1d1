package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/oauth"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// oauthCmd is relay oauth login|status|logout [NAME] (package oauth). The
// token file is written as the spool's owner (the daemon user): root
// becomes that user first, as the queue commands do. A login ends with a
// flush, so that mail waiting for the grant goes now.
func (c *cli) oauthCmd(args []string) error {
	if len(args) == 0 || len(args) > 2 {
		return sysexits.New(sysexits.Usage, "oauth: use relay oauth login|status|logout [NAME]")
	}
	sub, name := args[0], ""
	if len(args) == 2 {
		name = args[1]
	}
	switch sub {
	case "login", "status", "logout":
	default:
		return sysexits.New(sysexits.Usage, "oauth: unknown command %q (use login, status or logout)", sub)
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	hosts, err := oauthHosts(cfg, name, sub != "status")
	if err != nil {
		return err
	}
	if sub != "status" {
		if err := becomeSpoolOwner(cfg); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	switch sub {
	case "login":
		if err := relay.OAuthAccount(hosts[0]).Login(ctx, c.stdin, c.stdout, c.stderr); err != nil {
			return sysexits.Wrap(sysexits.TempFail, err)
		}
		// Mail that waited for the grant goes now (a daemon sees the
		// flush; without one a runner starts).
		if err := c.flush(cfg, nil, false); err != nil {
			fmt.Fprintf(c.stderr, "relay: warning: the queue could not be flushed: %v\n", err)
		}
		return nil
	case "logout":
		a := oauth.New(hosts[0])
		existed, err := a.Logout(ctx)
		if err != nil {
			return sysexits.Wrap(sysexits.TempFail, err)
		}
		if !existed {
			fmt.Fprintf(c.stdout, "smarthost %s: no grant was kept (%s)\n", hosts[0].Name, a.TokenFile())
			return nil
		}
		fmt.Fprintf(c.stdout, "smarthost %s: removed %s; the grant stays valid at the provider until you revoke it there (the account's list of apps with access)\n", hosts[0].Name, a.TokenFile())
		return nil
	}
	needed := 0
	for i, sh := range hosts {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		st, err := oauth.New(sh).Status()
		if err != nil {
			return sysexits.Wrap(sysexits.NoPerm, err)
		}
		st.Write(c.stdout, time.Now())
		if st.Problem() != "" {
			needed++
		}
	}
	if needed > 0 {
		return sysexits.New(sysexits.TempFail, "oauth status: %d smarthost(s) need relay oauth login", needed)
	}
	return nil
}

// oauthHosts returns the smarthost named name, or every one that uses
// OAuth when name is "" (one alone when one is wanted).
func oauthHosts(cfg *config.Config, name string, one bool) ([]*config.Smarthost, error) {
	var all []*config.Smarthost
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		if name != "" && sh.Name == name {
			if !sh.UsesOAuth() {
				return nil, sysexits.New(sysexits.Usage, "oauth: smarthost %q does not log in with OAuth (no [smarthost.oauth] table, no OAuth preset)", name)
			}
			return []*config.Smarthost{sh}, nil
		}
		if sh.UsesOAuth() {
			all = append(all, sh)
		}
	}
	switch {
	case name != "":
		return nil, sysexits.New(sysexits.Usage, "oauth: no smarthost is named %q in %s", name, cfg.Path)
	case len(all) == 0:
		return nil, sysexits.New(sysexits.Config, "oauth: no smarthost in %s logs in with OAuth", cfg.Path)
	case one && len(all) > 1:
		return nil, sysexits.New(sysexits.Usage, "oauth: name the smarthost: %d of them log in with OAuth", len(all))
	}
	return all, nil
}

// becomeSpoolOwner makes root continue as the spool's owner (the daemon
// user), so that the token file belongs to it; a spool that does not
// exist yet is made, as sendmail makes it.
func becomeSpoolOwner(cfg *config.Config) error {
	sp, err := mailq.Open(cfg)
	if err != nil {
		return err
	}
	if sp != nil {
		return nil // mailq.Open became the owner
	}
	// As sendmail does: a missing spool is made, this user's (relay
	// install gives a system spool to the daemon user).
	if _, err := spool.Create(cfg.Spool); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return sysexits.Wrap(sysexits.NoPerm, err)
		}
		return err
	}
	return nil
}
