package maillog_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/maillog"
)

func devIno(t *testing.T, f *os.File) (dev, ino uint64) {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return uint64(st.Dev), uint64(st.Ino)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s does not end with a newline: %q", path, b)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// withUmask runs the test under a restrictive umask, to prove the file
// mode does not depend on it.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func TestOpenFile_TimestampedLinesMode0640(t *testing.T) {
	withUmask(t, 0o077)
	path := filepath.Join(t.TempDir(), "relay.log")
	var stderr bytes.Buffer
	l, err := maillog.Open(path, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := time.Now().Truncate(time.Second)
	l.Info("id", "4bX9", "status", "queued")
	l.Warning("alias", "|cmd", "status", "ignored")
	l.Error("id", "4bX9", "status", "deferred", "reply", "421 try later")
	after := time.Now()

	if m := mode(t, path); m != 0o640 {
		t.Errorf("mode %o, want 640 (umask 077)", m)
	}
	lines := readLines(t, path)
	pid := os.Getpid()
	re := regexp.MustCompile(`^(\S+) relay\[(\d+)\]: (.*)$`)
	wantBodies := []string{
		"id=4bX9 status=queued",
		"warning: alias=|cmd status=ignored",
		`error: id=4bX9 status=deferred reply="421 try later"`,
	}
	if len(lines) != len(wantBodies) {
		t.Fatalf("lines %q, want %d", lines, len(wantBodies))
	}
	for i, line := range lines {
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %q: not TIMESTAMP relay[PID]: …", line)
			continue
		}
		ts, err := time.Parse(time.RFC3339, m[1])
		if err != nil {
			t.Errorf("line %q: timestamp: %v", line, err)
		} else if ts.Before(before) || ts.After(after) {
			t.Errorf("line %q: timestamp %v not between %v and %v", line, ts, before, after)
		}
		if strings.HasSuffix(m[1], "Z") {
			t.Errorf("line %q: timestamp ends in Z, want a numeric offset", line)
		}
		if m[2] != fmt.Sprint(pid) {
			t.Errorf("line %q: pid %s, want %d", line, m[2], pid)
		}
		if m[3] != wantBodies[i] {
			t.Errorf("line %q: body %q, want %q", line, m[3], wantBodies[i])
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr got %q", stderr.String())
	}
}

func TestOpenFile_TimestampLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.log")
	l, err := maillog.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	at := time.Date(2026, 11, 22, 21, 42, 28, 500, time.UTC)
	maillog.SetNow(l, func() time.Time { return at })
	l.Info("k", "utc")
	at = time.Date(2026, 11, 23, 0, 42, 28, 0, time.FixedZone("MSK", 3*3600))
	l.Info("k", "msk")
	pid := os.Getpid()
	want := []string{
		fmt.Sprintf("2026-11-22T21:42:28+00:00 relay[%d]: k=utc", pid),
		fmt.Sprintf("2026-11-23T00:42:28+03:00 relay[%d]: k=msk", pid),
	}
	if got := readLines(t, path); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestOpenFile_AppendsAndKeepsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.log")
	if err := os.WriteFile(path, []byte("earlier line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := maillog.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("k", "v")
	l.Close()
	lines := readLines(t, path)
	if len(lines) != 2 || lines[0] != "earlier line" || !strings.HasSuffix(lines[1], ": k=v") {
		t.Errorf("lines %q, want the earlier line then ours", lines)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %o, want the administrator's 600 kept", m)
	}
}

func TestReopen_AfterLogrotateRename(t *testing.T) {
	withUmask(t, 0o077)
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.log")
	l, err := maillog.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Info("n", "1")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Info("n", "2") // still the renamed file, until Reopen
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Info("n", "3")

	old := readLines(t, path+".1")
	cur := readLines(t, path)
	if len(old) != 2 || !strings.HasSuffix(old[0], ": n=1") || !strings.HasSuffix(old[1], ": n=2") {
		t.Errorf("rotated file %q, want n=1 and n=2", old)
	}
	if len(cur) != 1 || !strings.HasSuffix(cur[0], ": n=3") {
		t.Errorf("new file %q, want only n=3", cur)
	}
	if m := mode(t, path); m != 0o640 {
		t.Errorf("new file mode %o, want 640", m)
	}
}

func TestReopen_FailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.log")
	l, err := maillog.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Rename(path, path+".1")
	if err := os.Mkdir(path, 0o755); err != nil { // the path is now unusable
		t.Fatal(err)
	}
	err = l.Reopen()
	if err == nil || !strings.HasPrefix(err.Error(), "log: ") {
		t.Fatalf("Reopen onto a directory: err %v, want a log: error", err)
	}
	l.Info("still", "logged")
	if lines := readLines(t, path+".1"); len(lines) != 1 || !strings.HasSuffix(lines[0], ": still=logged") {
		t.Errorf("old file %q, want the line logged after the failed Reopen", lines)
	}
}

func TestOpenFile_WriteFailureGoesToStderrLoudly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.log")
	var stderr bytes.Buffer
	l, err := maillog.Open(path, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	maillog.BreakFile(l)
	l.Error("id", "1", "status", "deferred")
	l.Info("id", "2", "status", "sent")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Info("id", "3", "status", "sent")
	l.Info("id", "4", "status", "sent")
	l.Close()
	l.Info("id", "5", "status", "sent")

	got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^error: log=` + regexp.QuoteMeta(path) + ` status=failed reason=".*file already closed"$`),
		regexp.MustCompile(`^error: id=1 status=deferred$`),
		regexp.MustCompile(`^id=2 status=sent$`),
		regexp.MustCompile(`^log=` + regexp.QuoteMeta(path) + ` status=resumed$`),
		regexp.MustCompile(`^id=5 status=sent$`), // after Close
	}
	if len(got) != len(want) {
		t.Fatalf("stderr %q, want %d lines", got, len(want))
	}
	for i := range want {
		if !want[i].MatchString(got[i]) {
			t.Errorf("stderr line %d: %q, want %v", i, got[i], want[i])
		}
	}
	if lines := readLines(t, path); len(lines) != 2 || !strings.HasSuffix(lines[0], ": id=3 status=sent") {
		t.Errorf("file %q, want id=3 and id=4", lines)
	}
}

func TestOpen_Errors(t *testing.T) {
	defer maillog.SetSyslogAddr(filepath.Join(t.TempDir(), "no-such-socket"))()
	for _, to := range []string{"relative/relay.log", "journal", "/nonexistent-dir/relay.log", "syslog"} {
		l, err := maillog.Open(to, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "log: ") {
			t.Errorf("Open(%q) = %v, %v; want a log: error", to, l, err)
		}
	}
}

// listenSyslog is a syslog daemon's /dev/log: it returns the socket path
// and the datagrams received.
func listenSyslog(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	// Short: a unix socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "maillog")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Cleanup(maillog.SetSyslogAddr(path))
	return path, c
}

func readDatagram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("syslog: %v", err)
	}
	return string(buf[:n])
}

func TestOpenSyslog_PriorityAndTag(t *testing.T) {
	path, c := listenSyslog(t)
	var stderr bytes.Buffer
	l, err := maillog.Open("syslog", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("id", "4bX9", "status", "sent")
	l.Warning("alias", "|cmd", "status", "ignored")
	l.Error("id", "4bX9", "status", "deferred", "reply", "535 5.7.8 auth failed")
	if err := l.Reopen(); err != nil {
		t.Errorf("Reopen: %v", err)
	}

	// Local syslog format: <PRI>Mmm dd hh:mm:ss tag[pid]: message, no
	// host name (journald and rsyslog add it).
	pid := os.Getpid()
	for _, want := range []struct{ pri, body string }{
		{"22", "id=4bX9 status=sent"},                                          // mail (2) * 8 + info (6)
		{"20", "warning: alias=|cmd status=ignored"},                           // + warning (4)
		{"19", `error: id=4bX9 status=deferred reply="535 5.7.8 auth failed"`}, // + err (3)
	} {
		got := readDatagram(t, c)
		re := regexp.MustCompile(`^<` + want.pri + `>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d relay\[` + fmt.Sprint(pid) + `\]: ` + regexp.QuoteMeta(want.body) + "\n$")
		if !re.MatchString(got) {
			t.Errorf("datagram %q, want %v", got, re)
		}
	}

	// The daemon goes away: the line and the reason go to stderr.
	c.Close()
	os.Remove(path)
	l.Error("id", "4bX9", "status", "held")
	if s := stderr.String(); !regexp.MustCompile(`^error: log=syslog status=failed reason=".+"\nerror: id=4bX9 status=held\n$`).MatchString(s) {
		t.Errorf("stderr %q, want the failure and the line", s)
	}
	if err := l.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
}

// Two Loggers on one file, as the daemon and a sendmail process append
// to it side by side, each shared by four goroutines: a line must reach
// the file in one write, whole.
func TestConcurrentFileLines_NoInterleaving(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.log")
	var logs [2]*maillog.Logger
	for i := range logs {
		l, err := maillog.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = l
	}
	const goroutines, perG = 8, 1000
	pad := strings.Repeat("x", 300)
	var wg sync.WaitGroup
	for g := range goroutines {
		l := logs[g%2]
		wg.Go(func() {
			for n := range perG {
				if n%100 == 0 {
					l.AddSecrets(fmt.Sprintf("secret-%d-%d", g, n))
				}
				l.Info("g", fmt.Sprint(g), "n", fmt.Sprint(n), "pad", pad, "reply", "250 ok\r\n250 done")
			}
		})
	}
	wg.Wait()
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d relay\[` + fmt.Sprint(os.Getpid()) + `\]: g=(\d) n=(\d+) pad=` + pad + ` reply="250 ok; 250 done"$`)
	seen := make(map[string]bool)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("broken line %q", sc.Text())
		}
		k := m[1] + "/" + m[2]
		if seen[k] {
			t.Fatalf("line g=%s n=%s twice", m[1], m[2])
		}
		seen[k] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != goroutines*perG {
		t.Errorf("%d lines, want %d", len(seen), goroutines*perG)
	}
}

