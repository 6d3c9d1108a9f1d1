package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
)

// DefaultRescan is the rescan interval when [daemon] rescan is not set.
const DefaultRescan = 5 * time.Minute

// MemoryLimit is the soft memory limit the daemon sets for the Go runtime
// (debug.SetMemoryLimit) unless GOMEMLIMIT is set.
const MemoryLimit = 10 << 20

// maxGap bounds the gap between timer-driven passes that find nothing
// to do although work is due.
const maxGap = 30 * time.Second

// maxWaiters bounds the goroutines waiting for a message's lock to be
// released (see classify); beyond it the scan after a pass looks again.
const maxWaiters = 8

// minGap is the first gap between two passes the timer starts while work
// stays due (see the package documentation).
const minGap = time.Second

// Daemon runs the queue of one spool. Fill the fields, then call Run.
type Daemon struct {
	Spool  *spool.Spool
	Config *config.Config
	Log    *maillog.Logger
	// Reload reads the configuration again (SIGHUP); nil: SIGHUP only
	// reopens the log. The delivery runner and the maildrop pickup are
	// made from the configuration (relay.NewRunner,
	// sendmailcompat.NewPickup), kept from pass to pass and made anew
	// after a reload.
	Reload func() (*config.Config, error)
	// Services run beside the queue runner for the daemon's life (see
	// the package documentation).
	Services []func(ctx context.Context) error
	// Metrics, when set, are told what the runners deliver and what
	// arrives in the queue ([metrics] listen serves them).
	Metrics *Metrics
	// Rescan overrides the configuration's [daemon] rescan (0: take it
	// from there, DefaultRescan when unset).
	Rescan time.Duration

	// runner is the delivery runner in use: the timer and the watch see
	// the queue as it does, with what it could not write to the spool
	// (relay.Runner.NextDue).
	runner atomic.Pointer[relay.Runner]
}

type passResult struct {
	next    time.Time // earliest next due time; zero: none
	hasNext bool
	worked  bool // the pass found something to do
}

