package spool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The maildrop of a system install
//
// Local users cannot write the queue: it belongs to the relay user. They
// drop their messages into maildrop/, owned relay:relay with mode 3733:
// anyone may create files there (write and search for others), nobody but
// relay may list it (no read for others), the sticky bit stops users
// deleting each other's files, and the setgid bit gives every file the
// group relay, so a drop created 0640 is readable by relay and nobody else.
//
// A submitter writes maildrop/.ID (a dot name: being written), fsyncs it
// and renames it to maildrop/ID. It cannot fsync the directory (that needs
// read access to it), so until the runner fsyncs maildrop/ at pickup a
// power failure can lose the new name: the window is from sendmail's exit
// to the next pickup (at once with the daemon, the next run with cron). A
// crash of the process alone never loses a message that was renamed.
//
// The runner trusts nothing in a drop but its content: OpenDrop takes only
// regular files with one link (no symlink, FIFO, device or hard link to
// someone else's file), no larger than the size limit, and the submitter's
// uid comes from fstat, never from the envelope inside.

// Errors of OpenDrop.
var (
	// ErrHostile is a maildrop entry that is no message: not a regular
	// file, or a hard link. It is unlinked (the name only; the file it may
	// point to is untouched).
	ErrHostile = errors.New("not a regular file with a single link")
	// ErrTooLarge is a drop over the size limit; it is moved to corrupt/.
	ErrTooLarge = errors.New("larger than max_message_size")
)

// HasMaildrop reports whether the spool has a maildrop (a system install).
func (s *Spool) HasMaildrop() bool {
	fi, err := os.Stat(s.maildropDir())
	return err == nil && fi.IsDir()
}

// NewDrop starts a message in the maildrop, for a submitter who cannot
// write the queue. Its Commit makes it durable and visible to the pickup
// (the maildrop directory is fsynced only by a submitter who can open it).
func (s *Spool) NewDrop() (*Draft, error) {
	id := NewID(time.Now())
	tmp := filepath.Join(s.maildropDir(), "."+id)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", tmp, err)
	}
	// 0640 whatever the user's umask: the relay group must read it.
	if err := f.Chmod(0o640); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("spool: chmod %s: %w", tmp, err)
	}
	d := &Draft{ID: id, s: s, f: f, w: newDraftWriter(f), tmp: tmp, final: filepath.Join(s.maildropDir(), id)}
	// A submitter who may read the maildrop (root: relay import --queue,
	// which removes the old queue's file after Commit) fsyncs it too, so
	// that the new name survives a power failure.
	if dir, err := os.Open(s.maildropDir()); err == nil {
		dir.Close()
		d.syncDir = s.maildropDir()
	}
	return d, nil
}

// Drop is a maildrop file opened for pickup.
type Drop struct {
	Name string
	UID  int // owner of the file: the submitter
	Env  *Envelope
	Size int64 // bytes of message content
	// Origin is the drop's identity, for the envelope of the message made
	// from it (Envelope.Drop; see QueuedDrops).
	Origin DropOrigin
	f      *os.File
	off    int64
}

// Content returns a reader of the dropped message.
func (d *Drop) Content() io.Reader { return io.NewSectionReader(d.f, d.off, d.Size) }

// Close closes the drop file.
func (d *Drop) Close() error { return d.f.Close() }

