package packaging_test

// The package files themselves, read on the host with dpkg-deb, lintian
// and rpm (no install), and build.sh's version and its bad input.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var archs = []struct{ deb, rpm string }{{"amd64", "x86_64"}, {"arm64", "aarch64"}}

// Files both packages install, besides the manual pages.
var commonFiles = []string{
	"/etc/logrotate.d/relay",
	"/etc/relay/relay.toml",
	"/usr/lib/sysusers.d/relay.conf",
	"/usr/lib/tmpfiles.d/relay.conf",
	"/usr/sbin/relay",
	"/usr/libexec/relay/relay-oauth",
	"/usr/share/doc/relay/examples/relay.toml.example",
}

var debOnly = []string{
	"/usr/sbin/sendmail", "/usr/lib/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases",
	"/lib/systemd/system/relay.service", "/lib/systemd/system/relay-queue.service", "/lib/systemd/system/relay-queue.timer",
	"/usr/share/doc/relay/copyright", "/usr/share/doc/relay/changelog.gz",
	"/usr/share/man/man8/relay.8.gz", "/usr/share/man/man5/relay.toml.5.gz",
	"/usr/share/man/man8/sendmail.8.gz", "/usr/share/man/man1/mailq.1.gz", "/usr/share/man/man8/newaliases.8.gz",
}

var rpmOnly = []string{
	"/usr/lib/systemd/system/relay.service", "/usr/lib/systemd/system/relay-queue.service", "/usr/lib/systemd/system/relay-queue.timer",
	"/usr/share/man/man8/relay.8.gz", "/usr/share/man/man5/relay.toml.5.gz",
	"/usr/share/man/man8/sendmail.relay.8.gz", "/usr/share/man/man1/mailq.relay.1.gz", "/usr/share/man/man8/newaliases.relay.8.gz",
}

func debFiles(t *testing.T, deb string) (files []string, links map[string]string) {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -c %s: %v", deb, err)
	}
	links = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.HasPrefix(f[0], "d") {
			continue
		}
		name := strings.TrimPrefix(f[5], ".")
		files = append(files, name)
		if len(f) == 8 && f[6] == "->" {
			links[name] = f[7]
		}
	}
	return files, links
}

func TestDeb_ControlAndFiles(t *testing.T) {
	enabled(t)
	tool(t, "dpkg-deb", "dpkg")
	for _, a := range archs {
		deb := packageFile(t, "relay_*_"+a.deb+".deb")
		want := map[string]string{
			"Package": "relay", "Architecture": a.deb, "Section": "mail",
			"Provides": "mail-transport-agent", "Conflicts": "mail-transport-agent", "Replaces": "mail-transport-agent",
		}
		for field, v := range want {
			if got := debField(t, deb, field); got != v {
				t.Errorf("%s: %s: %q, want %q", filepath.Base(deb), field, got, v)
			}
		}
		if deps := debField(t, deb, "Depends"); !slices.Contains(strings.Split(deps, ", "), "ca-certificates") {
			t.Errorf("%s: Depends: %q lacks ca-certificates", filepath.Base(deb), deps)
		}
		if v := debField(t, deb, "Version"); filepath.Base(deb) != "relay_"+v+"_"+a.deb+".deb" {
			t.Errorf("%s is not named relay_%s_%s.deb", filepath.Base(deb), v, a.deb)
		}

		files, links := debFiles(t, deb)
		for _, f := range append(slices.Clone(commonFiles), debOnly...) {
			if !slices.Contains(files, f) {
				t.Errorf("%s lacks %s", filepath.Base(deb), f)
			}
		}
		mtaLinks := []string{"/usr/sbin/sendmail", "/usr/lib/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases"}
		for _, l := range mtaLinks {
			if target := links[l]; target == "" || filepath.Join(filepath.Dir(l), target) != "/usr/sbin/relay" {
				t.Errorf("%s: %s -> %q, want a link to /usr/sbin/relay", filepath.Base(deb), l, target)
			}
		}
		// Every other file is a file: a link into the build tree (a
		// staged source that was itself a link) would dangle on the
		// installed system.
		for l, target := range links {
			if !slices.Contains(mtaLinks, l) {
				t.Errorf("%s: %s is a link to %s, want the file itself", filepath.Base(deb), l, target)
			}
		}

		ctl := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-e", deb, ctl).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
		}
		conffiles, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
		for _, c := range []string{"/etc/relay/relay.toml", "/etc/logrotate.d/relay"} {
			if !slices.Contains(strings.Fields(string(conffiles)), c) {
				t.Errorf("%s: %s is not a conffile (conffiles: %q)", filepath.Base(deb), c, conffiles)
			}
		}
		for _, script := range []string{"postinst", "prerm", "postrm"} {
			if out, err := exec.Command("sh", "-n", filepath.Join(ctl, script)).CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", filepath.Base(deb), script, err, out)
			}
		}
	}
}

