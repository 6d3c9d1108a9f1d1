package mailq

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/atomicfile"
	"github.com/relaymail/relay/metrics"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// Open opens the configured spool for the queue commands and relay queue
// run. A spool that does not exist yet is an empty queue: nil, nil. One
// the caller may not read is the one-line exit 77. Root continues as the
// spool's owner (spool.BecomeOwner), so that whatever it writes stays
// readable by the daemon.
func Open(cfg *config.Config) (*spool.Spool, error) {
	sp, err := spool.Open(cfg.Spool)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, sysexits.New(sysexits.NoPerm, "permission denied: reading the queue in %s needs root or the relay group", cfg.Spool)
	}
	if err != nil {
		return nil, err
	}
	return sp, sp.BecomeOwner()
}

// Denied turns a refused read of the queue into the one-line exit 77;
// other errors pass unchanged.
func Denied(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return sysexits.New(sysexits.NoPerm, "permission denied: the queue is readable by root and the relay group only")
	}
	return err
}

// Queue runs the queue commands on the configured spool: relay queue
// list, flush, show, delete, hold and release (and sendmail -bp, -q).
// Errors are *sysexits.Error where an exit code other than 70 applies: 66
// for a message not in the queue (or an empty queue), 77 for permissions.
type Queue struct {
	Config *config.Config
	Out    io.Writer // listings
	Warn   io.Writer // one line per unreadable message
	// Now is the time flushed and released messages become due (nil:
	// time.Now).
	Now func() time.Time
}

func (q Queue) now() time.Time {
	if q.Now == nil {
		return time.Now()
	}
	return q.Now()
}

// List writes the queue as postqueue -p does, or as postqueue -j with
// asJSON.
func (q Queue) List(asJSON bool) error {
	sp, err := Open(q.Config)
	if err != nil {
		return err
	}
	if sp == nil {
		if !asJSON {
			fmt.Fprintln(q.Out, "Mail queue is empty")
		}
		return nil
	}
	// A listing reads every envelope once and keeps none (a few MB of
	// live heap): the collector need not run every few thousand
	// messages. These commands are short-lived processes (relay queue
	// stats does the same).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	if asJSON {
		return Denied(ListJSON(q.Out, q.Warn, sp))
	}
	return Denied(List(q.Out, q.Warn, sp))
}

// Flush makes the messages ids (every one when none is named) due now
// and forgets that a smarthost was down: a flush means "try now".
func (q Queue) Flush(ids []string) error {
	sp, err := Open(q.Config)
	if sp == nil || err != nil {
		return err
	}
	if err := sp.ForgetHosts(); err != nil {
		return Denied(err)
	}
	return Denied(Flush(sp, ids, q.now()))
}

// Show writes one message's envelope and header.
func (q Queue) Show(id string) error {
	return q.change("show", func(sp *spool.Spool) error { return Show(q.Out, sp, id) })
}

// Delete removes messages for good (all: the whole queue).
func (q Queue) Delete(ids []string, all bool) error {
	return q.change("delete", func(sp *spool.Spool) error { return Delete(sp, ids, all) })
}

// Hold puts messages on hold.
func (q Queue) Hold(ids []string, all bool) error {
	return q.change("hold", func(sp *spool.Spool) error { return Hold(sp, ids, all) })
}

// Release takes messages off hold, due now.
func (q Queue) Release(ids []string, all bool) error {
	return q.change("release", func(sp *spool.Spool) error { return Release(sp, ids, all, q.now()) })
}

// change runs a command that names messages: none can be in a queue that
// does not exist.
func (q Queue) change(cmd string, op func(*spool.Spool) error) error {
	sp, err := Open(q.Config)
	if err != nil {
		return err
	}
	if sp == nil {
		return sysexits.New(sysexits.NoInput, "queue %s: the queue is empty", cmd)
	}
	return Denied(op(sp))
}

// StatsOptions choose what relay queue stats writes.
type StatsOptions struct {
	Domains int    // the top domains listed (negative: all)
	Format  string // "text" (or ""), "json", "prometheus"
	// Output, when set, is the file written instead of Out: atomically
	// (a temporary file in its directory, then a rename), mode 0644, as
	// node exporter's textfile collector wants it.
	Output string
}

// Stats writes the queue's statistics (relay queue stats).
func (q Queue) Stats(o StatsOptions) error {
	st, err := q.collect(o.Domains)
	if err != nil {
		return err
	}
	write := func(w io.Writer) error {
		switch o.Format {
		case "json":
			return st.WriteJSON(w)
		case "prometheus":
			mw := metrics.NewWriter(w)
			st.WritePrometheus(mw, true)
			return mw.Flush()
		}
		return st.WriteText(w)
	}
	if o.Output == "" {
		return write(q.Out)
	}
	return writeAtomic(o.Output, write)
}

// collect counts the configured queue.
func (q Queue) collect(domains int) (*Stats, error) {
	sp, err := Open(q.Config)
	if err != nil {
		return nil, err
	}
	st, err := CollectStats(q.Config, sp, domains, q.now(), func(err error) { fmt.Fprintf(q.Warn, "mailq: %v\n", err) })
	return st, Denied(err)
}

// Check judges the queue by the limits for a monitoring plugin: it
// writes the one line and returns the state (CheckOK … CheckUnknown),
// which is the exit code.
func (q Queue) Check(lim CheckLimits) int {
	st, err := q.collect(0)
	if err != nil {
		fmt.Fprintln(q.Out, UnknownLine(err))
		return CheckUnknown
	}
	state, line := Check(st, lim)
	fmt.Fprintln(q.Out, line)
	return state
}

// ShowMessage writes the stored message id as it was queued (relay queue
// show --body), or its header alone (headers), with LF line ends.
func (q Queue) ShowMessage(id string, headers bool) error {
	return q.change("show", func(sp *spool.Spool) error { return ShowMessage(q.Out, sp, id, headers) })
}

// writeAtomic writes a file whole (package atomicfile: a dot-named
// temporary file, never *.prom, since node exporter reads only complete
// files), mode 0644.
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.Write(path, atomicfile.Options{Mode: 0o644}, write); err != nil {
		return sysexits.Wrap(sysexits.CantCreat, err)
	}
	return nil
}
