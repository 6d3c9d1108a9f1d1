package main

import (
	"os"
	"strings"

	"github.com/relaymail/relay/check"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/sysexits"
)

// check is relay check (package check): errors exit 78, stuck mail 75,
// warnings go to stderr with exit 0. With --config-only it checks one
// file and what it names, nothing else (check.ConfigOnly); -C FILE may
// then follow the subcommand too, as provisioning tools write it.
func (c *cli) check(args []string) error {
	configOnly := false
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "--config-only":
			configOnly, args = true, args[1:]
		case (a == "-C" || a == "--config") && len(args) > 1 && configOnly:
			c.configFlag, args = args[1], args[2:]
		case strings.HasPrefix(a, "--config=") && configOnly:
			c.configFlag, args = strings.TrimPrefix(a, "--config="), args[1:]
		default:
			return sysexits.New(sysexits.Usage, "check: unexpected argument %q (usage: relay check [--config-only [-C FILE]])", a)
		}
	}
	if configOnly {
		path := c.configFlag
		if path == "" {
			path = config.Locate("", os.Getenv, os.Geteuid()).Path
		}
		return check.ConfigOnly(path, c.stdout, c.stderr)
	}
	// The configuration's errors are reported by check.Run, with the mail
	// they hold.
	return check.Run(c.lenientConfig(), c.stdout, c.stderr)
}
