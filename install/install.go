// Package install sets up a system install of relay: the relay user and
// group, the spool with the modes that let every local user submit while
// only relay reads the queue, a minimal /etc/relay/relay.toml, the binary,
// and the sendmail, mailq and newaliases links. Every step checks first and
// changes only what differs, so running it again is safe; with DryRun it
// only says what it would do. Prefix puts every path under a directory, for
// packaging; Package limits it to the user and the spool, for the Debian
// package's and the RPM's maintainer scripts (packaging/).
package install

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/relaymail/relay/spool"
)

// Options of an install.
type Options struct {
	Prefix string // "" for the live system
	DryRun bool
	// Force replaces a sendmail, mailq or newaliases that is not relay
	// (another MTA's): without it the install stops there.
	Force bool
	// Package makes only the user, the group and the spool: what a
	// package's maintainer scripts need, since the package manager owns
	// the binary, the links (or the alternatives) and relay.toml.
	Package bool
	Binary  string // the relay binary to install (os.Executable)
	Spool   string // the spool as configured
	Config  string // the configuration file (/etc/relay/relay.toml)
	User    string // the relay user and group
	Out     io.Writer
}

// Where the binary and its names go.
const BinPath = "/usr/sbin/relay"

var links = []string{"/usr/sbin/sendmail", "/usr/lib/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases"}

type installer struct {
	Options
	uid, gid int
	changed  int
}

// Run performs the install.
func Run(o Options) error {
	in := &installer{Options: o}
	steps := []func() error{in.account, in.spoolDirs, in.config, in.binary, in.links}
	if o.Package {
		steps = steps[:2]
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if in.changed == 0 {
		fmt.Fprintln(o.Out, "relay install: everything is in place")
	}
	return nil
}

func (in *installer) p(path string) string { return filepath.Join("/", in.Prefix, path) }

// do reports a change and makes it unless this is a dry run.
func (in *installer) do(what string, fn func() error) error {
	in.changed++
	if in.DryRun {
		fmt.Fprintln(in.Out, "would", what)
		return nil
	}
	fmt.Fprintln(in.Out, what)
	if err := fn(); err != nil {
		return fmt.Errorf("install: %s: %w", what, err)
	}
	return nil
}

func run(name string, args ...string) func() error {
	return func() error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
}

func (in *installer) account() error {
	if _, err := user.LookupGroup(in.User); err != nil {
		if err := in.do("create group "+in.User, run("groupadd", "--system", in.User)); err != nil {
			return err
		}
	}
	if _, err := user.Lookup(in.User); err != nil {
		if err := in.do("create user "+in.User, run("useradd", "--system", "--gid", in.User, "--home-dir", in.Spool,
			"--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "relay mail queue", in.User)); err != nil {
			return err
		}
	}
	u, err := user.Lookup(in.User)
	if err != nil {
		if in.DryRun {
			in.uid, in.gid = -1, -1
			return nil
		}
		return fmt.Errorf("install: user %s: %w", in.User, err)
	}
	in.uid, _ = strconv.Atoi(u.Uid)
	in.gid, _ = strconv.Atoi(u.Gid)
	return nil
}

func (in *installer) spoolDirs() error {
	for _, d := range spool.SystemDirs(in.Spool) {
		path := in.p(d.Path)
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			err = in.do(fmt.Sprintf("create %s (%s %s:%s)", path, spool.ModeString(d.Mode), in.User, in.User), func() error {
				// Parents such as /var/spool are public; the spool itself gets
				// its own mode below.
				if err := os.MkdirAll(path, 0o755); err != nil {
					return err
				}
				return setOwnerMode(path, in.uid, in.gid, d.Mode)
			})
			if err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("install: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("install: %s exists and is not a directory", path)
		}
		if problem := d.Check(fi, in.uid, in.gid); problem != "" && in.uid >= 0 {
			if err := in.do(fmt.Sprintf("fix %s: %s", path, problem), func() error { return setOwnerMode(path, in.uid, in.gid, d.Mode) }); err != nil {
				return err
			}
		}
	}
	return nil
}

func (in *installer) config() error {
	path := in.p(in.Config)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	// Without a system file, users' sendmail would fall back to a private
	// spool of their own: the system install needs one, even a minimal one.
	body := fmt.Sprintf("# relay configuration: see relay.toml.example for every key.\nspool = %q\n\n# [[smarthost]]\n# host          = \"smtp.example.com\"\n# username      = \"robot@example.com\"\n# password_file = \"/etc/relay/smarthost.secret\"  # mode 0640 root:%s\n", in.Spool, in.User)
	return in.do("create "+path, func() error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(path, []byte(body), 0o644)
	})
}

func (in *installer) binary() error {
	if err := in.installFile(in.Binary, in.p(BinPath)); err != nil {
		return err
	}
	// relay's OAuth helper goes beside relay, where relay runs it from
	// (package oauth), when it was built beside the binary installed.
	helper := filepath.Join(filepath.Dir(in.Binary), "relay-oauth")
	if _, err := os.Stat(helper); err != nil {
		return nil
	}
	return in.installFile(helper, filepath.Join(filepath.Dir(in.p(BinPath)), "relay-oauth"))
}

// installFile copies the executable src to dst (through dst.new and a
// rename), unless they are the same file.
func (in *installer) installFile(src, dst string) error {
	if same(src, dst) {
		return nil
	}
	return in.do(fmt.Sprintf("install %s as %s", src, dst), func() error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp := dst + ".new"
		if err := os.WriteFile(tmp, b, 0o755); err != nil {
			return err
		}
		return os.Rename(tmp, dst)
	})
}

func (in *installer) links() error {
	for _, l := range links {
		path := in.p(l)
		target, err := os.Readlink(path)
		if err == nil && target == BinPath {
			continue
		}
		if _, lerr := os.Lstat(path); lerr == nil {
			if !in.Force {
				what := "a file"
				if err == nil {
					what = "a link to " + target
				}
				return fmt.Errorf("install: %s is %s (another MTA?): remove that MTA, or run again with --force to replace it", path, what)
			}
		}
		if err := in.do(fmt.Sprintf("link %s -> %s", path, BinPath), func() error {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			os.Remove(path)
			return os.Symlink(BinPath, path)
		}); err != nil {
			return err
		}
	}
	return nil
}

func same(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if os.SameFile(fa, fb) {
		return true
	}
	if fa.Size() != fb.Size() {
		return false
	}
	ba, err1 := os.ReadFile(a)
	bb, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && string(ba) == string(bb)
}

func setOwnerMode(path string, uid, gid int, mode fs.FileMode) error {
	if err := os.Chown(path, uid, gid); err != nil {
		return err
	}
	// chmod after chown: chown clears the setgid bit.
	return os.Chmod(path, mode)
}
