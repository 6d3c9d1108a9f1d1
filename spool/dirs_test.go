package spool_test

// SystemDirs and Dir.Check describe and check the directories of a system
// spool: relay install makes them, relay check checks them.

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/relaymail/relay/spool"
)

func TestSystemDirs(t *testing.T) {
	want := []spool.Dir{
		// Others pass through the spool to the maildrop, which they may
		// write and search but not list; the setgid bit gives their drops
		// the relay group and the sticky bit keeps users from each other's.
		{Path: "/srv/relay", Mode: 0o751},
		{Path: "/srv/relay/queue", Mode: 0o750},
		{Path: "/srv/relay/tmp", Mode: 0o700},
		{Path: "/srv/relay/corrupt", Mode: 0o700},
		{Path: "/srv/relay/maildrop", Mode: 0o733 | fs.ModeSetgid | fs.ModeSticky},
	}
	if got := spool.SystemDirs("/srv/relay"); !slices.Equal(got, want) {
		t.Errorf("SystemDirs:\n%v\nwant:\n%v", got, want)
	}
}

// statlessInfo is a FileInfo without the system's stat, as a file system
// other than the OS's gives: only the mode can be checked.
type statlessInfo struct{ mode fs.FileMode }

func (i statlessInfo) Name() string       { return "d" }
func (i statlessInfo) Size() int64        { return 0 }
func (i statlessInfo) Mode() fs.FileMode  { return fs.ModeDir | i.mode }
func (i statlessInfo) ModTime() time.Time { return time.Time{} }
func (i statlessInfo) IsDir() bool        { return true }
func (i statlessInfo) Sys() any           { return nil }

func TestDirCheck(t *testing.T) {
	uid, gid := os.Geteuid(), os.Getegid()
	dir := filepath.Join(t.TempDir(), "maildrop")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Chown to the tester's own ids: the temporary directory's parent may
	// hand down another group.
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	maildrop := 0o733 | fs.ModeSetgid | fs.ModeSticky
	if err := os.Chmod(dir, maildrop); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	owner := func(u, g int) string { return strconv.Itoa(u) + ":" + strconv.Itoa(g) }

	for _, tc := range []struct {
		mode     fs.FileMode
		uid, gid int
		want     string
	}{
		{maildrop, uid, gid, ""},
		{0o733, uid, gid, "mode 3733, want 0733"},
		{0o750, uid, gid, "mode 3733, want 0750"},
		{maildrop, uid + 1, gid, "owner " + owner(uid, gid) + ", want " + owner(uid+1, gid)},
		{maildrop, uid, gid + 1, "owner " + owner(uid, gid) + ", want " + owner(uid, gid+1)},
		{0o751, uid + 1, gid + 1, "mode 3733, want 0751; owner " + owner(uid, gid) + ", want " + owner(uid+1, gid+1)},
	} {
		if got := (spool.Dir{Mode: tc.mode}).Check(fi, tc.uid, tc.gid); got != tc.want {
			t.Errorf("CheckDir(mode 3733, owner %s) against %v %s: %q, want %q", owner(uid, gid), tc.mode, owner(tc.uid, tc.gid), got, tc.want)
		}
	}

	// Without the system's stat there is no owner to compare.
	if got := (spool.Dir{Mode: 0o750}).Check(statlessInfo{0o750}, 1, 2); got != "" {
		t.Errorf("CheckDir of a stat-less 0750 directory: %q", got)
	}
	if got := (spool.Dir{Mode: 0o750}).Check(statlessInfo{0o755}, 1, 2); got != "mode 0755, want 0750" {
		t.Errorf("CheckDir of a stat-less 0755 directory against 0750: %q", got)
	}
}
