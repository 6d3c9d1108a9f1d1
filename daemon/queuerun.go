package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"golang.org/x/sys/unix"
)

// RunQueue is relay queue run: delivery passes over the configured spool
// until nothing is due, for cron and systemd timers; with detached, the
// runner sendmail starts (see StartDelivery), which logs only to the
// configured log and lingers a moment for more mail after each pass. See
// "One-shot passes" in the package documentation. SIGTERM or SIGINT ends
// it at once, as they do the daemon: a transaction is cut without its
// final dot, or, when the dot is out, ends with its reply (recorded); a
// second signal ends it at once regardless. A missing spool is an empty
// queue.
func RunQueue(cfg *config.Config, detached bool, stderr io.Writer) error {
	return runQueue(cfg, detached, stderr, nil, nil)
}

// RunDetached is the detached runner a sendmail started before its commit
// (relay queue run --detached --commit-fd N): RunQueue with detached set
// that does not leave before commit, the read end of a pipe whose write
// end only that sendmail holds, reads end of file (see "The detached
// runner" in the package documentation).
func RunDetached(cfg *config.Config, commit *os.File, stderr io.Writer) error {
	syscall.CloseOnExec(int(commit.Fd())) // not for password_command
	defer commit.Close()
	return runQueue(cfg, true, stderr, nil, commit)
}

// runQueue is RunQueue; with trace set (relay queue flush -v, sendmail
// -q -v) the delivery log and the SMTP dialogue, AUTH redacted, go there;
// with commit set, RunDetached.
func runQueue(cfg *config.Config, detached bool, stderr, trace io.Writer, commit *os.File) error {
	sp, err := mailq.Open(cfg)
	if sp == nil || err != nil {
		return err
	}
	var log *maillog.Logger
	if trace != nil {
		log = maillog.New(trace)
	} else if detached {
		log = maillog.OpenBestEffort(cfg.Log.To) // its stderr is /dev/null
	} else if log, err = openLog(cfg, stderr); err != nil {
		return err
	}
	defer log.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	context.AfterFunc(ctx, stop) // the second signal: the default, exit at once
	r := relay.NewRunner(cfg, sp, log)
	if trace != nil {
		r.Debug = relay.RedactAuth(trace)
	}
	// Pass after pass over the same connections (see Runner.KeepConnections).
	r.KeepConnections = 5 * time.Second
	defer r.Close()
	p := &passes{
		sp: sp, r: r, pickup: sendmailcompat.NewPickup(cfg, sp, log),
		commit: commit, max: maxPasses,
		handOver: func() bool { return startWanted(cfg, sp) },
	}
	if detached {
		p.linger = detachedLinger
		// The watch comes before the first pass: whatever is committed
		// after it wakes the linger, whatever before, the pass finds.
		p.watch = newMailWatch(sp)
		defer p.watch.Close()
	}
	return p.run(ctx)
}

// maxPasses bounds the passes of one relay queue run, so that mail that
// keeps arriving does not keep one process forever: at the bound it hands
// the work on (passes.handOver) and leaves.
const maxPasses = 100

// passes is the loop of one relay queue run: passes under the run lock
// while work is due, at most max. A runner already at work (another queue
// run, the daemon) has the lock: this one leaves at once, without error.
//
// Before it leaves, a runner releases the run lock and only then looks
// for work once more, while a sendmail commits its message and only then
// looks for a runner (StartDelivery): one of the two always sees the
// other, so a message committed as the runner leaves is never left
// without one. The same holds when a runner leaves at the bound: mail is
// still due (it came while the runner worked, and its sendmails, seeing
// the runner at work, started none), so it starts the runner a sendmail
// would start (handOver) after the release. A runner started before its
// sendmail's commit (commit not nil, see RunDetached) first waits for
// that commit to end.
type passes struct {
	sp     *spool.Spool
	r      *relay.Runner
	pickup *sendmailcompat.Pickup // nil: no maildrop pickup
	// linger, when positive, is how long the runner waits for new mail
	// after each successful pass, woken by watch (nil: a stat of the
	// spool every 10 ms).
	linger time.Duration
	watch  *mailWatch
	// commit is the read end of the commit pipe of the sendmail that
	// started this runner (RunDetached); nil: none.
	commit *os.File
	// max bounds the passes; handOver, called at the bound with mail
	// due and the run lock released, starts a runner for it when one is
	// wanted (runnerWanted) and reports whether it did; nil: none.
	max      int
	handOver func() bool
}

