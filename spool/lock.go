package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive open file description lock on f. Without wait
// it fails at once with unix.EAGAIN when another description holds one.
func lockFile(f *os.File, wait bool) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	cmd := unix.F_OFD_SETLK
	if wait {
		cmd = unix.F_OFD_SETLKW
	}
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, &lk)
		if err != unix.EINTR {
			return err
		}
	}
}

// isLocked reports whether another open file description holds a lock on f.
func isLocked(f *os.File) bool { return fdLocked(f.Fd()) }

func fdLocked(fd uintptr) bool {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(fd, unix.F_OFD_GETLK, &lk); err != nil {
		return false
	}
	return lk.Type != unix.F_UNLCK
}

// Locked is a queued message held exclusively by this process. Only its
// holder may change or remove it. Close releases it.
type Locked struct {
	Env    *Envelope
	Size   int64 // bytes of message content
	s      *Spool
	f      *os.File
	offset int64
}

// Lock takes the message id for exclusive use without waiting: it returns an
// error wrapping ErrBusy when another process holds it, ErrNotFound when it
// is not (or no longer) in the queue, ErrCorrupt when it cannot be read (the
// file is then moved to corrupt/).
func (s *Spool) Lock(id string) (*Locked, error) {
	return s.lock(id, 0)
}

// LockWait is Lock that waits up to timeout for a busy message.
func (s *Spool) LockWait(id string, timeout time.Duration) (*Locked, error) {
	return s.lock(id, timeout)
}

