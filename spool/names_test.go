package spool_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/spool"
)

func TestWatchDirsAndAnnounced(t *testing.T) {
	s, err := spool.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if dirs := s.WatchDirs(); len(dirs) != 1 {
		t.Fatalf("single-user spool watches %v, want the queue only", dirs)
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "maildrop"), 0o700); err != nil {
		t.Fatal(err)
	}
	dirs := s.WatchDirs()
	if len(dirs) != 2 {
		t.Fatalf("system spool watches %v, want the queue and the maildrop", dirs)
	}
	// What a runner sees when sendmail commits: a queue file, an envelope,
	// a drop; and what it must ignore.
	d, err := s.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	id := d.ID
	d.Abort()
	queue, drops := dirs[0], dirs[1]
	for _, tt := range []struct {
		name, path string
		id         string
		drop, ok   bool
	}{
		{"queue file", filepath.Join(queue, id), id, false, true},
		{"envelope", filepath.Join(queue, id+".env"), id, false, true},
		{"drop", filepath.Join(drops, id), "", true, true},
		{"drop being written", filepath.Join(drops, "."+id), "", false, false},
		{"stranger in the queue", filepath.Join(queue, "notes.txt"), "", false, false},
		{"elsewhere", filepath.Join(s.Dir, "tmp", id), "", false, false},
	} {
		gotID, drop, ok := s.Announced(tt.path)
		if ok != tt.ok || drop != tt.drop || ok && !drop && gotID != tt.id {
			t.Errorf("%s: %q %v %v, want %q %v %v", tt.name, gotID, drop, ok, tt.id, tt.drop, tt.ok)
		}
	}
}

func TestChangeStamp_MovesWithTheQueue(t *testing.T) {
	s, err := spool.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	before := s.ChangeStamp()
	if s.ChangeStamp() != before {
		t.Fatal("the stamp changes by itself")
	}
	// Directory mtimes have the file system's granularity: make sure a
	// tick passed.
	time.Sleep(20 * time.Millisecond)
	d, err := s.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteEnvelope(&spool.Envelope{Sender: "a@example.com", Recipients: []spool.Recipient{{Address: "b@example.net", Status: spool.Pending}}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if s.ChangeStamp() == before {
		t.Error("a committed message did not change the stamp")
	}
}

func TestSystemDirs_Check(t *testing.T) {
	dirs := spool.SystemDirs("/var/spool/relay")
	want := map[string]string{"/var/spool/relay": "0751", "/var/spool/relay/queue": "0750", "/var/spool/relay/tmp": "0700",
		"/var/spool/relay/corrupt": "0700", "/var/spool/relay/maildrop": "3733"}
	for _, d := range dirs {
		if want[d.Path] != spool.ModeString(d.Mode) {
			t.Errorf("%s: mode %s, want %s", d.Path, spool.ModeString(d.Mode), want[d.Path])
		}
		delete(want, d.Path)
	}
	if len(want) > 0 {
		t.Errorf("missing: %v", want)
	}

	dir := t.TempDir()
	drop := spool.Dir{Path: dir, Mode: 0o733 | fs.ModeSetgid | fs.ModeSticky}
	if err := os.Chmod(dir, drop.Mode); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	uid, gid := int(st.Uid), int(st.Gid)
	if p := drop.Check(fi, uid, gid); p != "" {
		t.Errorf("as made: %q", p)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Lstat(dir)
	p := drop.Check(fi, uid+1, gid)
	if want := fmt.Sprintf("mode 0755, want 3733; owner %d:%d, want %d:%d", uid, gid, uid+1, gid); p != want {
		t.Errorf("wrong mode and owner: %q, want %q", p, want)
	}
}
