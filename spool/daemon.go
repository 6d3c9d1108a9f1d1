package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The daemon lock
//
// One relay daemon serves a spool. It holds an open file description lock
// on daemon.pid for its whole life and writes its pid there (for the
// messages of those who find it taken). The kernel drops the lock when the
// daemon exits or is killed, so a stale pid file never blocks a restart.
// The file is readable by everyone (0644): relay check and sendmail test
// the lock (F_OFD_GETLK) without taking it, to know whether a daemon runs.

// ErrDaemonRunning is returned (wrapped, with the other daemon's pid) by
// LockDaemon when a daemon already serves the spool.
var ErrDaemonRunning = errors.New("a relay daemon already runs on this spool")

// DaemonLock is held by the running daemon; Release gives it up.
type DaemonLock struct{ f *os.File }

func (s *Spool) daemonPath() string { return filepath.Join(s.Dir, "daemon.pid") }

// LockDaemon takes the daemon lock without waiting and records this
// process's pid in it.
func (s *Spool) LockDaemon() (*DaemonLock, error) {
	f, err := os.OpenFile(s.daemonPath(), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("spool: daemon lock: %w", err)
	}
	if err := lockFile(f, false); err != nil {
		f.Close()
		if err == unix.EAGAIN || err == unix.EACCES {
			if pid := s.DaemonPID(); pid > 0 {
				return nil, fmt.Errorf("%w (pid %d, spool %s)", ErrDaemonRunning, pid, s.Dir)
			}
			return nil, fmt.Errorf("%w (spool %s)", ErrDaemonRunning, s.Dir)
		}
		return nil, fmt.Errorf("spool: daemon lock: %w", err)
	}
	// Readable by all whatever the umask: relay check asks it.
	f.Chmod(0o644)
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DaemonLock{f}, nil
}

// Release gives the daemon lock up (the pid file stays: its lock, not its
// existence, says whether a daemon runs).
func (l *DaemonLock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// DaemonPID returns the pid of the daemon serving the spool, or 0 when
// none runs (or the pid file cannot be read).
func (s *Spool) DaemonPID() int {
	f, err := os.Open(s.daemonPath())
	if err != nil {
		return 0
	}
	defer f.Close()
	if !isLocked(f) {
		return 0
	}
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return -1 // running, pid not written yet
	}
	return pid
}

// DaemonRunning reports whether a relay daemon serves the spool now.
func (s *Spool) DaemonRunning() bool { return s.DaemonPID() != 0 }
