package spool_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/spool"
)

func enqueue(t *testing.T, s *spool.Spool, content string, rcpts ...string) string {
	t.Helper()
	d, err := s.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{Sender: "alice@example.org", UID: 1000, User: "alice", Arrival: time.Now()}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Address: r, Status: spool.Pending})
	}
	if err := d.WriteEnvelope(env); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(d, content); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func TestEnqueue_ReadBack(t *testing.T) {
	s := testqueue.NewSpool(t)
	content := "Subject: hi\r\n\r\nbody with \x00 NUL and 8-bit \xff\n.\n"
	id := enqueue(t, s, content, "bob@example.org", "carol@example.org")

	m, err := s.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != id || m.Sender != "alice@example.org" || len(m.Recipients) != 2 || m.UID != 1000 {
		t.Errorf("envelope = %+v", m.Envelope)
	}
	if m.Size != int64(len(content)) {
		t.Errorf("size = %d, want %d", m.Size, len(content))
	}
	if m.Active {
		t.Error("unlocked message reported active")
	}
	f, err := s.OpenContent(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if string(got) != content {
		t.Errorf("content = %q, want %q", got, content)
	}
	// Nothing stays behind in tmp/.
	if names, _ := os.ReadDir(filepath.Join(s.Dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp/ holds %v", names)
	}
}

func TestAbort_LeavesNothing(t *testing.T) {
	s := testqueue.NewSpool(t)
	d, err := s.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	d.WriteEnvelope(&spool.Envelope{Recipients: []spool.Recipient{{Address: "a@b", Status: spool.Pending}}})
	io.WriteString(d, "x")
	d.Abort()
	for _, sub := range []string{"tmp", "queue"} {
		if names, _ := os.ReadDir(filepath.Join(s.Dir, sub)); len(names) != 0 {
			t.Errorf("%s/ holds %v", sub, names)
		}
	}
}

func TestIDs_UniqueAndTimeOrdered(t *testing.T) {
	const n = 2000
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				id := spool.NewID(time.Now())
				if !spool.ValidID(id) {
					t.Errorf("invalid ID %q", id)
				}
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate ID %s", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	early := spool.NewID(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	late := spool.NewID(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if !(early < late) {
		t.Errorf("IDs do not sort by time: %s !< %s", early, late)
	}
	if got := spool.IDTime(late); !got.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("IDTime = %v", got)
	}
	for _, bad := range []string{"", "../../etc/passwd", "0123456789ABCDI", "0123456789abcde", "0123456789ABCDEF"} {
		if spool.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestLock_ExclusiveAndVisibleToReaders(t *testing.T) {
	s := testqueue.NewSpool(t)
	id := enqueue(t, s, "x", "a@b.example")
	l, err := s.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(id); !errors.Is(err, spool.ErrBusy) {
		t.Errorf("second Lock: %v, want ErrBusy", err)
	}
	m, err := s.Read(id)
	if err != nil || !m.Active {
		t.Errorf("Read while locked: active=%v err=%v", m != nil && m.Active, err)
	}
	l.Close()
	l2, err := s.Lock(id)
	if err != nil {
		t.Fatalf("Lock after Close: %v", err)
	}
	l2.Close()
}

func TestLock_RecheckAfterDelete(t *testing.T) {
	s := testqueue.NewSpool(t)
	id := enqueue(t, s, "x", "a@b.example")
	l, err := s.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	// A second runner opens and waits for the lock while the first one
	// delivers and removes the message.
	done := make(chan error)
	go func() {
		l2, err := s.LockWait(id, 5*time.Second)
		if err == nil {
			l2.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("runner that lost the race: %v, want ErrNotFound", err)
	}
}

func TestUpdate_SupersedesArrivalEnvelope(t *testing.T) {
	s := testqueue.NewSpool(t)
	id := enqueue(t, s, "hello", "a@b.example", "c@d.example")
	l, err := s.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	l.Env.Recipients[0].Status = spool.Delivered
	l.Env.Attempts = 1
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	m, err := s.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Attempts != 1 || m.Recipients[0].Status != spool.Delivered || m.Recipients[1].Status != spool.Pending {
		t.Errorf("after update: %+v", m.Envelope)
	}
	if m.Size != 5 {
		t.Errorf("size = %d", m.Size)
	}
	if err := s.Remove(id, time.Second); err != nil {
		t.Fatal(err)
	}
	if names, _ := os.ReadDir(filepath.Join(s.Dir, "queue")); len(names) != 0 {
		t.Errorf("queue/ after delete holds %v", names)
	}
	if _, err := s.Read(id); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("Read after delete: %v", err)
	}
}

func TestCorrupt_MovedAsideNeverDeleted(t *testing.T) {
	s := testqueue.NewSpool(t)
	good := enqueue(t, s, "ok", "a@b.example")
	bad := spool.NewID(time.Now())
	garbage := "this is not a queue file\n"
	os.WriteFile(filepath.Join(s.Dir, "queue", bad), []byte(garbage), 0o600)
	newer := spool.NewID(time.Now())
	os.WriteFile(filepath.Join(s.Dir, "queue", newer), []byte("relay-spool 99\n{}\n"), 0o600)

	if _, err := s.Read(bad); !errors.Is(err, spool.ErrCorrupt) {
		t.Errorf("Read corrupt: %v", err)
	}
	if _, err := s.Lock(bad); !errors.Is(err, spool.ErrCorrupt) || !strings.Contains(err.Error(), "moved to") {
		t.Errorf("Lock corrupt: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Dir, "corrupt", bad)); string(b) != garbage {
		t.Errorf("corrupt/%s = %q, %v", bad, b, err)
	}
	if _, err := s.Lock(newer); !errors.Is(err, spool.ErrNewer) {
		t.Errorf("Lock newer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "queue", newer)); err != nil {
		t.Errorf("newer-format file was moved: %v", err)
	}
	ids, _ := s.IDs()
	if !slices.Contains(ids, good) || slices.Contains(ids, bad) {
		t.Errorf("IDs = %v", ids)
	}
	if _, err := s.Read(good); err != nil {
		t.Errorf("good message after corrupt one: %v", err)
	}
}

func TestClean(t *testing.T) {
	s := testqueue.NewSpool(t)
	id := enqueue(t, s, "x", "a@b.example")
	old := time.Now().Add(-2 * spool.DraftMaxAge)

	dead := filepath.Join(s.Dir, "tmp", spool.NewID(time.Now()))
	os.WriteFile(dead, []byte("half"), 0o600)
	os.Chtimes(dead, old, old)

	live, err := s.NewDraft() // held by a writer
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	livePath := filepath.Join(s.Dir, "tmp", live.ID)
	os.Chtimes(livePath, old, old)

	orphan := filepath.Join(s.Dir, "queue", spool.NewID(time.Now())+".env")
	os.WriteFile(orphan, []byte("{}"), 0o600)
	stray := filepath.Join(s.Dir, "queue", "junk.txt")
	os.WriteFile(stray, []byte("junk"), 0o600)

	probs, err := s.Clean(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 3 {
		t.Errorf("problems = %v", probs)
	}
	for _, p := range []string{dead, orphan, stray} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there", p)
		}
	}
	if _, err := os.Stat(livePath); err != nil {
		t.Errorf("live draft removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "corrupt", "junk.txt")); err != nil {
		t.Errorf("stray not moved to corrupt/: %v", err)
	}
	if _, err := s.Read(id); err != nil {
		t.Errorf("message after Clean: %v", err)
	}
}

func TestChange_Hold(t *testing.T) {
	s := testqueue.NewSpool(t)
	id := enqueue(t, s, "x", "a@b.example")
	err := s.Change(id, time.Second, func(e *spool.Envelope) bool { e.Held = true; return true })
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Read(id)
	if !m.Held {
		t.Error("not held")
	}
}

// TestScan_SameAsRead: Scan, the listing's fast path, gives every message
// exactly as Read does, in arrival order, across its chunks: a newer
// envelope file, a message being delivered, a corrupt file (an error for
// that one only, the rest still listed).
func TestScan_SameAsRead(t *testing.T) {
	s := testqueue.NewSpool(t)
	var ids []string
	for i := range 600 {
		ids = append(ids, enqueue(t, s, fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i), fmt.Sprintf("r%d@example.org", i)))
	}
	l, err := s.Lock(ids[3])
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Env.Attempts = 7
	l.Env.LastFailure = &failure.Failure{Stage: failure.StageRcpt, Code: 451, Text: "later"}
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
	corrupt := ids[300]
	// A new file in its place (relay never rewrites one: the index
	// trusts an inode's content not to change).
	p := filepath.Join(s.Dir, "queue", corrupt)
	if err := os.WriteFile(p+".new", []byte("not a spool file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}

	var got []string
	errs := map[string]error{}
	err = s.Scan(func(id string, m *spool.Message, err error) error {
		got = append(got, id)
		if err != nil {
			errs[id] = err
			return nil
		}
		want, rerr := s.Read(id)
		if rerr != nil {
			t.Fatalf("Read %s: %v", id, rerr)
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("%s: Scan %+v, Read %+v", id, m, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("Scan listed %d ids, want the %d in arrival order", len(got), len(ids))
	}
	if len(errs) != 1 || !errors.Is(errs[corrupt], spool.ErrCorrupt) {
		t.Errorf("errors %v, want ErrCorrupt for %s only", errs, corrupt)
	}
	m, _ := s.Read(ids[3])
	if !m.Active || m.Attempts != 7 {
		t.Errorf("the locked, updated message reads %+v", m)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Scan(func(string, *spool.Message, error) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("an error from fn: Scan returned %v after %d calls", err, n)
	}
}

// TestChangeAll: the batched change writes every changed envelope (across
// batches), leaves the others alone, reports a message a runner holds and
// one that is gone, and leaves nothing behind in tmp/.
func TestChangeAll(t *testing.T) {
	s := testqueue.NewSpool(t)
	var ids []string
	for i := range 600 {
		ids = append(ids, enqueue(t, s, "Subject: x\n\nbody\n", fmt.Sprintf("r%d@example.org", i)))
	}
	busy, err := s.Lock(ids[10])
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	gone := "0000000000ZZZZZ"
	errs := s.ChangeAll(append(slices.Clone(ids), gone), func(e *spool.Envelope) bool {
		if e.Recipients[0].Address[1]%2 == 0 { // r0, r2, …: left alone
			return false
		}
		e.Attempts = 42
		return true
	})
	if len(errs) != 2 || !errors.Is(errs[ids[10]], spool.ErrBusy) || !errors.Is(errs[gone], spool.ErrNotFound) {
		t.Fatalf("errors %v, want ErrBusy for %s and ErrNotFound for %s", errs, ids[10], gone)
	}
	changed := 0
	for i, id := range ids {
		m, err := s.Read(id)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if i != 10 && m.Recipients[0].Address[1]%2 == 1 {
			want = 42
			changed++
		}
		if m.Attempts != want {
			t.Errorf("%s (%s): attempts %d, want %d", id, m.Recipients[0].Address, m.Attempts, want)
		}
	}
	if changed < 250 {
		t.Errorf("only %d messages changed", changed)
	}
	if left, _ := os.ReadDir(filepath.Join(s.Dir, "tmp")); len(left) != 0 {
		t.Errorf("%d files left in tmp/", len(left))
	}
}

// TestScan_LargeEnvelope: an envelope file larger than one read (many
// recipients) is read whole.
func TestScan_LargeEnvelope(t *testing.T) {
	s := testqueue.NewSpool(t)
	var rcpts []string
	for i := range 400 {
		rcpts = append(rcpts, fmt.Sprintf("recipient-number-%d@example.org", i))
	}
	id := enqueue(t, s, "Subject: many\n\nbody\n", rcpts...)
	if err := s.Change(id, 0, func(e *spool.Envelope) bool { e.Attempts = 3; return true }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, "queue", id+".env")); err != nil || fi.Size() < 8192 {
		t.Fatalf("envelope file: %v, %v; want over 8 KB", fi, err)
	}
	n := 0
	err := s.Scan(func(_ string, m *spool.Message, err error) error {
		n++
		if err != nil || m.Attempts != 3 || len(m.Recipients) != 400 {
			t.Errorf("Scan: %v, attempts %d, %d recipients", err, m.Attempts, len(m.Recipients))
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("Scan: %v after %d calls", err, n)
	}
}