func TestConcurrentWriterLines_NoInterleaving(t *testing.T) {
	var buf bytes.Buffer // not safe for concurrent use: the Logger must serialise
	l := maillog.New(&buf)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 1000 {
				l.Log(maillog.Level(n%3), "g", fmt.Sprint(g), "n", fmt.Sprint(n))
			}
		})
	}
	wg.Wait()
	re := regexp.MustCompile(`^(warning: |error: )?g=\d n=\d+$`)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for _, line := range lines {
		if !re.MatchString(line) {
			t.Fatalf("broken line %q", line)
		}
	}
	if len(lines) != 8000 {
		t.Errorf("%d lines, want 8000", len(lines))
	}
}

func TestOpenBestEffort_UnwritableFileDiscards(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.log")
	cases := map[string]string{
		"directory missing":           "/nonexistent-dir/relay.log",
		"file missing is not created": missing,
		"a directory":                 dir,
		"relative path":               "relay.log",
	}
	if os.Geteuid() != 0 { // root writes whatever the mode
		ro := filepath.Join(dir, "readonly.log")
		os.WriteFile(ro, nil, 0o400)
		cases["read-only file"] = ro
	}
	for name, to := range cases {
		t.Run(name, func(t *testing.T) {
			l := maillog.OpenBestEffort(to)
			if !maillog.IsDiscard(l) {
				t.Errorf("OpenBestEffort(%q) does not discard", to)
			}
			l.Error("id", "1", "status", "queued")
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenBestEffort created %s (err %v)", missing, err)
	}
}

func TestOpenBestEffort_WritableFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.log")
	os.WriteFile(path, nil, 0o640)
	l := maillog.OpenBestEffort(path)
	l.Info("id", "1", "status", "queued")
	l.Close()
	if lines := readLines(t, path); len(lines) != 1 || !strings.HasSuffix(lines[0], "]: id=1 status=queued") {
		t.Errorf("file %q, want the queued line", lines)
	}
}

func TestOpenBestEffort_SyslogWhenReachable(t *testing.T) {
	_, c := listenSyslog(t)
	for _, to := range []string{"stderr", "syslog"} {
		l := maillog.OpenBestEffort(to)
		l.Info("to", to)
		l.Close()
		if got := readDatagram(t, c); !strings.HasPrefix(got, "<22>") || !strings.HasSuffix(got, "]: to="+to+"\n") {
			t.Errorf("OpenBestEffort(%q): datagram %q", to, got)
		}
	}
}

// TestOpenBestEffort_SilentOnStderr runs OpenBestEffort in a child
// process and checks the child's real stderr and stdout (file
// descriptors 2 and 1, not just os.Stderr) stay empty.
func TestOpenBestEffort_SilentOnStderr(t *testing.T) {
	if os.Getenv("MAILLOG_CHILD") != "" {
		maillog.SetSyslogAddr(os.Getenv("MAILLOG_SYSLOG"))
		l := maillog.OpenBestEffort(os.Getenv("MAILLOG_TO"))
		l.Info("id", "1", "status", "queued")
		l.Warning("k", "v")
		l.Error("id", "1", "status", "failed", "reason", "no space left on device")
		l.Reopen()
		l.Close()
		l.Error("after", "close")
		os.Exit(0)
	}
	dir := t.TempDir()
	noSocket := filepath.Join(dir, "no-socket")
	dead := filepath.Join(dir, "dead-socket") // a socket nobody reads any more
	lc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dead, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	lc.Close()
	for _, tc := range []struct{ to, syslog string }{
		{"stderr", noSocket},
		{"syslog", noSocket},
		{"stderr", dead},
		{"/nonexistent-dir/relay.log", noSocket},
		{"/dev/stderr", noSocket},
		{"/proc/self/fd/2", noSocket},
	} {
		// Once with pipes, once with regular files: then /dev/stderr is
		// a file that the log could append to.
		for _, files := range []bool{false, true} {
			cmd := exec.Command(os.Args[0], "-test.run=^TestOpenBestEffort_SilentOnStderr$")
			// GORACE: without it, each child under -race sleeps 1s at exit.
			cmd.Env = append(os.Environ(), "MAILLOG_CHILD=1", "GORACE=atexit_sleep_ms=0", "MAILLOG_TO="+tc.to, "MAILLOG_SYSLOG="+tc.syslog)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			var outFile, errFile *os.File
			if files {
				outFile, errFile = tempFile(t), tempFile(t)
				cmd.Stdout, cmd.Stderr = outFile, errFile
			}
			err := cmd.Run()
			if files {
				stdout.Write(readAll(t, outFile))
				stderr.Write(readAll(t, errFile))
			}
			if err != nil {
				t.Errorf("to=%s syslog=%s files=%v: child: %v; stderr %q", tc.to, tc.syslog, files, err, stderr.String())
			}
			if stdout.Len()+stderr.Len() != 0 {
				t.Errorf("to=%s syslog=%s files=%v: child wrote stdout %q stderr %q", tc.to, tc.syslog, files, stdout.String(), stderr.String())
			}
		}
	}
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
