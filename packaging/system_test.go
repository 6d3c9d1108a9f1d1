// Package packaging_test proves the packages packaging/build.sh makes on a
// throwaway Debian system, never on the machine that runs the tests (CI's
// runs Postfix for the end-to-end suite).
//
// The system is a minimal Debian root (mmdebstrap --variant=apt bookworm
// ROOT.tar, made once per CI run by .ci/run), unpacked once per test run;
// apt-get update and the download of the packages the tests install
// (ca-certificates, passwd, bsd-mailx, cron, logrotate) happen once, in
// it, and relay's dependencies are installed once in a second layer. Each
// test then gets its own copy, an overlay on those, and runs every command
// in a chroot inside new mount, PID and UTS namespaces: /proc is mounted
// there, the host name is a fully qualified one, and whatever a command
// leaves running (cron, a relay daemon) dies with it.
//
// Environment:
//
//	RELAY_PACKAGING=1          run these tests (as root)
//	RELAY_PACKAGING_ROOT=FILE  the mmdebstrap tarball
//	RELAY_PACKAGING_DIR=DIR    the output of packaging/build.sh
//
// Without RELAY_PACKAGING the tests skip; with it, a missing tool or input
// skips, except under RELAY_CI=1 where it fails.
package packaging_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hostName is the system's name: fully qualified, as a server's is, so
// that relay's domain is not the bare name of the machine running the test.
const hostName = "relay-test.example.org"

// The packages every test may install; downloaded once into the root.
var prefetch = []string{"ca-certificates", "passwd", "bsd-mailx", "cron", "logrotate"}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{base.dir, upgrade.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// missing skips or, in CI, fails a test whose tool or input is absent.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("RELAY_CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// enabled skips the test unless the packaging suite was asked for, and
// checks that it can run.
func enabled(t *testing.T) {
	t.Helper()
	if os.Getenv("RELAY_PACKAGING") == "" {
		t.Skip("set RELAY_PACKAGING=1, RELAY_PACKAGING_ROOT and RELAY_PACKAGING_DIR (see .ci/run)")
	}
	if os.Geteuid() != 0 {
		missing(t, "the packaging tests chroot: run them as root")
	}
}

// tool returns the path of a host tool the test needs.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s is missing: apt-get install %s", name, pkg)
	}
	return p
}

// packageFile returns the one file in RELAY_PACKAGING_DIR matching pattern.
func packageFile(t *testing.T, pattern string) string {
	t.Helper()
	dir := os.Getenv("RELAY_PACKAGING_DIR")
	if dir == "" {
		missing(t, "RELAY_PACKAGING_DIR is not set: packaging/build.sh DIR, then RELAY_PACKAGING_DIR=DIR")
	}
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) != 1 {
		missing(t, "%s: want one file matching %s, found %d", dir, pattern, len(m))
	}
	return m[0]
}

// debArch and rpmArch name the test machine's architecture as the
// package file names do.
func debArch() string { return runtime.GOARCH }

func rpmArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// hostDeb is the Debian package of this machine's architecture.
func hostDeb(t *testing.T) string {
	return packageFile(t, "relay_*_"+debArch()+".deb")
}

// debField reads a control field of a package file.
func debField(t *testing.T, deb, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s %s: %v", deb, field, err)
	}
	return strings.TrimSpace(string(out))
}

// base is the unpacked root the systems are overlays of.
var base struct {
	once sync.Once
	dir  string
	err  error
	log  string
	// The overlay's lower directories: the root as mmdebstrap made it
	// (with the package lists and downloads), and that root with
	// ca-certificates and passwd installed.
	lowerBare, lowerDeps string
}

// The paths of the packages inside every system.
const (
	debInRoot     = "/root/pkgs/relay.deb"
	upgradeInRoot = "/root/pkgs/relay-upgrade.deb"
)

