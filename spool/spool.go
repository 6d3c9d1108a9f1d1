package spool

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Errors returned (wrapped) by the spool.
var (
	ErrNotFound = errors.New("no such message in the queue")
	ErrBusy     = errors.New("message is being delivered")
	ErrCorrupt  = errors.New("corrupt queue file")
	ErrNewer    = errors.New("queue file written by a newer relay")
)

// Spool is an open spool directory.
type Spool struct {
	Dir string
	// FileMode is the permission of queue files: 0600 in a single-user
	// install, 0640 (readable by the relay group) in a system install.
	FileMode os.FileMode

	dropMu   sync.Mutex
	deferred map[string]deferral // drops left alone for a while (DeferDrop)

	rm removals // DeleteSoon's fsyncs
}

// The names inside a spool: this package is the only one that knows them
// (see Layout in the package documentation).
const (
	queueName    = "queue"
	tmpName      = "tmp"
	corruptName  = "corrupt"
	maildropName = "maildrop"
	envSuffix    = ".env"
)

func (s *Spool) queueDir() string         { return filepath.Join(s.Dir, queueName) }
func (s *Spool) tmpDir() string           { return filepath.Join(s.Dir, tmpName) }
func (s *Spool) corruptDir() string       { return filepath.Join(s.Dir, corruptName) }
func (s *Spool) maildropDir() string      { return filepath.Join(s.Dir, maildropName) }
func (s *Spool) path(id string) string    { return filepath.Join(s.Dir, queueName, id) }
func (s *Spool) envPath(id string) string { return filepath.Join(s.Dir, queueName, id+envSuffix) }

// Open returns the spool in dir, which must exist with its subdirectories.
// It returns an error wrapping fs.ErrNotExist when it does not. A spool
// with a maildrop is a system install: its queue files are made readable
// by the spool's group (mailq for the relay group).
func Open(dir string) (*Spool, error) {
	s := &Spool{Dir: dir, FileMode: 0o600}
	for _, d := range []string{s.queueDir(), s.tmpDir()} {
		fi, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("spool: %s is not a directory", d)
		}
	}
	if s.HasMaildrop() {
		s.FileMode = 0o640
	}
	return s, nil
}

// Create makes the spool directory and its subdirectories where they are
// missing, accessible to the current user only (a single-user install), and
// opens it.
func Create(dir string) (*Spool, error) {
	s := &Spool{Dir: dir, FileMode: 0o600}
	for _, d := range []string{s.Dir, s.queueDir(), s.tmpDir(), s.corruptDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	return s, nil
}

// FreeSpace returns the bytes available to unprivileged users on the spool's
// file system.
func (s *Spool) FreeSpace() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.Dir, &st); err != nil {
		return 0, fmt.Errorf("spool: statfs %s: %w", s.Dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Draft is a message being written. It is not in the queue until Commit
// returns nil; Abort (or a crash) leaves nothing behind in the queue.
type Draft struct {
	ID    string
	s     *Spool
	f     *os.File
	w     *bufio.Writer
	tmp   string
	final string // where Commit puts it
	// syncDir is the directory fsynced after the rename; "" where the
	// writer cannot open it (the maildrop: see NewDrop).
	syncDir string
	env     bool
	// head is the envelope as written (format line and JSON line), n the
	// bytes of content after it: the index record of the queue file.
	head []byte
	n    int64
}

// NewDraft reserves a queue ID and creates the draft's temporary file,
// locked so that Clean can tell it from one left by a crash.
func (s *Spool) NewDraft() (*Draft, error) {
	for try := 0; ; try++ {
		id := NewID(time.Now())
		tmp := filepath.Join(s.tmpDir(), id)
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, s.FileMode)
		if errors.Is(err, os.ErrExist) && try < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("spool: create %s: %w", tmp, err)
		}
		// The caller's umask must not take the group's read access (mailq).
		if err := f.Chmod(s.FileMode); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("spool: chmod %s: %w", tmp, err)
		}
		if err := lockFile(f, false); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("spool: lock %s: %w", tmp, err)
		}
		return &Draft{ID: id, s: s, f: f, w: newDraftWriter(f), tmp: tmp,
			final: s.path(id), syncDir: s.queueDir()}, nil
	}
}

