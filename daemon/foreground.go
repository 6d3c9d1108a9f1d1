package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
	"golang.org/x/sys/unix"
)

// DeliverNow delivers message id, just queued by s, in the foreground
// (sendmail --wait, -v) for at most wait, and says how it went in the
// exit code: nil when every recipient was delivered, 67 when one was
// refused for good (it gets its bounce), 75 when one is still queued.
// With trace set (-v) the SMTP dialogue goes there, AUTH redacted, and the
// delivery log lines too. See "sendmail --wait and -v" in the package
// documentation.
func DeliverNow(cfg *config.Config, s *sendmailcompat.Submitter, id string, wait time.Duration, trace io.Writer) error {
	if s.Drop {
		return sysexits.New(sysexits.TempFail, "queued as %s for the relay daemon: this user cannot read the credentials to deliver it now", id)
	}
	if cfg.Broken() != nil {
		// Delivery holds the mail until the file is fixed; the message is
		// safe, but not delivered: the --wait contract says 75.
		_, herr := Hold(s.Spool, cfg, []string{id}, time.Now())
		if s.Log != nil {
			s.Log.Error("id", id, "status", "error", "reason", heldError(cfg, 1).Error())
		}
		return sysexits.Wrap(sysexits.TempFail, errors.Join(fmt.Errorf("queued as %s: held: %s", id, cfg.HoldReason()), herr))
	}
	if len(cfg.Smarthosts) == 0 {
		return sysexits.New(sysexits.TempFail, "queued as %s: no [[smarthost]] configured", id)
	}
	log := s.Log
	if trace != nil {
		log = maillog.New(trace)
	}
	r := relay.NewRunner(cfg, s.Spool, log)
	r.Only = []string{id}
	if trace != nil {
		r.Debug = relay.RedactAuth(trace)
	}
	// The end of the wait, SIGTERM and SIGINT end the pass as a stop ends
	// the daemon's: a transaction is cut before its final dot, or ends
	// with the reply to a dot that is out (relay.DialOptions.Abort); a
	// second signal ends the process at once.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	context.AfterFunc(ctx, stop)
	type result struct {
		st  relay.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := r.Run(ctx)
		done <- result{st, err}
	}()
	select {
	case res := <-done:
		return waitResult(id, res.st, res.err)
	case <-ctx.Done():
		// The transaction ends without its final dot (the message stays
		// queued and is retried), or with the reply to a dot already out.
		res := <-done
		if res.err == nil && res.st.Delivered > 0 && res.st.Deferred+res.st.Failed+res.st.Held+res.st.Waiting == 0 {
			return nil
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return sysexits.New(sysexits.TempFail, "queued as %s: not delivered within %v; relay keeps trying", id, wait)
		}
		return sysexits.New(sysexits.TempFail, "queued as %s: interrupted; relay keeps trying", id)
	}
}

// waitResult is the --wait exit-code policy: what a pass over the one
// message id says to the caller who waited for it.
func waitResult(id string, st relay.Stats, err error) error {
	switch {
	case err != nil:
		return sysexits.Wrap(sysexits.TempFail, fmt.Errorf("queued as %s: %w", id, err))
	case st.Failed > 0:
		return sysexits.New(sysexits.NoUser, "queued as %s: %d recipient(s) refused permanently; the sender gets a bounce", id, st.Failed)
	case st.Waiting > 0:
		return sysexits.New(sysexits.TempFail, "queued as %s: held back by the smarthost's rate limit (see mailq); relay sends it when the limit allows", id)
	case st.Deferred > 0 || st.Held > 0 || st.Messages == 0:
		return sysexits.New(sysexits.TempFail, "queued as %s: not delivered yet (see mailq); relay keeps trying", id)
	}
	return nil
}

// StartDelivery starts a delivery pass in a detached process (relay queue
// run --detached: a session of its own, standard streams on /dev/null, so
// cron and PHP, which read sendmail's output until EOF, never wait for it)
// when no runner does it: for a caller who can read the credentials,
// unless detached_delivery is off. Otherwise the mail waits for the daemon
// or relay queue run. With a configuration that has errors the runner
// only holds the mail and logs why (see Hold). See "The detached runner"
// in the package documentation.
func StartDelivery(cfg *config.Config, s *sendmailcompat.Submitter) {
	if wantsDetached(cfg, s) {
		startRunner(cfg, nil)
	}
}

// wantsDetached reports whether a submission by s should start a detached
// runner: not when the message went to the maildrop (this user cannot
// read the credentials), else as runnerWanted says.
func wantsDetached(cfg *config.Config, s *sendmailcompat.Submitter) bool {
	return !s.Drop && runnerWanted(cfg, s.Spool)
}

// Delivery is the detached runner of one submission, begun before its
// message is committed (BeginDelivery) and finished after (Finish).
type Delivery struct {
	cfg     *config.Config
	s       *sendmailcompat.Submitter
	begun   time.Time
	started chan *os.File // nil: no early start; then the runner's commit pipe (nil: none started)
}

