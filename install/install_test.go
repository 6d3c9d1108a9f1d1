package install_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/relaymail/relay/install"
)

// Every test installs under a prefix in a temporary directory, and none
// can change the host's accounts: the install creates the relay user and
// group with groupadd and useradd from PATH, so each test puts PATH on a
// directory of its own whose groupadd and useradd only write down how
// they were called. What the tests read of the host is the account
// database (user.Lookup), which the install itself reads.

const (
	spoolPath  = "/var/spool/relay"
	configPath = "/etc/relay/relay.toml"
	// binPath is where every link points, whatever the prefix: the
	// prefix is where a package is assembled, not where it runs.
	binPath = "/usr/sbin/relay"
)

var linkPaths = []string{"/usr/sbin/sendmail", "/usr/lib/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases"}

// accountTools replaces PATH with a directory holding groupadd and useradd
// that append their command line to the returned log; with fail set they
// print an error and exit 10 instead, as without the right to change
// /etc/group.
func accountTools(t *testing.T, fail bool) (log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	for _, name := range []string{"groupadd", "useradd"} {
		script := "#!/bin/sh\necho \"" + name + " $*\" >> " + log + "\n"
		if fail {
			script = "#!/bin/sh\necho \"" + name + ": cannot lock /etc/group; try again later.\"\nexit 10\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return log
}

// calls returns what the account tools were asked to do.
func calls(t *testing.T, log string) string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// absentUser is an account name that exists on no test machine.
func absentUser(t *testing.T) string {
	t.Helper()
	const name = "relaytest-absent"
	if _, err := user.Lookup(name); err == nil {
		t.Skipf("user %s exists here", name)
	}
	if _, err := user.LookupGroup(name); err == nil {
		t.Skipf("group %s exists here", name)
	}
	return name
}

// existingUser is an account with a group of the same name that exists on
// every Linux system, so that the install finds its relay user in place.
func existingUser(t *testing.T) (name string, uid, gid int) {
	t.Helper()
	u, err := user.Lookup("root")
	if err != nil {
		t.Skip("no user root here")
	}
	if _, err := user.LookupGroup("root"); err != nil {
		t.Skip("no group root here")
	}
	if u.Uid != "0" || u.Gid != "0" {
		t.Skipf("root is %s:%s here", u.Uid, u.Gid)
	}
	return "root", 0, 0
}

// needRoot skips a test that makes a real install: it gives the spool its
// owner with chown.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a real install chowns the spool to the relay user: run the tests as root to cover it")
	}
}

