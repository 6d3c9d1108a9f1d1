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
// difference between a second and several.
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
	// Smarthost is the smarthost the submitter named (sendmail -a;
	// Envelope.Smarthost): the message's only route.
	Smarthost string `json:"smarthost"`
	// FileSize is the size of the queue file: the message and its
	// arrival envelope (a few hundred bytes more than Message.Size).
	FileSize int64 `json:"-"`
	// QueueFileSize is FileSize as the envelope file recorded it
	// (envelopeFile; 0: not recorded).
	QueueFileSize int64 `json:"queue_file_size"`
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
// needed. The summary comes from the envelope index where it has the
// message's current envelope (see "The envelope index"); otherwise files
// are opened relative to the queue directory (one path
// component to look up, not five), and a message with an envelope file
// costs a stat of its queue file, which is not read: a queue file
// damaged after its envelope file was written is counted here, and
// moved aside by the next runner that locks it.
func (s *Spool) ScanSummaries(fn func(id string, m *Summary, err error) error) error {
	dir, err := unix.Open(s.queueDir(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("spool: %w", &os.PathError{Op: "open", Path: s.queueDir(), Err: err})
	}
	defer unix.Close(dir)
	return scanWith(s, func(e *dirEntry, r *idxRec) (*Summary, error) {
		id := e.ID()
		if r != nil {
			if m, err := decodeOne(id, r.js, r.fileSize); err == nil {
				return m, nil
			}
		}
		return summary(dir, id, e.envIno != 0)
	}, fn)
}

// openAt opens name in the directory dir for reading, never through a
// symbolic link.
func openAt(dir int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// summary reads message id's Summary in the queue directory dir. With an
// envelope file (hasEnv): the envelope file read whole, and the queue
// file's size from it (envelopeFile.QueueFileSize; an fstatat of the queue
// file for envelope files that do not record it). Without: the queue file
// opened, one pread of its head (more only for an envelope over 4 KiB;
// its size is what the read returned unless that filled the buffer: a
// queue file never grows after its commit), closed. The queue file of an
// ID comes from the directory listing: one deleted since (delivered
// meanwhile) is counted once more, as a message being delivered is.
func summary(dir int, id string, hasEnv bool) (*Summary, error) {
	notFound := func(err error) error {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("spool: %s: %w", id, ErrNotFound)
		}
		return fmt.Errorf("spool: %s: %w", id, &os.PathError{Op: "read", Path: id, Err: err})
	}
	if hasEnv {
		bp := headBufs.Get().(*[4096]byte)
		defer headBufs.Put(bp)
		b, err := readAt(dir, id+envSuffix, bp[:0])
		if errors.Is(err, unix.ENOENT) {
			hasEnv = false // delivered or removed meanwhile: read the queue file
		} else if err != nil {
			return nil, fmt.Errorf("spool: %s: %w", id, &os.PathError{Op: "read", Path: id + envSuffix, Err: err})
		} else {
			line, rest, ok := bytes.Cut(b, []byte("\n"))
			switch {
			case len(b) > 0 && b[0] == '{':
				rest = b // format 1: the JSON line alone
			case !ok:
				return nil, fmt.Errorf("spool: %s: %w: envelope file without envelope", id, ErrCorrupt)
			default:
				if _, err := parseFormatLine(append(line, '\n')); err != nil {
					return nil, fmt.Errorf("spool: %s: %w", id, err)
				}
			}
			m, err := decodeOne(id, rest, 0)
			if err != nil {
				return nil, err
			}
			if m.FileSize = m.QueueFileSize; m.FileSize > 0 {
				return m, nil
			}
			var st unix.Stat_t
			if err := unix.Fstatat(dir, id, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return nil, notFound(err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG {
				return nil, fmt.Errorf("spool: %s: %w: not a regular file", id, ErrCorrupt)
			}
			m.FileSize = st.Size
			return m, nil
		}
	}
	fd, err := openAt(dir, id)
	if err != nil {
		return nil, notFound(err)
	}
	defer unix.Close(fd)
	bp := headBufs.Get().(*[4096]byte)
	defer headBufs.Put(bp)
	buf := bp[:]
	n, _ := fdReaderAt(fd).ReadAt(buf, 0)
	head := buf[:n]
	line1, rest, ok1 := bytes.Cut(head, []byte("\n"))
	envLine, _, ok2 := bytes.Cut(rest, []byte("\n"))
	if ok1 && ok2 {
		if _, err := parseFormatLine(append(line1, '\n')); err != nil {
			return nil, fmt.Errorf("spool: %s: %w", id, err)
		}
	} else if envLine, _, _, err = scanHead(io.NewSectionReader(fdReaderAt(fd), 0, 1<<62)); err != nil {
		// A long envelope: the general reader.
		return nil, fmt.Errorf("spool: %s: %w", id, err)
	}
	size := int64(n)
	if n == len(buf) {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, fmt.Errorf("spool: stat %s: %w", id, err)
		}
		size = st.Size
	}
	return decodeOne(id, envLine, size)
}

func decodeOne(id string, envLine []byte, size int64) (*Summary, error) {
	m := new(Summary)
	if err := decodeSummary(envLine, m); err != nil {
		return nil, fmt.Errorf("spool: %s: %w: envelope: %v", id, ErrCorrupt, err)
	}
	if m.ID != id || len(m.Recipients) == 0 {
		return nil, fmt.Errorf("spool: %s: %w: envelope without ID or recipients, or of another message", id, ErrCorrupt)
	}
	m.FileSize = size
	return m, nil
}

// readAt reads the file name of the directory dir whole into b (an
// envelope file: one read into the pooled buffer in the common case).
func readAt(dir int, name string, b []byte) ([]byte, error) {
	fd, err := openAt(dir, name)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		b = b[:len(b)+n]
		if n == 0 || len(b) < cap(b) {
			return b, nil
		}
		b = append(b, 0)[:len(b)] // full: grow and read on
	}
}
