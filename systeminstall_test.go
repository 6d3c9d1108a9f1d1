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
)

// sysEnv is a system install under a prefix with two local users.
type sysEnv struct {
	*env
	prefix string
	users  []*user.User
}

func newSysEnv(t *testing.T) *sysEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a system install needs root (useradd, chown)")
	}
	prefix := t.TempDir()
	// The users must reach the binary and the configuration.
	for _, d := range []string{filepath.Dir(relayBin), prefix, filepath.Dir(prefix)} {
		os.Chmod(d, 0o755)
	}
	s := &sysEnv{prefix: prefix}
	for _, name := range []string{"relaytest1", "relaytest2"} {
		if _, err := user.Lookup(name); err != nil {
			if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
				t.Fatalf("useradd %s: %v %s", name, err, out)
			}
		}
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		s.users = append(s.users, u)
	}
	// relay install lays out /var/spool/relay under the prefix; the
	// configuration used at run time names that place.
	installConf := filepath.Join(prefix, "install.toml")
	os.WriteFile(installConf, []byte("spool = \"/var/spool/relay\"\n"), 0o644)
	r := run(exec.Command(relayBin, "-C", installConf, "install", "--prefix", prefix), "")
	if r.code != 0 {
		t.Fatalf("relay install: %+v", r)
	}
	s.env = &env{t: t, dir: prefix, conf: filepath.Join(prefix, "relay.toml"), spool: filepath.Join(prefix, "var/spool/relay")}
	os.WriteFile(s.conf, []byte(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\nmax_message_size = \"64KB\"\n", s.spool)), 0o644)
	return s
}

// as runs cmd as u.
func as(u *user.User, c *exec.Cmd) *exec.Cmd {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	c.Dir = "/"
	return c
}

func TestSystemInstall_TwoUsers(t *testing.T) {
	s := newSysEnv(t)
	maildrop := filepath.Join(s.spool, "maildrop")

	for i, u := range s.users {
		r := run(as(u, s.cmd("sendmail", "-i", "bob@example.org")), fmt.Sprintf("Subject: from %s\n\nsecret %d\n", u.Username, i))
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: sendmail: %+v", u.Username, r)
		}
	}
	drops, _ := os.ReadDir(maildrop)
	if len(drops) != 2 {
		t.Fatalf("maildrop holds %d files, want 2", len(drops))
	}
	for i, u := range s.users {
		other := s.users[1-i]
		// Nobody lists the maildrop, nobody reads another's drop.
		if r := run(as(u, exec.Command("ls", maildrop)), ""); r.code == 0 {
			t.Errorf("%s can list the maildrop: %q", u.Username, r.stdout)
		}
		for _, d := range drops {
			p := filepath.Join(maildrop, d.Name())
			fi, _ := os.Stat(p)
			st := fi.Sys().(*syscall.Stat_t)
			if strconv.Itoa(int(st.Uid)) == other.Uid {
				if r := run(as(u, exec.Command("cat", p)), ""); r.code == 0 || strings.Contains(r.stdout, "secret") {
					t.Errorf("%s read %s's message: %+v", u.Username, other.Username, r)
				}
			}
			if fi.Mode().Perm() != 0o640 {
				t.Errorf("drop %s has mode %o", d.Name(), fi.Mode().Perm())
			}
		}
		// Queue commands: permission denied.
		if r := run(as(u, s.cmd("mailq")), ""); r.code != 77 {
			t.Errorf("%s: mailq: %+v", u.Username, r)
		}
	}

	if r := run(s.cmd("relay", "queue", "run"), ""); !strings.Contains(r.stderr, "status=queued") {
		t.Fatalf("pickup: %+v", r)
	}
	if left, _ := os.ReadDir(maildrop); len(left) != 0 {
		t.Errorf("maildrop after pickup: %v", left)
	}
	msgs := s.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages queued, want 2", len(msgs))
	}
	relayUser, _ := user.Lookup("relay")
	for id, m := range msgs {
		u := s.users[0]
		if strings.Contains(s.content(id), "secret 1") {
			u = s.users[1]
		}
		if strconv.Itoa(m.UID) != u.Uid || m.User != u.Username || m.Sender != u.Username+"@server1.example.com" {
			t.Errorf("%s: uid %d user %q sender %q, want %s", id, m.UID, m.User, m.Sender, u.Username)
		}
		if !strings.HasPrefix(s.content(id), "Received: by ") || !strings.Contains(s.content(id), "from userid "+u.Uid+")") {
			t.Errorf("%s: Received does not name uid %s:\n%s", id, u.Uid, s.content(id))
		}
		fi, _ := os.Stat(filepath.Join(s.spool, "queue", id))
		if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != relayUser.Uid || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: queue file owner %d mode %o, want relay 0640", id, st.Uid, fi.Mode().Perm())
		}
	}
}

