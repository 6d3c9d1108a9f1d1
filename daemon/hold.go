package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// Hold is what a pass does instead of delivering when the configuration
// has errors (config.LoadLenient made it; see "A configuration with
// errors" in the package documentation): every message due now (only
// these, when only is not nil) gets, on each pending recipient, the
// failure "held: " + cfg.HoldReason() at StageLocal (relay's own side:
// never bounced, shown by mailq, counted as stuck by relay check). No
// attempt is counted and the next attempt is not moved, so the first pass
// after the file is fixed delivers it. An envelope that already says so
// is not written again: the daemon's watch takes every rewrite for news.
// held counts the messages waiting for the fix; a message another process
// holds is left alone.
func Hold(sp *spool.Spool, cfg *config.Config, only []string, now time.Time) (held int, err error) {
	text := "held: " + cfg.HoldReason()
	ids := only
	if ids == nil {
		if ids, err = sp.IDs(); err != nil {
			return 0, err
		}
	}
	var errs []error
	for _, id := range ids {
		l, err := sp.Lock(id)
		if err != nil {
			if !errors.Is(err, spool.ErrBusy) && !errors.Is(err, spool.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		env := l.Env
		pending := env.Pending()
		if env.Held || len(pending) == 0 || only == nil && env.NextAttempt.After(now) {
			l.Close()
			continue
		}
		held++
		f := &failure.Failure{Stage: failure.StageLocal, Text: text, Time: now}
		changed := false
		for _, rc := range pending {
			if rc.Failure == nil || rc.Failure.Stage != f.Stage || rc.Failure.Text != f.Text {
				rc.Failure, changed = f, true
			}
		}
		if changed {
			env.LastFailure = f
			if err := l.Update(); err != nil {
				errs = append(errs, fmt.Errorf("holding %s: %w", id, err))
			}
		}
		l.Close()
	}
	return held, errors.Join(errs...)
}

// heldError is the error of a pass that held mail: one line for the log
// (level error, each pass) and exit 78 for relay queue run.
func heldError(cfg *config.Config, held int) error {
	return sysexits.New(sysexits.Config, "mail is held, not delivered: %s; %d message(s) wait for the fix", cfg.HoldReason(), held)
}
