// Package daemon runs the queue of a spool: `relay daemon`, the
// long-running runner that picks up new mail within a moment of its
// submission, delivers it, retries deferred mail on schedule, and survives
// what an operator or the kernel does to it; and the short-lived runners
// that deliver without a daemon: `relay queue run`, the detached runner
// sendmail starts, and sendmail --wait and -v, which deliver the one
// message just queued while the caller waits.
//
// Every runner here delivers with a relay.Runner made by relay.NewRunner
// from the configuration, and picks up the maildrop with a
// sendmailcompat.Pickup made by sendmailcompat.NewPickup; the daemon and
// `relay queue run` make their passes with the same function, [Pass].
//
// # Exclusion
//
// One daemon serves a spool. At start it takes the daemon lock
// ([spool.Spool.LockDaemon], an open file description lock on daemon.pid
// holding its pid): a second daemon finds it taken and refuses to start
// with [spool.ErrDaemonRunning] (relay exits 75). The daemon then takes
// the spool's run lock, waiting for a `relay queue run` at work to finish,
// and keeps it for its life: `relay queue run` and `sendmail -q`'s runs
// find it taken and leave at once (exit 0), and sendmail starts no
// detached runner. So while a daemon runs nothing else delivers from the
// spool; the per-message locks would prevent a duplicate anyway, but one
// runner is what makes connection reuse, rate limits and max_connections
// mean what they say. The kernel drops both locks when the daemon dies,
// even by SIGKILL, so a restart is never blocked by a stale file.
//
// # The loop: a watch, a timer and one pass at a time
//
// The daemon sleeps in one select and does nothing until something
// happens, so it uses no CPU when idle. What wakes it:
//
//   - the file-system watch (inotify through fsnotify) on maildrop/ and
//     queue/. Only creations count, which include renames into the
//     directory: every committed message and every changed envelope
//     arrives by a rename (spool package), removals and dot-named drafts
//     are ignored. A new drop in maildrop/ means a pass at once. A new
//     queue/ID or queue/ID.env means reading that one envelope (never the
//     whole queue): due now → a pass; due later → the retry timer is moved
//     earlier if need be; due but still locked by its writer (a sendmail
//     holds the lock of its new message from before the rename until it
//     exits, a flush while it rewrites the envelope) → a goroutine polls
//     that one lock every 5 ms and asks for a pass when it is released,
//     so the runner does not find the message busy and skip it. That is how
//     `sendmail` writing straight into queue/ (single-user install, root),
//     `relay queue flush` and `sendmail -q` (which rewrite envelopes with
//     next attempt = now) and messages queued by an SMTP listener are
//     noticed;
//   - the retry timer, set to the earliest next attempt of the queue;
//   - a rescan every [daemon] rescan (default 5 minutes): a safety net
//     for anything the watch cannot see (an overflowing inotify queue, a
//     runner of another process killed while it held a message). Nothing
//     depends on it for speed;
//   - SIGTERM/SIGINT (stop), SIGHUP (reload);
//   - the end of a pass.
//
// A pass is [Pass] (pick up every drop: sendmailcompat.Pickup, which
// fsyncs the maildrop, closing the window in which a power failure could
// lose a freshly dropped name; then one relay.Runner.Run over the queue),
// then a scan of the envelopes for the earliest next due time
// (relay.Runner.NextDue: the envelope as on disk, with what the runner
// could not write there laid over it), which sets the timer. An error of the pickup or the
// runner is logged, one line each, and the next pass tries again. Passes never overlap: events during a pass only mark
// that another pass is wanted; it starts when this one ends, so a stream
// of submissions is served pass after pass and a burst costs few passes.
//
// The daemon's own writes do not make it spin: its pickup creates
// queue/ID (due, but usually locked by its runner by the time the event is
// read; at worst one extra pass that finds nothing), and its runner
// rewrites queue/ID.env with a next attempt in the future (deferred: only
// the timer moves) or removes the message (no creation). A pass that
// leaves work due at once (a message locked by another process, a rate
// limit that holds mail back without moving its next attempt) does not
// start the next pass at once either: timer-driven passes keep a gap that
// starts at one second and doubles while they find nothing to do, up to
// 30 seconds; any event resets it. An event about a due message that
// another process still holds, arriving during a pass, asks for one more
// pass after it (a flush rewrites envelope after envelope under their
// locks while the daemon delivers the ones already flushed).
//
// A spool that cannot record outcomes (full) never makes the daemon send
// again: a message whose envelope update failed counts as no work, keeps
// its own retry time in the runner's memory (which a reload hands on to
// the new runner), and passes do nothing but check the spool until it
// takes writes again, timer-driven and spaced by the doubling gap (see
// relay/unrecorded.go).
//
// # Signals
//
// SIGTERM (and SIGINT) cancel the pass: relay.Runner.Run closes its
// connection at once, even in the middle of DATA, without the final dot,
// so the smarthost discards the transaction and the message stays queued
// exactly as it was (no attempt counted, still due). Only once the final
// dot is out does it wait: the smarthost has the whole message then, and
// only its reply says whether relay may forget it, so the reply is
// awaited (relay.CommandTimeout at most from the signal), recorded, and
// the connection closed (relay.DialOptions.Abort). A stop therefore never
// sends a message twice; only SIGKILL (or a second SIGTERM, which ends
// the process at once) in the instant between the 250 and its record can.
// The services are stopped the same way, the locks released, and the
// daemon exits 0, within a moment unless a smarthost is slow to answer a
// dot.
//
// SIGHUP reopens the log file (logrotate) and reads the configuration
// again. A configuration that does not load is refused with an error line
// in the log and the old one is kept. Some keys cannot change in a running
// process and keep their old values until a restart, with a warning in
// the log: spool, [daemon] user, listen and listen_networks, [log] to.
// Everything else (smarthosts, credentials, retry times, rewriting)
// applies from the next pass on.
//
// # A configuration with errors
//
// A configuration file with errors never costs a submitted message (SPEC
// section 12): the runners are given the best-effort configuration of
// config.LoadLenient, and [Pass] then delivers nothing: it picks up the
// maildrop as always and calls [Hold], which records on every due
// message, at stage local, "held: the configuration FILE has errors: …"
// (mailq's reason; relay check counts it), without counting an attempt or
// moving the next attempt, and returns one error line (the daemon logs it
// at level error, relay queue run exits 78 with it). An envelope that
// already says so is not rewritten, so the daemon's watch does not take
// its own holds for news; the mail stays due, so the timer's gap doubles
// up to 30 seconds between such passes. The first pass with a good file
// delivers. The daemon starts with such a file (listener and all) rather
// than exit: a SIGHUP with the fixed file brings the good configuration,
// and a SIGHUP with a broken one keeps the configuration in use, good or
// not. sendmail --wait and -v hold their message and exit 75.
//
// # Flush
//
// relay queue flush and sendmail -q make deferred mail due; then
// [AfterFlush] starts the detached runner (as after a submission) when no
// daemon runs, or with -v makes relay queue run's passes in the
// foreground with the dialogue on stderr. Beside a daemon it does
// nothing: the daemon's watch sees the rewritten envelopes.
//
// # systemd
//
// When NOTIFY_SOCKET is set (Type=notify) the daemon sends READY=1 once
// its locks and watch are in place and its services started, READY=1
// again after a reload, and STOPPING=1 when it begins to stop: a few
// lines of sd_notify(3) over a datagram socket, no library.
//
// # Services
//
// [Daemon.Services] are other long-running parts that live and die with
// the daemon, such as the SMTP listener (`[daemon] listen`). Each is a
// func(ctx) error started in its own goroutine after the locks are taken
// and before READY=1; ctx is cancelled on SIGTERM and the daemon waits for
// every service to return before it exits. A service that returns an
// error while the daemon runs stops the daemon (Run returns the error: a
// listener that cannot bind is fatal); one that returns nil just ends. A
// service queues mail through the spool as sendmail does; the watch on
// queue/ notices it, no call into the daemon is needed.
//
// The metrics endpoint (`[metrics] listen`, metrics.go) is a service
// too. What it serves comes from three places: the runners report each
// connection, recipient result, transaction, report and rate-limit wait
// to [Daemon.Metrics] (a relay.Observer); the watch counts each new
// queue file by the source its envelope names (a drop, the listener's
// "smtp", else sendmail), before it decides on a pass; and the queue's
// gauges are a count of the spool (mailq.CollectStats, envelopes only)
// made at scrape time, reused for ten seconds.
//
// # One-shot passes: relay queue run
//
// [RunQueue] is for cron and systemd timers (relay-queue.timer): under
// the spool's run lock it makes a [Pass], then asks the runner whether
// anything is still due (relay.Runner.Due: a drop, a message whose next
// attempt has come, other than one another process holds) and, if so,
// makes another, so that mail queued during a pass does not wait for the
// next timer. It makes at most 100, so that mail that keeps coming does
// not keep one process forever; at the bound, with mail still due, it
// starts a detached runner for it (as a sendmail would: detached_delivery
// on, the secret readable, no runner at work) after releasing the lock,
// since the sendmails of that mail saw it at work and started none.
// Between passes it releases the run lock and keeps its connections
// (relay.Runner.KeepConnections, 5 seconds), so a queue served pass after
// pass costs one TLS handshake and one AUTH.
// Another runner at work (a second queue run, the daemon, which holds the
// run lock for its life) has the lock: queue run leaves at once, exit 0,
// since that runner looks again after its pass. A missing spool is an
// empty queue. SIGTERM or SIGINT cancel the pass as they do the daemon's
// (a dot that is out has its reply awaited and recorded).
// Errors exit with their code: 78 without a smarthost, 77 when the queue
// may not be read.
//
// # The detached runner
//
// sendmail must return as soon as the message is durable: cron, PHP and
// most scripts read its output until EOF and wait for it. So a submission
// without --wait starts `relay queue run --detached` in a process of its
// own: a new session (setsid), the working directory /, standard streams
// on /dev/null, the process never waited for (init adopts it when
// sendmail exits), the configuration named by its absolute path
// (config.Locate makes a relative -C absolute). It starts none when the
// message goes to the maildrop (this user cannot read the credentials;
// the daemon or the next queue run delivers it), when [daemon]
// detached_delivery is off, when there is no smarthost or its secret
// cannot be read by this user, or when a runner is at work already (the
// run lock is held) or a daemon runs: they find the new message in their
// look after the pass.
//
// The runner is started while the message is being committed, not after:
// [BeginDelivery] decides before Enqueue and starts it in the background,
// so that its start-up (a new process, the configuration, the TLS set-up:
// some 10 ms of CPU) overlaps the commit's two fsyncs, and [Delivery.Finish]
// waits for that start once the message is committed (when none was
// started then because a runner was at work, it looks again, as
// [StartDelivery] does: that runner may have left before the commit). An
// early runner finds nothing yet or the message itself; a failed
// submission leaves it a pass that finds nothing. It is started with
// syscall.StartProcess: os/exec forks a second child once per process to
// probe for pidfds, which a sendmail would pay every time. sendmail -bs
// starts delivery the same way after each message it queues
// (smtpd.Server.Queued), not at the end of a session that a PHP worker
// may keep open for hours.
//
// No message is left without a runner by a runner that leaves as it is
// committed. A sendmail commits, then looks for a runner at work (the
// run lock); a runner about to leave releases the run lock, then looks
// for due mail once more (passes.run), and passes again if it can take the
// lock back. Whichever looks second sees the other's doing: the runner
// sees the message, or the sendmail sees no runner and starts one. A
// runner that leaves at its bound of passes with mail due (a burst of
// sendmails, one pass each on a busy machine) starts a successor after
// the release, as those sendmails would have. An early runner may not
// know of its sendmail's message yet when it looks, so it gets the read
// end of a pipe (queue run --detached --commit-fd 3; [RunDetached])
// whose write end only that sendmail holds: it closes it
// in Finish, or the kernel does when the sendmail dies, and the runner
// does not make its last look, nor give way to a runner at work, before
// it reads the end of file (at most 30 s; a sendmail whose commit took
// longer starts a runner itself).
//
// The detached runner logs only to [log] to (its stderr is /dev/null) and,
// after a pass, lingers half a second with its connections open for more
// mail, holding the run lock, so that sendmails in a row do not start
// runners of their own: a burst costs a transaction per message, not a
// process, a TLS handshake and an AUTH each. It watches the spool with
// inotify from before its first pass (linger.go): a commit (a name renamed
// into queue/ or maildrop/) wakes it at once, and the close of a file by
// its writer (a sendmail done with its commit, whose lock made the runner
// skip the message) at once again; without inotify it stats the watched
// directories every 10 ms (spool.ChangeStamp). It keeps the run lock
// while it looks for more work after the linger, and releases it only
// between passes or when it leaves.
//
// # sendmail --wait and -v
//
// With --wait (or -v), sendmail delivers the message it just queued
// itself, in the foreground ([DeliverNow]): a runner restricted to that
// one message (relay.Runner.Only) for at most the wait (--wait=DURATION,
// else 60 seconds). The exit code says how it went: 0 every recipient
// delivered; 67 one refused for good (its bounce is queued); 75 anything
// still queued: deferred, held back by a rate limit, not done within the
// wait (the connection is closed without the final dot, so the message
// stays queued whole and is retried), a user of a system install who
// cannot read the credentials, no smarthost. Every 75 says "queued as ID":
// the message is safe in any case. With -v the SMTP dialogue and the
// delivery log go to stderr, AUTH redacted (relay.RedactAuth).
//
// # Memory
//
// Bodies are streamed from the queue file to the connection and the queue
// is walked one envelope at a time, so memory does not grow with message
// size or queue length. The daemon sets a soft memory limit
// ([MemoryLimit], unless GOMEMLIMIT is set) so that the garbage collector
// returns garbage early instead of letting the heap double between
// collections.
package daemon
