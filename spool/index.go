package spool

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// The envelope index (see "The envelope index" in the package
// documentation): a cache of every queued message's current envelope in
// one file, so that a listing of 100,000 messages reads one file instead
// of opening 100,000. Nothing depends on it for correctness: a record is
// trusted only when the inode it names is the one the directory lists
// for that message's current envelope now.

const indexName = "index"

func (s *Spool) indexPath() string { return filepath.Join(s.Dir, indexName) }

// Record kinds: the arrival envelope of a queue file, or an envelope
// file's envelope.
const (
	recQueue = 'q'
	recEnv   = 'e'
)

// indexRecord is one line of the index:
//
//	KIND VERSION ID INODE FILESIZE CONTENTSIZE CRC32 JSON\n
//
// KIND q or e; VERSION the format version of JSON; INODE the inode of the
// file the record describes (queue/ID for q, queue/ID.env for e);
// FILESIZE the queue file's size; CONTENTSIZE the message's bytes; CRC32
// (hex, IEEE) of JSON, so that a torn line is never taken for a record.
func indexRecord(kind byte, version int, id string, ino uint64, fileSize, contentSize int64, js []byte) []byte {
	b := make([]byte, 0, len(js)+80)
	b = append(b, kind, ' ')
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, ' ')
	b = append(b, id...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, ino, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, fileSize, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, contentSize, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(crc32.ChecksumIEEE(js)), 16)
	b = append(b, ' ')
	b = append(b, js...)
	return append(b, '\n')
}

// idxRec is a parsed record; js points into the index's buffer.
type idxRec struct {
	kind        byte
	version     int
	id          []byte
	ino         uint64
	fileSize    int64
	contentSize int64
	js          []byte
	line        []byte // the whole record, without its newline
}

// cutRecord splits the first len(f) space-separated fields of a record
// line into f (len(f) >= 3) and returns the rest; ok is false unless all
// are there and the kind (f[0]) and the ID (f[2]) have a record's shape.
func cutRecord(line []byte, f [][]byte) (rest []byte, ok bool) {
	rest = line
	for i := range f {
		var cut bool
		if f[i], rest, cut = bytes.Cut(rest, []byte(" ")); !cut {
			return nil, false
		}
	}
	return rest, len(f[0]) == 1 && (f[0][0] == recQueue || f[0][0] == recEnv) && len(f[2]) == IDLen
}

// parseRecord parses one line (without its newline); ok is false for
// anything that is not a whole, intact record.
func parseRecord(line []byte) (r idxRec, ok bool) {
	var f [7][]byte
	rest, ok := cutRecord(line, f[:])
	if !ok {
		return r, false
	}
	r.kind, r.js, r.line = f[0][0], rest, line
	var err error
	var crc uint64
	if r.version, err = strconv.Atoi(string(f[1])); err != nil || r.version < 1 || r.version > FormatVersion {
		return r, false
	}
	if r.ino, err = strconv.ParseUint(string(f[3]), 10, 64); err != nil {
		return r, false
	}
	if r.fileSize, err = strconv.ParseInt(string(f[4]), 10, 64); err != nil {
		return r, false
	}
	if r.contentSize, err = strconv.ParseInt(string(f[5]), 10, 64); err != nil {
		return r, false
	}
	if crc, err = strconv.ParseUint(string(f[6]), 16, 32); err != nil || uint32(crc) != crc32.ChecksumIEEE(r.js) {
		return r, false
	}
	r.id = f[2]
	return r, validID(r.id)
}

// parseRecordHead reads what finding a message's current record needs
// (kind, ID, inode) and no more: the records a scan uses are parsed
// whole, checksum and all, when they are read again (records). A
// damaged last record of a message hides an intact earlier one: the
// message is then read from its files.
func parseRecordHead(line []byte) (r idxRec, ok bool) {
	var f [4][]byte
	if _, ok := cutRecord(line, f[:]); !ok {
		return r, false
	}
	var ino uint64
	for _, c := range f[3] {
		if c < '0' || c > '9' || ino > (math.MaxUint64-9)/10 {
			return r, false
		}
		ino = ino*10 + uint64(c-'0')
	}
	r.kind, r.id, r.ino = f[0][0], f[2], ino
	return r, len(f[3]) > 0
}

