package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// SysEnv is a system install under a prefix (relay install --prefix),
// with two local users, relaytest1 and relaytest2, made when missing.
type SysEnv struct {
	*Env          // Dir is the prefix; the spool is Prefix/var/spool/relay
	Prefix string // where relay install laid out the system
	Users  []*user.User
}

// NewSysEnv installs relay under a new prefix; it skips the test unless it
// runs as root (useradd, chown). The configuration names the installed
// spool, the domain server1.example.com and a max_message_size of 64KB,
// and everyone may read it.
func NewSysEnv(t testing.TB) *SysEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a system install needs root (useradd, chown)")
	}
	bin := Binary(t)
	prefix := t.TempDir()
	// The users must reach the binary and the configuration.
	for _, d := range []string{filepath.Dir(bin), prefix, filepath.Dir(prefix)} {
		os.Chmod(d, 0o755)
	}
	s := &SysEnv{Prefix: prefix}
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
		s.Users = append(s.Users, u)
	}
	// relay install lays out /var/spool/relay under the prefix; the
	// configuration used at run time names that place.
	installConf := filepath.Join(prefix, "install.toml")
	os.WriteFile(installConf, []byte("spool = \"/var/spool/relay\"\n"), 0o644)
	r := Run(exec.Command(bin, "-C", installConf, "install", "--prefix", prefix), "")
	if r.Code != 0 {
		t.Fatalf("relay install: %+v", r)
	}
	s.Env = &Env{T: t, Dir: prefix, Conf: filepath.Join(prefix, "relay.toml"), Spool: filepath.Join(prefix, "var/spool/relay")}
	os.WriteFile(s.Conf, []byte(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\nmax_message_size = \"64KB\"\n", s.Spool)), 0o644)
	return s
}

// As makes c run as u (its primary group, no others) in /.
func As(u *user.User, c *exec.Cmd) *exec.Cmd {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	c.Dir = "/"
	return c
}
