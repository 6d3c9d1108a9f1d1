package spool

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

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
	f, err := s.openMessage(id, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env, off, err := s.readEnvelope(id, f)
	if err != nil {
		return nil, fmt.Errorf("spool: %s: %w", id, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spool: stat %s: %w", id, err)
	}
	return &Message{Envelope: *env, Size: fi.Size() - off, Active: isLocked(f)}, nil
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
	id, ok := strings.CutSuffix(name, ".env")
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
