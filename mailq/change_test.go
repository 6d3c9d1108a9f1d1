package mailq_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// queueFiles lists the names in the spool's queue directory.
func queueFiles(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(sp.Dir, "queue"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// enqueueN queues n messages and returns their IDs in arrival order.
func enqueueN(t *testing.T, sp *spool.Spool, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		ids = append(ids, enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100)))
	}
	return ids
}

func isNoInput(err error) bool {
	return errors.Is(err, spool.ErrNotFound) && sysexits.Code(err, 1) == sysexits.NoInput
}

func TestDelete_ByID(t *testing.T) {
	sp := testqueue.NewSpool(t)
	ids := enqueueN(t, sp, 3)
	// One has a newer envelope beside it (queue/ID.env): it goes too.
	update(t, sp, ids[0], func(e *spool.Envelope) { e.Attempts = 1 })

	if err := mailq.Delete(sp, []string{ids[0], ids[2]}, false); err != nil {
		t.Fatal(err)
	}
	if got := queueFiles(t, sp); !slices.Equal(got, []string{ids[1]}) {
		t.Errorf("after deleting two of three messages the queue holds %v, want [%s]", got, ids[1])
	}
}

func TestDelete_All(t *testing.T) {
	sp := testqueue.NewSpool(t)
	enqueueN(t, sp, 3)
	if err := mailq.Delete(sp, nil, true); err != nil {
		t.Fatal(err)
	}
	if got := queueFiles(t, sp); len(got) != 0 {
		t.Errorf("after delete --all the queue holds %v", got)
	}
	out, _ := list(t, sp)
	if out != "Mail queue is empty\n" {
		t.Errorf("List after delete --all:\n%s", out)
	}
}

// An unknown ID is reported (exit 66) without stopping the others.
func TestDelete_UnknownIDGoesOn(t *testing.T) {
	sp := testqueue.NewSpool(t)
	ids := enqueueN(t, sp, 1)
	unknown := spool.NewID(time.Now())
	err := mailq.Delete(sp, []string{unknown, ids[0]}, false)
	if !isNoInput(err) || !strings.Contains(err.Error(), unknown) {
		t.Errorf("Delete of an unknown ID: %v (exit %d), want not found naming it (66)", err, sysexits.Code(err, 1))
	}
	if got := queueFiles(t, sp); len(got) != 0 {
		t.Errorf("the known message was not deleted after the unknown one: %v", got)
	}
}

// A change waits a moment for the runner holding the message.
func TestDelete_WaitsForRunner(t *testing.T) {
	shortLockWait(t, 10*time.Second)
	sp := testqueue.NewSpool(t)
	ids := enqueueN(t, sp, 1)
	l, err := sp.Lock(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		l.Close()
		close(released)
	}()
	start := time.Now()
	err = mailq.Delete(sp, ids, false)
	<-released
	if err != nil {
		t.Fatalf("Delete of a message a runner releases after 100ms: %v", err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("Delete returned after %v without waiting for the runner", d)
	}
	if got := queueFiles(t, sp); len(got) != 0 {
		t.Errorf("queue holds %v", got)
	}
}

func TestDelete_BusyGivesUp(t *testing.T) {
	shortLockWait(t, 50*time.Millisecond)
	sp := testqueue.NewSpool(t)
	ids := enqueueN(t, sp, 1)
	holdLock(t, sp, ids[0])
	err := mailq.Delete(sp, ids, false)
	if !errors.Is(err, spool.ErrBusy) || sysexits.Code(err, 1) == sysexits.NoInput {
		t.Errorf("Delete of a message held by a runner: %v, want busy (not 66)", err)
	}
	if got := queueFiles(t, sp); !slices.Equal(got, ids) {
		t.Errorf("a busy message was touched: queue holds %v", got)
	}
}

func TestHoldRelease(t *testing.T) {
	sp := testqueue.NewSpool(t)
	later := arrival.Add(time.Hour)
	now := arrival.Add(10 * time.Minute)
	ids := enqueueN(t, sp, 3)
	for _, id := range ids {
		update(t, sp, id, func(e *spool.Envelope) { e.Attempts = 1; e.NextAttempt = later })
	}

	if err := mailq.Hold(sp, ids[:2], false); err != nil {
		t.Fatal(err)
	}
	// Holding twice is no error and changes nothing.
	if err := mailq.Hold(sp, ids[:1], false); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if got := read(t, sp, id).Held; got != (i < 2) {
			t.Errorf("message %d held = %v after Hold of the first two", i, got)
		}
	}
	out, _ := list(t, sp)
	if !strings.Contains(out, ids[0]+"!") || !strings.Contains(out, ids[1]+"!") || strings.Contains(out, ids[2]+"!") {
		t.Errorf("List after Hold:\n%s", out)
	}

	if err := mailq.Release(sp, []string{ids[0], ids[2]}, false, now); err != nil {
		t.Fatal(err)
	}
	// A released message is due now; one that was not held keeps its
	// time; one still held is untouched.
	for i, want := range []struct {
		held bool
		next time.Time
	}{{false, now}, {true, later}, {false, later}} {
		m := read(t, sp, ids[i])
		if m.Held != want.held || !m.NextAttempt.Equal(want.next) {
			t.Errorf("message %d after Release: held %v next %v, want held %v next %v", i, m.Held, m.NextAttempt, want.held, want.next)
		}
	}
}

