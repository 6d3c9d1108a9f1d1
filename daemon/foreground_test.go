package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/sysexits"
)

func submitter(t *testing.T, cfg *config.Config, drop bool) *sendmailcompat.Submitter {
	t.Helper()
	sp := createSpool(t, cfg, drop)
	return &sendmailcompat.Submitter{Spool: sp, Domain: "example.com", UID: os.Getuid(), User: "tester",
		Now: time.Now, Drop: drop, Log: maillog.New(&testsmtp.LockedBuffer{})}
}

func TestDeliverNow_Delivered(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	s := submitter(t, cfg, false)
	other := submit(t, s.Spool, "other@test", false)
	id := submit(t, s.Spool, "wait@test", false)
	var trace testsmtp.LockedBuffer
	if err := DeliverNow(cfg, s, id, 30*time.Second, &trace); err != nil {
		t.Fatalf("DeliverNow: %v", err)
	}
	if sink.Count("wait@test") != 1 || sink.Count("other@test") != 0 {
		t.Errorf("delivered %v, want only the message waited for", sink.Snapshot())
	}
	if _, err := s.Spool.Read(other); err != nil {
		t.Errorf("the other message: %v", err)
	}
	if !strings.Contains(trace.String(), "EHLO") || !strings.Contains(trace.String(), "status=sent") {
		t.Errorf("-v shows no dialogue or log: %q", trace.String())
	}
}

func TestDeliverNow_StillQueuedIs75(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	sink.Down.Store(true)
	cfg := testConfig(t, sink.Port, "")
	s := submitter(t, cfg, false)
	id := submit(t, s.Spool, "wait@test", false)
	err := DeliverNow(cfg, s, id, 30*time.Second, nil)
	if sysexits.Code(err, 0) != sysexits.TempFail || !strings.Contains(err.Error(), "queued as "+id) {
		t.Errorf("err %v, want exit 75 saying it is queued", err)
	}
	if _, err := s.Spool.Read(id); err != nil {
		t.Errorf("the message is gone: %v", err)
	}
}

func TestDeliverNow_CannotDeliverIs75(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	s := submitter(t, cfg, true)
	if err := DeliverNow(cfg, s, "1K0WVAYZBBKG60V", time.Second, nil); sysexits.Code(err, 0) != sysexits.TempFail ||
		!strings.Contains(err.Error(), "for the relay daemon") {
		t.Errorf("a maildrop user: %v, want 75 for the daemon", err)
	}
	cfg = testConfig(t, 0, "")
	s = submitter(t, cfg, false)
	if err := DeliverNow(cfg, s, "1K0WVAYZBBKG60V", time.Second, nil); sysexits.Code(err, 0) != sysexits.TempFail ||
		!strings.Contains(err.Error(), "no [[smarthost]]") {
		t.Errorf("no smarthost: %v, want 75", err)
	}
}

func TestWaitResult(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   relay.Stats
		err  error
		code int
		says string
	}{
		{"delivered", relay.Stats{Messages: 1, Delivered: 2}, nil, 0, ""},
		{"refused", relay.Stats{Messages: 1, Delivered: 1, Failed: 1}, nil, sysexits.NoUser, "refused permanently"},
		{"rate limit", relay.Stats{Messages: 1, Waiting: 1}, nil, sysexits.TempFail, "rate limit"},
		{"deferred", relay.Stats{Messages: 1, Deferred: 1}, nil, sysexits.TempFail, "not delivered yet"},
		{"held", relay.Stats{Messages: 1, Held: 1}, nil, sysexits.TempFail, "not delivered yet"},
		{"not taken", relay.Stats{}, nil, sysexits.TempFail, "not delivered yet"},
		{"error", relay.Stats{}, errors.New("boom"), sysexits.TempFail, "boom"},
	} {
		err := waitResult("1K0WVAYZBBKG60V", tt.st, tt.err)
		if got := sysexits.Code(err, -1); got != tt.code {
			t.Errorf("%s: exit %d (%v), want %d", tt.name, got, err, tt.code)
		}
		if err != nil && (!strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "queued as 1K0WVAYZBBKG60V")) {
			t.Errorf("%s: %q should say %q and the queue ID", tt.name, err, tt.says)
		}
	}
}

func TestWantsDetached(t *testing.T) {
	port := testsmtp.ClosedPort(t)
	cfg := testConfig(t, port, "")
	s := submitter(t, cfg, false)
	if !wantsDetached(cfg, s) {
		t.Fatal("a user who can deliver, no runner at work: no detached runner")
	}
	lock, ok, err := s.Spool.TryRunLock()
	if err != nil || !ok {
		t.Fatal(err)
	}
	if wantsDetached(cfg, s) {
		t.Error("started a runner beside the one at work")
	}
	lock.Release()

	off := testConfig(t, port, "[daemon]\ndetached_delivery = false\n")
	if wantsDetached(off, submitter(t, off, false)) {
		t.Error("detached_delivery = false: a runner all the same")
	}
	if wantsDetached(cfg, submitter(t, testConfig(t, port, ""), true)) {
		t.Error("a maildrop user started a runner")
	}
	none := testConfig(t, 0, "")
	if wantsDetached(none, submitter(t, none, false)) {
		t.Error("no smarthost: a runner all the same")
	}
}

func TestCanReadSecret(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		sh   config.Smarthost
		want bool
	}{
		{"no AUTH", config.Smarthost{}, true},
		{"inline password", config.Smarthost{Username: "u", Password: "p"}, true},
		{"readable file", config.Smarthost{Username: "u", PasswordFile: secret}, true},
		{"missing file", config.Smarthost{Username: "u", PasswordFile: filepath.Join(dir, "none")}, false},
		{"command found", config.Smarthost{Username: "u", PasswordCommand: []string{os.Args[0]}}, true},
		{"command missing", config.Smarthost{Username: "u", PasswordCommand: []string{filepath.Join(dir, "none")}}, false},
		{"no secret at all", config.Smarthost{Username: "u"}, false},
	} {
		if got := canReadSecret(&tt.sh); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