// lintianTag is one line of lintian's output: "W: relay: tag [detail]".
var lintianTag = regexp.MustCompile(`(?m)^([EWIPX]): relay: (\S+)`)

// TestDeb_Lintian: no error, and each remaining warning (or pedantic or
// informational tag) is one that packaging/README.md lists with the
// reason it stays.
func TestDeb_Lintian(t *testing.T) {
	t.Parallel()
	enabled(t)
	lintian := tool(t, "lintian", "lintian")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range archs {
		deb := packageFile(t, "relay_*_"+a.deb+".deb")
		out, _ := exec.Command(lintian, "--info", "--pedantic", "--display-level", ">=pedantic", deb).CombinedOutput()
		t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
		for _, m := range lintianTag.FindAllStringSubmatch(string(out), -1) {
			switch {
			case m[1] == "E":
				t.Errorf("lintian reports an error on %s: %s", filepath.Base(deb), m[0])
			case !strings.Contains(string(readme), "`"+m[2]+"`"):
				t.Errorf("lintian %s: %s is not listed in packaging/README.md with why it stays", filepath.Base(deb), m[0])
			}
		}
		if strings.Contains(string(out), "E: ") {
			t.Errorf("lintian failed on %s:\n%s", filepath.Base(deb), out)
		}
	}
}

