package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
)

// relay listener passwd through the binary: the password from standard
// input, the file made and changed in place, --delete, and each refusal
// with its exit code.
func TestListenerPasswd(t *testing.T) {
	e := testbin.NewEnv(t, "")
	users := filepath.Join(e.Dir, "listener-users")
	r := testbin.Run(e.Cmd("relay", "listener", "passwd", "grafana"), "pw\n")
	if r.Code != 78 || !strings.Contains(r.Stderr, "sets no [daemon] listen_users file") {
		t.Errorf("without listen_users: exit %d %q, want 78", r.Code, r.Stderr)
	}
	e.WriteConf("spool = " + `"` + e.Spool + `"` + "\n[daemon]\nlisten_tls = \"self-signed\"\nlisten_users = \"" + users + "\"\n")

	r = testbin.Run(e.Cmd("relay", "listener", "passwd", "grafana"), "first password\n")
	if r.Code != 0 || r.Stdout != users+": user grafana added\n" {
		t.Fatalf("add: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = testbin.Run(e.Cmd("relay", "listener", "passwd", "django"), "other\r\n")
	if r.Code != 0 {
		t.Fatalf("second user: %d %q", r.Code, r.Stderr)
	}
	before, _ := os.ReadFile(users)
	r = testbin.Run(e.Cmd("relay", "listener", "passwd", "grafana"), "second password")
	if r.Code != 0 || !strings.Contains(r.Stdout, "password of grafana changed") {
		t.Fatalf("change: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	after, _ := os.ReadFile(users)
	lines := strings.Split(strings.TrimSuffix(string(after), "\n"), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^grafana:\$2a\$10\$`).MatchString(lines[0]) || !strings.HasPrefix(lines[1], "django:") ||
		string(before) == string(after) || strings.Split(string(before), "\n")[1] != lines[1] {
		t.Errorf("file before\n%s\nafter\n%s", before, after)
	}
	if strings.Contains(string(after), "password") {
		t.Error("a password in clear in the file")
	}
	fi, _ := os.Stat(users)
	if fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("users file mode %v: readable by others", fi.Mode().Perm())
	}

	for _, c := range []struct {
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{[]string{"listener", "passwd"}, "", 64, "use relay listener passwd"},
		{[]string{"listener"}, "", 64, "use relay listener passwd"},
		{[]string{"listener", "passwd", "a:b"}, "pw\n", 64, "colon"},
		{[]string{"listener", "passwd", "x"}, "", 66, "no password on standard input"},
		{[]string{"listener", "passwd", "x"}, "\n", 65, "empty password"},
		{[]string{"listener", "passwd", "x"}, strings.Repeat("p", 73) + "\n", 65, "at most 72"},
		{[]string{"listener", "passwd", "--delete", "nobody"}, "", 67, `no user "nobody"`},
	} {
		r := testbin.Run(e.Cmd("relay", c.args...), c.stdin)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("relay %s: exit %d %q, want %d and one line with %q", strings.Join(c.args, " "), r.Code, r.Stderr, c.code, c.msg)
		}
	}

	r = testbin.Run(e.Cmd("relay", "listener", "passwd", "--delete", "django"), "")
	if got, _ := os.ReadFile(users); r.Code != 0 || strings.Contains(string(got), "django") || !strings.Contains(r.Stdout, "user django deleted") {
		t.Errorf("delete: exit %d %q; file %q", r.Code, r.Stderr, got)
	}
	r = testbin.Run(e.Cmd("relay", "listener", "--help"), "")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "usage: relay listener passwd") {
		t.Errorf("--help: %d %q", r.Code, r.Stdout)
	}
}

// On a terminal the password is asked twice, without echo; two that
// differ are refused. Python's pty module plays the terminal.
func TestListenerPasswd_Terminal(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	e := testbin.NewEnv(t, "[daemon]\nlisten_tls = \"self-signed\"\nlisten_users = \"USERS\"\n")
	users := filepath.Join(e.Dir, "users")
	b, _ := os.ReadFile(e.Conf)
	e.WriteConf(strings.Replace(string(b), "USERS", users, 1))
	const script = `
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
def read(want):
    global out
    deadline = time.time() + 20
    while want not in out and time.time() < deadline:
        try:
            out += os.read(fd, 1000)
        except OSError:
            break
read(b'Password: ')
os.write(fd, sys.stdin.readline().encode())
read(b'Again: ')
os.write(fd, sys.stdin.readline().encode())
while True:
    try:
        b = os.read(fd, 1000)
    except OSError:
        break
    if not b:
        break
    out += b
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode())
sys.exit(os.waitstatus_to_exitcode(status))
`
	run := func(name, first, second string) testbin.Result {
		c := exec.Command(python, "-c", script, filepath.Join(testbin.Dir(t), "relay"), "-C", e.Conf, "listener", "passwd", name)
		return testbin.Run(c, first+"\n"+second+"\n")
	}
	r := run("tty", "s3cret-on-tty", "s3cret-on-tty")
	if r.Code != 0 || !strings.Contains(r.Stdout, "user tty added") || strings.Contains(r.Stdout, "s3cret") {
		t.Fatalf("terminal: exit %d, output %q (the password must not be echoed)", r.Code, r.Stdout)
	}
	r = run("tty2", "one", "two")
	if r.Code != 65 || !strings.Contains(r.Stdout, "the passwords differ") {
		t.Errorf("two different passwords: exit %d %q, want 65", r.Code, r.Stdout)
	}
	if got, _ := os.ReadFile(users); strings.Contains(string(got), "tty2") {
		t.Error("tty2 was added")
	}
}
