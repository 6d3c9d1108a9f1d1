package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Message is a snapshot of a queued message, for listing.
type Message struct {
	Envelope
	Size   int64 // bytes of message content
	Active bool  // a runner holds the message right now
}

// IDs returns the IDs of the queued messages in arrival order.
func (s *Spool) IDs() ([]string, error) {
	names, err := readNames(s.queueDir())
	if err != nil {
		return nil, err
	}
	ids := names[:0]
	for _, n := range names {
		if ValidID(n) {
			ids = append(ids, n)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("spool: read %s: %w", dir, err)
	}
	return names, nil
}

// Read returns a snapshot of message id without locking it. Errors wrap
// ErrNotFound, ErrCorrupt or ErrNewer where they apply; Read never moves
// or changes anything, so it works with read access alone.
func (s *Spool) Read(id string) (*Message, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("spool: %q: %w", id, ErrNotFound)
	}
	return s.snapshot(id, true)
}

// Scan calls fn with a snapshot of every queued message, in arrival order,
// as Read gives it: fn gets the error instead for a message that cannot be
// read, and is not called for one removed meanwhile. An error from fn ends
// the scan and is returned.
//
// Scan is for listings of large queues (mailq on 100,000 messages): it
// reads the directory once with every name's inode, takes each message's
// current envelope from the index where the index has it (see "The
// envelope index"), and tells messages being delivered from the locks
// the kernel lists (/proc/locks) where it can. A message the index
// lacks is read with plain system calls (open, pread, fstat, a lock
// test, close) instead of an os.File.
func (s *Spool) Scan(fn func(id string, m *Message, err error) error) error {
	locks := s.lockedInodes()
	return scanWith(s, func(e *dirEntry, r *idxRec) (*Message, error) {
		id := e.ID()
		if r == nil {
			return s.snapshot(id, e.envIno != 0)
		}
		env, err := decodeEnvelope(r.js, r.version)
		if err != nil || env.ID != id {
			return s.snapshot(id, e.envIno != 0) // the file says what is wrong
		}
		m := &Message{Envelope: *env, Size: r.contentSize}
		if locks != nil {
			m.Active = locks[e.ino]
		} else {
			m.Active = s.lockedNow(id)
		}
		return m, nil
	}, fn)
}

// lockedNow tests the lock of message id without taking it.
func (s *Spool) lockedNow(id string) bool {
	fd, err := openRaw(s.path(id))
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return fdLocked(uintptr(fd))
}

// scanWith reads every queued message with read (given the message's
// index record, nil when the index has none), a few goroutines at a
// time, and hands the results to fn in arrival order (see Scan).
func scanWith[T any](s *Spool, read func(e *dirEntry, r *idxRec) (T, error), fn func(id string, m T, err error) error) error {
	ql, err := s.listQueue()
	if err != nil {
		return err
	}
	entries := ql.entries
	ix := s.openIndex(ql)
	defer ix.close()
	// Messages are read in chunks by a few goroutines (without an index
	// most of the time goes to system calls) and handed to fn in order;
	// the next chunk is read while fn works through one, so the readers
	// never wait for fn nor fn for a chunk's slowest reader (on a busy
	// machine, one descheduled thread). Two chunks bound the memory to a
	// few hundred envelopes whatever the queue's length.
	const chunk = 256
	workers := min(runtime.GOMAXPROCS(0)*2, 8)
	if ix.has > len(entries)/2 {
		workers = runtime.GOMAXPROCS(0) // decoding: no system calls to wait for
	}
	type result struct {
		m   T
		err error
	}
	type batch struct {
		lo   int
		res  []result
		done chan struct{}
	}
	start := func(lo, hi int) *batch {
		b := &batch{lo: lo, res: make([]result, hi-lo), done: make(chan struct{})}
		go func() {
			defer close(b.done)
			recs := make([]idxRec, hi-lo)
			ix.records(entries, lo, hi, recs)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := w; i < hi-lo; i += workers {
						var rec *idxRec
						if recs[i].kind != 0 {
							rec = &recs[i]
						}
						m, err := read(&entries[lo+i], rec)
						b.res[i] = result{m, err}
					}
				})
			}
			wg.Wait()
		}()
		return b
	}
	var cur *batch
	if len(entries) > 0 {
		cur = start(0, min(chunk, len(entries)))
	}
	for cur != nil {
		var next *batch
		if lo := cur.lo + len(cur.res); lo < len(entries) {
			next = start(lo, min(lo+chunk, len(entries)))
		}
		<-cur.done
		for i := range cur.res {
			if errors.Is(cur.res[i].err, ErrNotFound) {
				continue
			}
			if err := fn(entries[cur.lo+i].ID(), cur.res[i].m, cur.res[i].err); err != nil {
				if next != nil {
					<-next.done // no reader outlives the scan
				}
				return err
			}
		}
		cur = next
	}
	return nil
}

// snapshot reads message id over a raw descriptor (open, pread, fstat, a
// lock test, close: no os.File and its poller set-up, which a listing
// would pay per message); mayHaveEnv false skips the look for
// queue/ID.env. An envelope file written after Scan read the directory is
// missed, as it would be a moment later.
func (s *Spool) snapshot(id string, mayHaveEnv bool) (*Message, error) {
	fd, err := openRaw(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spool: %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", id, err)
	}
	defer unix.Close(fd)
	env, off, err := s.readEnvelopeAt(id, fdReaderAt(fd), mayHaveEnv)
	if err != nil {
		return nil, fmt.Errorf("spool: %s: %w", id, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("spool: stat %s: %w", id, err)
	}
	return &Message{Envelope: *env, Size: st.Size - off, Active: fdLocked(uintptr(fd))}, nil
}

// openRaw opens path for reading as a plain descriptor, never through a
// symbolic link.
func openRaw(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// fdReaderAt reads a raw descriptor with pread.
type fdReaderAt int

func (fd fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(int(fd), p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// OpenContent opens the content of message id for reading without locking
// it (relay queue show). The caller closes the file; the reader starts at
// the message.
func (s *Spool) OpenContent(id string) (*os.File, error) {
	f, err := s.openMessage(id, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	_, off, err := readHead(f)
	if err == nil {
		_, err = f.Seek(off, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %s: %w", id, err)
	}
	return f, nil
}

// isEnvName reports whether name is the envelope file of some ID.
func isEnvName(name string) bool {
	id, ok := strings.CutSuffix(name, envSuffix)
	return ok && ValidID(id)
}

// openMessage opens queue/ID; a malformed or missing ID is ErrNotFound.
func (s *Spool) openMessage(id string, flag int) (*os.File, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("spool: %q: %w", id, ErrNotFound)
	}
	f, err := os.OpenFile(s.path(id), flag|unix.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spool: %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", id, err)
	}
	return f, nil
}
