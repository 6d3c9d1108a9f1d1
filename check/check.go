package check

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/oauth"
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
//
// A configuration with errors (config.LoadLenient) is reported with every
// error and the mail it holds, and exits 78; the files it names are not
// checked until it loads.
func Run(cfg *config.Config, out, warn io.Writer) error {
	if cfg.Broken() != nil {
		errs := append(config.Errors(nil), cfg.Problems...)
		if n := count(cfg.Spool); n > 0 {
			errs = append(errs, config.Problem{File: cfg.Path, Msg: fmt.Sprintf("%d message(s) in %s are held until these errors are fixed", n, cfg.Spool)})
		}
		if p := Elsewhere(cfg); p != nil {
			errs = append(errs, *p)
		}
		return sysexits.Wrap(sysexits.Config, &errs)
	}
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
	if p := Elsewhere(cfg); p != nil && stuck == nil {
		stuck = &StuckError{Elsewhere: p.Msg}
	}
	if probs := OAuth(cfg, warn); len(probs) > 0 {
		if stuck == nil {
			stuck = &StuckError{}
		}
		stuck.OAuth = probs
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
	// Elsewhere, when set, says that mail waits in a spool the
	// configuration does not name (see Elsewhere); N is then 0.
	Elsewhere string
	// OAuth lists the smarthosts whose OAuth grant is missing or refused
	// (see OAuth), each with what to run.
	OAuth []string
}

func (e *StuckError) Error() string {
	var parts []string
	switch {
	case e.N > 0:
		parts = append(parts, fmt.Sprintf("%d message(s) stuck on a failure of relay's side or the account, last: %s", e.N, e.Reason))
	case e.Elsewhere != "":
		parts = append(parts, e.Elsewhere)
	}
	return strings.Join(append(parts, e.OAuth...), "\n")
}

// OAuth looks at the token file of every smarthost that logs in with
// OAuth, without connecting anywhere: a grant missing or refused
// (invalid_grant) is returned, one line each naming relay oauth login
// NAME, since no mail can go through that smarthost until someone runs
// it; a token file this user cannot read, and a last refresh that failed
// for another reason (relay tries again), are warnings on warn.
func OAuth(cfg *config.Config, warn io.Writer) []string {
	var probs []string
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		if !sh.UsesOAuth() {
			continue
		}
		st, err := oauth.New(sh).Status()
		switch {
		case err != nil:
			fmt.Fprintf(warn, "relay: warning: %v\n", err)
		case st.Problem() != "":
			probs = append(probs, st.Problem())
		case st.LastError != "":
			fmt.Fprintf(warn, "relay: warning: smarthost %s: the last OAuth token refresh failed (%s): %s\n", sh.Name, st.LastErrorTime.Format(time.RFC3339), st.LastError)
		}
	}
	return probs
}

// Elsewhere looks for mail in the default spool when the configuration
// names another (SPEC section 12: a message submitted while the file
// could not be read, or had no readable spool line, was queued there).
// Nothing delivers from that spool while the file names another, so it
// is reported, with what to do; nil when there is nothing to report.
func Elsewhere(cfg *config.Config) *config.Problem {
	dir := cfg.DefaultSpool
	if dir == "" || filepath.Clean(dir) == filepath.Clean(cfg.Spool) {
		return nil
	}
	n := count(dir)
	if n == 0 {
		return nil
	}
	return &config.Problem{File: cfg.Path, Key: "spool", Msg: fmt.Sprintf(
		"%d message(s) wait in %s, the default spool, which this file does not name (they were queued while it could not be read): "+
			"deliver them with a copy of this file that sets spool = %q: relay -C COPY queue run", n, dir, dir)}
}

// count is the number of messages queued in the spool dir (0 when it
// does not exist or cannot be read).
func count(dir string) int {
	sp, err := spool.Open(dir)
	if err != nil {
		return 0
	}
	ids, err := sp.IDs()
	if err != nil {
		return 0
	}
	return len(ids)
}
