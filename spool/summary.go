package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Summary is what a count of the queue needs of a message (relay queue
// stats, the daemon's metrics): no failures, no replies, no lock test.
// Reading it costs a fraction of a Message: at 100,000 messages the
// difference between a second and three.
type Summary struct {
	ID          string             `json:"id"`
	Sender      string             `json:"sender"`
	Recipients  []SummaryRecipient `json:"recipients"`
	Arrival     time.Time          `json:"arrival"`
	Attempts    int                `json:"attempts"`
	NextAttempt time.Time          `json:"next_attempt"`
	Held        bool               `json:"held"`
	Bounce      bool               `json:"bounce"`
	RateWait    *RateWait          `json:"rate_wait"`
	Size        int64              `json:"-"` // bytes of message content
}

// SummaryRecipient is a recipient's address and status.
type SummaryRecipient struct {
	Address string `json:"address"`
	Status  Status `json:"status"`
}

// headBufs hold the first 4 KiB of a queue file while its Summary is
// decoded (the strings are copied out): 100,000 messages need not
// allocate 400 MB.
var headBufs = sync.Pool{New: func() any { return new([4096]byte) }}

// ScanSummaries is Scan for counting: fn gets each message's Summary, in
// arrival order, or the error for one that cannot be read. The fields
// it reads mean the same in every format version, so no conversion is
// needed.
func (s *Spool) ScanSummaries(fn func(id string, m *Summary, err error) error) error {
	return scanWith(s, s.summary, fn)
}

// summary reads a message's Summary: open, one pread of the head (more
// only for an envelope over 4 KiB), fstat only for a file over 4 KiB,
// close; the envelope file instead of the arrival envelope when there is
// one.
func (s *Spool) summary(id string, mayHaveEnv bool) (*Summary, error) {
	fd, err := openRaw(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spool: %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", id, err)
	}
	defer unix.Close(fd)
	bp := headBufs.Get().(*[4096]byte)
	defer headBufs.Put(bp)
	buf := bp[:]
	n, _ := fdReaderAt(fd).ReadAt(buf, 0)
	head := buf[:n]
	line1, rest, ok1 := bytes.Cut(head, []byte("\n"))
	envLine, _, ok2 := bytes.Cut(rest, []byte("\n"))
	var off int64
	if ok1 && ok2 {
		if _, err := parseFormatLine(append(line1, '\n')); err != nil {
			return nil, fmt.Errorf("spool: %s: %w", id, err)
		}
		off = int64(len(line1) + len(envLine) + 2)
	} else {
		// A long envelope: the general reader.
		if envLine, _, off, err = scanHead(io.NewSectionReader(fdReaderAt(fd), 0, 1<<62)); err != nil {
			return nil, fmt.Errorf("spool: %s: %w", id, err)
		}
	}
	// A queue file never grows after its commit: a read that did not
	// fill the buffer read all of it, and no fstat is needed for its size.
	size := int64(n)
	if n == len(buf) {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, fmt.Errorf("spool: stat %s: %w", id, err)
		}
		size = st.Size
	}
	if mayHaveEnv {
		b, err := readFileRaw(s.envPath(id))
		switch {
		case err == nil:
			line, rest, ok := bytes.Cut(b, []byte("\n"))
			if len(b) > 0 && b[0] == '{' {
				envLine = b // format 1: the JSON line alone
			} else if !ok {
				return nil, fmt.Errorf("spool: %s: %w: envelope file without envelope", id, ErrCorrupt)
			} else if _, err := parseFormatLine(append(line, '\n')); err != nil {
				return nil, fmt.Errorf("spool: %s: %w", id, err)
			} else {
				envLine = rest
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("spool: %s: %w", id, err)
		}
	}
	m := new(Summary)
	if err := decodeSummary(envLine, m); err != nil {
		return nil, fmt.Errorf("spool: %s: %w: envelope: %v", id, ErrCorrupt, err)
	}
	if m.ID != id || len(m.Recipients) == 0 {
		return nil, fmt.Errorf("spool: %s: %w: envelope without ID or recipients, or of another message", id, ErrCorrupt)
	}
	m.Size = size - off
	return m, nil
}
