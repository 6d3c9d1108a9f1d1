package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sysexits"
)

// probe is `relay probe [--send-to ADDR] [-v]`: every smarthost in order,
// connected to, TLS and certificate shown, AUTH tried, optionally a test
// message sent (never queued), each failure explained. Exit 0 only when
// every smarthost works, 69 when one does not, 78 for configuration errors.
func (c *cli) probe(args []string) error {
	var sendTo string
	verbose := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-v" || a == "--verbose":
			verbose = true
		case a == "--send-to" && i+1 < len(args):
			i++
			sendTo = args[i]
		case strings.HasPrefix(a, "--send-to="):
			sendTo = strings.TrimPrefix(a, "--send-to=")
		default:
			return sysexits.New(sysexits.Usage, "probe: unknown argument %q (use --send-to ADDR, -v)", a)
		}
	}
	if sendTo != "" {
		if err := mailaddr.Valid(sendTo); err != nil {
			return sysexits.New(sysexits.Usage, "probe: --send-to %q is not an address: %v", sendTo, strings.TrimPrefix(err.Error(), "mailaddr: "))
		}
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	if len(cfg.Smarthosts) == 0 {
		return sysexits.New(sysexits.Config, "%s: no [[smarthost]] configured: nothing to probe", cfg.Path)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	hostname, _ := os.Hostname()
	o := relay.ProbeOptions{
		HeloName: heloName(cfg),
		Domain:   cfg.MailDomain(),
		Hostname: hostname,
		SendTo:   sendTo,
		Now:      time.Now,
	}
	if verbose {
		o.Debug = c.stderr // Probe redacts AUTH (relay.RedactAuth)
	}
	failed := 0
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		if i > 0 {
			c.stdout.Write([]byte("\n"))
		}
		if verbose {
			fmt.Fprintf(c.stderr, "relay probe: smarthost %q %s:%d (%s)\n", sh.Name, sh.Host, sh.Port, sh.TLS)
		}
		r := relay.Probe(ctx, sh, o)
		var b strings.Builder
		r.Format(&b, relay.Explain, time.Now())
		out := b.String()
		// A last line of defence, as for the delivery log: the report is
		// built from server replies and errors, never from the password,
		// but an inline password long enough not to mangle ordinary text
		// is masked all the same.
		if len(sh.Password) >= 8 {
			out = strings.ReplaceAll(out, sh.Password, "****")
		}
		c.stdout.Write([]byte(out))
		if !r.OK() {
			failed++
		}
		if ctx.Err() != nil {
			break
		}
	}
	if failed > 0 {
		return sysexits.New(sysexits.Unavailable, "probe: %d of %d smarthost(s) failed", failed, len(cfg.Smarthosts))
	}
	return nil
}
