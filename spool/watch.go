package spool

import (
	"os"
	"path/filepath"
	"strings"
)

// WatchDirs are the directories whose new names announce work for a
// runner: queue/ always (a committed message, a changed envelope: both
// arrive by a rename), and maildrop/ in a system install (a complete
// drop). A runner watches them (inotify) or stats them (ChangeStamp).
func (s *Spool) WatchDirs() []string {
	dirs := []string{s.queueDir()}
	if s.HasMaildrop() {
		dirs = append(dirs, s.maildropDir())
	}
	return dirs
}

// Announced says what a name created in one of the WatchDirs means: a
// complete drop waiting for the pickup (drop), or a new message or a new
// envelope of message id. ok is false for anything else: a dot-named draft
// still being written, a name that is no queue file, another directory.
func (s *Spool) Announced(path string) (id string, drop, ok bool) {
	dir, name := filepath.Split(path)
	if name == "" || strings.HasPrefix(name, ".") {
		return "", false, false
	}
	switch filepath.Clean(dir) {
	case s.maildropDir():
		return "", true, true
	case s.queueDir():
		id = strings.TrimSuffix(name, envSuffix)
		return id, false, ValidID(id)
	}
	return "", false, false
}

// ChangeStamp is a number that changes whenever a name is created in or
// removed from one of the WatchDirs (the sum of their modification
// times): a runner that lingers for more mail compares two stamps, one
// stat per directory, instead of listing them.
func (s *Spool) ChangeStamp() (stamp int64) {
	for _, dir := range []string{s.queueDir(), s.maildropDir()} {
		if fi, err := os.Stat(dir); err == nil {
			stamp += fi.ModTime().UnixNano()
		}
	}
	return stamp
}
