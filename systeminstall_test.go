package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
)

func TestSystemInstall_TwoUsers(t *testing.T) {
	s := testbin.NewSysEnv(t)
	maildrop := filepath.Join(s.Spool, "maildrop")

	for i, u := range s.Users {
		r := testbin.Run(testbin.As(u, s.Cmd("sendmail", "-i", "bob@example.org")), fmt.Sprintf("Subject: from %s\n\nsecret %d\n", u.Username, i))
		if r.Code != 0 || r.Stderr != "" {
			t.Fatalf("%s: sendmail: %+v", u.Username, r)
		}
	}
	drops, _ := os.ReadDir(maildrop)
	if len(drops) != 2 {
		t.Fatalf("maildrop holds %d files, want 2", len(drops))
	}
	for i, u := range s.Users {
		other := s.Users[1-i]
		// Nobody lists the maildrop, nobody reads another's drop.
		if r := testbin.Run(testbin.As(u, exec.Command("ls", maildrop)), ""); r.Code == 0 {
			t.Errorf("%s can list the maildrop: %q", u.Username, r.Stdout)
		}
		for _, d := range drops {
			p := filepath.Join(maildrop, d.Name())
			fi, _ := os.Stat(p)
			st := fi.Sys().(*syscall.Stat_t)
			if strconv.Itoa(int(st.Uid)) == other.Uid {
				if r := testbin.Run(testbin.As(u, exec.Command("cat", p)), ""); r.Code == 0 || strings.Contains(r.Stdout, "secret") {
					t.Errorf("%s read %s's message: %+v", u.Username, other.Username, r)
				}
			}
			if fi.Mode().Perm() != 0o640 {
				t.Errorf("drop %s has mode %o", d.Name(), fi.Mode().Perm())
			}
		}
		// Queue commands: permission denied.
		if r := testbin.Run(testbin.As(u, s.Cmd("mailq")), ""); r.Code != 77 {
			t.Errorf("%s: mailq: %+v", u.Username, r)
		}
	}

	if r := testbin.Run(s.Cmd("relay", "queue", "run"), ""); !strings.Contains(r.Stderr, "status=queued") {
		t.Fatalf("pickup: %+v", r)
	}
	if left, _ := os.ReadDir(maildrop); len(left) != 0 {
		t.Errorf("maildrop after pickup: %v", left)
	}
	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages queued, want 2", len(msgs))
	}
	relayUser, _ := user.Lookup("relay")
	for id, m := range msgs {
		u := s.Users[0]
		if strings.Contains(s.Content(id), "secret 1") {
			u = s.Users[1]
		}
		if strconv.Itoa(m.UID) != u.Uid || m.User != u.Username || m.Sender != u.Username+"@server1.example.com" {
			t.Errorf("%s: uid %d user %q sender %q, want %s", id, m.UID, m.User, m.Sender, u.Username)
		}
		if !strings.HasPrefix(s.Content(id), "Received: by ") || !strings.Contains(s.Content(id), "from userid "+u.Uid+")") {
			t.Errorf("%s: Received does not name uid %s:\n%s", id, u.Uid, s.Content(id))
		}
		fi, _ := os.Stat(filepath.Join(s.Spool, "queue", id))
		if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != relayUser.Uid || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: queue file owner %d mode %o, want relay 0640", id, st.Uid, fi.Mode().Perm())
		}
	}
}

// Root's sendmail writes the queue as the spool owner.
func TestSystemInstall_RootWritesAsOwner(t *testing.T) {
	s := testbin.NewSysEnv(t)
	if r := testbin.Run(s.Cmd("sendmail", "-i", "bob@example.org"), "Subject: root\n\nx\n"); r.Code != 0 {
		t.Fatal(r)
	}
	relayUser, _ := user.Lookup("relay")
	for id, m := range s.Messages() {
		fi, _ := os.Stat(filepath.Join(s.Spool, "queue", id))
		if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != relayUser.Uid {
			t.Errorf("root's message %s owned by %d, want relay", id, st.Uid)
		}
		if m.UID != 0 || !strings.Contains(s.Content(id), "from userid 0)") {
			t.Errorf("root's message %s: uid %d", id, m.UID)
		}
	}
}

