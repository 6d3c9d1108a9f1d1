package daemon

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/spool"
)

func queueMessage(t *testing.T, sp *spool.Spool, next time.Time, held bool) string {
	t.Helper()
	d, err := sp.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{Sender: "a@example.com", Recipients: []spool.Recipient{{Address: "b@example.net", Status: spool.Pending}},
		Arrival: time.Now(), NextAttempt: next, Held: held}
	if err := d.WriteEnvelope(env); err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("Subject: x\r\n\r\nbody\r\n"))
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func TestClassify(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	later := now.Add(time.Hour).Truncate(time.Second)
	due := queueMessage(t, sp, now.Add(-time.Second), false)
	waiting := queueMessage(t, sp, later, false)
	held := queueMessage(t, sp, now, true)
	if err := os.Mkdir(filepath.Join(dir, "maildrop"), 0o700); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Spool: sp}
	dirs := sp.WatchDirs()
	if len(dirs) != 2 {
		t.Fatalf("watched %v, want the queue and the maildrop", dirs)
	}
	q, m := dirs[0], dirs[1]
	for _, tc := range []struct {
		name    string
		ev      fsnotify.Event
		wantDue bool
		wantAt  time.Time
	}{
		{"a drop", fsnotify.Event{Name: m + "/1K0WVAYZBBKG60V", Op: fsnotify.Create}, true, time.Time{}},
		{"a drop being written", fsnotify.Event{Name: m + "/.1K0WVAYZBBKG60V", Op: fsnotify.Create}, false, time.Time{}},
		{"a removal", fsnotify.Event{Name: q + "/" + due, Op: fsnotify.Remove}, false, time.Time{}},
		{"a due message", fsnotify.Event{Name: q + "/" + due, Op: fsnotify.Create}, true, time.Time{}},
		{"a due envelope", fsnotify.Event{Name: q + "/" + due + ".env", Op: fsnotify.Create}, true, time.Time{}},
		{"a deferred envelope", fsnotify.Event{Name: q + "/" + waiting + ".env", Op: fsnotify.Create}, false, later},
		{"a held message", fsnotify.Event{Name: q + "/" + held, Op: fsnotify.Create}, false, time.Time{}},
		{"a message gone", fsnotify.Event{Name: q + "/1K0WVAYZBBKG60V", Op: fsnotify.Create}, false, time.Time{}},
		{"a stranger", fsnotify.Event{Name: q + "/notes.txt", Op: fsnotify.Create}, false, time.Time{}},
	} {
		gotDue, gotAt, _ := d.classify(tc.ev, now)
		if gotDue != tc.wantDue || !gotAt.Equal(tc.wantAt) {
			t.Errorf("%s: due %v at %v, want %v %v", tc.name, gotDue, gotAt, tc.wantDue, tc.wantAt)
		}
	}
	next, ok := d.scan()
	if !ok || !next.Before(now) {
		t.Errorf("scan: %v %v, want the due message's time", next, ok)
	}
}

func TestReload(t *testing.T) {
	var buf bytes.Buffer
	cur := config.Default()
	cur.Path = "/etc/relay/relay.toml"
	d := &Daemon{Log: maillog.New(&buf)}

	d.Reload = func() (*config.Config, error) { return nil, errors.New("relay.toml:3: bad\nrelay.toml:4: worse") }
	if got := d.reload(cur); got != cur {
		t.Error("a broken configuration replaced the one in use")
	}
	if !strings.Contains(buf.String(), `status=reload-refused`) || !strings.Contains(buf.String(), "relay.toml:3: bad relay.toml:4: worse") {
		t.Errorf("refusal not logged on one line: %q", buf.String())
	}

	buf.Reset()
	nc := config.Default()
	nc.Spool, nc.Daemon.User, nc.Daemon.Listen, nc.Log.To = "/elsewhere", "nobody", []string{"127.0.0.1:25"}, "syslog"
	nc.Queue.RetryMin = config.Duration(time.Minute)
	d.Reload = func() (*config.Config, error) { return nc, nil }
	got := d.reload(cur)
	if got != nc || got.Queue.RetryMin != config.Duration(time.Minute) {
		t.Fatal("a good configuration was not taken")
	}
	if got.Spool != cur.Spool || got.Daemon.User != cur.Daemon.User || len(got.Daemon.Listen) != 0 || got.Log.To != cur.Log.To {
		t.Errorf("keys that need a restart changed: %+v", got)
	}
	if !strings.Contains(buf.String(), "spool, daemon.user, daemon.listen, log.to need a restart") {
		t.Errorf("no warning about the keys that need a restart: %q", buf.String())
	}
}

// A due message another process holds counts as due a second later: its
// holder rewrites the envelope (an event) when it is done, and this is
// when to look again if it died instead.
func TestScan_HeldMessageIsDueASecondLater(t *testing.T) {
	sp, err := spool.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Spool: sp, Log: maillog.New(&bytes.Buffer{})}
	if _, ok := d.scan(); ok {
		t.Error("an empty queue has a due time")
	}
	queueMessage(t, sp, time.Now().Add(time.Hour), false)
	due := queueMessage(t, sp, time.Now().Add(-time.Minute), false)
	l, err := sp.Lock(due)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	next, ok := d.scan()
	l.Close()
	if !ok || next.Before(before.Add(time.Second)) || next.After(time.Now().Add(time.Second)) {
		t.Errorf("scan: %v %v, want a second after the scan (%v)", next, ok, before)
	}
}

func TestScan_UnreadableQueueIsLogged(t *testing.T) {
	sp, err := spool.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(sp.WatchDirs()[0]); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	d := &Daemon{Spool: sp, Log: maillog.New(&buf)}
	if next, ok := d.scan(); ok {
		t.Errorf("scan of a queue that cannot be read: %v, want no due time", next)
	}
	if !strings.Contains(buf.String(), "status=error") {
		t.Errorf("the failure is not logged: %q", buf.String())
	}
}

func TestRescan(t *testing.T) {
	cfg := config.Default()
	d := &Daemon{}
	if got := d.rescan(cfg); got != DefaultRescan {
		t.Errorf("unset: %v, want %v", got, DefaultRescan)
	}
	cfg.Daemon.Rescan = config.Duration(time.Minute)
	if got := d.rescan(cfg); got != time.Minute {
		t.Errorf("[daemon] rescan = 1m: %v", got)
	}
	d.Rescan = time.Hour
	if got := d.rescan(cfg); got != time.Hour {
		t.Errorf("Daemon.Rescan overrides: %v, want 1h", got)
	}
}

func TestReload_ListenNetworksNeedARestart(t *testing.T) {
	var buf bytes.Buffer
	cur := config.Default()
	cur.Daemon.ListenNetworks = []string{"172.17.0.0/16"}
	nc := config.Default()
	nc.Daemon.ListenNetworks = []string{"0.0.0.0/0"}
	d := &Daemon{Log: maillog.New(&buf), Reload: func() (*config.Config, error) { return nc, nil }}
	got := d.reload(cur)
	if len(got.Daemon.ListenNetworks) != 1 || got.Daemon.ListenNetworks[0] != "172.17.0.0/16" {
		t.Errorf("listen_networks changed without a restart: %v", got.Daemon.ListenNetworks)
	}
	if !strings.Contains(buf.String(), "daemon.listen_networks need a restart") {
		t.Errorf("no warning: %q", buf.String())
	}
}
