package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/daemon"
	"github.com/relaymail/relay/install"
	"github.com/relaymail/relay/listener"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
	"golang.org/x/sys/unix"
)

// cli holds what every command needs: the standard streams and the
// configuration file named on the command line.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	prog           string
	configFlag     string
}

func (c *cli) loadConfig() (*config.Config, error) {
	loc := config.Locate(c.configFlag, os.Getenv, os.Geteuid())
	cfg, err := config.Load(loc)
	return cfg, sysexits.Wrap(sysexits.Config, err)
}

// openSpool opens the configured spool for reading; a spool that does not
// exist yet is an empty one (nil, nil).
func openSpool(cfg *config.Config) (*spool.Spool, error) {
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
	return sp, becomeOwner(sp)
}

func (c *cli) submitter(cfg *config.Config, create bool) (*sendmailcompat.Submitter, error) {
	s := &sendmailcompat.Submitter{
		Domain:         cfg.MailDomain(),
		UID:            os.Getuid(),
		MaxMessageSize: int64(cfg.MaxMessageSize),
		MinFreeSpace:   int64(cfg.MinFreeSpace),
		Now:            time.Now,
	}
	s.Hostname, _ = os.Hostname()
	s.User, s.Gecos = lookupUser(s.UID)
	s.Rewrite = rewrite.Load(cfg, s.Hostname)
	if !create {
		return s, nil
	}
	var err error
	if s.Spool, err = spool.Open(cfg.Spool); errors.Is(err, fs.ErrNotExist) {
		// A single-user install makes its spool on first use.
		s.Spool, err = spool.Create(cfg.Spool)
	}
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Code(err, sysexits.CantCreat), err)
	}
	if err := becomeOwner(s.Spool); err != nil {
		return nil, err
	}
	// A user of a system install cannot write the queue: the maildrop.
	s.Drop = !s.Spool.Writable() && s.Spool.HasMaildrop()
	if err := s.Rewrite.Err(); err != nil && !s.Drop {
		// Without the alias file mail would go to the wrong place; a
		// drop is expanded again by the pickup, which can read it.
		return nil, sysexits.New(sysexits.TempFail, "%v: try again when it is readable", err)
	}
	return s, nil
}