func rpmQuery(t *testing.T, rpmFile string, args ...string) string {
	t.Helper()
	out, err := exec.Command("rpm", append(append([]string{"-qp"}, args...), rpmFile)...).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRPM_FilesAndScripts(t *testing.T) {
	enabled(t)
	tool(t, "rpm", "rpm")
	for _, a := range archs {
		f := packageFile(t, "relay-*-1."+a.rpm+".rpm")
		name := filepath.Base(f)
		version := strings.TrimSpace(rpmQuery(t, f, "--qf", "%{VERSION}"))
		if name != "relay-"+version+"-1."+a.rpm+".rpm" {
			t.Errorf("%s is not named relay-%s-1.%s.rpm", name, version, a.rpm)
		}
		files := strings.Fields(rpmQuery(t, f, "-l"))
		for _, want := range append(slices.Clone(commonFiles), rpmOnly...) {
			if !slices.Contains(files, want) {
				t.Errorf("%s lacks %s", name, want)
			}
		}
		// The MTA's names are the alternatives system's, never the
		// package's files.
		for _, alt := range []string{"/usr/sbin/sendmail", "/usr/lib/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases", "/usr/share/man/man8/sendmail.8.gz"} {
			if slices.Contains(files, alt) {
				t.Errorf("%s owns %s, which alternatives manages", name, alt)
			}
		}
		flags := rpmQuery(t, f, "--qf", `[%{FILEFLAGS:fflags} %{FILENAMES}\n]`)
		for _, conf := range []string{"/etc/relay/relay.toml", "/etc/logrotate.d/relay"} {
			if !regexp.MustCompile(`(?m)^c\S*n\S* ` + regexp.QuoteMeta(conf) + `$`).MatchString(flags) {
				t.Errorf("%s: %s is not %%config(noreplace):\n%s", name, conf, flags)
			}
		}

		scripts := rpmQuery(t, f, "--scripts")
		post := section(scripts, "postinstall scriptlet")
		postun := section(scripts, "postuninstall scriptlet")
		for _, want := range []string{
			"/usr/sbin/relay install --package",
			"alternatives --install /usr/sbin/sendmail mta /usr/sbin/relay",
			"$follower /usr/lib/sendmail mta-sendmail /usr/sbin/relay",
			"$follower /usr/bin/mailq mta-mailq /usr/sbin/relay",
			"$follower /usr/bin/newaliases mta-newaliases /usr/sbin/relay",
			"mta-sendmailman /usr/share/man/man8/sendmail.relay.8.gz",
			"mta-mailqman /usr/share/man/man1/mailq.relay.1.gz",
			"mta-newaliasesman /usr/share/man/man8/newaliases.relay.8.gz",
		} {
			if !strings.Contains(post, want) {
				t.Errorf("%s %%post lacks %q:\n%s", name, want, post)
			}
		}
		if !strings.Contains(postun, "alternatives --remove mta /usr/sbin/relay") {
			t.Errorf("%s %%postun does not remove the alternative:\n%s", name, postun)
		}
		// Every man page a follower names is in the package.
		for _, m := range regexp.MustCompile(`/usr/share/man/\S+\.relay\.\d\.gz`).FindAllString(post, -1) {
			if !slices.Contains(files, m) {
				t.Errorf("%s: the alternative's follower %s is not in the package", name, m)
			}
		}
		for _, sc := range []string{post, postun, section(scripts, "preuninstall scriptlet")} {
			cmd := exec.Command("sh", "-n")
			cmd.Stdin = strings.NewReader(sc)
			if out, err := cmd.CombinedOutput(); err != nil || sc == "" {
				t.Errorf("%s: a scriptlet is empty or not valid sh: %v %s\n%s", name, err, out, sc)
			}
		}
	}
}

// section returns the scriptlet rpm --scripts prints under a heading.
func section(scripts, heading string) string {
	i := strings.Index(scripts, heading)
	if i < 0 {
		return ""
	}
	rest := scripts[i:]
	rest = rest[strings.Index(rest, "\n")+1:]
	if j := regexp.MustCompile(`(?m)^\S+ scriptlet \(using`).FindStringIndex(rest); j != nil {
		rest = rest[:j[0]]
	}
	return rest
}

// TestVersion_FromGit: version.sh on a repository with and without a
// tag, clean and dirty.
func TestVersion_FromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		missing(t, "git is missing: apt-get install git")
	}
	script, err := filepath.Abs("version.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command("bash", script)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("version.sh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(content string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "f")
		git("commit", "-q", "-m", content)
		return git("rev-parse", "--short=7", "HEAD")
	}
	git("init", "-q")
	h := commit("one")
	if got := version(); got != "0.0.0+g"+h {
		t.Errorf("no tag: %q, want 0.0.0+g%s", got, h)
	}
	git("tag", "v1.2.0")
	if got := version(); got != "1.2.0" {
		t.Errorf("at tag v1.2.0: %q", got)
	}
	h = commit("two")
	if got := version(); !regexp.MustCompile(`^1\.2\.0\+1\.g` + h + `[0-9a-f]*$`).MatchString(got) {
		t.Errorf("one commit after v1.2.0: %q, want 1.2.0+1.g%s", got, h)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := version(); !strings.HasSuffix(got, "+dirty") || !strings.HasPrefix(got, "1.2.0+1.g") {
		t.Errorf("dirty tree: %q, want 1.2.0+1.gHASH+dirty", got)
	}
}

// TestBuild_MissingToolIsNamed: build.sh without gzip says so in one line
// with how to get it, before building anything.
func TestBuild_MissingToolIsNamed(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"bash", "dirname", "go"} {
		p, err := exec.LookPath(name)
		if err != nil {
			missing(t, "%s is missing", name)
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(bin, "bash"), "build.sh", t.TempDir())
	cmd.Env = []string{"PATH=" + bin, "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("build.sh without gzip succeeded:\n%s", out)
	}
	if got := string(out); got != "build.sh: gzip is missing: apt-get install gzip\n" {
		t.Errorf("build.sh without gzip says %q", got)
	}
}