// Drops lists the complete drops in arrival order, leaving out those
// the pickup of this process could not deal with a moment ago (see
// DeferDrop): one bad entry never makes a runner pass again and again.
// Drafts still being written (dot names) older than DropDraftMaxAge are
// removed: their writer died (or never meant to finish); one that is no
// file is dealt with as a drop would be.
func (s *Spool) Drops(now time.Time) ([]string, error) {
	names, err := readNames(s.maildropDir())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if !strings.HasPrefix(n, ".") {
			if !s.dropDeferred(n, now) {
				out = append(out, n)
			}
			continue
		}
		p := filepath.Join(s.maildropDir(), n)
		if fi, err := os.Lstat(p); err == nil && now.Sub(fi.ModTime()) > DropDraftMaxAge {
			if fi.IsDir() {
				s.dirAside(n)
			} else {
				os.Remove(p)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// DropDraftMaxAge is how long a submitter may take to write a drop.
const DropDraftMaxAge = 24 * time.Hour

// OpenDrop opens a drop for pickup with every check a hostile submitter
// calls for. A drop that is no message is dealt with here: unlinked
// (ErrHostile: a symlink, FIFO, socket, device or hard link) or moved to
// corrupt/ (ErrHostile for a directory, ErrTooLarge, ErrCorrupt, one
// relay may not read); the error says which. An error wrapping
// fs.ErrNotExist says the drop is gone (its owner removed it).
func (s *Spool) OpenDrop(name string, maxSize int64) (*Drop, error) {
	p := filepath.Join(s.maildropDir(), name)
	if name == "" || strings.ContainsRune(name, '/') || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("spool: maildrop %q: bad name", name)
	}
	// The type first, without opening: a socket cannot be opened (ENXIO),
	// a directory can but is no message.
	var lst unix.Stat_t
	if err := unix.Lstat(p, &lst); err != nil {
		return nil, fmt.Errorf("spool: maildrop %s: %w", name, &os.PathError{Op: "lstat", Path: p, Err: err})
	}
	if kind := fileKind(lst.Mode); kind == "a directory" {
		return nil, s.dirAside(name)
	} else if kind != "" {
		return nil, s.discardDrop(p, fmt.Errorf("%w (%s)", ErrHostile, kind))
	}
	// O_NOFOLLOW refuses a symlink; O_NONBLOCK keeps a FIFO from hanging
	// the open: either may replace the file since the Lstat.
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, s.discardDrop(p, fmt.Errorf("%w (a symlink)", ErrHostile))
	case errors.Is(err, unix.ENXIO):
		return nil, s.discardDrop(p, fmt.Errorf("%w (a socket)", ErrHostile))
	case errors.Is(err, unix.EACCES):
		// Written by hand with a mode that keeps relay out.
		return nil, s.dropAside(name, fmt.Errorf("%w: unreadable (%v)", ErrCorrupt, err))
	case err != nil:
		return nil, fmt.Errorf("spool: open %s: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: stat %s: %w", p, err)
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		f.Close()
		return nil, s.dirAside(name)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		f.Close()
		return nil, s.discardDrop(p, fmt.Errorf("%w (mode %o)", ErrHostile, st.Mode))
	case st.Nlink != 1:
		f.Close()
		return nil, s.discardDrop(p, fmt.Errorf("%w (%d links)", ErrHostile, st.Nlink))
	case maxSize > 0 && st.Size > maxSize+envelopeSlack:
		f.Close()
		return nil, s.dropAside(name, fmt.Errorf("%w (%d bytes)", ErrTooLarge, st.Size))
	}
	env, off, err := readHead(io.NewSectionReader(f, 0, st.Size))
	if err != nil {
		f.Close()
		if errors.Is(err, ErrCorrupt) {
			return nil, s.dropAside(name, err)
		}
		return nil, fmt.Errorf("spool: maildrop %s: %w", name, err)
	}
	if maxSize > 0 && st.Size-off > maxSize {
		f.Close()
		return nil, s.dropAside(name, fmt.Errorf("%w (%d bytes)", ErrTooLarge, st.Size-off))
	}
	return &Drop{Name: name, UID: int(st.Uid), Env: env, Size: st.Size - off, Origin: originOf(name, &st), f: f, off: off}, nil
}

// fileKind names a file type that is no drop ("" for a regular file).
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return ""
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("a device, mode %o", mode)
}

// envelopeSlack bounds the envelope line of a drop beyond the message.
const envelopeSlack = 1 << 20