// becomeOwner makes a process running as root continue as the spool's
// owner, so that every queue file it writes belongs to relay and the
// daemon can always read it. The submitting uid was recorded before.
func becomeOwner(sp *spool.Spool) error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := sp.Owner()
	if err != nil || uid == 0 {
		return err
	}
	// Go applies these to every thread of the process (Linux, Go 1.16+).
	if err := syscall.Setgroups(nil); err != nil {
		return sysexits.New(sysexits.NoPerm, "cannot drop supplementary groups: %v", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return sysexits.New(sysexits.NoPerm, "cannot take the spool group (gid %d): %v", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return sysexits.New(sysexits.NoPerm, "cannot take the spool owner's identity (uid %d): %v", uid, err)
	}
	return nil
}

func (c *cli) sendmail(args []string) error {
	o, err := sendmailcompat.ParseArgs(args)
	if err != nil {
		return err
	}
	if o.Config != "" {
		c.configFlag = o.Config
	}
	switch {
	case o.Mode == sendmailcompat.ModeSMTP:
		// An SMTP session on stdin/stdout (Symfony Mailer). When it cannot
		// start, an SMTP client reads why in a 421 greeting; the exit code
		// and stderr say it too.
		cfg, err := c.loadConfig()
		var s *sendmailcompat.Submitter
		if err == nil {
			s, err = c.submitter(cfg, true)
		}
		if err != nil {
			fmt.Fprintf(c.stdout, "421 4.3.0 relay cannot accept mail: %s\r\n", strings.Join(strings.Fields(err.Error()), " "))
			return err
		}
		// A client that closes its end early must not kill relay with
		// SIGPIPE: the write fails and the session ends.
		signal.Ignore(syscall.SIGPIPE)
		return s.ServeSMTP(c.stdin, c.stdout, o)
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	switch o.Mode {
	case sendmailcompat.ModePrintQueue:
		return c.list(cfg, false)
	case sendmailcompat.ModeFlush:
		return c.flush(cfg, nil)
	case sendmailcompat.ModeNewaliases:
		return c.newaliases()
	case sendmailcompat.ModeVerify:
		s, err := c.submitter(cfg, false)
		if err != nil {
			return err
		}
		return s.Verify(o.Recipients, c.stdout)
	}
	s, err := c.submitter(cfg, true)
	if err != nil {
		return err
	}
	// The enqueue line goes to syslog or the log file when it can, never
	// to stderr: callers take any output there for a failure.
	s.Log = maillog.OpenBestEffort(cfg.Log.To)
	defer s.Log.Close()
	id, err := s.Enqueue(o, c.stdin)
	if id == "" {
		return err
	}
	// err may still say that a recipient has nowhere to go (exit 67): the
	// message is queued, and the bounce is delivered like the rest.
	if o.WaitSet || o.Verbose {
		if werr := c.deliverNow(cfg, s, id, o); err == nil {
			err = werr
		}
		return err
	}
	c.startDelivery(cfg, s)
	return err
}

// deliverNow delivers one just-queued message in the foreground (sendmail
// --wait, -v) and says how it went in the exit code: 0 every recipient
// delivered, 67 one refused for good (it gets its bounce), 75 one still
// queued. -v shows the SMTP dialogue on stderr, AUTH redacted.
func (c *cli) deliverNow(cfg *config.Config, s *sendmailcompat.Submitter, id string, o *sendmailcompat.Options) error {
	if s.Drop {
		return sysexits.New(sysexits.TempFail, "queued as %s for the relay daemon: this user cannot read the credentials to deliver it now", id)
	}
	if len(cfg.Smarthosts) == 0 {
		return sysexits.New(sysexits.TempFail, "queued as %s: no [[smarthost]] configured", id)
	}
	r := newRunner(cfg, s.Spool, s.Log)
	r.Only = []string{id}
	if o.Verbose {
		r.Log = maillog.New(c.stderr)
		r.Debug = relay.RedactAuth(c.stderr)
	}
	maskSecrets(r.Log, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), o.WaitDuration())
	defer cancel()
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
		switch {
		case res.err != nil:
			return sysexits.Wrap(sysexits.TempFail, fmt.Errorf("queued as %s: %w", id, res.err))
		case res.st.Failed > 0:
			return sysexits.New(sysexits.NoUser, "queued as %s: %d recipient(s) refused permanently; the sender gets a bounce", id, res.st.Failed)
		case res.st.Waiting > 0:
			return sysexits.New(sysexits.TempFail, "queued as %s: held back by the smarthost's rate limit (see mailq); relay sends it when the limit allows", id)
		case res.st.Deferred > 0 || res.st.Held > 0 || res.st.Messages == 0:
			return sysexits.New(sysexits.TempFail, "queued as %s: not delivered yet (see mailq); relay keeps trying", id)
		}
		return nil
	case <-ctx.Done():
		// Leaving ends the transaction without its final dot: the message
		// stays queued and is retried.
		return sysexits.New(sysexits.TempFail, "queued as %s: not delivered within %v; relay keeps trying", id, o.WaitDuration())
	}
}

