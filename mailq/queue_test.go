package mailq_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

func configFor(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Spool = filepath.Join(t.TempDir(), "spool")
	return cfg
}

func queueOne(t *testing.T, sp *spool.Spool, next time.Time) string {
	t.Helper()
	d, err := sp.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{Sender: "a@example.com", Recipients: []spool.Recipient{{Address: "b@example.net", Status: spool.Pending}},
		Arrival: time.Now(), NextAttempt: next, Attempts: 1}
	if err := d.WriteEnvelope(env); err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("Subject: hello\r\n\r\nbody\r\n"))
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func TestOpen_MissingSpoolIsEmpty(t *testing.T) {
	cfg := configFor(t)
	sp, err := mailq.Open(cfg)
	if sp != nil || err != nil {
		t.Fatalf("Open: %v, %v; want nil, nil", sp, err)
	}
	var out strings.Builder
	q := mailq.Queue{Config: cfg, Out: &out, Warn: &out}
	if err := q.List(false); err != nil || out.String() != "Mail queue is empty\n" {
		t.Errorf("list: %q, %v", out.String(), err)
	}
	out.Reset()
	if err := q.List(true); err != nil || out.Len() != 0 {
		t.Errorf("list --json: %q, %v; want nothing", out.String(), err)
	}
	if err := q.Flush(nil); err != nil {
		t.Errorf("flush: %v", err)
	}
	for name, op := range map[string]func() error{
		"show":    func() error { return q.Show("1K0WVAYZBBKG60V") },
		"delete":  func() error { return q.Delete(nil, true) },
		"hold":    func() error { return q.Hold(nil, true) },
		"release": func() error { return q.Release(nil, true) },
	} {
		if err := op(); sysexits.Code(err, 0) != sysexits.NoInput || !strings.Contains(err.Error(), "queue "+name+": the queue is empty") {
			t.Errorf("%s: %v, want exit 66", name, err)
		}
	}
	if _, err := os.Stat(cfg.Spool); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the queue commands made the spool: %v", err)
	}
}

func TestOpen_Unreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every spool")
	}
	cfg := configFor(t)
	if _, err := spool.Create(cfg.Spool); err != nil {
		t.Fatal(err)
	}
	os.Chmod(cfg.Spool, 0)
	defer os.Chmod(cfg.Spool, 0o700)
	if _, err := mailq.Open(cfg); sysexits.Code(err, 0) != sysexits.NoPerm || !strings.Contains(err.Error(), "needs root or the relay group") {
		t.Errorf("Open: %v, want exit 77", err)
	}
}

func TestDenied(t *testing.T) {
	err := mailq.Denied(&fs.PathError{Op: "open", Path: "queue", Err: fs.ErrPermission})
	if sysexits.Code(err, 0) != sysexits.NoPerm || !strings.Contains(err.Error(), "readable by root and the relay group only") {
		t.Errorf("permission: %v", err)
	}
	other := errors.New("disk on fire")
	if mailq.Denied(other) != other || mailq.Denied(nil) != nil {
		t.Error("other errors changed")
	}
}

func TestQueue_Commands(t *testing.T) {
	cfg := configFor(t)
	sp, err := spool.Create(cfg.Spool)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	a, b := queueOne(t, sp, later), queueOne(t, sp, later)
	if err := sp.SetHost("main", spool.HostState{Addr: "x", DownUntil: later, Failure: failure.Failure{Text: "down"}}); err != nil {
		t.Fatal(err)
	}
	var out, warn strings.Builder
	now := time.Now()
	q := mailq.Queue{Config: cfg, Out: &out, Warn: &warn, Now: func() time.Time { return now }}

	if err := q.List(true); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("--json: %d lines, want 2: %q", n, out.String())
	}
	var e mailq.Entry
	if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &e); err != nil || e.QueueID != a {
		t.Errorf("first entry %+v (%v), want %s", e, err, a)
	}

	out.Reset()
	if err := q.List(false); err != nil || !strings.Contains(out.String(), a) || !strings.Contains(out.String(), b) ||
		!strings.Contains(out.String(), "b@example.net") {
		t.Errorf("list: %v %q, want both messages and their recipient", err, out.String())
	}

	out.Reset()
	if err := q.Show(a); err != nil || !strings.Contains(out.String(), "Subject: hello") {
		t.Errorf("show: %v %q", err, out.String())
	}
	if err := q.Show("1K0WVAYZBBKG60V"); sysexits.Code(err, 0) != sysexits.NoInput {
		t.Errorf("show of a message not queued: %v, want 66", err)
	}

	if err := q.Flush([]string{a}); err != nil {
		t.Fatal(err)
	}
	if m, _ := sp.Read(a); !m.NextAttempt.Equal(now) {
		t.Errorf("flushed message due at %v, want %v", m.NextAttempt, now)
	}
	if m, _ := sp.Read(b); m.NextAttempt.Equal(now) {
		t.Error("flush of one message flushed another")
	}
	if st := sp.Host("main"); st != (spool.HostState{}) {
		t.Errorf("flush kept the smarthost down: %+v", st)
	}

	if err := q.Hold([]string{b}, false); err != nil {
		t.Fatal(err)
	}
	if m, _ := sp.Read(b); !m.Held {
		t.Error("hold did not hold")
	}
	if err := q.Release(nil, true); err != nil {
		t.Fatal(err)
	}
	if m, _ := sp.Read(b); m.Held || !m.NextAttempt.Equal(now) {
		t.Errorf("release: held %v, due %v", m.Held, m.NextAttempt)
	}
	if err := q.Delete([]string{a}, false); err != nil {
		t.Fatal(err)
	}
	if ids, _ := sp.IDs(); len(ids) != 1 || ids[0] != b {
		t.Errorf("after delete: %v, want only %s", ids, b)
	}
	if err := q.Delete(nil, true); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := q.List(false); err != nil || !strings.Contains(out.String(), "Mail queue is empty") {
		t.Errorf("list after delete --all: %q, %v", out.String(), err)
	}
}
