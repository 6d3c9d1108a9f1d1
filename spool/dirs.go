package spool

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is one directory of a spool with the mode a system install gives
// it; its owner is the spool's (the relay user and group).
type Dir struct {
	Path string
	Mode fs.FileMode
}

// SystemDirs are the directories of the system spool in dir and their
// modes: others may pass through the spool (--x) to reach the maildrop
// (write and search only, sticky, setgid: see "The maildrop" in the
// package documentation); the relay group may read the queue (mailq); only
// relay reads tmp/ and corrupt/. relay install makes them, relay check
// checks them, dist/relay.conf (tmpfiles.d) repeats them.
func SystemDirs(dir string) []Dir {
	return []Dir{
		{dir, 0o751},
		{filepath.Join(dir, queueName), 0o750},
		{filepath.Join(dir, tmpName), 0o700},
		{filepath.Join(dir, corruptName), 0o700},
		{filepath.Join(dir, maildropName), 0o733 | fs.ModeSetgid | fs.ModeSticky},
	}
}

// Check says what differs between the directory as it is (fi, from
// Lstat) and its mode and the owner uid:gid, "" when nothing does.
func (d Dir) Check(fi fs.FileInfo, uid, gid int) string {
	var problem string
	if got := fi.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSticky); got != d.Mode {
		problem = fmt.Sprintf("mode %s, want %s", ModeString(got), ModeString(d.Mode))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != uid || int(st.Gid) != gid) {
		if problem != "" {
			problem += "; "
		}
		problem += fmt.Sprintf("owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	return problem
}

// ModeString writes a mode as chmod takes it: 3733, 0750.
func ModeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// CheckAccess returns an error naming the first directory of a
// single-user spool (queue/, tmp/) this process cannot read, write and
// search: sendmail run by this user could not queue.
func (s *Spool) CheckAccess() error {
	for _, d := range []string{queueName, tmpName} {
		if err := unix.Access(filepath.Join(s.Dir, d), unix.R_OK|unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("%s/%s is not writable by uid %d: %v", s.Dir, d, os.Getuid(), err)
		}
	}
	return nil
}

// Corrupt returns the directory files that could not be read are moved
// to and how many are there now (0 when it does not exist).
func (s *Spool) Corrupt() (dir string, n int) {
	names, _ := os.ReadDir(s.corruptDir())
	return s.corruptDir(), len(names)
}
