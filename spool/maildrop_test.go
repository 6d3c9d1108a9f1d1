package spool_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/spool"
)

func maildropSpool(t *testing.T) *spool.Spool {
	t.Helper()
	s, err := spool.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "maildrop"), 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

func dropOne(t *testing.T, s *spool.Spool, body string) string {
	t.Helper()
	d, err := s.NewDrop()
	if err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{Sender: "a@example.org", Recipients: []spool.Recipient{{Address: "b@example.org", Status: spool.Pending}}}
	if err := d.WriteEnvelope(env); err != nil {
		t.Fatal(err)
	}
	io.WriteString(d, body)
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// queueFromDrop queues a drop as the pickup does, without removing it:
// the state a crash between the two leaves.
func queueFromDrop(t *testing.T, s *spool.Spool, name string) string {
	t.Helper()
	d, err := s.OpenDrop(name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	draft, err := s.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{Sender: d.Env.Sender, Recipients: d.Env.Recipients, Arrival: time.Now(), Drop: &d.Origin}
	draft.WriteEnvelope(env)
	io.Copy(draft, d.Content())
	if err := draft.Commit(); err != nil {
		t.Fatal(err)
	}
	return draft.ID
}

// A drop already queued is found and removed; another file dropped under
// the same name afterwards is a new message.
func TestQueuedDrops_CrashBetweenCommitAndRemoval(t *testing.T) {
	s := maildropSpool(t)
	name := dropOne(t, s, "Subject: one\n\nx\n")
	other := dropOne(t, s, "Subject: two\n\nx\n")
	id := queueFromDrop(t, s, name)

	got, err := s.QueuedDrops([]string{name, other})
	if err != nil || len(got) != 1 || got[name] != id {
		t.Fatalf("QueuedDrops = %v, %v; want %s: %s", got, err, name, id)
	}
	if err := s.RemoveQueuedDrop(name, id); err != nil {
		t.Fatal(err)
	}
	if s.HasDrop(name) || !s.HasDrop(other) {
		t.Error("the wrong drop was removed")
	}

	// The owner replaces a queued drop with a new file of the same name:
	// not the one queued.
	id2 := queueFromDrop(t, s, other)
	p := filepath.Join(s.Dir, "maildrop", other)
	os.Remove(p)
	os.WriteFile(p, []byte("relay-spool 2\n{}\n"), 0o640)
	if got, _ := s.QueuedDrops([]string{other}); len(got) != 0 {
		t.Errorf("a new file under a queued drop's name counts as queued: %v", got)
	}
	if err := s.RemoveQueuedDrop(other, id2); err == nil || !s.HasDrop(other) {
		t.Errorf("RemoveQueuedDrop removed a file that is not the drop queued: %v", err)
	}
}

// Entries that are no message: a socket is unlinked, an empty directory
// removed, a name too long for corrupt/maildrop-NAME moved aside under a
// shortened name, never over an earlier one.
func TestOpenDrop_EntriesThatAreNoMessage(t *testing.T) {
	s := maildropSpool(t)
	md := filepath.Join(s.Dir, "maildrop")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(md, "sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	os.Mkdir(filepath.Join(md, "dir"), 0o700)
	long := strings.Repeat("n", 250)
	for range 2 {
		os.WriteFile(filepath.Join(md, long), []byte("garbage\n"), 0o640)
		if _, err := s.OpenDrop(long, 1<<20); !errors.Is(err, spool.ErrCorrupt) || !strings.Contains(err.Error(), "moved to") {
			t.Errorf("long name: %v", err)
		}
	}
	for _, name := range []string{"sock", "dir"} {
		if _, err := s.OpenDrop(name, 1<<20); !errors.Is(err, spool.ErrHostile) || !strings.Contains(err.Error(), "removed") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if left, _ := os.ReadDir(md); len(left) != 0 {
		t.Errorf("maildrop holds %v", left)
	}
	corrupt, _ := os.ReadDir(filepath.Join(s.Dir, "corrupt"))
	if len(corrupt) != 2 {
		t.Errorf("corrupt/ holds %v, want both long-named files", corrupt)
	}
}

// A drop the pickup could not deal with is left out of Drops for a while.
func TestDeferDrop(t *testing.T) {
	s := maildropSpool(t)
	name := dropOne(t, s, "Subject: s\n\nx\n")
	now := time.Now()
	s.DeferDrop(name, now)
	if names, _ := s.Drops(now.Add(time.Second)); len(names) != 0 {
		t.Errorf("deferred drop listed: %v", names)
	}
	if names, _ := s.Drops(now.Add(spool.DropRetry)); len(names) != 1 {
		t.Errorf("drop not listed again after DropRetry: %v", names)
	}
	s.DeferDrop(name, now.Add(spool.DropRetry)) // a second failure: twice as long
	if names, _ := s.Drops(now.Add(2*spool.DropRetry + time.Second)); len(names) != 0 {
		t.Errorf("second deferral shorter than 2×DropRetry: %v", names)
	}
}
