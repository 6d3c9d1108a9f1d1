package main

import (
	"os"
	"strconv"

	"github.com/relaymail/relay/daemon"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// queue is relay queue COMMAND [ARGS]: the arguments are read here, the
// work is mailq's (and daemon's for queue run).
func (c *cli) queue(args []string) error {
	if len(args) == 0 {
		return sysexits.New(sysexits.Usage, "queue: name a command: list, stats, check, show, flush, delete, hold, release")
	}
	cmd, args := args[0], args[1:]
	// The queue commands work whatever the configuration's errors: the
	// mail waits there, held (SPEC section 12).
	cfg := c.lenientConfig()
	if cmd != "run" {
		c.warnBroken(cfg)
	}
	q := mailq.Queue{Config: cfg, Out: c.stdout, Warn: c.stderr}
	switch cmd {
	case "list":
		asJSON := len(args) == 1 && args[0] == "--json"
		if len(args) > 1 || len(args) == 1 && !asJSON {
			return sysexits.New(sysexits.Usage, "queue list: only --json is accepted")
		}
		return q.List(asJSON)
	case "stats":
		return c.queueStats(q, args)
	case "show":
		if len(args) == 2 && (args[0] == "--body" || args[0] == "--headers") {
			args[0], args[1] = args[1], args[0]
		}
		if len(args) == 2 && (args[1] == "--body" || args[1] == "--headers") {
			if !spool.ValidID(args[0]) {
				return sysexits.New(sysexits.Usage, "queue show: %q is not a queue ID", args[0])
			}
			return q.ShowMessage(args[0], args[1] == "--headers")
		}
	case "flush":
		verbose := len(args) > 0 && args[0] == "-v"
		if verbose {
			args = args[1:]
		}
		ids, _, err := idArgs(cmd, args)
		if err != nil && len(args) > 0 {
			return err
		}
		return c.flush(cfg, ids, verbose)
	case "run":
		// --detached [--commit-fd N] is what sendmail starts (see
		// daemon.StartDelivery, daemon.RunDetached); not for typing.
		switch {
		case len(args) == 0:
			return daemon.RunQueue(cfg, false, c.stderr)
		case len(args) == 1 && args[0] == "--detached":
			return daemon.RunQueue(cfg, true, c.stderr)
		case len(args) == 3 && args[0] == "--detached" && args[1] == "--commit-fd":
			fd, err := strconv.Atoi(args[2])
			if err != nil || fd < 3 {
				return sysexits.New(sysexits.Usage, "queue run: --commit-fd takes a file descriptor over 2, not %q", args[2])
			}
			return daemon.RunDetached(cfg, os.NewFile(uintptr(fd), "commit"), c.stderr)
		}
		return sysexits.New(sysexits.Usage, "queue run takes no arguments")
	}
	ids, all, err := idArgs(cmd, args)
	if err != nil {
		return err
	}
	switch cmd {
	case "show":
		if len(ids) != 1 || all {
			return sysexits.New(sysexits.Usage, "queue show: name one queue ID")
		}
		return q.Show(ids[0])
	case "delete":
		return q.Delete(ids, all)
	case "hold":
		return q.Hold(ids, all)
	case "release":
		return q.Release(ids, all)
	}
	return sysexits.New(sysexits.Usage, "queue: unknown command %q", cmd)
}

// idArgs reads "ID…" or "--all".
func idArgs(cmd string, args []string) (ids []string, all bool, err error) {
	for _, a := range args {
		switch {
		case a == "--all":
			all = true
		case spool.ValidID(a):
			ids = append(ids, a)
		default:
			return nil, false, sysexits.New(sysexits.Usage, "queue %s: %q is not a queue ID", cmd, a)
		}
	}
	if all == (len(ids) > 0) {
		return nil, false, sysexits.New(sysexits.Usage, "queue %s: name queue IDs or --all", cmd)
	}
	return ids, all, nil
}