// Hostile files planted in the maildrop never become mail, never hang the
// pickup and never harm what they point to.
func TestSystemInstall_HostileDrops(t *testing.T) {
	s := testbin.NewSysEnv(t)
	maildrop := filepath.Join(s.Spool, "maildrop")
	u := s.Users[0]
	victim := filepath.Join(s.Prefix, "victim")
	os.WriteFile(victim, []byte("do not touch"), 0o644)

	if r := testbin.Run(testbin.As(u, s.Cmd("sendmail", "-i", "good@example.org")), "Subject: good\n\nfine\n"); r.Code != 0 {
		t.Fatal(r)
	}
	uid, _ := strconv.Atoi(u.Uid)
	plant := func(name string, fn func(p string) error) {
		p := filepath.Join(maildrop, name)
		if err := fn(p); err != nil {
			t.Fatalf("plant %s: %v", name, err)
		}
		os.Lchown(p, uid, -1)
	}
	plant("symlink", func(p string) error { return os.Symlink(victim, p) })
	plant("fifo", func(p string) error { return syscall.Mkfifo(p, 0o640) })
	plant("hardlink", func(p string) error { return os.Link(victim, p) })
	plant("huge", func(p string) error { return os.WriteFile(p, make([]byte, 3<<20), 0o640) })
	plant("garbage", func(p string) error { return os.WriteFile(p, []byte("not a drop\n"), 0o640) })
	plant("forged", func(p string) error {
		// A drop whose envelope claims another uid and an evil recipient.
		return os.WriteFile(p, []byte("relay-spool 1\n{\"id\":\"1K0WM7VDH211S1B\",\"sender\":\"x@y.example\",\"uid\":0,\"user\":\"root\",\"recipients\":[{\"address\":\"a@b.example\",\"status\":\"pending\"}]}\nSubject: forged\n\nx\n"), 0o640)
	})
	plant("badrcpt", func(p string) error {
		return os.WriteFile(p, []byte("relay-spool 1\n{\"id\":\"1K0WM7VDH211S1B\",\"sender\":\"\",\"recipients\":[{\"address\":\"-oQ/tmp/x\",\"status\":\"pending\"}]}\n\nx\n"), 0o640)
	})

	r := testbin.Run(s.Cmd("relay", "queue", "run"), "")
	for name, why := range map[string]string{
		"symlink": "a symlink", "fifo": "not a regular file", "hardlink": "2 links",
		"huge": "larger than max_message_size", "garbage": "corrupt", "badrcpt": `recipient \"-oQ/tmp/x\"`,
	} {
		if !regexp.MustCompile(`(?m)^maildrop=` + name + ` status=refused reason=".*` + regexp.QuoteMeta(why)).MatchString(r.Stderr) {
			t.Errorf("no refusal of %s for %q logged:\n%s", name, why, r.Stderr)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "do not touch" {
		t.Errorf("the victim file changed: %q %v", b, err)
	}
	if left, _ := os.ReadDir(maildrop); len(left) != 0 {
		t.Errorf("maildrop after pickup: %v", left)
	}
	for _, name := range []string{"maildrop-huge", "maildrop-garbage", "maildrop-badrcpt"} {
		if _, err := os.Stat(filepath.Join(s.Spool, "corrupt", name)); err != nil {
			t.Errorf("%s not kept in corrupt/: %v", name, err)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages queued, want the good one and the forged one", len(msgs))
	}
	for id, m := range msgs {
		// The forged drop is queued as what it is: u's message; its claims
		// of uid 0 and its queue ID are ignored.
		if strconv.Itoa(m.UID) != u.Uid || id == "1K0WM7VDH211S1B" {
			t.Errorf("%s: uid %d from a drop owned by %s", id, m.UID, u.Uid)
		}
	}
}

func TestSystemInstall_IdempotentAndChecked(t *testing.T) {
	s := testbin.NewSysEnv(t)
	installConf := filepath.Join(s.Prefix, "install.toml")
	r := testbin.Run(exec.Command(testbin.Binary(t), "-C", installConf, "install", "--prefix", s.Prefix), "")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "relay install: everything is in place" {
		t.Errorf("second install: %+v", r)
	}
	if r := testbin.Run(s.Cmd("relay", "check"), ""); r.Code != 0 {
		t.Errorf("check of a fresh install: %+v", r)
	}
	maildrop := filepath.Join(s.Spool, "maildrop")
	os.Chmod(maildrop, 0o777)
	r = testbin.Run(s.Cmd("relay", "check"), "")
	if r.Code != 78 || !strings.Contains(r.Stderr, "maildrop: mode 0777, want 3733") {
		t.Errorf("check of a wrong mode: %+v", r)
	}
	r = testbin.Run(exec.Command(testbin.Binary(t), "-C", installConf, "install", "--prefix", s.Prefix, "--dry-run"), "")
	if fi, _ := os.Stat(maildrop); !strings.Contains(r.Stdout, "would fix") || fi.Mode().Perm() != 0o777 {
		t.Errorf("dry run: %+v (mode now %o)", r, fi.Mode().Perm())
	}
	if r := testbin.Run(exec.Command(testbin.Binary(t), "-C", installConf, "install", "--prefix", s.Prefix), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(s.Cmd("relay", "check"), ""); r.Code != 0 {
		t.Errorf("check after install fixed it: %+v", r)
	}
	// Another MTA's sendmail is not replaced without --force.
	other := filepath.Join(t.TempDir(), "p")
	os.MkdirAll(filepath.Join(other, "usr/sbin"), 0o755)
	os.WriteFile(filepath.Join(other, "usr/sbin/sendmail"), []byte("#!/bin/sh\n"), 0o755)
	r = testbin.Run(exec.Command(testbin.Binary(t), "-C", installConf, "install", "--prefix", other), "")
	if r.Code == 0 || !strings.Contains(r.Stderr, "--force") {
		t.Errorf("install over another sendmail: %+v", r)
	}
}

// A package's maintainer script runs relay install --package: a
// relay.toml with errors (an administrator's edit half done) does not stop
// it, and the spool is the one the file names, the one sendmail would
// queue into; a plain relay install refuses the same file (exit 78).
func TestInstall_PackageSurvivesABrokenConfiguration(t *testing.T) {
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	conf := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(conf, []byte("spool = \""+spoolDir+"\"\n[[smarthost]\nhost = \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := testbin.Run(exec.Command(testbin.Binary(t), "-C", conf, "install", "--package", "--dry-run", "--prefix", dir), "")
	if r.Code != 0 || !strings.Contains(r.Stdout, filepath.Join(dir, spoolDir, "maildrop")) {
		t.Errorf("install --package with a broken relay.toml: %+v", r)
	}
	if strings.Contains(r.Stdout, "/usr/sbin/sendmail") || strings.Contains(r.Stdout, "relay.toml") {
		t.Errorf("install --package would touch what the package owns:\n%s", r.Stdout)
	}
	if r := testbin.Run(exec.Command(testbin.Binary(t), "-C", conf, "install", "--dry-run", "--prefix", dir), ""); r.Code != 78 {
		t.Errorf("install (not --package) with a broken relay.toml: %+v, want exit 78", r)
	}
}
