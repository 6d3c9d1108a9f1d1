package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/relaymail/relay/migrate"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// importCmd is `relay import FORMAT [PATH] [--write DIR] [--force]
// [--queue] [--queue-dir DIR]` (package migrate).
func (c *cli) importCmd(args []string) error {
	var format, path, dir, queueDir string
	force, queue := false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func(name string) (string, error) {
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v, nil
			}
			if i+1 >= len(args) {
				return "", sysexits.New(sysexits.Usage, "import: %s needs a directory", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case a == "--write" || strings.HasPrefix(a, "--write="):
			dir, err = val("--write")
		case a == "--queue-dir" || strings.HasPrefix(a, "--queue-dir="):
			queueDir, err = val("--queue-dir")
			queue = true
		case a == "--force":
			force = true
		case a == "--queue":
			queue = true
		case strings.HasPrefix(a, "-"):
			err = sysexits.New(sysexits.Usage, "import: unknown option %q (see relay help import)", a)
		case format == "":
			format = a
		case path == "":
			path = a
		default:
			err = sysexits.New(sysexits.Usage, "import: too many arguments")
		}
		if err != nil {
			return err
		}
	}
	if !slices.Contains(migrate.Formats, format) {
		return sysexits.New(sysexits.Usage, "import: name the format: %s", strings.Join(migrate.Formats, ", "))
	}
	home, _ := os.UserHomeDir()
	if path == "" {
		path = migrate.DefaultPath(format, home, os.Geteuid(), func(p string) bool { _, err := os.Stat(p); return err == nil })
	}
	r, err := migrate.Import(format, path)
	if err != nil {
		return err
	}
	migrate.WriteReport(c.stderr, r.Notes)
	if dir == "" {
		fmt.Fprint(c.stdout, r.TOML("/etc/relay"))
		if n := r.FilesNotWritten(); len(n) > 0 {
			fmt.Fprintf(c.stderr, "%s: not written (use --write DIR): %s\n", c.prog, strings.Join(n, ", "))
		}
		gen := r.Generated()
		for _, name := range []string{"aliases", "senders"} {
			if text, ok := gen[name]; ok {
				fmt.Fprintf(c.stderr, "%s: /etc/relay/%s would hold:\n%s", c.prog, name, text)
			}
		}
	} else {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return sysexits.New(sysexits.Usage, "import: --write %s: %v", dir, err)
		}
		gid := -1
		if g, err := user.LookupGroup("relay"); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		}
		written, err := r.Write(migrate.WriteOptions{Dir: abs, Force: force, GID: gid})
		for _, p := range written {
			fmt.Fprintf(c.stderr, "%s: wrote %s\n", c.prog, p)
		}
		if err != nil {
			return err
		}
	}
	if !queue {
		return nil
	}
	return c.importQueue(format, path, queueDir, home)
}

// importQueue moves the old program's queue into relay's spool: as root
// into a spool of the relay user, through the maildrop.
func (c *cli) importQueue(format, confPath, dir, home string) error {
	if dir == "" {
		var err error
		if dir, err = migrate.QueueDir(format, confPath, home); err != nil {
			return err
		}
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	sp, err := spool.Open(cfg.Spool)
	if errors.Is(err, fs.ErrNotExist) {
		sp, err = spool.Create(cfg.Spool) // as sendmail does
	}
	if err != nil {
		return sysexits.Wrap(sysexits.TempFail, err)
	}
	opts := migrate.QueueOptions{Spool: sp, UID: os.Getuid()}
	if u, err := user.Current(); err == nil {
		opts.User = u.Username
	}
	if os.Geteuid() == 0 {
		if uid, _, err := sp.Owner(); err == nil && uid != 0 && sp.HasMaildrop() {
			opts.Drop = true
		}
	}
	moved, left, err := migrate.ImportQueue(format, dir, opts)
	for _, m := range moved {
		fmt.Fprintf(c.stderr, "%s: %s: queued as %s (from <%s>, to %s)\n", c.prog, strings.Join(m.Files, ", "), m.ID, m.Sender, strings.Join(m.Recipients, ", "))
		if m.Removed != nil {
			fmt.Fprintf(c.stderr, "%s: warning: %s: not removed, remove it by hand or it is sent twice: %v\n", c.prog, m.Files[0], m.Removed)
		}
	}
	for _, l := range left {
		fmt.Fprintf(c.stderr, "%s: %s: left in place: %s\n", c.prog, l.File, l.Why)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "%s: %d message(s) moved from %s into %s, %d file(s) left\n", c.prog, len(moved), dir, cfg.Spool, len(left))
	if len(left) > 0 {
		return sysexits.New(sysexits.DataErr, "import: %d file(s) of %s could not be read and were left in place", len(left), dir)
	}
	return nil
}