// Run serves the spool until ctx is cancelled or SIGTERM/SIGINT arrives,
// and returns nil after a clean stop. It returns an error wrapping
// spool.ErrDaemonRunning when another daemon serves the spool, the error of
// a service that failed, or one of the watch when it cannot be set up.
func (d *Daemon) Run(ctx context.Context) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
	dl, err := d.Spool.LockDaemon()
	if err != nil {
		return err
	}
	defer dl.Release()

	// The watch comes first: anything committed after it is seen, anything
	// before it is found by the first pass.
	w, err := fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		return fmt.Errorf("daemon: watch: %w", err)
	}
	defer w.Close()
	watched := d.Spool.WatchDirs()
	for _, dir := range watched {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("daemon: watch %s: %w", dir, err)
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	rl, err := d.takeRunLock(ctx, sigs)
	if rl == nil || err != nil {
		return err
	}
	defer rl.Release()

	svcCtx, stopServices := context.WithCancel(context.Background())
	defer stopServices()
	svcErr := make(chan error, len(d.Services))
	var svcWG sync.WaitGroup
	for _, svc := range d.Services {
		svcWG.Add(1)
		go func() {
			defer svcWG.Done()
			if err := svc(svcCtx); err != nil && svcCtx.Err() == nil {
				svcErr <- err
			}
		}()
	}

	cfg := d.Config
	runner := d.newRunner(cfg)
	d.runner.Store(runner)
	pickup := sendmailcompat.NewPickup(cfg, d.Spool, d.Log)
	d.Log.Info("status", "started", "pid", fmt.Sprint(os.Getpid()), "spool", d.Spool.Dir,
		"watch", strings.Join(watched, ","), "rescan", d.rescan(cfg).String())
	notify("READY=1\nSTATUS=delivering")

	// One context for every pass: a runner keeps its connections from one
	// pass to the next only under the same context (relay.Runner's
	// KeepConnections); cancelling it cuts whatever is in flight.
	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	var (
		want       = true // a pass is wanted
		running    bool
		passDone   = make(chan passResult, 1)
		timer      = time.NewTimer(time.Hour)
		next       time.Time // earliest known due time; zero: none known
		duringPass time.Time // earliest future due time seen during a pass
		gap        = minGap
		timerPass  bool // the running pass was started by the timer
		waiters    int  // waitFree goroutines at work
		freed      = make(chan struct{}, maxWaiters)
		lastStart  time.Time
		fatal      error
	)
	timer.Stop()
	earliest := func(a, b time.Time) time.Time {
		if a.IsZero() || !b.IsZero() && b.Before(a) {
			return b
		}
		return a
	}
loop:
	for {
		if want && !running {
			want, running = false, true
			timer.Stop()
			lastStart = time.Now()
			go func(r *relay.Runner, p *sendmailcompat.Pickup) {
				passDone <- d.pass(runCtx, r, p)
			}(runner, pickup)
		}
		if !running {
			// Sleep until the next due time (no earlier than the gap after
			// the last pass), or the rescan.
			now := time.Now()
			wake := now.Add(d.rescan(cfg))
			if !next.IsZero() {
				at := next
				if floor := lastStart.Add(gap); at.Before(floor) {
					at = floor
				}
				if at.Before(wake) {
					wake = at
				}
			}
			timer.Reset(max(wake.Sub(now), 0))
		}
		select {
		case <-ctx.Done():
			break loop
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				d.Log.Info("status", "stopping", "signal", sig.String())
				break loop
			}
			if nc := d.reload(cfg); nc != cfg {
				cfg = nc
				if !running {
					runner.Close() // else the pass's end closes them (idle timer)
				}
				old := runner
				runner = d.newRunner(cfg)
				// What the old runner could not write to the spool
				// must not be forgotten: it would send again.
				runner.Inherit(old)
				d.runner.Store(runner)
				pickup = sendmailcompat.NewPickup(cfg, d.Spool, d.Log)
				want = true // new smarthost, new credentials: try at once
			}
			notify("READY=1")
		case err := <-svcErr:
			d.Log.Error("status", "stopping", "reason", "a service failed: "+err.Error())
			fatal = err
			break loop
		case ev, ok := <-w.Events:
			if !ok {
				break loop
			}
			d.countArrival(ev)
			if want {
				break // a pass comes anyway
			}
			now := time.Now()
			due, at, busy := d.classify(ev, now)
			if busy != "" && running {
				// Its holder (a flush, a sendmail) may release it after
				// this pass went by: look again after the pass.
				due = true
			} else if busy != "" && waiters < maxWaiters {
				waiters++
				go func() {
					d.waitFree(busy)
					freed <- struct{}{}
				}()
			}
			switch {
			case due:
				want, gap = true, minGap
			case at.IsZero():
			case running:
				duringPass = earliest(duringPass, at)
			default:
				next = earliest(next, at)
			}
		case err, ok := <-w.Errors:
			if !ok {
				break loop
			}
			// An overflow lost events: look at everything.
			d.Log.Warning("status", "watch", "reason", err.Error())
			want = true
		case <-freed:
			// A pass covers the message freed and any that came meanwhile.
			waiters--
			want, gap = true, minGap
		case <-timer.C:
			want = true
			timerPass = true
		case res := <-passDone:
			running = false
			next = time.Time{}
			if res.hasNext {
				next = res.next
			}
			next = earliest(next, duringPass)
			duringPass = time.Time{}
			if timerPass && !res.worked && !next.IsZero() && !next.After(time.Now()) {
				// Due, yet nothing could be done: back off.
				gap = min(gap*2, maxGap, d.rescan(cfg))
			} else if res.worked {
				gap = minGap
			}
			timerPass = false
		}
	}

	// Stop: the pass first (a transaction is cut without its final dot,
	// or, when the dot is out, ends with its reply: relay.DialOptions.Abort),
	// then the services. A second SIGTERM or SIGINT ends the process at
	// once, reply or not.
	notify("STOPPING=1")
	signal.Reset(syscall.SIGTERM, syscall.SIGINT)
	cancelRun()
	stopServices()
	if running {
		<-passDone
	}
	runner.Close()
	svcWG.Wait()
	d.Log.Info("status", "stopped", "pid", fmt.Sprint(os.Getpid()))
	return fatal
}

