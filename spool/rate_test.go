package spool_test

import (
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
)

// TakeRate is a sliding window: n sends in any period, the next one free
// when the oldest in the window leaves it; the state survives the Spool
// value, a flush (ForgetHosts) does not clear it, and concurrent takers
// never exceed the limit.
func TestTakeRate_SlidingWindow(t *testing.T) {
	s := testqueue.NewSpool(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 3 {
		if w, err := s.TakeRate("sh", 3, time.Minute, t0.Add(time.Duration(i)*10*time.Second)); err != nil || !w.IsZero() {
			t.Fatalf("send %d: wait %v, %v; want none", i, w, err)
		}
	}
	if w, _ := s.TakeRate("sh", 3, time.Minute, t0.Add(30*time.Second)); !w.Equal(t0.Add(time.Minute)) {
		t.Errorf("4th send: wait until %v, want %v", w, t0.Add(time.Minute))
	}
	if err := s.ForgetHosts(); err != nil {
		t.Fatal(err)
	}
	if w, _ := s.TakeRate("sh", 3, time.Minute, t0.Add(59*time.Second)); !w.Equal(t0.Add(time.Minute)) {
		t.Errorf("after ForgetHosts: wait until %v, want %v (sends are facts)", w, t0.Add(time.Minute))
	}
	// At t0+1m the first send leaves the window.
	if w, _ := s.TakeRate("sh", 3, time.Minute, t0.Add(time.Minute)); !w.IsZero() {
		t.Errorf("at the end of the window: wait until %v, want none", w)
	}
	if st := s.Rate("sh"); len(st.Sent) != 3 {
		t.Errorf("state %+v, want the 3 sends in the window", st)
	}
	if err := s.ReturnRate("sh", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if st := s.Rate("sh"); len(st.Sent) != 2 {
		t.Errorf("after ReturnRate: state %+v, want 2 sends", st)
	}

	// Concurrent takers: exactly n get a send.
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w, err := s.TakeRate("other", 5, time.Hour, t0); err == nil && w.IsZero() {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got != 5 {
		t.Errorf("%d of 20 concurrent takers got a send, want 5", got)
	}
}
