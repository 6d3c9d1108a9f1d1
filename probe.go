package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sysexits"
)

// probe is `relay probe [--send-to ADDR] [-v]` (see relay.ProbeAll).
// Exit 0 only when every smarthost works, 69 when one does not, 78 for
// configuration errors.
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
	var trace io.Writer
	if verbose {
		trace = c.stderr
	}
	if failed := relay.ProbeAll(ctx, cfg, sendTo, c.stdout, trace); failed > 0 {
		return sysexits.New(sysexits.Unavailable, "probe: %d of %d smarthost(s) failed", failed, len(cfg.Smarthosts))
	}
	return nil
}