// startDelivery starts a delivery pass in a detached process (a session
// of its own, standard streams on /dev/null, so cron and PHP, which read
// sendmail's output until EOF, never wait for it) when no daemon does it:
// for a caller who can read the credentials, unless detached_delivery is
// off. Otherwise the mail waits for the daemon or relay queue run.
func (c *cli) startDelivery(cfg *config.Config, s *sendmailcompat.Submitter) {
	if s.Drop || !cfg.Daemon.DetachedDelivery || len(cfg.Smarthosts) == 0 || !canReadSecret(&cfg.Smarthosts[0]) {
		return
	}
	if s.Spool.RunnerActive() || s.Spool.DaemonRunning() {
		return // it looks again after its pass (a daemon: at once)
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	args := []string{"relay"}
	if cfg.Loaded {
		args = append(args, "-C", cfg.Path)
	}
	cmd := &exec.Cmd{Path: exe, Args: append(args, "queue", "run", "--detached"), Dir: "/",
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if cmd.Start() == nil {
		cmd.Process.Release()
	}
}

// canReadSecret reports whether this process can authenticate to sh.
func canReadSecret(sh *config.Smarthost) bool {
	switch {
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

// newaliases checks the alias file, as package scripts expect: every
// problem is printed with file:line, and it exits 0 all the same (those
// scripts must not fail); relay reads the file at each submission, so
// there is no database to build.
func (c *cli) newaliases() error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	if cfg.Rewrite.Aliases == "" {
		return nil
	}
	files := rewrite.Load(cfg, "").Files()
	if err := files.Errs["rewrite.aliases"]; err != nil {
		fmt.Fprintf(c.stderr, "%s: warning: %v\n", c.prog, err)
		return nil
	}
	for _, p := range files.Problems {
		if p.File == cfg.Rewrite.Aliases {
			p.Warning = true
			fmt.Fprintf(c.stderr, "%s: %s\n", c.prog, p)
		}
	}
	return nil
}

func (c *cli) list(cfg *config.Config, asJSON bool) error {
	sp, err := openSpool(cfg)
	if err != nil {
		return err
	}
	if sp == nil {
		if !asJSON {
			fmt.Fprintln(c.stdout, "Mail queue is empty")
		}
		return nil
	}
	if asJSON {
		return queueErr(mailq.ListJSON(c.stdout, c.stderr, sp))
	}
	return queueErr(mailq.List(c.stdout, c.stderr, sp))
}

// queueErr turns a refused read of the queue into the one-line exit 77.
func queueErr(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return sysexits.New(sysexits.NoPerm, "permission denied: the queue is readable by root and the relay group only")
	}
	return err
}

func (c *cli) flush(cfg *config.Config, ids []string) error {
	sp, err := openSpool(cfg)
	if sp == nil || err != nil {
		return err
	}
	// A flush means "try now": forget that a smarthost was down, too.
	if err := sp.ForgetHosts(); err != nil {
		return queueErr(err)
	}
	return queueErr(mailq.Flush(sp, ids, time.Now()))
}

func (c *cli) queue(args []string) error {
	if len(args) == 0 {
		return sysexits.New(sysexits.Usage, "queue: name a command: list, show, flush, delete, hold, release")
	}
	cmd, args := args[0], args[1:]
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	switch cmd {
	case "list":
		asJSON := len(args) == 1 && args[0] == "--json"
		if len(args) > 1 || len(args) == 1 && !asJSON {
			return sysexits.New(sysexits.Usage, "queue list: only --json is accepted")
		}
		return c.list(cfg, asJSON)
	case "flush":
		return c.flush(cfg, args)
	case "run":
		detached := len(args) == 1 && args[0] == "--detached"
		if len(args) > 0 && !detached {
			return sysexits.New(sysexits.Usage, "queue run takes no arguments")
		}
		return c.runQueue(cfg, detached)
	}
	ids, all, err := idArgs(cmd, args)
	if err != nil {
		return err
	}
	sp, err := openSpool(cfg)
	if err != nil {
		return err
	}
	if sp == nil {
		return sysexits.New(sysexits.NoInput, "queue %s: the queue is empty", cmd)
	}
	switch cmd {
	case "show":
		if len(ids) != 1 || all {
			return sysexits.New(sysexits.Usage, "queue show: name one queue ID")
		}
		return queueErr(mailq.Show(c.stdout, sp, ids[0]))
	case "delete":
		return queueErr(mailq.Delete(sp, ids, all))
	case "hold":
		return queueErr(mailq.Hold(sp, ids, all))
	case "release":
		return queueErr(mailq.Release(sp, ids, all, time.Now()))
	}
	return sysexits.New(sysexits.Usage, "queue: unknown command %q", cmd)
}

// idArgs reads "ID…" or "--all".
func idArgs(cmd string, args []string) (ids []string, all bool, err error) {
	for _, a := range args {
		switch {
		case a == "--all":
			all = true
		case spool.ValidID(a):
			ids = append(ids, a)
		default:
			return nil, false, sysexits.New(sysexits.Usage, "queue %s: %q is not a queue ID", cmd, a)
		}
	}
	if all == (len(ids) > 0) {
		return nil, false, sysexits.New(sysexits.Usage, "queue %s: name queue IDs or --all", cmd)
	}
	return ids, all, nil
}

func (c *cli) rewrite(args []string) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	s, err := c.submitter(cfg, false)
	if err != nil {
		return err
	}
	return s.Verify(args, c.stdout)
}

// check validates the configuration, the files it names and the spool;
// errors exit 78, warnings go to stderr with exit 0.
func (c *cli) check(args []string) error {
	if len(args) > 0 {
		return sysexits.New(sysexits.Usage, "check takes no arguments")
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	var errs config.Errors
	host, _ := os.Hostname()
	for _, p := range append(cfg.Check(), rewrite.Load(cfg, host).Check()...) {
		if p.Warning {
			fmt.Fprintf(c.stderr, "relay: %s\n", p)
		} else {
			errs = append(errs, p)
		}
	}
	queued, err := checkSpool(cfg, c.stderr)
	var stuck *stuckError
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
	fmt.Fprintf(c.stdout, "configuration %s: OK\nspool %s: %d message(s) queued\n", source, cfg.Spool, queued)
	return nil
}

// checkSpool reports the state of the spool: it counts the queue and
// warns about unreadable and corrupt files. A missing spool is fine (it is
// made on first use); one that cannot be read or written is an error.
func checkSpool(cfg *config.Config, warn io.Writer) (int, error) {
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
		// A system install: every directory with its owner and mode.
		uid, gid, err := sp.Owner()
		if err != nil {
			return 0, err
		}
		var problems []string
		for _, d := range spool.SystemDirs(cfg.Spool) {
			fi, err := os.Lstat(d.Path)
			if err != nil {
				problems = append(problems, err.Error())
			} else if p := d.Check(fi, uid, gid); p != "" {
				problems = append(problems, d.Path+": "+p+" (relay install fixes it)")
			}
		}
		if len(problems) > 0 {
			return 0, errors.New(strings.Join(problems, "; "))
		}
	} else {
		for _, d := range []string{"queue", "tmp"} {
			if err := unix.Access(filepath.Join(cfg.Spool, d), unix.R_OK|unix.W_OK|unix.X_OK); err != nil {
				return 0, fmt.Errorf("%s/%s is not writable by uid %d: %v", cfg.Spool, d, os.Getuid(), err)
			}
		}
	}
	queued, stuck := 0, 0
	var reason string
	err = sp.Scan(func(_ string, m *spool.Message, err error) error {
		queued++
		if err != nil {
			fmt.Fprintf(warn, "relay: warning: %v\n", err)
		} else if m.OwnSide {
			stuck++
			reason = m.LastError
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if stuck > 0 {
		return queued, &stuckError{n: stuck, reason: reason}
	}
	if names, _ := os.ReadDir(cfg.Spool + "/corrupt"); len(names) > 0 {
		fmt.Fprintf(warn, "relay: warning: %d file(s) in %s/corrupt need a look\n", len(names), cfg.Spool)
	}
	return queued, nil
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

// runQueue makes a delivery pass (relay queue run: for cron and systemd
// timers; with --detached, started by sendmail). One runner works on a
// spool at a time: another one leaves at once, and the one at work looks
// again after its pass, so mail queued meanwhile is not left waiting. A
// running daemon holds the run lock for its life: queue run then leaves
// at once, exit 0 (the daemon delivers; see package daemon).
// SIGTERM or SIGINT ends it after the message being sent.
func (c *cli) runQueue(cfg *config.Config, detached bool) error {
	sp, err := openSpool(cfg)
	if sp == nil || err != nil {
		return err
	}
	var log *maillog.Logger
	if detached {
		log = maillog.OpenBestEffort(cfg.Log.To) // its stderr is /dev/null
	} else if log, err = maillog.Open(cfg.Log.To, c.stderr); err != nil {
		return sysexits.Wrap(sysexits.Config, err)
	}
	defer log.Close()
	maskSecrets(log, cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	r := newRunner(cfg, sp, log)
	// Pass after pass over the same connections (see Runner.KeepConnections).
	r.KeepConnections = 5 * time.Second
	defer r.Close()
	for pass := 0; pass < 100 && ctx.Err() == nil; pass++ {
		lock, ok, err := sp.TryRunLock()
		if err != nil || !ok {
			return queueErr(err)
		}
		err = c.onePass(ctx, cfg, sp, r, log)
		if err == nil && detached {
			lingerForMail(ctx, sp, detachedLinger)
		}
		lock.Release()
		if err != nil || !r.Due(sp.HasMaildrop()) {
			return err
		}
	}
	return nil
}

// detachedLinger is how long a detached runner waits, with its connection
// open, for more mail before it leaves: sendmail runs in a row (a script,
// a burst of cron jobs) then cost a transaction each, not a process, a TLS
// handshake and an AUTH each.
const detachedLinger = 500 * time.Millisecond

// lingerForMail waits up to d for something new in the spool's queue or
// maildrop (their directories change), cheaply: one stat each per 10 ms.
func lingerForMail(ctx context.Context, sp *spool.Spool, d time.Duration) {
	dirs := []string{filepath.Join(sp.Dir, "queue"), filepath.Join(sp.Dir, "maildrop")}
	stamp := func() (ns int64) {
		for _, dir := range dirs {
			if fi, err := os.Stat(dir); err == nil {
				ns += fi.ModTime().UnixNano()
			}
		}
		return ns
	}
	before := stamp()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if stamp() != before {
			return
		}
	}
}

func (c *cli) onePass(ctx context.Context, cfg *config.Config, sp *spool.Spool, r *relay.Runner, log *maillog.Logger) error {
	if sp.HasMaildrop() {
		if _, err := c.pickup(cfg, sp, log).Run(); err != nil {
			return queueErr(err)
		}
	}
	if len(cfg.Smarthosts) == 0 {
		return sysexits.New(sysexits.Config, "%s: no [[smarthost]] configured: nothing to deliver to", cfg.Path)
	}
	_, err := r.Run(ctx)
	return queueErr(err)
}

func (c *cli) pickup(cfg *config.Config, sp *spool.Spool, log *maillog.Logger) *sendmailcompat.Pickup {
	host, _ := os.Hostname()
	return &sendmailcompat.Pickup{
		Spool: sp, Hostname: host, MaxMessageSize: int64(cfg.MaxMessageSize), Now: time.Now, Log: log.Info,
		User:    func(uid int) string { login, _ := lookupUser(uid); return login },
		Rewrite: rewrite.Load(cfg, host),
	}
}

// heloName is the host's fully qualified name, or the mail domain when
// the host name has no dot.
func heloName(cfg *config.Config) string {
	if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") {
		return h
	}
	return cfg.MailDomain()
}

// lookupUser returns the login and full name of uid. relay is built
// without cgo (a static binary starts measurably faster, and sendmail's
// speed is mostly start-up), so os/user reads /etc/passwd only; users from
// LDAP or SSSD are found through getent, which asks NSS, on that rarer
// path. An unknown uid becomes "uid1000".
func lookupUser(uid int) (login, gecos string) {
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil {
		return u.Username, u.Name
	}
	out, err := exec.Command("getent", "passwd", id).Output()
	if f := strings.Split(strings.TrimSpace(string(out)), ":"); err == nil && len(f) >= 5 && f[0] != "" {
		name, _, _ := strings.Cut(f[4], ",")
		return f[0], name
	}
	return "uid" + id, ""
}

// install sets up a system install (see package install).
func (c *cli) install(args []string) error {
	o := install.Options{Out: c.stdout}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--dry-run":
			o.DryRun = true
		case a == "--force":
			o.Force = true
		case a == "--prefix" && i+1 < len(args):
			i++
			o.Prefix = args[i]
		case strings.HasPrefix(a, "--prefix="):
			o.Prefix = strings.TrimPrefix(a, "--prefix=")
		default:
			return sysexits.New(sysexits.Usage, "install: unknown argument %q (use --prefix DIR, --dry-run, --force)", a)
		}
	}
	if os.Geteuid() != 0 && !o.DryRun {
		return sysexits.New(sysexits.NoPerm, "install: run as root (or with --dry-run to see the steps)")
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	if o.Binary, err = os.Executable(); err != nil {
		return err
	}
	o.Spool, o.Config, o.User = cfg.Spool, cfg.Path, cfg.Daemon.User
	return sysexits.Wrap(sysexits.CantCreat, install.Run(o))
}

// stuckError: mail waits on a failure of relay's own side or the account
// (connect, TLS, AUTH, MAIL FROM). relay check exits 75 for it: the
// configuration is valid, but mail does not leave.
type stuckError struct {
	n      int
	reason string
}

func (e *stuckError) Error() string {
	return fmt.Sprintf("%d message(s) stuck on a failure of relay's side or the account, last: %s", e.n, e.reason)
}

// maskSecrets makes log mask the inline passwords: a last line of defence,
// for passwords long enough that masking them cannot mangle ordinary text
// (and so give them away).
func maskSecrets(log *maillog.Logger, cfg *config.Config) {
	for _, sh := range cfg.Smarthosts {
		if len(sh.Password) >= 8 {
			log.AddSecrets(sh.Password)
		}
	}
}

// newRunner is the one place a delivery runner is put together from the
// configuration: queue run, --wait/-v and the daemon all take theirs here.
func newRunner(cfg *config.Config, sp *spool.Spool, log *maillog.Logger) *relay.Runner {
	return &relay.Runner{Spool: sp, Config: cfg, Log: log, HeloName: heloName(cfg), Domain: cfg.MailDomain(), Now: time.Now,
		Rewrite: loadRewrite(cfg, log)}
}

// loadRewrite reads the [rewrite] files for delivery (sender map, header
// rules). A file that cannot be read is logged as an error; delivery goes
// on without it (a wrong sender is refused and deferred, never lost).
func loadRewrite(cfg *config.Config, log *maillog.Logger) *rewrite.Rules {
	host, _ := os.Hostname()
	rw := rewrite.Load(cfg, host)
	if err := rw.Err(); err != nil && log != nil {
		log.Error("status", "error", "reason", err.Error())
	}
	return rw
}

// daemon runs relay daemon (package daemon) as the spool's owner. A
// second daemon on the spool exits 75 with one line.
func (c *cli) daemon(args []string) error {
	if len(args) > 0 {
		return sysexits.New(sysexits.Usage, "daemon takes no arguments")
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	// The SMTP listener's sockets first, while the process may still be
	// root (port 25): openSpool takes the spool owner's identity.
	lns, err := listener.Listen(cfg.Daemon.Listen)
	if err != nil {
		return err
	}
	sp, err := openSpool(cfg)
	if err != nil {
		return err
	}
	if sp == nil {
		// Made on first use, as sendmail makes it (a system install has
		// its spool from relay install or tmpfiles.d).
		if sp, err = spool.Create(cfg.Spool); err != nil {
			return sysexits.Wrap(sysexits.CantCreat, err)
		}
	}
	log, err := maillog.Open(cfg.Log.To, c.stderr)
	if err != nil {
		return sysexits.Wrap(sysexits.Config, err)
	}
	defer log.Close()
	d := &daemon.Daemon{
		Spool: sp, Config: cfg, Log: log,
		Reload: c.loadConfig,
		NewRunner: func(cfg *config.Config) *relay.Runner {
			maskSecrets(log, cfg)
			r := newRunner(cfg, sp, log)
			// Mail that follows within seconds reuses the session.
			r.KeepConnections = 10 * time.Second
			return r
		},
		NewPickup: func(cfg *config.Config) *sendmailcompat.Pickup { return c.pickup(cfg, sp, log) },
	}
	if len(lns) > 0 {
		svc, err := smtpListener(cfg, sp, log, lns)
		if err != nil {
			return err
		}
		d.Services = append(d.Services, svc)
	}
	err = d.Run(context.Background())
	if daemon.IsRunning(err) {
		return sysexits.Wrap(sysexits.TempFail, err)
	}
	return err
}

// smtpListener is the daemon's service for [daemon] listen (package
// listener), on sockets already open. Its messages are queued as the
// daemon's user, which owns the spool.
func smtpListener(cfg *config.Config, sp *spool.Spool, log *maillog.Logger, lns []net.Listener) (func(context.Context) error, error) {
	nets, err := listener.ParseNetworks(cfg.Daemon.ListenNetworks)
	if err != nil {
		return nil, err
	}
	s := &sendmailcompat.Submitter{
		Spool: sp, Domain: cfg.MailDomain(), UID: os.Getuid(),
		MaxMessageSize: int64(cfg.MaxMessageSize), MinFreeSpace: int64(cfg.MinFreeSpace),
		Now: time.Now, Log: log,
	}
	s.Hostname, _ = os.Hostname()
	s.User, _ = lookupUser(s.UID)
	// Aliases apply to the listener's mail too (sender_login_map does
	// not: a network client has no login).
	s.Rewrite = rewrite.Load(cfg, s.Hostname)
	srv, err := listener.New(listener.Options{Submitter: s, Networks: nets, Log: log})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return srv.Serve(ctx, lns) }, nil
}