// WriteEnvelope writes the arrival envelope; it must come before any Write.
func (d *Draft) WriteEnvelope(env *Envelope) error {
	if d.env {
		return errors.New("spool: envelope written twice")
	}
	env.ID = d.ID
	b, err := encodeEnvelope(env)
	if err != nil {
		return err
	}
	if _, err := d.w.Write(b); err != nil {
		return fmt.Errorf("spool: write %s: %w", d.ID, err)
	}
	d.env, d.head = true, b
	return nil
}

// Write appends message content.
func (d *Draft) Write(p []byte) (int, error) {
	if !d.env {
		return 0, errors.New("spool: content written before the envelope")
	}
	n, err := d.w.Write(p)
	d.n += int64(n)
	if err != nil {
		err = fmt.Errorf("spool: write %s: %w", d.ID, err)
	}
	return n, err
}

// Commit makes the message durable and puts it in the queue. After Commit
// returns nil the message survives a crash; after an error nothing of it is
// in the queue.
func (d *Draft) Commit() error {
	if !d.env {
		d.Abort()
		return errors.New("spool: commit without envelope")
	}
	err := d.w.Flush()
	if err == nil {
		err = d.f.Sync()
	}
	if err == nil && d.syncDir == d.s.queueDir() {
		// The index learns of the message before it exists (see "The
		// envelope index"); a record of a rename that never happens
		// names an inode the queue never lists.
		if ino, ierr := fileIno(d.f); ierr == nil {
			js := d.head[len(formatLine) : len(d.head)-1]
			d.s.appendIndex(indexRecord(recQueue, FormatVersion, d.ID, ino, int64(len(d.head))+d.n, d.n, js))
		}
	}
	if err == nil {
		err = renameNoReplace(d.tmp, d.final)
	}
	if err == nil {
		// The rename happened: the message is in the queue even if the
		// directory fsync fails, so it must not be removed as a draft.
		d.tmp = ""
		if d.syncDir != "" {
			err = syncDir(d.syncDir)
		}
	}
	d.Abort()
	if err != nil {
		return fmt.Errorf("spool: commit %s: %w", d.ID, err)
	}
	return nil
}

// Abort discards the draft. It is safe to call after Commit.
func (d *Draft) Abort() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
	if d.tmp != "" {
		os.Remove(d.tmp)
		d.tmp = ""
	}
}

// renameNoReplace renames old to new, failing if new exists.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		// File systems without RENAME_NOREPLACE: link refuses an existing
		// name just the same.
		if err = os.Link(old, new); err == nil {
			os.Remove(old)
		}
		return err
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// writeFileDurably writes data to a temporary file in tmp/, fsyncs it and
// renames it to path, then fsyncs path's directory.
func (s *Spool) writeFileDurably(path string, data []byte) error {
	tmp, _, err := s.writeTempFile(filepath.Base(path), data, true)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTempFile writes data to a new file in tmp/ named after base, with
// the spool's file mode, fsynced when sync is set, and returns its path
// and inode; on error nothing is left behind.
func (s *Spool) writeTempFile(base string, data []byte, sync bool) (string, uint64, error) {
	f, err := os.CreateTemp(s.tmpDir(), base+".*")
	if err != nil {
		return "", 0, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(s.FileMode)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	var ino uint64
	if err == nil {
		ino, err = fileIno(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), ino, nil
}

func newDraftWriter(f *os.File) *bufio.Writer { return bufio.NewWriterSize(f, 64<<10) }

// CanRecord checks that the spool takes a write (an envelope's worth,
// fsynced) again, after an update failed (a full disk).
func (s *Spool) CanRecord() error {
	tmp, _, err := s.writeTempFile("probe", make([]byte, 8<<10), true)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	os.Remove(tmp)
	return nil
}
