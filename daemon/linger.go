package daemon

import (
	"bytes"
	"context"
	"time"
	"unsafe"

	"github.com/relaymail/relay/spool"
	"golang.org/x/sys/unix"
)

// mailWatch wakes a lingering detached runner the moment mail arrives,
// instead of a stat of the spool every 10 ms: inotify on the spool's
// WatchDirs for a name renamed or created there (a committed message, a
// rewritten envelope, a complete drop) and for a file closed after
// writing (a sendmail done with the message it committed: its lock,
// which made the runner skip the message, is gone). The runner's own
// pass makes such events too (it locks messages through read-write
// opens): passes.run drains them before it lingers.
type mailWatch struct {
	fd  int
	buf [4096]byte
}

// newMailWatch watches sp's WatchDirs; nil when inotify cannot be had
// (too many watches): lingerForMail then stats the spool.
func newMailWatch(sp *spool.Spool) *mailWatch {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	for _, dir := range sp.WatchDirs() {
		if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CREATE|unix.IN_CLOSE_WRITE); err != nil {
			unix.Close(fd)
			return nil
		}
	}
	return &mailWatch{fd: fd}
}

func (w *mailWatch) Close() {
	if w != nil {
		unix.Close(w.fd)
	}
}

// wait waits up to d for news (a name that is not dot-named: drafts and
// lock files are) and reports whether some came. It looks at ctx every
// 50 ms.
func (w *mailWatch) wait(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for ctx.Err() == nil {
		if w.drain() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		ms := int(min(left, 50*time.Millisecond) / time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, max(ms, 1)); err != nil && err != unix.EINTR {
			return false
		}
	}
	return false
}

// drain reads the events queued and reports whether one names news.
func (w *mailWatch) drain() bool {
	news := false
	for {
		n, err := unix.Read(w.fd, w.buf[:])
		if n <= 0 || err != nil {
			return news
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			name := w.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			name = bytes.TrimRight(name, "\x00")
			if len(name) > 0 && name[0] != '.' || ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				news = true
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
