package check_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/check"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// setup loads a configuration with a spool in a fresh directory (not
// created) and a smarthost; nothing of the host's is read.
func setup(t *testing.T, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf("spool = %q\ndomain = \"example.com\"\n%s\n[rewrite]\naliases = \"\"\n\n[[smarthost]]\nhost = \"smtp.example.com\"\nport = 587\n", filepath.Join(dir, "spool"), extra)
	path := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Location{Path: path, Required: true})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func queue(t *testing.T, sp *spool.Spool, ownSide bool) {
	t.Helper()
	d, err := sp.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{Sender: "a@example.com", Recipients: []spool.Recipient{{Address: "b@example.net", Status: spool.Pending}},
		Arrival: time.Now(), NextAttempt: time.Now()}
	if ownSide {
		f := &failure.Failure{Stage: failure.StageAuth, Code: 535, Enhanced: "5.7.8", Text: "authentication failed", Time: time.Now()}
		env.Recipients[0].Failure, env.LastFailure = f, f
	}
	if err := d.WriteEnvelope(env); err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("Subject: x\r\n\r\nbody\r\n"))
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestRun_MissingSpoolIsFine(t *testing.T) {
	cfg := setup(t, "")
	var out, warn strings.Builder
	if err := check.Run(cfg, &out, &warn); err != nil {
		t.Fatalf("Run: %v (warnings %q)", err, warn.String())
	}
	want := fmt.Sprintf("configuration %s: OK\nspool %s: 0 message(s) queued\n", cfg.Path, cfg.Spool)
	if out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
}

func TestRun_CountsTheQueueAndWarnsAboutCorruptFiles(t *testing.T) {
	cfg := setup(t, "")
	sp, err := spool.Create(cfg.Spool)
	if err != nil {
		t.Fatal(err)
	}
	queue(t, sp, false)
	queue(t, sp, false)
	dir, _ := sp.Corrupt()
	if err := os.WriteFile(filepath.Join(dir, "junk"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, warn strings.Builder
	if err := check.Run(cfg, &out, &warn); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(out.String(), ": 2 message(s) queued") {
		t.Errorf("stdout %q, want 2 messages", out.String())
	}
	if !strings.Contains(warn.String(), "1 file(s) in "+dir+" need a look") {
		t.Errorf("warnings %q, want the corrupt file", warn.String())
	}
}

func TestRun_StuckMailIs75(t *testing.T) {
	cfg := setup(t, "")
	sp, err := spool.Create(cfg.Spool)
	if err != nil {
		t.Fatal(err)
	}
	queue(t, sp, false)
	queue(t, sp, true)
	err = check.Run(cfg, &strings.Builder{}, &strings.Builder{})
	var stuck *check.StuckError
	if sysexits.Code(err, 0) != sysexits.TempFail || !errors.As(err, &stuck) || stuck.N != 1 || !strings.Contains(err.Error(), "535 5.7.8") {
		t.Errorf("err %v, want exit 75 for one stuck message with its reason", err)
	}
}

func TestRun_ConfigurationErrorsAre78(t *testing.T) {
	cfg := setup(t, "")
	cfg.Smarthosts[0].Username = "robot@example.com"
	cfg.Smarthosts[0].PasswordFile = filepath.Join(t.TempDir(), "missing.secret")
	var out strings.Builder
	err := check.Run(cfg, &out, &strings.Builder{})
	if sysexits.Code(err, 0) != sysexits.Config || !strings.Contains(err.Error(), "missing.secret") {
		t.Errorf("err %v, want exit 78 about the password file", err)
	}
	if out.Len() > 0 {
		t.Errorf("an OK on stdout despite errors: %q", out.String())
	}
}

func TestSpool_SystemInstallDirsAreChecked(t *testing.T) {
	cfg := setup(t, "")
	if _, err := spool.Create(cfg.Spool); err != nil {
		t.Fatal(err)
	}
	// What relay install makes, owned by whoever runs the test.
	for _, d := range spool.SystemDirs(cfg.Spool) {
		if err := os.MkdirAll(d.Path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.Path, d.Mode); err != nil {
			t.Fatal(err)
		}
	}
	var warn strings.Builder
	if _, err := check.Spool(cfg, &warn); err != nil {
		t.Fatalf("a spool as relay install makes it: %v", err)
	}
	if !strings.Contains(warn.String(), "no relay daemon is running") {
		t.Errorf("warnings %q, want the missing daemon", warn.String())
	}
	drop := filepath.Join(cfg.Spool, "maildrop")
	if err := os.Chmod(drop, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	_, err := check.Spool(cfg, &warn)
	if err == nil || !strings.Contains(err.Error(), drop+": mode 1777, want 3733 (relay install fixes it)") {
		t.Errorf("err %v, want the maildrop's mode", err)
	}
}

func TestSpool_UnusableSingleUserSpool(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may use any directory")
	}
	cfg := setup(t, "")
	if _, err := spool.Create(cfg.Spool); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(cfg.Spool, "queue")
	os.Chmod(q, 0o500)
	defer os.Chmod(q, 0o700)
	if _, err := check.Spool(cfg, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "is not writable by uid") {
		t.Errorf("err %v, want the queue not writable", err)
	}
}
