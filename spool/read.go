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
// reads the directory once, so a message without a newer envelope file
// costs no failed lookup, and reads each queue file with plain system
// calls (open, pread, fstat, a lock test, close) instead of an os.File.
func (s *Spool) Scan(fn func(id string, m *Message, err error) error) error {
	return scanWith(s, s.snapshot, fn)
}

// scanWith reads every queued message with read, a few goroutines at a
// time, and hands the results to fn in arrival order (see Scan).
func scanWith[T any](s *Spool, read func(id string, mayHaveEnv bool) (T, error), fn func(id string, m T, err error) error) error {
	names, err := readNames(s.queueDir())
	if err != nil {
		return err
	}
	hasEnv := make(map[string]bool)
	ids := names[:0]
	for _, n := range names {
		switch {
		case ValidID(n):
			ids = append(ids, n)
		case isEnvName(n):
			hasEnv[strings.TrimSuffix(n, envSuffix)] = true
		}
	}
	sort.Strings(ids)
	// Messages are read in chunks by a few goroutines (most of the time
	// goes to system calls) and handed to fn in order; the next chunk is
	// read while fn works through one, so the readers never wait for fn
	// nor fn for a chunk's slowest reader (on a busy machine, one
	// descheduled thread). Two chunks bound the memory to a few hundred
	// envelopes whatever the queue's length.
	const chunk = 512
	workers := min(runtime.GOMAXPROCS(0)*2, 8)
	type result struct {
		m   T
		err error
	}
	type batch struct {
		ids  []string
		res  []result
		done chan struct{}
	}
	start := func(part []string) *batch {
		b := &batch{ids: part, res: make([]result, len(part)), done: make(chan struct{})}
		go func() {
			defer close(b.done)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := w; i < len(part); i += workers {
						m, err := read(part[i], hasEnv[part[i]])
						b.res[i] = result{m, err}
					}
				})
			}
			wg.Wait()
		}()
		return b
	}
	var cur *batch
	if len(ids) > 0 {
		cur = start(ids[:min(chunk, len(ids))])
	}
	for off := 0; cur != nil; off += chunk {
		var next *batch
		if rest := ids[min(off+chunk, len(ids)):]; len(rest) > 0 {
			next = start(rest[:min(chunk, len(rest))])
		}
		<-cur.done
		for i, id := range cur.ids {
			if errors.Is(cur.res[i].err, ErrNotFound) {
				continue
			}
			if err := fn(id, cur.res[i].m, cur.res[i].err); err != nil {
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
