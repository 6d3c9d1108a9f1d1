package daemon

// SIGHUP to a running Daemon: the configuration read again (a broken one
// refused), the log file reopened.

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
)

// A broken configuration is refused (logged) and the daemon keeps
// delivering with the one in use; a good one takes effect at once.
func TestRun_SIGHUPReloads(t *testing.T) {
	old := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, old.Port, "")
	sp := createSpool(t, cfg, false)
	p := startDaemon(t, &Daemon{Spool: sp, Config: cfg, Reload: reloader(cfg), Rescan: time.Hour})
	p.waitLog(t, "status=started", 10*time.Second)

	good, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Path, append(good, "\nthis is = = not toml\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	signalSelf(t, syscall.SIGHUP)
	p.waitLog(t, "status=reload-refused", 10*time.Second)
	submit(t, sp, "after-broken@test", false)
	if !testsmtp.WaitFor(30*time.Second, func() bool { return old.Count("after-broken@test") == 1 }) {
		t.Fatalf("not delivered with the configuration in use:\n%s", p.log.String())
	}

	// A good new configuration: another smarthost.
	replacement := testsmtp.NewSink(t, 0, 0)
	writeConfig(t, cfg.Path, cfg.Spool, replacement.Port, "")
	signalSelf(t, syscall.SIGHUP)
	p.waitLog(t, "status=reloaded", 10*time.Second)
	submit(t, sp, "after-good@test", false)
	if !testsmtp.WaitFor(30*time.Second, func() bool { return replacement.Count("after-good@test") == 1 }) {
		t.Fatalf("not delivered to the new smarthost:\n%s", p.log.String())
	}
	if old.Count("after-good@test") != 0 {
		t.Error("delivered to the old smarthost after the reload")
	}
	if err := p.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// SIGHUP reopens a log file that logrotate moved away, also without a
// configuration to read again.
func TestRun_SIGHUPReopensTheLog(t *testing.T) {
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	logPath := filepath.Join(t.TempDir(), "relay.log")
	log, err := maillog.Open(logPath, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p := startDaemon(t, &Daemon{Spool: createSpool(t, cfg, false), Config: cfg, Log: log, Rescan: time.Hour})
	logged := func(path, s string) bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), s)
	}
	if !testsmtp.WaitFor(10*time.Second, func() bool { return logged(logPath, "status=started") }) {
		t.Fatal("the daemon did not start")
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	signalSelf(t, syscall.SIGHUP)
	if !testsmtp.WaitFor(10*time.Second, func() bool { _, err := os.Stat(logPath); return err == nil }) {
		t.Fatal("SIGHUP did not reopen the log file")
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	if !logged(logPath, "status=stopped") || logged(logPath+".1", "status=stopped") {
		b1, _ := os.ReadFile(logPath + ".1")
		b, _ := os.ReadFile(logPath)
		t.Errorf("the stop went to the old file:\nold:\n%s\nnew:\n%s", b1, b)
	}
}

// A log file that cannot be reopened is reported in the file in use,
// and the reload goes on.
func TestReload_ReopenFailureIsLogged(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "relay.log")
	log, err := maillog.Open(logPath, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	// Rotated away, and a directory in its place: no file can be opened.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(logPath, 0o700); err != nil {
		t.Fatal(err)
	}
	cur := testConfig(t, 0, "")
	d := &Daemon{Log: log}
	if got := d.reload(cur); got != cur {
		t.Error("without Reload the configuration changed")
	}
	if b, _ := os.ReadFile(logPath + ".1"); !strings.Contains(string(b), "reopening the log") {
		t.Errorf("the failed reopen is not reported: %q", b)
	}
}