func TestHoldRelease_All(t *testing.T) {
	sp := testqueue.NewSpool(t)
	now := arrival.Add(time.Minute)
	ids := enqueueN(t, sp, 3)
	if err := mailq.Hold(sp, nil, true); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !read(t, sp, id).Held {
			t.Errorf("%s not held after hold --all", id)
		}
	}
	if err := mailq.Release(sp, nil, true, now); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if m := read(t, sp, id); m.Held || !m.NextAttempt.Equal(now) {
			t.Errorf("%s after release --all: held %v next %v", id, m.Held, m.NextAttempt)
		}
	}
}

func TestHoldRelease_UnknownID(t *testing.T) {
	sp := testqueue.NewSpool(t)
	unknown := spool.NewID(time.Now())
	for name, err := range map[string]error{
		"Hold":    mailq.Hold(sp, []string{unknown}, false),
		"Release": mailq.Release(sp, []string{unknown}, false, arrival),
		"Flush":   mailq.Flush(sp, []string{unknown}, arrival),
	} {
		if !isNoInput(err) {
			t.Errorf("%s of an unknown ID: %v (exit %d), want 66", name, err, sysexits.Code(err, 1))
		}
	}
}

// A flush makes deferred mail due now; held mail stays held, mail due
// already keeps its time, and one being delivered is skipped quietly.
func TestFlush_All(t *testing.T) {
	sp := testqueue.NewSpool(t)
	now := arrival.Add(10 * time.Minute)
	later, earlier := now.Add(time.Hour), now.Add(-time.Minute)
	ids := enqueueN(t, sp, 4)
	deferred, held, due, active := ids[0], ids[1], ids[2], ids[3]
	for _, id := range ids {
		update(t, sp, id, func(e *spool.Envelope) {
			e.Attempts = 1
			e.NextAttempt = later
			e.Held = id == held
			if id == due {
				e.NextAttempt = earlier
			}
		})
	}
	holdLock(t, sp, active)

	if err := mailq.Flush(sp, nil, now); err != nil {
		t.Fatalf("Flush of the whole queue with one message being delivered: %v", err)
	}
	for id, want := range map[string]time.Time{deferred: now, held: later, due: earlier, active: later} {
		if got := read(t, sp, id).NextAttempt; !got.Equal(want) {
			t.Errorf("%s next attempt %v after Flush, want %v", id, got, want)
		}
	}
	if !read(t, sp, held).Held {
		t.Errorf("Flush released a held message")
	}
}

func TestFlush_ByID(t *testing.T) {
	sp := testqueue.NewSpool(t)
	now := arrival.Add(10 * time.Minute)
	later := now.Add(time.Hour)
	ids := enqueueN(t, sp, 3)
	for _, id := range ids {
		update(t, sp, id, func(e *spool.Envelope) { e.Attempts = 1; e.NextAttempt = later })
	}
	holdLock(t, sp, ids[2])

	if err := mailq.Flush(sp, ids[:1], now); err != nil {
		t.Fatal(err)
	}
	if got := read(t, sp, ids[0]).NextAttempt; !got.Equal(now) {
		t.Errorf("flushed message next attempt %v, want %v", got, now)
	}
	if got := read(t, sp, ids[1]).NextAttempt; !got.Equal(later) {
		t.Errorf("a message not named was flushed too: next attempt %v", got)
	}
	// Named explicitly, a message being delivered is reported.
	if err := mailq.Flush(sp, ids[2:], now); !errors.Is(err, spool.ErrBusy) {
		t.Errorf("Flush naming a message being delivered: %v, want busy", err)
	}
}

func TestChanges_PermissionDenied(t *testing.T) {
	shortLockWait(t, 50*time.Millisecond)
	sp := testqueue.NewSpool(t)
	ids := enqueueN(t, sp, 1)
	errs := map[string]error{}
	withoutAccess(t, sp, func() {
		errs["Delete"] = mailq.Delete(sp, ids, false)
		errs["Delete --all"] = mailq.Delete(sp, nil, true)
		errs["Hold"] = mailq.Hold(sp, ids, false)
		errs["Release --all"] = mailq.Release(sp, nil, true, arrival)
		errs["Flush"] = mailq.Flush(sp, ids, arrival)
		errs["Flush all"] = mailq.Flush(sp, nil, arrival)
	})
	for name, err := range errs {
		if !errors.Is(err, fs.ErrPermission) || sysexits.Code(err, 1) != sysexits.NoPerm {
			t.Errorf("%s without access: %v (exit %d), want permission denied (77)", name, err, sysexits.Code(err, 1))
		}
	}
	if got := queueFiles(t, sp); !slices.Equal(got, ids) {
		t.Errorf("a refused change touched the queue: %v", got)
	}
	var out bytes.Buffer
	if err := mailq.Show(&out, sp, ids[0]); err != nil || strings.Contains(out.String(), "on hold") {
		t.Errorf("after a refused hold: %v\n%s", err, out.String())
	}
}
