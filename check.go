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
	// The configuration's errors are reported by check.Run, with the mail
	// they hold.
	return check.Run(c.lenientConfig(), c.stdout, c.stderr)
}