// options are the options of an install under a fresh prefix of a test
// binary, with the output in out.
func options(t *testing.T, name string) (install.Options, *bytes.Buffer) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relay-built")
	if err := os.WriteFile(bin, []byte("#!/bin/false\nnot really relay\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := new(bytes.Buffer)
	return install.Options{
		Prefix: t.TempDir(),
		Binary: bin,
		Spool:  spoolPath,
		Config: configPath,
		User:   name,
		Out:    out,
	}, out
}

// steps are the lines of a first install under o, each starting with
// verb ("would " for a dry run), without the account's.
func steps(o install.Options, verb string) []string {
	owner := " " + o.User + ":" + o.User + ")"
	p := func(path string) string { return filepath.Join(o.Prefix, path) }
	lines := []string{
		verb + "create " + p(spoolPath) + " (0751" + owner,
		verb + "create " + p(spoolPath+"/queue") + " (0750" + owner,
		verb + "create " + p(spoolPath+"/tmp") + " (0700" + owner,
		verb + "create " + p(spoolPath+"/corrupt") + " (0700" + owner,
		verb + "create " + p(spoolPath+"/maildrop") + " (3733" + owner,
		verb + "create " + p(configPath),
		verb + "install " + o.Binary + " as " + p(binPath),
	}
	for _, l := range linkPaths {
		lines = append(lines, verb+"link "+p(l)+" -> "+binPath)
	}
	return lines
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

// tree lists every path under dir, relative to it.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func TestRun_DryRunChangesNothing(t *testing.T) {
	log := accountTools(t, false)
	name := absentUser(t)
	o, out := options(t, name)
	o.DryRun = true
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	want := lines(append([]string{"would create group " + name, "would create user " + name}, steps(o, "would ")...)...)
	if out.String() != want {
		t.Errorf("dry run says:\n%s\nwant:\n%s", out.String(), want)
	}
	if got := tree(t, o.Prefix); len(got) != 0 {
		t.Errorf("a dry run created %v", got)
	}
	if c := calls(t, log); c != "" {
		t.Errorf("a dry run ran account tools:\n%s", c)
	}
}

// A real run creates the group, then the user whose home is the live
// spool (not the prefix), and stops when the account still is not there.
func TestRun_CreatesAccount(t *testing.T) {
	log := accountTools(t, false)
	name := absentUser(t)
	o, out := options(t, name)
	err := install.Run(o)
	if err == nil || !strings.Contains(err.Error(), "install: user "+name) {
		t.Errorf("install whose useradd made no user: %v", err)
	}
	want := lines(
		"groupadd --system "+name,
		"useradd --system --gid "+name+" --home-dir "+spoolPath+" --no-create-home --shell /usr/sbin/nologin --comment relay mail queue "+name,
	)
	if c := calls(t, log); c != want {
		t.Errorf("account tools called:\n%s\nwant:\n%s", c, want)
	}
	if want := lines("create group "+name, "create user "+name); out.String() != want {
		t.Errorf("install says:\n%s\nwant:\n%s", out.String(), want)
	}
	if got := tree(t, o.Prefix); len(got) != 0 {
		t.Errorf("an install without its user went on to create %v", got)
	}
}

func TestRun_AccountToolFails(t *testing.T) {
	accountTools(t, true)
	name := absentUser(t)
	o, _ := options(t, name)
	err := install.Run(o)
	if err == nil || !strings.Contains(err.Error(), "install: create group "+name+": exit status 10: groupadd: cannot lock /etc/group") {
		t.Errorf("install whose groupadd fails: %v", err)
	}
}

func TestRun_DryRunWithUserInPlace(t *testing.T) {
	log := accountTools(t, false)
	name, _, _ := existingUser(t)
	o, out := options(t, name)
	o.DryRun = true
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	if want := lines(steps(o, "would ")...); out.String() != want {
		t.Errorf("dry run says:\n%s\nwant:\n%s", out.String(), want)
	}
	if c := calls(t, log); c != "" {
		t.Errorf("account tools called for an existing user:\n%s", c)
	}
}

func TestRun_SpoolPathNotADirectory(t *testing.T) {
	accountTools(t, false)
	o, _ := options(t, absentUser(t))
	o.DryRun = true
	p := filepath.Join(o.Prefix, spoolPath)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("not a spool"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := install.Run(o)
	if err == nil || !strings.Contains(err.Error(), p+" exists and is not a directory") {
		t.Errorf("install over a file where the spool goes: %v", err)
	}
}

// wantDir checks that path is a directory with mode (permissions, setgid
// and sticky bits) and owner uid:gid.
func wantDir(t *testing.T, path string, mode fs.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if !fi.IsDir() {
		t.Errorf("%s is no directory", path)
	}
	if got := fi.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSticky); got != mode {
		t.Errorf("%s has mode %v, want %v", path, got, mode)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s is owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
	}
}

func TestRun_SystemInstall(t *testing.T) {
	needRoot(t)
	log := accountTools(t, false)
	name, uid, gid := existingUser(t)
	o, out := options(t, name)
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	if want := lines(steps(o, "")...); out.String() != want {
		t.Errorf("install says:\n%s\nwant:\n%s", out.String(), want)
	}
	if c := calls(t, log); c != "" {
		t.Errorf("account tools called for an existing user:\n%s", c)
	}

	sp := filepath.Join(o.Prefix, spoolPath)
	wantDir(t, sp, 0o751, uid, gid)
	wantDir(t, sp+"/queue", 0o750, uid, gid)
	wantDir(t, sp+"/tmp", 0o700, uid, gid)
	wantDir(t, sp+"/corrupt", 0o700, uid, gid)
	wantDir(t, sp+"/maildrop", 0o733|fs.ModeSetgid|fs.ModeSticky, uid, gid)

	conf := filepath.Join(o.Prefix, configPath)
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nspool = \""+spoolPath+"\"\n") {
		t.Errorf("the configuration does not name the spool:\n%s", b)
	}
	if fi, _ := os.Stat(conf); fi.Mode().Perm() != 0o644 {
		t.Errorf("configuration mode %v, want 0644", fi.Mode().Perm())
	}

	bin := filepath.Join(o.Prefix, binPath)
	got, _ := os.ReadFile(bin)
	src, _ := os.ReadFile(o.Binary)
	if !bytes.Equal(got, src) {
		t.Errorf("%s holds %q, want a copy of the binary %q", bin, got, src)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("installed binary: %v %v, want mode 0755", fi, err)
	}
	if _, err := os.Stat(bin + ".new"); !os.IsNotExist(err) {
		t.Errorf("the temporary copy is left behind: %v", err)
	}
	for _, l := range linkPaths {
		if target, err := os.Readlink(filepath.Join(o.Prefix, l)); err != nil || target != binPath {
			t.Errorf("%s: link to %q (%v), want %s", l, target, err, binPath)
		}
	}
}