func (p *passes) run(ctx context.Context) error {
	sp, r := p.sp, p.r
	awaited := p.commit == nil
	await := func() {
		if !awaited {
			awaitCommit(ctx, p.commit)
			awaited = true
		}
	}
	// lastLook is a leaving runner's look for work, the run lock
	// released (after its sendmail's commit, for an early runner).
	lastLook := func() bool {
		await()
		return ctx.Err() == nil && r.Due(sp.HasMaildrop())
	}
	for range p.max {
		if ctx.Err() != nil {
			return nil
		}
		lock, ok, err := sp.TryRunLock()
		if err != nil {
			return mailq.Denied(err)
		}
		if !ok {
			if awaited {
				return nil // the runner at work looks once more as it leaves
			}
			// The runner at work may leave before this one's sendmail has
			// committed: try once more after the commit.
			await()
			continue
		}
		_, err = Pass(ctx, sp, r, p.pickup)
		arrived := false
		if err == nil && p.linger > 0 {
			if p.watch != nil {
				// The pass's own doing (it opens messages read-write to
				// lock them, rewrites envelopes) is no news; what came
				// during it, Due finds.
				p.watch.drain()
				arrived = r.Due(sp.HasMaildrop())
			}
			if !arrived {
				arrived = lingerForMail(ctx, sp, p.linger, p.watch)
			}
		}
		// The lock is kept while looking for more work: a sendmail that
		// found it free in between would start a runner of its own.
		more := err == nil && dueAfter(ctx, sp, r, arrived, p.watch)
		if !more && testHookLeaving != nil {
			testHookLeaving()
		}
		lock.Release()
		if err != nil {
			return mailq.Denied(err)
		}
		if !more && !lastLook() {
			return nil
		}
	}
	// The bound: mail due now has no runner unless this one starts it.
	if p.handOver == nil || !lastLook() {
		return nil
	}
	if p.handOver() {
		r.Log.Info("status", "handed-over", "reason", fmt.Sprintf("made its %d passes: a new runner takes the mail still due", p.max))
	} else {
		r.Log.Info("status", "leaving", "reason", fmt.Sprintf("made its %d passes: the mail still due waits for the daemon or the next queue run", p.max))
	}
	return nil
}

// testHookLeaving, set by tests, runs when a runner has decided to leave
// and still holds the run lock: where a sendmail that commits then finds
// a runner at work and starts none.
var testHookLeaving func()

// awaitCommit waits until the sendmail that started this runner has
// ended its commit: its end of the pipe is closed, when it is done or
// dies. It gives up after commitWait (a commit stuck in the kernel: the
// sendmail then looks for a runner itself) or when ctx ends.
func awaitCommit(ctx context.Context, commit *os.File) {
	deadline := time.Now().Add(commitWait)
	fd := int(commit.Fd())
	var buf [64]byte
	for ctx.Err() == nil && time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 50)
		if err != nil && err != unix.EINTR {
			return
		}
		if n > 0 {
			if m, err := unix.Read(fd, buf[:]); m <= 0 && err != unix.EINTR && err != unix.EAGAIN {
				return // end of file (or an error: nothing more will come)
			}
		}
	}
}

// commitWait bounds awaitCommit: a sendmail's commit takes milliseconds.
const commitWait = 30 * time.Second

// dueAfter reports whether work is due for another pass. Mail that
// arrived while lingering may still be held by its writer (a sendmail
// holds its message from the rename into the queue until its commit is
// done), and Due skips a held message: after an arrival it looks again
// for up to a second, at the writer's close (watch) or every 10 ms.
func dueAfter(ctx context.Context, sp *spool.Spool, r *relay.Runner, arrived bool, watch *mailWatch) bool {
	deadline := time.Now().Add(time.Second)
	for {
		if r.Due(sp.HasMaildrop()) {
			return true
		}
		if !arrived || ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		if watch != nil {
			watch.wait(ctx, 10*time.Millisecond)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// detachedLinger is how long a detached runner waits, with its connection
// open, for more mail before it leaves: sendmail runs in a row (a script,
// a burst of cron jobs) then cost a transaction each, not a process, a TLS
// handshake and an AUTH each.
const detachedLinger = 500 * time.Millisecond

// lingerForMail waits up to d for something new in the spool and reports
// whether something came: woken by watch (inotify) at once, or, without
// one, by a change of spool.ChangeStamp, one stat per watched directory
// every 10 ms.
func lingerForMail(ctx context.Context, sp *spool.Spool, d time.Duration, watch *mailWatch) bool {
	if watch != nil {
		return watch.wait(ctx, d)
	}
	before := sp.ChangeStamp()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if sp.ChangeStamp() != before {
			return true
		}
	}
	return false
}

// AfterFlush moves the queue after relay queue flush or sendmail -q made
// the deferred mail due (SPEC section 6). Beside a running daemon it does
// nothing: the daemon's watch sees the rewritten envelopes. Without one,
// with trace set (-v), it makes the passes of relay queue run in the
// foreground, the delivery log and the SMTP dialogue (AUTH redacted) on
// trace, and returns their error; else it starts the detached runner a
// submission would start (for a caller who can read the credentials,
// detached_delivery on: see StartDelivery) and returns nil.
func AfterFlush(cfg *config.Config, trace io.Writer) error {
	sp, err := mailq.Open(cfg)
	if sp == nil || err != nil || sp.DaemonRunning() {
		return err
	}
	if trace != nil {
		return runQueue(cfg, false, trace, trace, nil)
	}
	startWanted(cfg, sp)
	return nil
}
