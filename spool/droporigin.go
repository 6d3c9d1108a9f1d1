package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Taking a drop exactly once
//
// The pickup commits the queue file and then removes the drop: a crash
// between the two would leave the drop to be taken again, a second copy
// of the message. So the envelope of a message made from a drop records
// the drop's identity (Envelope.Drop: its name, device, inode, size,
// modification and change times), and before taking drops the pickup asks
// QueuedDrops which of them are already in the queue; those are only
// removed (RemoveQueuedDrop). A drop is identified by all of these at
// once: its owner may remove it and drop another file under the same name
// (the sticky maildrop lets the owner of a file unlink it), and that one
// is a new message.
//
// Queue IDs carry their arrival time, always later than the rename that
// completed the drop, so only messages that arrived after the oldest drop
// waiting (less a margin for a clock set back a little) are read, not the
// whole queue.

// DropOrigin identifies the maildrop file a message was taken from.
type DropOrigin struct {
	Name  string `json:"name"`
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
	CTime int64  `json:"ctime_ns"`
}

func originOf(name string, st *unix.Stat_t) DropOrigin {
	return DropOrigin{Name: name, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		MTime: st.Mtim.Nano(), CTime: st.Ctim.Nano()}
}

// dropClockMargin is how far the clock may have been set back between a
// drop's completion and its pickup for QueuedDrops to still find the
// message made from it.
const dropClockMargin = 10 * time.Second

// QueuedDrops returns, among the drops named, those a pickup already
// queued (a crash kept it from removing them), with the ID of the message
// each became.
func (s *Spool) QueuedDrops(names []string) (map[string]string, error) {
	waiting := map[DropOrigin]string{}
	var oldest int64
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(s.maildropDir(), n), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		o := originOf(n, &st)
		waiting[o] = n
		if oldest == 0 || o.CTime < oldest {
			oldest = o.CTime
		}
	}
	if len(waiting) == 0 {
		return nil, nil
	}
	ids, err := s.IDs()
	if err != nil {
		return nil, err
	}
	since := NewIDPrefix(time.Unix(0, oldest).Add(-dropClockMargin))
	out := map[string]string{}
	for _, id := range ids[sort.SearchStrings(ids, since):] {
		m, err := s.snapshot(id, true)
		if err != nil || m.Drop == nil {
			continue
		}
		if n, ok := waiting[*m.Drop]; ok {
			out[n] = id
		}
	}
	return out, nil
}

// RemoveQueuedDrop removes a drop QueuedDrops found in the queue as
// message id, after checking again that the file under its name is that
// drop, and fsyncs the maildrop.
func (s *Spool) RemoveQueuedDrop(name, id string) error {
	m, err := s.Read(id)
	if err != nil {
		return err
	}
	p := filepath.Join(s.maildropDir(), name)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("spool: maildrop %s: %w", name, err)
	}
	if m.Drop == nil || *m.Drop != originOf(name, &st) {
		return fmt.Errorf("spool: maildrop %s: %w", name, errNotThatDrop)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("spool: remove drop %s: %w", name, err)
	}
	return syncDir(s.maildropDir())
}

var errNotThatDrop = errors.New("no longer the drop queued")

// NewIDPrefix is the smallest queue ID of a message that arrived at t or
// later: IDs compare as their arrival times do.
func NewIDPrefix(t time.Time) string {
	us := t.UnixMicro()
	var b [11]byte
	for i := 10; i >= 0; i-- {
		b[i] = crockford[us&31]
		us >>= 5
	}
	return string(b[:])
}

// DropRetry is how long the pickup of a process first leaves a drop alone
// after it could not deal with it (DeferDrop); each further failure with
// the same name doubles it, up to DropRetryMax.
const (
	DropRetry    = time.Minute
	DropRetryMax = time.Hour
)

// deferral is a drop left alone: until when, after how many failures.
type deferral struct {
	until    time.Time
	failures int
}

// DeferDrop makes Drops leave the drop name out for a while (DropRetry,
// doubling with each failure in a row): this process could not take it,
// nor move it aside, and trying again at once would only repeat the
// failure and its log line (a full disk, a directory relay may not
// remove). The next process tries again at once.
func (s *Spool) DeferDrop(name string, now time.Time) {
	s.dropMu.Lock()
	defer s.dropMu.Unlock()
	if s.deferred == nil {
		s.deferred = map[string]deferral{}
	}
	for n, d := range s.deferred {
		if now.Sub(d.until) > DropRetryMax {
			delete(s.deferred, n) // gone long ago: forget it
		}
	}
	d := s.deferred[name]
	wait := DropRetry
	for i := 0; i < d.failures && wait < DropRetryMax; i++ {
		wait *= 2
	}
	s.deferred[name] = deferral{until: now.Add(min(wait, DropRetryMax)), failures: d.failures + 1}
}

func (s *Spool) dropDeferred(name string, now time.Time) bool {
	s.dropMu.Lock()
	defer s.dropMu.Unlock()
	d, ok := s.deferred[name]
	return ok && now.Before(d.until)
}