// BeginDelivery starts, in the background, the detached runner that
// StartDelivery would start after the commit, when one is wanted now: its
// start-up (a new process, the configuration, the TLS set-up) overlaps
// the commit's two fsyncs instead of following them. The runner finds
// nothing yet, or the message once committed: it watches the spool from
// before its first pass and lingers after it. Call Finish in any case.
func BeginDelivery(cfg *config.Config, s *sendmailcompat.Submitter) *Delivery {
	d := &Delivery{cfg: cfg, s: s, begun: time.Now()}
	if wantsDetached(cfg, s) {
		d.started = make(chan *os.File, 1)
		go func() { d.started <- startEarly(cfg) }()
	}
	return d
}

// Finish waits for the start BeginDelivery began and tells that runner
// the commit is over (it closes the runner's commit pipe: the runner does
// not leave before, see passes.run). When the message was committed and no
// runner was started early (one was at work then, and may have left
// since; or the start failed), or the commit took so long that the early
// runner may have stopped waiting for it, it does what StartDelivery does.
func (d *Delivery) Finish(committed bool) {
	var commit *os.File
	if d.started != nil {
		commit = <-d.started
	}
	if commit != nil {
		commit.Close()
	}
	if committed && (commit == nil || time.Since(d.begun) > commitWait/2) {
		StartDelivery(d.cfg, d.s)
	}
}

// startEarly starts the detached runner of a submission before its
// commit: it gets the read end of a pipe as its file descriptor 3
// (relay queue run --detached --commit-fd 3); startEarly returns the
// write end, which Finish closes (so does the kernel when sendmail
// dies), or nil when no runner was started.
func startEarly(cfg *config.Config) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	defer r.Close()
	if !startRunner(cfg, r) {
		w.Close()
		return nil
	}
	return w
}

// startRunner starts relay queue run --detached on cfg, with commit set
// --commit-fd 3 with commit as that descriptor; it reports whether it
// did. syscall.StartProcess rather than os/exec: os/exec checks once per
// process whether pidfds work by forking a child of its own, a second
// fork for every sendmail that starts a runner. The child is never waited
// for: sendmail exits at once, and init adopts it.
func startRunner(cfg *config.Config, commit *os.File) bool {
	exe, err := os.Executable()
	if err != nil {
		return false
	}
	args := []string{"relay"}
	if cfg.Loaded || cfg.Broken() != nil {
		// The path is absolute (config.Locate): the runner works in /.
		args = append(args, "-C", cfg.Path)
	}
	args = append(args, "queue", "run", "--detached")
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer null.Close()
	fd := null.Fd()
	files := []uintptr{fd, fd, fd}
	if commit != nil {
		files = append(files, commit.Fd())
		args = append(args, "--commit-fd", "3")
	}
	_, _, err = syscall.StartProcess(exe, args, &syscall.ProcAttr{
		Dir: "/", Env: os.Environ(), Files: files,
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	return err == nil
}

// startWanted starts relay queue run --detached on cfg when runnerWanted
// says one should start for sp, and reports whether it did.
func startWanted(cfg *config.Config, sp *spool.Spool) bool {
	return runnerWanted(cfg, sp) && startRunner(cfg, nil)
}

// runnerWanted reports whether a detached runner should start for sp
// (the caller may write it): detached_delivery is on, a smarthost whose
// secret this process can read is configured (with a configuration that
// has errors, the runner only holds mail: no secret needed), and no
// runner is at work (a daemon, or a runner's pass: it looks again after
// the pass).
func runnerWanted(cfg *config.Config, sp *spool.Spool) bool {
	if !cfg.Daemon.DetachedDelivery {
		return false
	}
	if cfg.Broken() == nil && (len(cfg.Smarthosts) == 0 || !canReadSecret(&cfg.Smarthosts[0])) {
		return false
	}
	return !sp.RunnerActive() && !sp.DaemonRunning()
}

// canReadSecret reports whether this process can authenticate to sh.
func canReadSecret(sh *config.Smarthost) bool {
	switch {
	case sh.UsesOAuth():
		// The token file is read and written (a refresh), under a
		// lock beside it; a client secret or key is read.
		o := sh.OAuth
		for _, f := range []string{o.ClientSecretFile, o.ServiceAccountFile} {
			if f != "" && unix.Access(f, unix.R_OK) != nil {
				return false
			}
		}
		return unix.Access(filepath.Dir(o.TokenFile), unix.W_OK|unix.X_OK) == nil
	case sh.Username == "" || sh.Password != "":
		return true
	case sh.PasswordFile != "":
		return unix.Access(sh.PasswordFile, unix.R_OK) == nil
	case len(sh.PasswordCommand) > 0:
		_, err := exec.LookPath(sh.PasswordCommand[0])
		return err == nil
	}
	return false
}
