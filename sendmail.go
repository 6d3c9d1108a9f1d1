package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/daemon"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/smtpd"
)

// sendmail is relay as sendmail(1): the flags decide the mode.
func (c *cli) sendmail(args []string) error {
	o, err := sendmailcompat.ParseArgs(args)
	if err != nil {
		return err
	}
	if o.Config != "" {
		c.configFlag = o.Config
	}
	switch o.Mode {
	case sendmailcompat.ModeSMTP:
		return c.sendmailSMTP(o)
	case sendmailcompat.ModeNewaliases:
		return c.newaliases()
	case sendmailcompat.ModeVerify:
		cfg, err := c.loadConfig()
		if err != nil {
			return err
		}
		return sendmailcompat.NewSubmitter(cfg).Verify(o.Recipients, c.stdout)
	}
	// Queueing, listing and flushing never fail on the configuration
	// (SPEC section 12): delivery holds the mail until it is fixed.
	cfg := c.lenientConfig()
	switch o.Mode {
	case sendmailcompat.ModePrintQueue:
		c.warnBroken(cfg)
		return mailq.Queue{Config: cfg, Out: c.stdout, Warn: c.stderr}.List(false)
	case sendmailcompat.ModeFlush:
		return c.flush(cfg, nil, o.Verbose)
	}
	s, err := sendmailcompat.OpenSubmitter(cfg)
	if err != nil {
		return err
	}
	// The enqueue line goes to syslog or the log file when it can, never
	// to stderr: callers take any output there for a failure.
	s.Log = maillog.OpenBestEffort(cfg.Log.To)
	defer s.Log.Close()
	wait := o.WaitSet || o.Verbose
	var delivery *daemon.Delivery
	if !wait {
		// The detached runner starts while the message is being
		// committed (see daemon.BeginDelivery).
		delivery = daemon.BeginDelivery(cfg, s)
	}
	receipt, err := s.Enqueue(o.Message(), c.stdin)
	if err != nil {
		if delivery != nil {
			delivery.Finish(false)
		}
		return err
	}
	if cfg.Broken() != nil {
		// Nothing on stderr: the message is safe, and callers take any
		// output there for a failure.
		s.Log.Error("id", receipt.ID, "status", "held", "reason", cfg.HoldReason())
	}
	// A recipient with nowhere to go is exit 67, but the message is
	// queued, and the bounce is delivered like the rest.
	err = receipt.Err()
	if wait {
		trace := c.stderr
		if !o.Verbose {
			trace = nil
		}
		if werr := daemon.DeliverNow(cfg, s, receipt.ID, o.WaitDuration(), trace); err == nil {
			err = werr
		}
		return err
	}
	delivery.Finish(true)
	return err
}

// sendmailSMTP is sendmail -bs: an SMTP session on stdin and stdout
// (Symfony Mailer). When it cannot start, an SMTP client reads why in a
// 421 greeting; the exit code and stderr say it too.
func (c *cli) sendmailSMTP(o *sendmailcompat.Options) error {
	cfg := c.lenientConfig()
	s, err := sendmailcompat.OpenSubmitter(cfg)
	if err != nil {
		smtpd.RefuseSession(c.stdout, err)
		return err
	}
	// A client that closes its end early must not kill relay with
	// SIGPIPE: the write fails and the session ends.
	signal.Ignore(syscall.SIGPIPE)
	// Each queued message starts delivery as sendmail's does (a runner
	// at work already takes it); not at the end of the session, which a
	// long-running PHP worker may keep open for hours.
	queued := func() { daemon.StartDelivery(cfg, s) }
	return (&smtpd.Server{Submitter: s, FullName: o.FullName, Queued: queued}).ServeStdio(c.stdin, c.stdout)
}

// lenientConfig is loadConfig for the commands that must work whatever
// the configuration's errors: queueing, the queue commands, the runners
// (config.LoadLenient).
func (c *cli) lenientConfig() *config.Config {
	return config.LoadLenient(config.Locate(c.configFlag, os.Getenv, os.Geteuid()))
}

// warnBroken says on stderr, one line, that the configuration has errors
// and mail is held.
func (c *cli) warnBroken(cfg *config.Config) {
	if cfg.Broken() != nil {
		fmt.Fprintf(c.stderr, "%s: warning: mail is held: %s\n", c.prog, cfg.HoldReason())
	}
}

// flush is relay queue flush and sendmail -q: the mail due now, then a
// delivery pass without a daemon (detached; -v: in the foreground with
// the dialogue on stderr).
func (c *cli) flush(cfg *config.Config, ids []string, verbose bool) error {
	if err := (mailq.Queue{Config: cfg}).Flush(ids); err != nil {
		return err
	}
	var trace io.Writer
	if verbose {
		trace = c.stderr
	}
	return daemon.AfterFlush(cfg, trace)
}

// newaliases checks the alias file and prints every problem; it exits 0
// all the same (see rewrite.Newaliases).
func (c *cli) newaliases() error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	for _, line := range rewrite.Newaliases(cfg) {
		fmt.Fprintf(c.stderr, "%s: %s\n", c.prog, line)
	}
	return nil
}

// rewrite is relay rewrite ADDR...: what each address becomes.
func (c *cli) rewrite(args []string) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	return sendmailcompat.NewSubmitter(cfg).Verify(args, c.stdout)
}
