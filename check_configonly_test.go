package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
)

// hostile runs relay ARGS as nobody in a new mount namespace whose /etc
// is an empty tmpfs holding only the files given (a broken relay.toml,
// aliases, mailname), with HOME and the working directory a directory
// nobody may read: whatever relay reads beyond the files it was named
// shows in its answer.
func hostile(t *testing.T, etc map[string]string, args ...string) testbin.Result {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a mount namespace, and nobody to run as")
	}
	for _, tool := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing (util-linux)", tool)
		}
	}
	closed := t.TempDir() // 0700 root: nobody's HOME and working directory
	var setup strings.Builder
	setup.WriteString("set -e\nmount -t tmpfs tmpfs /etc\n")
	for name, body := range etc {
		p := filepath.Join("/etc", name)
		setup.WriteString("mkdir -p " + filepath.Dir(p) + "\nprintf '%s' '" + strings.ReplaceAll(body, "'", `'\''`) + "' >" + p + "\n")
	}
	setup.WriteString(`cd "$1"; shift
exec setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/env -i HOME="$PWD" PATH=/usr/bin:/bin "$@"
`)
	c := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", setup.String(), "sh", closed, testbin.Binary(t)}, args...)...)
	return testbin.Run(c, "")
}

// readableByNobody opens the path from / down for nobody.
func readableByNobody(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		for d := p; d != "/" && d != "."; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
}

// relay check --config-only reads the file and the files it names and
// nothing else: not the spool (unreadable here), not /etc/aliases or
// /etc/mailname or /etc/relay/relay.toml (all broken here), not HOME or
// the working directory; it needs no root and writes nothing.
func TestCheckConfigOnly_ReadsNothingButTheFileAndWhatItNames(t *testing.T) {
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	if err := os.Mkdir(spoolDir, 0o000); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "password")
	conf := filepath.Join(dir, "relay.toml")
	text := "spool = \"" + spoolDir + "\"\n\n[[smarthost]]\nhost = \"smtp.example.com\"\nport = 587\nusername = \"robot@example.com\"\npassword_file = \"" + pw + "\"\n"
	for p, body := range map[string]string{conf: text, pw: "secret\n"} {
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, 0, 65534) // group nobody (nogroup): 0640 root:relay in real life
	}
	readableByNobody(t, dir, testbin.Dir(t))
	os.Chmod(dir, 0o755)
	before := listing(t, dir)
	etc := map[string]string{
		"aliases":          "root: admin@example.com\nthis line is broken\n",
		"mailname":         "bad name with spaces\n",
		"relay/relay.toml": "this is = not [toml\n",
	}

	r := hostile(t, etc, "check", "--config-only", "-C", conf)
	if r.Code != 0 || r.Stdout != "configuration "+conf+": OK\n" || r.Stderr != "" {
		t.Errorf("relay check --config-only -C FILE as nobody: exit %d, stdout %q, stderr %q; want 0, one OK line, nothing else", r.Code, r.Stdout, r.Stderr)
	}
	if after := listing(t, dir); after != before {
		t.Errorf("the directory changed:\nbefore %s\nafter  %s", before, after)
	}

	// The same world seen by the plain check, and by --config-only once
	// the file names /etc/aliases: the broken files are there to be found.
	r = hostile(t, etc, "-C", conf, "check")
	if r.Code != 78 || !strings.Contains(r.Stderr, spoolDir) {
		t.Errorf("plain relay check in the same world: exit %d, stderr %q; want 78 about the spool", r.Code, r.Stderr)
	}
	if err := os.WriteFile(conf, []byte(text+"\n[rewrite]\naliases = \"/etc/aliases\"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	r = hostile(t, etc, "check", "--config-only", "-C", conf)
	if r.Code != 78 || !strings.HasPrefix(r.Stderr, "/etc/aliases:2: ") {
		t.Errorf("--config-only with a file naming the broken /etc/aliases: exit %d, stderr %q; want 78 and /etc/aliases:2", r.Code, r.Stderr)
	}
}

// listing is the names, sizes and modes under dir, to see that nothing
// was written.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			b.WriteString(p + " " + fi.Mode().String() + " " + fi.ModTime().String() + "\n")
		}
		return nil
	})
	return b.String()
}

// Without --config-only, check takes no arguments; with it, -C may come
// after the subcommand, as provisioning tools write it.
func TestCheck_Arguments(t *testing.T) {
	e := testbin.NewEnv(t, "")
	if r := testbin.Run(e.Cmd("relay", "check", "extra"), ""); r.Code != 64 {
		t.Errorf("relay check extra: %+v", r)
	}
	c := exec.Command(testbin.Binary(t), "check", "--config-only", "--config="+e.Conf)
	if r := testbin.Run(c, ""); r.Code != 0 || !strings.Contains(r.Stdout, e.Conf+": OK") {
		t.Errorf("relay check --config-only --config=FILE: %+v", r)
	}
}
