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
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	err = daemon.Serve(cfg, c.loadConfig, c.stderr)
	if daemon.IsRunning(err) {
		return sysexits.Wrap(sysexits.TempFail, err)
	}
	return err
}