// baseRoot unpacks the root, fetches the package lists and the packages
// the tests install, puts the relay package in /root/pkgs, and installs
// relay's dependencies in a second layer: once.
func baseRoot(t *testing.T) {
	t.Helper()
	enabled(t)
	tarball := os.Getenv("RELAY_PACKAGING_ROOT")
	if tarball == "" {
		missing(t, "RELAY_PACKAGING_ROOT is not set: mmdebstrap --variant=apt bookworm ROOT.tar")
	}
	if _, err := os.Stat(tarball); err != nil {
		missing(t, "RELAY_PACKAGING_ROOT: %v", err)
	}
	tool(t, "unshare", "util-linux")
	deb := hostDeb(t)
	base.once.Do(func() {
		start := time.Now()
		base.dir, base.err = os.MkdirTemp("", "relay-packaging-root-")
		if base.err != nil {
			return
		}
		root, deps := filepath.Join(base.dir, "root"), filepath.Join(base.dir, "deps")
		var log bytes.Buffer
		step := func(name string, args ...string) {
			if base.err != nil {
				return
			}
			cmd := exec.Command(name, args...)
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Run(); err != nil {
				base.err = fmt.Errorf("%s %s: %v", name, strings.Join(args, " "), err)
			}
		}
		step("mkdir", root, deps)
		step("tar", "--numeric-owner", "-xpf", tarball, "-C", root)
		// apt inside reaches the mirror through the host's resolver, when
		// the host has one (mmdebstrap leaves the root without); a host
		// without /etc/resolv.conf (a resolver on loopback by default, or
		// no network) leaves the root's own, and apt says what it could
		// not reach.
		if _, err := os.Stat("/etc/resolv.conf"); err == nil {
			step("cp", "-L", "/etc/resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		}
		// No package's service starts in the chroot (Debian's convention
		// for chroots: policy-rc.d says no), and dpkg need not fsync
		// every file of a system thrown away after the test.
		step("sh", "-c", `printf '#!/bin/sh\nexit 101\n' >"$0/usr/sbin/policy-rc.d" && chmod 755 "$0/usr/sbin/policy-rc.d" &&
			echo force-unsafe-io >"$0/etc/dpkg/dpkg.cfg.d/relay-test-unsafe-io"`, root)
		step("install", "-D", "-m", "0644", deb, filepath.Join(root, debInRoot))
		if base.err == nil {
			_, base.err = inRoot(root, "", "", "apt-get update -qq && apt-get install -y -qq --download-only "+strings.Join(prefetch, " "), nil)
		}
		// The second layer: relay's dependencies installed, so that only
		// the test of apt's own resolution pays for them.
		if base.err == nil {
			var out string
			out, base.err = inRoot(root, deps, filepath.Join(base.dir, "deps-work"), "apt-get install -y -qq ca-certificates passwd 2>&1", nil)
			log.WriteString(out)
		}
		base.log = log.String()
		base.lowerBare = root
		base.lowerDeps = deps + ":" + root
		t.Logf("the Debian root took %s to prepare", time.Since(start).Round(time.Second))
	})
	if base.err != nil {
		t.Fatalf("preparing the Debian root: %v\n%s", base.err, base.log)
	}
}

// commandTimeout bounds one command in the system (apt-get update is the
// longest).
const commandTimeout = 4 * time.Minute

// inRoot runs script with /bin/sh in a chroot of root (with upper and work
// set: an overlay with root as its lower directories, upper as its
// writable layer) in new mount, PID and UTS namespaces, and returns its
// output (stdout and stderr).
func inRoot(root, upper, work, script string, stdin []byte) (string, error) {
	const setup = `set -e
root=$1 upper=$2 work=$3 script=$4
if [ -n "$upper" ]; then
	merged=$work/merged
	mkdir -p "$merged" "$work/w"
	mount -t overlay overlay -o "lowerdir=$root,upperdir=$upper,workdir=$work/w" "$merged"
	root=$merged
fi
mount -t proc proc "$root/proc"
# A pty for apt's log of dpkg (else "E: Can not write log"), when the
# kernel allows a private devpts.
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" 2>/dev/null || true
hostname ` + hostName + `
exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/sh -c "$script"
`
	// --kill-child and Pdeathsig: whatever happens to the test binary
	// (a timeout's panic), nothing of the system outlives it.
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--pid", "--fork", "--kill-child", "--uts", "--propagation", "private",
		"sh", "-c", setup, "sh", root, upper, work, script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	return out.String(), err
}

// system is one test's throwaway Debian system.
type system struct {
	t                 *testing.T
	root, upper, work string
}

// newSystem makes a fresh system for the test, with relay's dependencies
// installed.
func newSystem(t *testing.T) *system {
	t.Helper()
	baseRoot(t)
	return overlay(t, base.lowerDeps)
}

// newBareSystem makes a fresh system as mmdebstrap made it.
func newBareSystem(t *testing.T) *system {
	t.Helper()
	baseRoot(t)
	return overlay(t, base.lowerBare)
}

func overlay(t *testing.T, lower string) *system {
	t.Helper()
	dir := t.TempDir()
	s := &system{t: t, root: lower, upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "work")}
	if err := os.Mkdir(s.upper, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs a shell script in the system.
func (s *system) run(script string) (string, error) {
	return inRoot(s.root, s.upper, s.work, script, nil)
}

// must runs a script that has to succeed and returns its output.
func (s *system) must(script string) string {
	s.t.Helper()
	out, err := s.run(script)
	if err != nil {
		s.t.Fatalf("in the Debian root: %s\n%v\n%s", script, err, out)
	}
	return out
}

// put copies a host file into the system.
func (s *system) put(src, dst string) {
	s.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		s.t.Fatal(err)
	}
	if out, err := inRoot(s.root, s.upper, s.work, `mkdir -p "$(dirname `+dst+`)" && cat >`+dst, b); err != nil {
		s.t.Fatalf("copy %s to %s: %v\n%s", src, dst, err, out)
	}
}

// installRelay installs the relay package with apt, as the issue's
// administrator would, and returns apt's output.
func (s *system) installRelay() string {
	s.t.Helper()
	return s.must("apt-get install -y -q " + debInRoot + " 2>&1")
}

// upgrade is a second package of a higher version, built once by
// packaging/build.sh for this architecture.
var upgrade struct {
	once           sync.Once
	dir, path, ver string
	err            error
}

// upgradeDeb builds the upgrade package (version: the package's own with
// +1 appended, which dpkg sorts after it) and returns its path and version.
func upgradeDeb(t *testing.T) (path, version string) {
	t.Helper()
	current := debField(t, hostDeb(t), "Version")
	upgrade.once.Do(func() {
		upgrade.dir, upgrade.err = os.MkdirTemp("", "relay-packaging-upgrade-")
		if upgrade.err != nil {
			return
		}
		upgrade.ver = current + "+1"
		cmd := exec.Command("bash", "build.sh", upgrade.dir)
		cmd.Env = append(os.Environ(), "RELAY_VERSION="+upgrade.ver, "RELAY_ARCHS="+runtime.GOARCH)
		out, err := cmd.CombinedOutput()
		if err != nil {
			upgrade.err = fmt.Errorf("build.sh: %v\n%s", err, out)
			return
		}
		upgrade.path = filepath.Join(upgrade.dir, "relay_"+upgrade.ver+"_"+debArch()+".deb")
	})
	if upgrade.err != nil {
		t.Fatal(upgrade.err)
	}
	return upgrade.path, upgrade.ver
}