// appendIndex adds records to the index, creating it when missing. It
// never fails the caller: a record that does not reach the index costs a
// reader one file read, and the next rebuild writes it.
//
// The writer holds a shared lock on the index while it writes, and
// writes to the index it locked only if that is still the index: a
// rebuild takes the exclusive lock before it copies what was appended
// meanwhile and puts its own file in place, so no record is lost
// between the two files.
func (s *Spool) appendIndex(rec []byte) {
	for try := 0; try < 3; try++ {
		fd, err := unix.Open(s.indexPath(), unix.O_RDWR|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(s.FileMode.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		if fdLockRange(fd, unix.F_RDLCK, 0, calibration) != nil {
			unix.Close(fd)
			return
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Nlink == 0 {
			unix.Close(fd) // replaced by a rebuild meanwhile: the new one
			continue
		}
		// One write: O_APPEND puts it whole at the end, never between
		// another writer's bytes.
		_, _ = unix.Write(fd, rec)
		unix.Close(fd)
		return
	}
}

// fileIno is the inode number of an open file.
func fileIno(f *os.File) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// dirEntry is a message as the queue directory lists it: its ID, the
// inode of queue/ID and of queue/ID.env (0: none). The ID is held in the
// entry itself: 100,000 of them take 3.2 MB and no allocation each.
type dirEntry struct {
	id     [IDLen]byte
	ino    uint64
	envIno uint64
}

func (e *dirEntry) ID() string { return string(e.id[:]) }

// queueListing is the queue directory read once: its messages in
// arrival (ID) order, envelope files without a queue file (orphans, left
// by a crash during a delete) and names that belong to neither.
type queueListing struct {
	entries  []dirEntry
	orphans  []string
	strayers []string
}

// listQueue reads the queue directory with the inode of every name
// (getdents64). It reads the directory three times, which costs less
// than the memory of holding every name: once to count the queue files,
// once to fill exactly as many entries, and, with those sorted, once to
// match each envelope file to its entry in place. A queue file that
// appears between the readings is missed, as it would be a moment
// earlier; an envelope file whose queue file is not listed is an orphan
// only if that queue file does not exist now.
func (s *Spool) listQueue() (*queueListing, error) {
	fd, err := unix.Open(s.queueDir(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", &os.PathError{Op: "open", Path: s.queueDir(), Err: err})
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	// each calls fn with every name of the directory and its inode.
	each := func(fn func(name []byte, ino uint64)) error {
		if _, err := unix.Seek(fd, 0, 0); err != nil {
			return fmt.Errorf("spool: read %s: %w", s.queueDir(), err)
		}
		for {
			n, err := unix.Getdents(fd, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("spool: read %s: %w", s.queueDir(), err)
			}
			if n <= 0 {
				return nil
			}
			for b := buf[:n]; len(b) >= 19; {
				// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
				reclen := int(b[16]) | int(b[17])<<8
				if reclen < 19 || reclen > len(b) {
					return fmt.Errorf("spool: read %s: malformed directory entry", s.queueDir())
				}
				nm := b[19:reclen]
				if i := bytes.IndexByte(nm, 0); i >= 0 {
					nm = nm[:i]
				}
				fn(nm, direntIno(b))
				b = b[reclen:]
			}
		}
	}
	isEnv := func(nm []byte) bool {
		return len(nm) == IDLen+len(envSuffix) && validID(nm[:IDLen]) && string(nm[IDLen:]) == envSuffix
	}
	count := 0
	if err := each(func(nm []byte, _ uint64) {
		if len(nm) == IDLen && validID(nm) {
			count++
		}
	}); err != nil {
		return nil, err
	}
	ql := &queueListing{entries: make([]dirEntry, 0, count)}
	if err := each(func(nm []byte, ino uint64) {
		switch {
		case len(nm) == IDLen && validID(nm):
			e := dirEntry{ino: ino}
			copy(e.id[:], nm)
			ql.entries = append(ql.entries, e)
		case isEnv(nm), string(nm) == ".", string(nm) == "..":
		default:
			ql.strayers = append(ql.strayers, string(nm))
		}
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(ql.entries, func(a, b dirEntry) int { return bytes.Compare(a.id[:], b.id[:]) })
	if err := each(func(nm []byte, ino uint64) {
		if !isEnv(nm) {
			return
		}
		if i := ql.find(nm[:IDLen]); i >= 0 {
			ql.entries[i].envIno = ino
			return
		}
		var st unix.Stat_t
		if unix.Fstatat(fd, string(nm[:IDLen]), &st, unix.AT_SYMLINK_NOFOLLOW) == unix.ENOENT {
			ql.orphans = append(ql.orphans, string(nm[:IDLen]))
		}
	}); err != nil {
		return nil, err
	}
	return ql, nil
}

// find returns the position of id's entry, or -1.
func (ql *queueListing) find(id []byte) int {
	i, ok := slices.BinarySearchFunc(ql.entries, id, func(e dirEntry, id []byte) int { return bytes.Compare(e.id[:], id) })
	if !ok {
		return -1
	}
	return i
}

// current reports whether r describes e's current envelope: the envelope
// file when e has one, else the queue file's arrival envelope.
func (e *dirEntry) current(r *idxRec) bool {
	if e.envIno != 0 {
		return r.kind == recEnv && r.ino == e.envIno
	}
	return r.kind == recQueue && r.ino == e.ino
}

// index is where in the index file each listed message's current
// envelope is: the last record that describes it. It is found in one
// pass over the file with a small buffer, and the records are read
// again chunk by chunk as a scan needs them: the memory stays a few
// bytes per message whatever the size of the file (the daemon keeps
// under 20 MB with 100,000 messages queued).
type index struct {
	fd  int      // -1: no index
	off []uint32 // per entry: the offset of its record (4 GB: plenty)
	n   []uint16 // per entry: the record's length, 0: none (64 KB: a few hundred recipients; more are read from the file)
	has int      // entries with a record
	end int64    // the bytes read
}

// openIndex finds the current record of every entry of ql.
func (s *Spool) openIndex(ql *queueListing) *index {
	fd, err := unix.Open(s.indexPath(), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &index{fd: -1}
	}
	return indexOf(fd, ql)
}

// indexOf reads the index open as fd (which it takes over: close).
func indexOf(fd int, ql *queueListing) *index {
	ix := &index{fd: fd}
	ix.off = make([]uint32, len(ql.entries))
	ix.n = make([]uint16, len(ql.entries))
	br := bufio.NewReaderSize(io.NewSectionReader(fdReaderAt(fd), 0, 1<<62), 128<<10)
	var pos int64
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A record longer than the buffer (an envelope of
			// thousands of recipients): whole, then parsed.
			rest, err2 := br.ReadBytes('\n')
			line, err = append(slices.Clip(line), rest...), err2
		}
		if err != nil {
			break // the end, or a torn last line
		}
		ix.end += int64(len(line))
		start := pos
		pos += int64(len(line))
		r, ok := parseRecordHead(line[:len(line)-1])
		if !ok {
			continue
		}
		if start+int64(len(line)) > math.MaxUint32 {
			break // the rest is read from the files
		}
		if len(line) > math.MaxUint16 {
			continue
		}
		if i := ql.find(r.id); i >= 0 && ql.entries[i].current(&r) {
			if ix.n[i] == 0 {
				ix.has++
			}
			ix.off[i], ix.n[i] = uint32(start), uint16(len(line))
		}
	}
	return ix
}

func (ix *index) close() {
	if ix.fd >= 0 {
		unix.Close(ix.fd)
		ix.fd = -1
	}
}

// records reads the records of entries [lo, hi) into recs (kind 0: no
// record, or one that fails its checksum now), with one pread per run
// of nearby records.
func (ix *index) records(entries []dirEntry, lo, hi int, recs []idxRec) {
	clear(recs)
	if ix.fd < 0 {
		return
	}
	type want struct {
		i   int
		off int64
		n   int32
	}
	var ws []want
	for i := lo; i < hi; i++ {
		if ix.n[i] > 0 {
			ws = append(ws, want{i - lo, int64(ix.off[i]), int32(ix.n[i])})
		}
	}
	slices.SortFunc(ws, func(a, b want) int { return cmp.Compare(a.off, b.off) })
	const gap = 16 << 10 // read over gaps smaller than this
	for k := 0; k < len(ws); {
		start, end := ws[k].off, ws[k].off+int64(ws[k].n)
		j := k + 1
		for j < len(ws) && ws[j].off-end < gap && ws[j].off+int64(ws[j].n)-start < 256<<10 {
			end = max(end, ws[j].off+int64(ws[j].n))
			j++
		}
		buf := make([]byte, end-start)
		if n, err := fdReaderAt(ix.fd).ReadAt(buf, start); err == nil && n == len(buf) {
			for _, w := range ws[k:j] {
				line := buf[w.off-start : w.off-start+int64(w.n)-1]
				if r, ok := parseRecord(line); ok && bytes.Equal(r.id, entries[lo+w.i].id[:]) && entries[lo+w.i].current(&r) {
					recs[w.i] = r
				}
			}
		}
		k = j
	}
}

// calibration is where the lock that calibrates lockedInodes lies in the
// index file: far beyond its end, where no writer's lock reaches.
const calibration = 1 << 62

// lockedInodes returns the inodes of the queue's files that an open file
// description holds a lock on, from one read of /proc/locks instead of
// a lock test per message; nil when that cannot be relied on (no
// /proc/locks, no index to calibrate with). To learn how /proc/locks
// names this file system, it takes a read lock of its own on the index,
// beyond its end (no writer locks there), and looks for it: found under
// the inode the directory lists for the index, the device it shows is
// the queue's (tmp/ and queue/ share one file system: the commit is a
// rename), and the inodes the listing shows are the ones the kernel
// locks.
func (s *Spool) lockedInodes() map[uint64]bool {
	fd, err := unix.Open(s.indexPath(), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var ist, qst unix.Stat_t
	if unix.Fstat(fd, &ist) != nil || unix.Stat(s.queueDir(), &qst) != nil || ist.Dev != qst.Dev {
		return nil
	}
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: calibration, Len: 1}
	if unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk) != nil {
		return nil
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil
	}
	ino, ok := dirIno(s.Dir, indexName)
	if !ok || ino != ist.Ino {
		return nil
	}
	type lock struct {
		dev string
		ino uint64
	}
	var locks []lock
	dev := ""
	for _, line := range bytes.Split(b, []byte("\n")) {
		// "1: OFDLCK  ADVISORY  READ -1 fd:01:1234 4611686018427387904 4611686018427387904"
		f := bytes.Fields(line)
		if len(f) < 8 || string(f[1]) == "->" {
			continue
		}
		i := bytes.LastIndexByte(f[5], ':')
		if i < 0 {
			continue
		}
		n, err := strconv.ParseUint(string(f[5][i+1:]), 10, 64)
		if err != nil {
			continue
		}
		l := lock{dev: string(f[5][:i]), ino: n}
		if string(f[1]) == "OFDLCK" && string(f[3]) == "READ" && string(f[6]) == strconv.FormatInt(calibration, 10) && n == ist.Ino {
			dev = l.dev
		}
		locks = append(locks, l)
	}
	if dev == "" {
		return nil
	}
	out := make(map[uint64]bool)
	for _, l := range locks {
		if l.dev == dev {
			out[l.ino] = true
		}
	}
	return out
}

// dirIno returns the inode the directory dir lists for name.
func dirIno(dir, name string) (uint64, bool) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	buf := make([]byte, 8<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil || n <= 0 {
			return 0, false
		}
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				return 0, false
			}
			nm := b[19:reclen]
			if i := bytes.IndexByte(nm, 0); i >= 0 {
				nm = nm[:i]
			}
			if string(nm) == name {
				return direntIno(b), true
			}
			b = b[reclen:]
		}
	}
}

// direntIno is the inode of a struct linux_dirent64.
func direntIno(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// Lock ranges on the index file: writers share [0, calibration) while
// they append; mailq's calibration lock lies at calibration; a rebuild
// holds calibration+1 for its whole run (one rebuild at a time) and
// takes [0, calibration) exclusively at its end.
const rebuildLock = calibration + 1

// indexHeader starts a rebuilt index: the bytes of records it was built
// with. A reader skips it (it is no record).
const indexHeader = "relay-index 1 "

// maybeRebuildIndex rebuilds the index when there is none (a spool of an
// older relay, or the first run) while messages are queued, or when it
// has grown to over twice what it held after its last rebuild (records
// of messages delivered since, or of envelopes replaced). Errors only
// leave the index as it was: it is a cache.
func (s *Spool) maybeRebuildIndex(ql *queueListing) {
	var st unix.Stat_t
	err := unix.Stat(s.indexPath(), &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		if len(ql.entries) == 0 {
			return
		}
	case err != nil:
		return
	default:
		live := int64(0)
		if b, err := readHeadBytes(s.indexPath(), 64); err == nil {
			if rest, ok := bytes.CutPrefix(b, []byte(indexHeader)); ok {
				if v, _, ok := bytes.Cut(rest, []byte("\n")); ok {
					live, _ = strconv.ParseInt(string(v), 10, 64)
				}
			}
		}
		if st.Size <= 2*live+1<<20 {
			return
		}
	}
	_ = s.rebuildIndex(ql)
}

// readHeadBytes reads up to n bytes from the start of path.
func readHeadBytes(path string, n int) ([]byte, error) {
	fd, err := openRaw(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	b := make([]byte, n)
	k, err := unix.Pread(fd, b, 0)
	if err != nil {
		return nil, err
	}
	return b[:k], nil
}

// rebuildIndex writes the index afresh, in arrival order: the current
// record of every listed message, copied from the old index where it has
// one, else made from the message's files (which is how the spool of an
// older relay gets its index). What writers append meanwhile is copied
// at the end under the exclusive lock, before the new file is renamed
// into place.
func (s *Spool) rebuildIndex(ql *queueListing) error {
	fd, err := unix.Open(s.indexPath(), unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(s.FileMode.Perm()))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	mu := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: rebuildLock, Len: 1}
	if unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &mu) != nil {
		return nil // another rebuild is at it
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Nlink == 0 {
		return nil // replaced by a rebuild that just ended
	}
	ix := indexOf(fd, ql)
	f, err := os.CreateTemp(s.tmpDir(), indexName+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		if tmp != "" {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(s.FileMode); err != nil {
		return err
	}
	// The header's figure is written last, over zeros of fixed width:
	// the records stream to the file, never all in memory.
	header := func(n int64) []byte { return fmt.Appendf(nil, "%s%020d\n", indexHeader, n) }
	w := bufio.NewWriterSize(f, 64<<10)
	w.Write(header(0))
	var body int64
	const chunk = 512
	recs := make([]idxRec, chunk)
	for lo := 0; lo < len(ql.entries); lo += chunk {
		hi := min(lo+chunk, len(ql.entries))
		ix.records(ql.entries, lo, hi, recs[:hi-lo])
		for i := lo; i < hi; i++ {
			if r := &recs[i-lo]; r.kind != 0 {
				w.Write(r.line)
				w.WriteByte('\n')
				body += int64(len(r.line)) + 1
			} else if rec := s.recordOf(&ql.entries[i]); rec != nil {
				w.Write(rec)
				body += int64(len(rec))
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if _, err := f.WriteAt(header(body), 0); err != nil {
		return err
	}
	// Writers wait from here; what they appended since the pass above
	// follows the records.
	if fdLockRange(fd, unix.F_WRLCK, 0, calibration) != nil {
		return errors.New("spool: index: lock")
	}
	if _, err := io.Copy(f, io.NewSectionReader(fdReaderAt(fd), ix.end, 1<<62)); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.indexPath()); err != nil {
		return err
	}
	tmp = ""
	return nil
}

// fdLockRange takes (waiting) an open file description lock of type typ
// on [start, start+n) of fd.
func fdLockRange(fd int, typ int16, start, n int64) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: start, Len: n}
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLKW, &lk)
		if err != unix.EINTR {
			return err
		}
	}
}

// recordOf makes the index record of e's current envelope from its files
// (nil when they cannot be read: the scan reports it).
func (s *Spool) recordOf(e *dirEntry) []byte {
	id := e.ID()
	fd, err := openRaw(s.path(id))
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return nil
	}
	envLine, version, off, err := scanHead(io.NewSectionReader(fdReaderAt(fd), 0, 1<<62))
	if err != nil {
		return nil
	}
	kind, ino, js := byte(recQueue), st.Ino, bytes.TrimSuffix(envLine, []byte("\n"))
	if e.envIno != 0 {
		efd, err := openRaw(s.envPath(id))
		if err != nil {
			return nil
		}
		defer unix.Close(efd)
		var est unix.Stat_t
		if unix.Fstat(efd, &est) != nil || est.Size > 16<<20 {
			return nil
		}
		b := make([]byte, est.Size)
		if n, err := unix.Pread(efd, b, 0); err != nil || int64(n) != est.Size {
			return nil
		}
		if len(b) > 0 && b[0] == '{' {
			version = 1
		} else {
			line, rest, ok := bytes.Cut(b, []byte("\n"))
			if !ok {
				return nil
			}
			if version, err = parseFormatLine(append(line, '\n')); err != nil {
				return nil
			}
			b = rest
		}
		kind, ino, js = recEnv, est.Ino, bytes.TrimSuffix(b, []byte("\n"))
	}
	if bytes.IndexByte(js, '\n') >= 0 {
		return nil
	}
	if env, err := decodeEnvelope(js, version); err != nil || env.ID != id {
		return nil
	}
	return indexRecord(kind, version, id, ino, st.Size, st.Size-off, js)
}
