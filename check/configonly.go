package check

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/sysexits"
)

// ConfigOnly is relay check --config-only -C FILE, the validator of
// provisioning tools (Ansible's validate, Salt's check_cmd): it reads
// FILE and the files FILE itself names (password and certificate files,
// the [rewrite] files, password_command's program, which is looked up and
// not run) and nothing else: no spool, no /etc/aliases or /etc/mailname
// unless FILE names them, no token files, no network; it writes nothing
// and needs no privilege beyond reading those files.
//
// Every problem is one line "file:line: key: message" on warn, errors
// and warnings alike (a warning reads "file:line: warning: key:
// message"), so that an editor or a provisioning tool's log points at the
// line. Errors make the result a *sysexits.Error with exit 78 that counts
// them; warnings alone leave it nil. On success out gets one line.
//
// A relative FILE is taken from the working directory; so are relative
// paths in it (which Load refuses anyway: paths must be absolute).
func ConfigOnly(path string, out, warn io.Writer) error {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	// Load returns what it could make of a file with errors along with
	// them: the files it names are checked too, so one run lists all.
	cfg, err := config.Load(config.Location{Path: path, Required: true})
	var probs []config.Problem
	if err != nil {
		errs, ok := err.(*config.Errors)
		if !ok {
			return sysexits.Wrap(sysexits.Config, err)
		}
		probs = *errs
	}
	if cfg != nil {
		// The defaults name files too (rewrite.aliases is /etc/aliases):
		// those belong to the host the file will be used on, not to the
		// file, and are not read here.
		named := *cfg
		if !cfg.Sets("rewrite.aliases") {
			named.Rewrite.Aliases = ""
		}
		probs = append(probs, named.Check()...)
		probs = append(probs, rewrite.FileProblems(&named)...)
		config.SortProblems(probs)
	}
	n := 0
	for _, p := range probs {
		fmt.Fprintln(warn, p)
		if !p.Warning {
			n++
		}
	}
	if n > 0 {
		return sysexits.New(sysexits.Config, "check: %s: %d error(s)", path, n)
	}
	fmt.Fprintf(out, "configuration %s: OK\n", path)
	return nil
}