// discardDrop unlinks a maildrop name that is no message.
func (s *Spool) discardDrop(p string, why error) error {
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("spool: %s: %w; removing it failed: %v", p, why, err)
	}
	return fmt.Errorf("spool: %s: %w: removed", p, why)
}

// dirAside deals with a directory in the maildrop: removed when empty,
// else moved to corrupt/. A user's directory with something in it and no
// write access for relay can be neither (renaming a directory rewrites its
// ".."): it stays, reported, for root to remove (Drops leaves it out for
// a while: DeferDrop).
func (s *Spool) dirAside(name string) error {
	why := fmt.Errorf("%w (a directory)", ErrHostile)
	p := filepath.Join(s.maildropDir(), name)
	if err := unix.Rmdir(p); err == nil {
		return fmt.Errorf("spool: %s: %w: removed", p, why)
	}
	return s.dropAside(name, why)
}

// dropAside moves a drop that is no message, or an unreadable one, to
// corrupt/ for a human to look at (corruptDropName), never over
// something already there.
func (s *Spool) dropAside(name string, why error) error {
	if err := os.MkdirAll(s.corruptDir(), 0o700); err != nil {
		return fmt.Errorf("spool: maildrop %s: %w; %v", name, why, err)
	}
	src := filepath.Join(s.maildropDir(), name)
	var err error
	for try := 0; try < 100; try++ {
		dst := filepath.Join(s.corruptDir(), corruptDropName(name, try))
		if err = renameNoReplace(src, dst); !errors.Is(err, unix.EEXIST) {
			if err == nil {
				return fmt.Errorf("spool: maildrop %s: %w: moved to %s", name, why, dst)
			}
			break
		}
	}
	return fmt.Errorf("spool: maildrop %s: %w; moving it aside failed: %v", name, why, err)
}

// corruptDropName is the name of a drop moved to corrupt/:
// maildrop-NAME, with ".N" for the Nth of the same name; a name too long
// for that (the file system's 255 bytes) keeps its first 200 bytes and a
// hash of the rest.
func corruptDropName(name string, n int) string {
	out := "maildrop-" + name
	if len(out) > 240 {
		sum := sha256.Sum256([]byte(name))
		out = "maildrop-" + name[:200] + "-" + hex.EncodeToString(sum[:8])
	}
	if n > 0 {
		out += "." + strconv.Itoa(n)
	}
	return out
}

// FinishDrop removes a drop that is now in the queue, and fsyncs the
// maildrop (the fsync the submitter could not make).
func (s *Spool) FinishDrop(d *Drop) error {
	d.Close()
	if err := os.Remove(filepath.Join(s.maildropDir(), d.Name)); err != nil {
		return fmt.Errorf("spool: remove drop %s: %w", d.Name, err)
	}
	return syncDir(s.maildropDir())
}

// Owner returns the uid and gid owning the spool directory.
func (s *Spool) Owner() (uid, gid int, err error) {
	var st unix.Stat_t
	if err := unix.Stat(s.Dir, &st); err != nil {
		return 0, 0, fmt.Errorf("spool: %w", err)
	}
	return int(st.Uid), int(st.Gid), nil
}

// Writable reports whether this process may write the queue itself; a
// submitter who may not uses the maildrop.
func (s *Spool) Writable() bool {
	return unix.Access(s.queueDir(), unix.W_OK|unix.X_OK) == nil &&
		unix.Access(s.tmpDir(), unix.W_OK|unix.X_OK) == nil
}

// RejectDrop moves a drop whose envelope cannot be used to corrupt/.
func (s *Spool) RejectDrop(d *Drop, why error) error {
	d.Close()
	return s.dropAside(d.Name, why)
}

// HasDrop reports whether the maildrop still holds something under name.
func (s *Spool) HasDrop(name string) bool {
	_, err := os.Lstat(filepath.Join(s.maildropDir(), name))
	return err == nil
}
