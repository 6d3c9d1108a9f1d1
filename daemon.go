package main

import (
	"github.com/relaymail/relay/daemon"
	"github.com/relaymail/relay/sysexits"
)

// daemon is relay daemon (package daemon). A second daemon on the spool
// exits 75 with one line.
func (c *cli) daemon(args []string) error {
	if len(args) > 0 {
		return sysexits.New(sysexits.Usage, "daemon takes no arguments")
	}
	// A configuration with errors does not stop the daemon: its listener
	// queues, its passes hold the mail and say why until a reload (SIGHUP,
	// which loads strictly) brings a good one.
	err := daemon.Serve(c.lenientConfig(), c.loadConfig, c.stderr)
	if daemon.IsRunning(err) {
		return sysexits.Wrap(sysexits.TempFail, err)
	}
	return err
}
