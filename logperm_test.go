package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/spool"
)

// TestLogFile_PermissionDenied_Exits77: a user who may not create or
// write the configured log file gets 77 (permission), not 78
// (configuration), with one line, from relay queue run and relay daemon.
// As root the commands run as nobody; as another user, the log's
// directory is made unwritable.
func TestLogFile_PermissionDenied_Exits77(t *testing.T) {
	e := testbin.NewEnv(t, "")
	logDir := filepath.Join(e.Dir, "log")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(logDir, "relay.log")
	e.WriteConf("spool = \"" + e.Spool + "\"\ndomain = \"server1.example.com\"\n[log]\nto = \"" + logFile + "\"\n")
	if _, err := spool.Create(e.Spool); err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// nobody may read the configuration, run the binary and own the
		// spool; the log's directory stays root's.
		cred = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
		for _, d := range []string{testbin.Dir(t), e.Dir, filepath.Dir(e.Dir)} {
			os.Chmod(d, 0o755)
		}
		os.Chmod(e.Conf, 0o644)
		filepath.Walk(e.Spool, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 65534, 65534) })
	} else {
		os.Chmod(logDir, 0o555)
		t.Cleanup(func() { os.Chmod(logDir, 0o755) })
	}
	for _, args := range [][]string{{"queue", "run"}, {"daemon"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c := exec.CommandContext(ctx, testbin.Binary(t), args...)
		c.Env = e.Cmd("relay").Env
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		r := testbin.Run(c, "")
		cancel()
		if r.Code != 77 || !strings.Contains(r.Stderr, "permission denied") || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("relay %s with a log file it may not write: exit %d, stderr %q; want 77 and one line", strings.Join(args, " "), r.Code, r.Stderr)
		}
	}
	if _, err := os.Stat(logFile); err == nil {
		t.Error("the log file was created")
	}
}

// TestLogFile_MissingDirectory_StillExits78: a log file whose directory
// does not exist is the configuration's fault, as before.
func TestLogFile_MissingDirectory_StillExits78(t *testing.T) {
	e := testbin.NewEnv(t, "")
	e.WriteConf("spool = \"" + e.Spool + "\"\n[log]\nto = \"" + filepath.Join(e.Dir, "nodir", "relay.log") + "\"\n")
	if _, err := spool.Create(e.Spool); err != nil {
		t.Fatal(err)
	}
	r := testbin.Run(e.Cmd("relay", "queue", "run"), "")
	if r.Code != 78 || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want 78 and one line", r.Code, r.Stderr)
	}
}