func (s *Spool) lock(id string, timeout time.Duration) (*Locked, error) {
	f, err := s.openMessage(id, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err = lockFile(f, false)
		if err != unix.EAGAIN && err != unix.EACCES {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("spool: %s: %w", id, ErrBusy)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: lock %s: %w", id, err)
	}
	// Between our open and our lock another runner may have finished the
	// message and removed it: a file without links is no message.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: stat %s: %w", id, err)
	}
	if st.Nlink == 0 {
		f.Close()
		return nil, fmt.Errorf("spool: %s: %w", id, ErrNotFound)
	}
	env, off, err := s.readEnvelope(id, f)
	if errors.Is(err, ErrCorrupt) {
		if merr := s.moveCorrupt(id); merr != nil {
			err = fmt.Errorf("%w (and moving it aside failed: %v)", err, merr)
		} else {
			err = fmt.Errorf("%w (moved to %s)", err, s.corruptDir())
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %s: %w", id, err)
	}
	return &Locked{Env: env, Size: st.Size - off, s: s, f: f, offset: off}, nil
}

// readEnvelope returns the current envelope of the open queue file f: the
// one in queue/ID.env when there is one, else the arrival envelope.
func (s *Spool) readEnvelope(id string, f *os.File) (*Envelope, int64, error) {
	return s.readEnvelopeAt(id, f, true)
}

// readEnvelopeAt is readEnvelope over any ReaderAt; mayHaveEnv false says
// the caller knows there is no queue/ID.env (Scan read the directory).
func (s *Spool) readEnvelopeAt(id string, f io.ReaderAt, mayHaveEnv bool) (*Envelope, int64, error) {
	head := io.NewSectionReader(f, 0, 1<<62)
	arrival := func() (*Envelope, int64, error) {
		env, off, err := readHead(head)
		// The envelope names the files an Update writes and a Delete
		// removes: one of another message must not reach them.
		if err == nil && env.ID != id {
			return nil, 0, fmt.Errorf("%w: queue file %s holds the envelope of %s", ErrCorrupt, id, env.ID)
		}
		return env, off, err
	}
	if !mayHaveEnv {
		return arrival()
	}
	b, err := readFileRaw(s.envPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return arrival()
	}
	if err != nil {
		return nil, 0, err
	}
	// The arrival envelope is superseded: only where the message starts
	// is wanted from the queue file.
	_, _, off, err := scanHead(head)
	if err != nil {
		return nil, 0, err
	}
	cur, err := decodeEnvelopeFile(b)
	if err != nil {
		return nil, 0, err
	}
	if cur.ID != id {
		return nil, 0, fmt.Errorf("%w: %s.env names message %s", ErrCorrupt, id, cur.ID)
	}
	return cur, off, nil
}

// readFileRaw is os.ReadFile without an os.File (no poller set-up): an
// envelope file is read for every message of a listing.
func readFileRaw(path string) ([]byte, error) {
	fd, err := openRaw(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	// An envelope is a few hundred bytes: one read in the common case. A
	// short read of a regular file is its end.
	b := make([]byte, 0, 4096)
	for {
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		b = b[:len(b)+n]
		if len(b) < cap(b) {
			return b, nil
		}
		b = append(b, 0)[:len(b)] // full: grow and read on
	}
}

// Content returns a reader of the message as queued.
func (l *Locked) Content() io.Reader {
	return io.NewSectionReader(l.f, l.offset, l.Size)
}

// Update makes l.Env the message's envelope, durably.
func (l *Locked) Update() error {
	b, err := encodeEnvelopeFile(l)
	if err != nil {
		return err
	}
	id := l.Env.ID
	tmp, ino, err := l.s.writeTempFile(id+envSuffix, b, true)
	if err == nil {
		// Before the rename, as at enqueue (see "The envelope index").
		l.s.appendIndex(indexRecord(recEnv, FormatVersion, id, ino, l.offset+l.Size, l.Size, b[len(formatLine):len(b)-1]))
		if err = os.Rename(tmp, l.s.envPath(id)); err != nil {
			os.Remove(tmp)
		}
	}
	if err == nil {
		err = syncDir(l.s.queueDir())
	}
	if err != nil {
		return fmt.Errorf("spool: update %s: %w", id, err)
	}
	return nil
}

// Delete removes the message from the queue and releases it.
func (l *Locked) Delete() error {
	id := l.Env.ID
	// The message file goes first: see "Changing the envelope" in the
	// package documentation.
	err := os.Remove(l.s.path(id))
	if err == nil {
		if e := os.Remove(l.s.envPath(id)); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = e
		}
	}
	if err == nil {
		err = syncDir(l.s.queueDir())
	}
	l.Close()
	if err != nil {
		return fmt.Errorf("spool: delete %s: %w", id, err)
	}
	return nil
}

// Close releases the message.
func (l *Locked) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// moveCorrupt moves a message's files to corrupt/.
func (s *Spool) moveCorrupt(id string) error {
	if err := os.MkdirAll(s.corruptDir(), 0o700); err != nil {
		return err
	}
	err := os.Rename(s.path(id), s.corruptDir()+"/"+id)
	if e := os.Rename(s.envPath(id), s.corruptDir()+"/"+id+envSuffix); e != nil && !errors.Is(e, os.ErrNotExist) && err == nil {
		err = e
	}
	return err
}

// RunLock is held by the process making a delivery pass over the spool.
type RunLock struct{ f *os.File }

// TryRunLock takes the spool's run lock without waiting; ok is false when
// another runner holds it. Runners that start at a submitter's request
// (detached delivery) give way to one already at work: that one re-checks
// for due mail after it releases the lock, so nothing committed is missed.
func (s *Spool) TryRunLock() (*RunLock, bool, error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "run.lock"), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("spool: run lock: %w", err)
	}
	if err := lockFile(f, false); err != nil {
		f.Close()
		if err == unix.EAGAIN || err == unix.EACCES {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("spool: run lock: %w", err)
	}
	return &RunLock{f}, true, nil
}

// Release gives the run lock up.
func (l *RunLock) Release() { l.f.Close() }

// RunnerActive reports whether a runner holds the run lock now. A
// submitter that sees one need not start another: the message it just
// committed is found by that runner's look after its pass.
func (s *Spool) RunnerActive() bool {
	f, err := os.Open(filepath.Join(s.Dir, "run.lock"))
	if err != nil {
		return false
	}
	defer f.Close()
	return isLocked(f)
}
