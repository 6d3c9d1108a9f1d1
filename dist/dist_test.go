// Package dist_test checks the files shipped in dist/: the systemd units
// (with systemd-analyze, offline), the tmpfiles.d entry (against the
// modes relay install gives the spool) and the sysusers.d entry (against
// the account it makes).
package dist_test

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/install"
	"github.com/relaymail/relay/spool"
)

// maxExposure is the most systemd-analyze security may score relay.service
// (SPEC section 6; Debian's postfix unit scores 9.6).
const maxExposure = 2.0

func analyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("RELAY_CI") != "" {
			t.Fatal("systemd-analyze is missing (apt-get install systemd)")
		}
		t.Skip("systemd-analyze is missing")
	}
	return p
}

var exposureRE = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+) (\S+)`)

func TestUnits_SecurityScore(t *testing.T) {
	sa := analyze(t)
	for _, unit := range []string{"relay.service", "relay-queue.service"} {
		out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
		}
		m := exposureRE.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("%s: no overall exposure level in:\n%s", unit, out)
		}
		score, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: exposure %.1f %s", unit, score, m[3])
		if score > maxExposure {
			t.Errorf("%s scores %.1f (%s), want at most %.1f:\n%s", unit, score, m[3], maxExposure, out)
		}
	}
}

// TestUnits_Verify runs systemd-analyze verify on copies of the units
// whose ExecStart names an executable that exists here (relay is not
// installed in /usr/sbin on a build machine); any complaint fails.
func TestUnits_Verify(t *testing.T) {
	sa := analyze(t)
	dir := t.TempDir()
	units := []string{"relay.service", "relay-queue.service", "relay-queue.timer"}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/sbin/relay", "/bin/true")), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(sa, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnits_CommentPerSandboxOption: every sandboxing option of
// relay.service says why in a comment above it.
func TestUnits_CommentPerSandboxOption(t *testing.T) {
	b, err := os.ReadFile("relay.service")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	sandbox := regexp.MustCompile(`^(Protect|Private|Restrict|NoNewPrivileges|Capability|AmbientCapabilities|MemoryDeny|LockPersonality|SystemCall|ReadWritePaths|DevicePolicy|RemoveIPC|ProcSubset|UMask)`)
	for i, l := range lines {
		if !sandbox.MatchString(l) {
			continue
		}
		// The comment may sit above a group of related options.
		j := i - 1
		for j >= 0 && sandbox.MatchString(lines[j]) {
			j--
		}
		if j < 0 || !strings.HasPrefix(lines[j], "#") {
			t.Errorf("relay.service:%d: %s has no comment saying why", i+1, l)
		}
	}
}

// TestTmpfiles_MatchInstall: the tmpfiles.d entry makes the spool as relay
// install does.
func TestTmpfiles_MatchInstall(t *testing.T) {
	b, err := os.ReadFile("relay.conf")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 6 || f[0] != "d" || f[3] != "relay" || f[4] != "relay" || f[5] != "-" {
			t.Errorf("relay.conf: unexpected line %q", l)
			continue
		}
		got[f[1]] = f[2]
	}
	for _, d := range spool.SystemDirs("/var/spool/relay") {
		want := fmt.Sprintf("%04o", octal(d.Mode))
		if got[d.Path] != want {
			t.Errorf("relay.conf: %s has mode %q, relay install makes %s", d.Path, got[d.Path], want)
		}
		delete(got, d.Path)
	}
	for p := range got {
		t.Errorf("relay.conf: %s is not a directory relay install makes", p)
	}
}

// octal turns a Go file mode into the chmod number (setgid 2000, sticky
// 1000).
func octal(m fs.FileMode) uint32 {
	o := uint32(m.Perm())
	if m&fs.ModeSetgid != 0 {
		o |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		o |= 0o1000
	}
	return o
}

// TestSysusers_MatchInstall: systemd-sysusers makes from relay-sysusers.conf
// the account relay install makes with useradd (install/install.go):
// the same name, comment, home (the spool) and shell.
func TestSysusers_MatchInstall(t *testing.T) {
	sysusers, err := exec.LookPath("systemd-sysusers")
	if err != nil {
		if os.Getenv("RELAY_CI") != "" {
			t.Fatal("systemd-sysusers is missing (apt-get install systemd)")
		}
		t.Skip("systemd-sysusers is missing")
	}
	root := t.TempDir()
	for _, f := range []string{"etc/passwd", "etc/group"} {
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf, _ := filepath.Abs("relay-sysusers.conf")
	if out, err := exec.Command(sysusers, "--root="+root, conf).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	f := strings.Split(strings.TrimSpace(string(passwd)), ":")
	if len(f) != 7 {
		t.Fatalf("sysusers made %q", passwd)
	}
	sysName, sysComment, sysHome, sysShell := f[0], f[4], f[5], f[6]

	// What relay install asks useradd for, through a useradd that only
	// writes its arguments down.
	bin := t.TempDir()
	log := filepath.Join(bin, "log")
	for _, tool := range []string{"groupadd", "useradd"} {
		script := "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done >>" + log + "\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	const name = "relay-sysusers-test-absent"
	_ = install.Run(install.Options{Prefix: t.TempDir(), Spool: config.SystemSpool, Config: "/etc/relay/relay.toml",
		User: name, Package: true, Out: io.Discard})
	b, _ := os.ReadFile(log)
	args := strings.Split(string(b), "\n")
	flag := func(f string) string {
		if i := slices.Index(args, f); i >= 0 && i+1 < len(args) {
			return args[i+1]
		}
		return ""
	}
	if sysName != config.Default().Daemon.User {
		t.Errorf("sysusers user %q, relay's default user is %q", sysName, config.Default().Daemon.User)
	}
	for _, c := range []struct{ what, sysusers, install string }{
		{"comment", sysComment, flag("--comment")},
		{"home", sysHome, flag("--home-dir")},
		{"shell", sysShell, flag("--shell")},
	} {
		if c.sysusers != c.install || c.install == "" {
			t.Errorf("%s: sysusers %q, relay install %q", c.what, c.sysusers, c.install)
		}
	}
}