// Root's sendmail writes the queue as the spool owner.
func TestSystemInstall_RootWritesAsOwner(t *testing.T) {
	s := newSysEnv(t)
	if r := run(s.cmd("sendmail", "-i", "bob@example.org"), "Subject: root\n\nx\n"); r.code != 0 {
		t.Fatal(r)
	}
	relayUser, _ := user.Lookup("relay")
	for id, m := range s.messages() {
		fi, _ := os.Stat(filepath.Join(s.spool, "queue", id))
		if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != relayUser.Uid {
			t.Errorf("root's message %s owned by %d, want relay", id, st.Uid)
		}
		if m.UID != 0 || !strings.Contains(s.content(id), "from userid 0)") {
			t.Errorf("root's message %s: uid %d", id, m.UID)
		}
	}
}

// Hostile files planted in the maildrop never become mail, never hang the
// pickup and never harm what they point to.
func TestSystemInstall_HostileDrops(t *testing.T) {
	s := newSysEnv(t)
	maildrop := filepath.Join(s.spool, "maildrop")
	u := s.users[0]
	victim := filepath.Join(s.prefix, "victim")
	os.WriteFile(victim, []byte("do not touch"), 0o644)

	if r := run(as(u, s.cmd("sendmail", "-i", "good@example.org")), "Subject: good\n\nfine\n"); r.code != 0 {
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

	r := run(s.cmd("relay", "queue", "run"), "")
	for name, why := range map[string]string{
		"symlink": "a symlink", "fifo": "not a regular file", "hardlink": "2 links",
		"huge": "larger than max_message_size", "garbage": "corrupt", "badrcpt": `recipient \"-oQ/tmp/x\"`,
	} {
		if !regexp.MustCompile(`(?m)^maildrop=` + name + ` status=refused reason=".*` + regexp.QuoteMeta(why)).MatchString(r.stderr) {
			t.Errorf("no refusal of %s for %q logged:\n%s", name, why, r.stderr)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "do not touch" {
		t.Errorf("the victim file changed: %q %v", b, err)
	}
	if left, _ := os.ReadDir(maildrop); len(left) != 0 {
		t.Errorf("maildrop after pickup: %v", left)
	}
	for _, name := range []string{"maildrop-huge", "maildrop-garbage", "maildrop-badrcpt"} {
		if _, err := os.Stat(filepath.Join(s.spool, "corrupt", name)); err != nil {
			t.Errorf("%s not kept in corrupt/: %v", name, err)
		}
	}
	msgs := s.messages()
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
	s := newSysEnv(t)
	installConf := filepath.Join(s.prefix, "install.toml")
	r := run(exec.Command(relayBin, "-C", installConf, "install", "--prefix", s.prefix), "")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "relay install: everything is in place" {
		t.Errorf("second install: %+v", r)
	}
	if r := run(s.cmd("relay", "check"), ""); r.code != 0 {
		t.Errorf("check of a fresh install: %+v", r)
	}
	maildrop := filepath.Join(s.spool, "maildrop")
	os.Chmod(maildrop, 0o777)
	r = run(s.cmd("relay", "check"), "")
	if r.code != 78 || !strings.Contains(r.stderr, "maildrop: mode 0777, want 3733") {
		t.Errorf("check of a wrong mode: %+v", r)
	}
	r = run(exec.Command(relayBin, "-C", installConf, "install", "--prefix", s.prefix, "--dry-run"), "")
	if fi, _ := os.Stat(maildrop); !strings.Contains(r.stdout, "would fix") || fi.Mode().Perm() != 0o777 {
		t.Errorf("dry run: %+v (mode now %o)", r, fi.Mode().Perm())
	}
	if r := run(exec.Command(relayBin, "-C", installConf, "install", "--prefix", s.prefix), ""); r.code != 0 {
		t.Fatal(r)
	}
	if r := run(s.cmd("relay", "check"), ""); r.code != 0 {
		t.Errorf("check after install fixed it: %+v", r)
	}
	// Another MTA's sendmail is not replaced without --force.
	other := filepath.Join(t.TempDir(), "p")
	os.MkdirAll(filepath.Join(other, "usr/sbin"), 0o755)
	os.WriteFile(filepath.Join(other, "usr/sbin/sendmail"), []byte("#!/bin/sh\n"), 0o755)
	r = run(exec.Command(relayBin, "-C", installConf, "install", "--prefix", other), "")
	if r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("install over another sendmail: %+v", r)
	}
}
