package main

import (
	"fmt"
	"os/signal"
	"syscall"

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
	if o.Mode == sendmailcompat.ModeSMTP {
		return c.sendmailSMTP(o)
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	switch o.Mode {
	case sendmailcompat.ModePrintQueue:
		return mailq.Queue{Config: cfg, Out: c.stdout, Warn: c.stderr}.List(false)
	case sendmailcompat.ModeFlush:
		return mailq.Queue{Config: cfg}.Flush(nil)
	case sendmailcompat.ModeNewaliases:
		return c.newaliases()
	case sendmailcompat.ModeVerify:
		return sendmailcompat.NewSubmitter(cfg).Verify(o.Recipients, c.stdout)
	}
	s, err := sendmailcompat.OpenSubmitter(cfg)
	if err != nil {
		return err
	}
	// The enqueue line goes to syslog or the log file when it can, never
	// to stderr: callers take any output there for a failure.
	s.Log = maillog.OpenBestEffort(cfg.Log.To)
	defer s.Log.Close()
	receipt, err := s.Enqueue(o.Message(), c.stdin)
	if err != nil {
		return err
	}
	// A recipient with nowhere to go is exit 67, but the message is
	// queued, and the bounce is delivered like the rest.
	err = receipt.Err()
	if o.WaitSet || o.Verbose {
		trace := c.stderr
		if !o.Verbose {
			trace = nil
		}
		if werr := daemon.DeliverNow(cfg, s, receipt.ID, o.WaitDuration(), trace); err == nil {
			err = werr
		}
		return err
	}
	daemon.StartDelivery(cfg, s)
	return err
}

// sendmailSMTP is sendmail -bs: an SMTP session on stdin and stdout
// (Symfony Mailer). When it cannot start, an SMTP client reads why in a
// 421 greeting; the exit code and stderr say it too.
func (c *cli) sendmailSMTP(o *sendmailcompat.Options) error {
	cfg, err := c.loadConfig()
	var s *sendmailcompat.Submitter
	if err == nil {
		s, err = sendmailcompat.OpenSubmitter(cfg)
	}
	if err != nil {
		smtpd.RefuseSession(c.stdout, err)
		return err
	}
	// A client that closes its end early must not kill relay with
	// SIGPIPE: the write fails and the session ends.
	signal.Ignore(syscall.SIGPIPE)
	return (&smtpd.Server{Submitter: s, FullName: o.FullName}).ServeStdio(c.stdin, c.stdout)
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
