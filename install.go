package main

import (
	"os"
	"strings"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/install"
	"github.com/relaymail/relay/sysexits"
)

// install is relay install [--prefix DIR] [--dry-run] [--force]
// [--package] (package install).
func (c *cli) install(args []string) error {
	o := install.Options{Out: c.stdout}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--dry-run":
			o.DryRun = true
		case a == "--force":
			o.Force = true
		case a == "--package":
			o.Package = true
		case a == "--prefix" && i+1 < len(args):
			i++
			o.Prefix = args[i]
		case strings.HasPrefix(a, "--prefix="):
			o.Prefix = strings.TrimPrefix(a, "--prefix=")
		default:
			return sysexits.New(sysexits.Usage, "install: unknown argument %q (use --prefix DIR, --dry-run, --force, --package)", a)
		}
	}
	var err error
	if os.Geteuid() != 0 && !o.DryRun {
		return sysexits.New(sysexits.NoPerm, "install: run as root (or with --dry-run to see the steps)")
	}
	var cfg *config.Config
	if o.Package {
		// A maintainer script must not fail on an administrator's broken
		// relay.toml: the spool is the one sendmail would queue into.
		cfg = config.LoadLenient(config.Locate(c.configFlag, os.Getenv, os.Geteuid()))
	} else if cfg, err = c.loadConfig(); err != nil {
		return err
	}
	if o.Binary, err = os.Executable(); err != nil {
		return err
	}
	o.Spool, o.Config, o.User = cfg.Spool, cfg.Path, cfg.Daemon.User
	return sysexits.Wrap(sysexits.CantCreat, install.Run(o))
}