// takeRunLock waits for a runner at work (relay queue run) to finish its
// pass, then holds the run lock. It returns nil, nil when told to stop
// while waiting.
func (d *Daemon) takeRunLock(ctx context.Context, sigs chan os.Signal) (*spool.RunLock, error) {
	logged := false
	for {
		rl, ok, err := d.Spool.TryRunLock()
		if err != nil || ok {
			return rl, err
		}
		if !logged {
			d.Log.Info("status", "waiting", "reason", "a relay queue run is at work on the spool; starting after its pass")
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return nil, nil
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newRunner makes the delivery runner for a configuration. Mail that
// follows within seconds reuses the session.
func (d *Daemon) newRunner(cfg *config.Config) *relay.Runner {
	r := relay.NewRunner(cfg, d.Spool, d.Log)
	r.KeepConnections = 10 * time.Second
	if d.Metrics != nil {
		r.Observer = d.Metrics
	}
	return r
}

func (d *Daemon) rescan(cfg *config.Config) time.Duration {
	switch {
	case d.Rescan > 0:
		return d.Rescan
	case cfg.Daemon.Rescan > 0:
		return time.Duration(cfg.Daemon.Rescan)
	}
	return DefaultRescan
}

// pass makes one Pass, logs its errors and returns the earliest next due
// time.
func (d *Daemon) pass(ctx context.Context, r *relay.Runner, p *sendmailcompat.Pickup) passResult {
	var res passResult
	var err error
	res.worked, err = Pass(ctx, d.Spool, r, p)
	for _, e := range splitErrors(err) {
		d.Log.Error("status", "error", "reason", e.Error())
	}
	if ctx.Err() == nil {
		res.next, res.hasNext = d.scan()
	}
	return res
}

// scan returns the earliest time a message of the queue is due, reading
// the envelopes with spool.Scan (a few at a time, one envelope in memory
// per reader). A message another process holds counts as
// due a little later: its holder rewrites its envelope (an event) when
// it is done, and if it died instead, this is when to look again.
func (d *Daemon) scan() (time.Time, bool) {
	var next time.Time
	found := false
	now := time.Now()
	err := d.Spool.Scan(func(_ string, m *spool.Message, err error) error {
		if err != nil {
			return nil
		}
		at, ok := d.nextDue(&m.Envelope)
		if !ok {
			return nil
		}
		if m.Active && !at.After(now) {
			at = now.Add(time.Second)
		}
		if !found || at.Before(next) {
			next, found = at, true
		}
		return nil
	})
	if err != nil {
		d.Log.Error("status", "error", "reason", err.Error())
		return time.Time{}, false
	}
	return next, found
}

// classify tells what a watch event means: due (a pass now) or the time
// the message it is about is due (zero: nothing to do).
//
// busy is the ID of a message due but locked by another process right
// now: a sendmail holds the lock of its new message from before the rename
// (the event) until it exits, a flush while it rewrites the envelope. The
// daemon waits for the release (waitFree) and then makes a pass, instead
// of finding the message locked. (During a pass the holder is most likely
// its own runner; the scan after the pass sees how that ended.)
func (d *Daemon) classify(ev fsnotify.Event, now time.Time) (due bool, at time.Time, busy string) {
	if !ev.Has(fsnotify.Create) {
		return false, time.Time{}, ""
	}
	id, drop, ok := d.Spool.Announced(ev.Name)
	switch {
	case !ok:
		return false, time.Time{}, ""
	case drop:
		return true, time.Time{}, ""
	}
	m, err := d.Spool.Read(id)
	if err != nil {
		return false, time.Time{}, "" // gone (delivered) or not ours to judge
	}
	at, ok = d.nextDue(&m.Envelope)
	switch {
	case !ok:
		return false, time.Time{}, ""
	case m.Active:
		return false, time.Time{}, id
	case !at.After(now):
		return true, time.Time{}, ""
	}
	return false, at, ""
}

// nextDue is when a message is next due as the runner in use sees it.
func (d *Daemon) nextDue(env *spool.Envelope) (time.Time, bool) {
	if r := d.runner.Load(); r != nil {
		return r.NextDue(env)
	}
	return relay.NextDue(env)
}

// waitFree polls until message id is no longer locked (or gone), for at
// most two seconds; the rescan and the next pass cover a holder that
// keeps it longer.
func (d *Daemon) waitFree(id string) {
	for range 400 {
		m, err := d.Spool.Read(id)
		if err != nil || !m.Active {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reload reads the configuration again; it returns cur when the new one
// is refused.
func (d *Daemon) reload(cur *config.Config) *config.Config {
	if err := d.Log.Reopen(); err != nil {
		d.Log.Error("status", "error", "reason", "reopening the log: "+err.Error())
	}
	if d.Reload == nil {
		return cur
	}
	nc, err := d.Reload()
	if err != nil {
		d.Log.Error("status", "reload-refused", "reason", oneLine(err.Error())+"; keeping the configuration in use")
		return cur
	}
	var kept []string
	if nc.Spool != cur.Spool {
		kept, nc.Spool = append(kept, "spool"), cur.Spool
	}
	if nc.Daemon.User != cur.Daemon.User {
		kept, nc.Daemon.User = append(kept, "daemon.user"), cur.Daemon.User
	}
	if !slices.Equal(nc.Daemon.Listen, cur.Daemon.Listen) {
		kept, nc.Daemon.Listen = append(kept, "daemon.listen"), cur.Daemon.Listen
	}
	if !slices.Equal(nc.Daemon.ListenNetworks, cur.Daemon.ListenNetworks) {
		kept, nc.Daemon.ListenNetworks = append(kept, "daemon.listen_networks"), cur.Daemon.ListenNetworks
	}
	for _, k := range []struct {
		key      string
		cur, new *string
	}{
		{"daemon.listen_tls", &cur.Daemon.ListenTLS, &nc.Daemon.ListenTLS},
		{"daemon.listen_tls_key", &cur.Daemon.ListenTLSKey, &nc.Daemon.ListenTLSKey},
		{"daemon.listen_users", &cur.Daemon.ListenUsers, &nc.Daemon.ListenUsers},
	} {
		if *k.new != *k.cur {
			kept, *k.new = append(kept, k.key), *k.cur
		}
	}
	if !slices.Equal(nc.Daemon.ListenAuthNetworks, cur.Daemon.ListenAuthNetworks) {
		kept, nc.Daemon.ListenAuthNetworks = append(kept, "daemon.listen_auth_networks"), cur.Daemon.ListenAuthNetworks
	}
	if nc.Metrics.Listen != cur.Metrics.Listen {
		kept, nc.Metrics.Listen = append(kept, "metrics.listen"), cur.Metrics.Listen
	}
	if nc.Log.To != cur.Log.To {
		kept, nc.Log.To = append(kept, "log.to"), cur.Log.To
	}
	if len(kept) > 0 {
		d.Log.Warning("status", "reloaded", "reason", "changes to "+strings.Join(kept, ", ")+" need a restart; the old values stay in use")
	} else {
		d.Log.Info("status", "reloaded", "config", nc.Path)
	}
	return nc
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// splitErrors returns the errors joined in err (errors.Join), or err
// alone: one log line each.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// IsRunning reports whether err says another daemon serves the spool.
func IsRunning(err error) bool { return errors.Is(err, spool.ErrDaemonRunning) }