// Running the install again changes nothing and says so; a configuration
// the administrator wrote is kept.
func TestRun_SecondRunIsIdempotent(t *testing.T) {
	needRoot(t)
	accountTools(t, false)
	name, _, _ := existingUser(t)
	o, out := options(t, name)
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(o.Prefix, configPath)
	mine := "spool = \"/srv/relay\"\n# edited by the administrator\n"
	if err := os.WriteFile(conf, []byte(mine), 0o640); err != nil {
		t.Fatal(err)
	}
	before := tree(t, o.Prefix)

	for _, dry := range []bool{false, true} {
		out.Reset()
		o.DryRun = dry
		if err := install.Run(o); err != nil {
			t.Fatalf("dry run %v: %v", dry, err)
		}
		if out.String() != "relay install: everything is in place\n" {
			t.Errorf("dry run %v of an installed system says:\n%s", dry, out.String())
		}
	}
	if after := tree(t, o.Prefix); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("a second run changed the tree:\n%v\nto\n%v", before, after)
	}
	if b, _ := os.ReadFile(conf); string(b) != mine {
		t.Errorf("the administrator's configuration was replaced by:\n%s", b)
	}
}

// A binary that differs from the installed one is installed again.
func TestRun_NewBinaryReplacesOld(t *testing.T) {
	needRoot(t)
	accountTools(t, false)
	name, _, _ := existingUser(t)
	o, out := options(t, name)
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.Binary, []byte("#!/bin/false\nrelay, next version\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(o.Prefix, binPath)
	if want := lines("install " + o.Binary + " as " + bin); out.String() != want {
		t.Errorf("install of a new binary says:\n%s\nwant:\n%s", out.String(), want)
	}
	if b, _ := os.ReadFile(bin); string(b) != "#!/bin/false\nrelay, next version\n" {
		t.Errorf("installed binary holds %q", b)
	}
}

func TestRun_MissingBinary(t *testing.T) {
	needRoot(t)
	accountTools(t, false)
	name, _, _ := existingUser(t)
	o, _ := options(t, name)
	o.Binary = filepath.Join(t.TempDir(), "gone")
	err := install.Run(o)
	if err == nil || !strings.Contains(err.Error(), "install: install "+o.Binary+" as ") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("install of a missing binary: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(o.Prefix, binPath)); !os.IsNotExist(err) {
		t.Errorf("something was installed: %v", err)
	}
}

// A directory of the spool with the wrong mode or owner is put right, and
// the output says what was wrong; a dry run only says it.
func TestRun_FixesModeAndOwner(t *testing.T) {
	needRoot(t)
	accountTools(t, false)
	name, uid, gid := existingUser(t)
	o, out := options(t, name)
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	queue := filepath.Join(o.Prefix, spoolPath, "queue")
	tmp := filepath.Join(o.Prefix, spoolPath, "tmp")
	maildrop := filepath.Join(o.Prefix, spoolPath, "maildrop")
	os.Chmod(queue, 0o755)
	if err := os.Chown(tmp, 12345, 23456); err != nil {
		t.Fatal(err)
	}
	os.Chmod(maildrop, 0o733) // the setgid and sticky bits lost
	want := []string{
		"fix " + queue + ": mode 0755, want 0750",
		"fix " + tmp + ": owner 12345:23456, want 0:0",
		"fix " + maildrop + ": mode 0733, want 3733",
	}

	out.Reset()
	o.DryRun = true
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != lines("would "+want[0], "would "+want[1], "would "+want[2]) {
		t.Errorf("dry run over a damaged spool says:\n%s", got)
	}
	wantDir(t, queue, 0o755, uid, gid)

	out.Reset()
	o.DryRun = false
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != lines(want...) {
		t.Errorf("install over a damaged spool says:\n%s\nwant:\n%s", got, lines(want...))
	}
	wantDir(t, queue, 0o750, uid, gid)
	wantDir(t, tmp, 0o700, uid, gid)
	wantDir(t, maildrop, 0o733|fs.ModeSetgid|fs.ModeSticky, uid, gid)
}

// A package's maintainer script makes the user and the spool only: the
// package owns the binary, the links and relay.toml, and an install must
// not find a sendmail that is not its own (alternatives, or the package's
// relative links) in its way.
func TestRun_PackageMakesUserAndSpoolOnly(t *testing.T) {
	needRoot(t)
	log := accountTools(t, false)
	name, uid, gid := existingUser(t)
	o, _ := options(t, name)
	o.Package = true
	o.Binary = "/nonexistent/relay"
	// What the package installs: a relative link, which a full install
	// would refuse without --force.
	if err := os.MkdirAll(filepath.Join(o.Prefix, "usr/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("relay", filepath.Join(o.Prefix, "usr/sbin/sendmail")); err != nil {
		t.Fatal(err)
	}
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	if c := calls(t, log); c != "" {
		t.Errorf("account tools called for an existing user:\n%s", c)
	}
	sp := filepath.Join(o.Prefix, spoolPath)
	wantDir(t, sp+"/maildrop", 0o733|fs.ModeSetgid|fs.ModeSticky, uid, gid)
	wantDir(t, sp+"/queue", 0o750, uid, gid)
	for _, p := range []string{configPath, binPath, "/usr/bin/mailq"} {
		if _, err := os.Lstat(filepath.Join(o.Prefix, p)); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it left to the package", p, err)
		}
	}
}
