package main

import (
	"github.com/relaymail/relay/check"
	"github.com/relaymail/relay/sysexits"
)

// check is relay check (package check): errors exit 78, stuck mail 75,
// warnings go to stderr with exit 0.
func (c *cli) check(args []string) error {
	if len(args) > 0 {
		return sysexits.New(sysexits.Usage, "check takes no arguments")
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	return check.Run(cfg, c.stdout, c.stderr)
}
