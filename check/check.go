package check

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// Run is relay check on cfg: the configuration, the files it names and
// the spool. Warnings go to warn, one line each, and leave the result
// nil; errors make it a *sysexits.Error with exit 78 listing every one
// (config.Errors); mail stuck on relay's own side makes it exit 75
// (StuckError). When all is well, out gets two lines: the configuration
// and the count of queued messages.
func Run(cfg *config.Config, out, warn io.Writer) error {
	var errs config.Errors
	host, _ := os.Hostname()
	for _, p := range append(cfg.Check(), rewrite.Load(cfg, host).Check()...) {
		if p.Warning {
			fmt.Fprintf(warn, "relay: %s\n", p)
		} else {
			errs = append(errs, p)
		}
	}
	queued, err := Spool(cfg, warn)
	var stuck *StuckError
	if errors.As(err, &stuck) {
		err = nil
	}
	if err != nil {
		errs = append(errs, config.Problem{File: cfg.Path, Key: "spool", Msg: err.Error()})
	}
	if len(errs) > 0 {
		return sysexits.Wrap(sysexits.Config, &errs)
	}
	if stuck != nil {
		return sysexits.Wrap(sysexits.TempFail, stuck)
	}
	source := cfg.Path
	if !cfg.Loaded {
		source = "built-in defaults (" + cfg.Path + " does not exist)"
	}
	fmt.Fprintf(out, "configuration %s: OK\nspool %s: %d message(s) queued\n", source, cfg.Spool, queued)
	return nil
}

// Spool reports the state of the configured spool: it counts the queue
// and warns on warn about unreadable and corrupt files and about a system
// install without a daemon. A missing spool is fine (it is made on first
// use); one whose directories this user cannot use (single-user) or whose
// owners and modes are not those of relay install (system) is an error,
// and so is mail stuck on relay's side (*StuckError, with the count).
func Spool(cfg *config.Config, warn io.Writer) (queued int, err error) {
	sp, err := spool.Open(cfg.Spool)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if sp.HasMaildrop() && !sp.DaemonRunning() {
		// Users of a system install cannot deliver themselves: without a
		// daemon their mail waits for relay queue run.
		fmt.Fprintf(warn, "relay: warning: no relay daemon is running: mail from local users waits for relay queue run (cron, or relay-queue.timer)\n")
	}
	if sp.HasMaildrop() {
		if err := systemDirs(sp); err != nil {
			return 0, err
		}
	} else if err := sp.CheckAccess(); err != nil {
		return 0, err
	}
	stuck := 0
	var reason string
	err = sp.Scan(func(_ string, m *spool.Message, err error) error {
		queued++
		if err != nil {
			fmt.Fprintf(warn, "relay: warning: %v\n", err)
		} else if m.OwnSide() {
			stuck++
			reason = m.LastError()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if stuck > 0 {
		return queued, &StuckError{N: stuck, Reason: reason}
	}
	if dir, n := sp.Corrupt(); n > 0 {
		fmt.Fprintf(warn, "relay: warning: %d file(s) in %s need a look\n", n, dir)
	}
	return queued, nil
}

// systemDirs checks every directory of a system install for the owner
// (the spool's) and mode relay install gives it.
func systemDirs(sp *spool.Spool) error {
	uid, gid, err := sp.Owner()
	if err != nil {
		return err
	}
	var problems []string
	for _, d := range spool.SystemDirs(sp.Dir) {
		fi, err := os.Lstat(d.Path)
		if err != nil {
			problems = append(problems, err.Error())
		} else if p := d.Check(fi, uid, gid); p != "" {
			problems = append(problems, d.Path+": "+p+" (relay install fixes it)")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// StuckError says that mail waits on a failure of relay's own side or the
// account (connect, TLS, AUTH, MAIL FROM): the configuration is valid,
// but mail does not leave. relay check exits 75 for it.
type StuckError struct {
	N      int    // messages stuck
	Reason string // the last one's error
}

func (e *StuckError) Error() string {
	return fmt.Sprintf("%d message(s) stuck on a failure of relay's side or the account, last: %s", e.N, e.Reason)
}
