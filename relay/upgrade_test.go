package relay_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// TestUpgrade_OldSpoolDelivered: the spool an installed relay of commit
// a0b0368 left (no envelope index; deferred, held and fresh messages) is
// delivered by this relay after the upgrade, every recipient once, and
// the pass leaves it with an index.
func TestUpgrade_OldSpoolDelivered(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	h := newHarness(t, smarthost(srv.Port, "none"))
	h.sp = testqueue.OldSpool(t)
	h.runner.Spool = h.sp
	// An hour after the spool was written: the deferred messages are due,
	// far from their lifetime.
	h.now = time.Date(2026, 12, 5, 14, 34, 31, 0, time.UTC)
	if err := h.sp.Change(testqueue.OldSpoolHeld, time.Second, func(e *spool.Envelope) bool { e.Held = false; return true }); err != nil {
		t.Fatal(err)
	}
	st := h.run()
	if st.Delivered != 6 {
		t.Errorf("delivered %d recipients, want 6 (%+v):\n%s", st.Delivered, st, h.log.String())
	}
	for _, rc := range []string{"bob@example.org", "carol@example.org", "dave@example.net", "erin@example.org", "frank@example.org", "grace@example.org"} {
		if n := srv.DeliveredTo(rc); n != 1 {
			t.Errorf("%s: delivered %d times, want 1", rc, n)
		}
	}
	for _, id := range testqueue.OldSpoolIDs {
		if env := h.read(id); env != nil {
			t.Errorf("%s still queued: %+v", id, env)
		}
	}
	if _, err := os.Stat(filepath.Join(h.sp.Dir, "index")); err != nil {
		t.Errorf("the pass left no index: %v", err)
	}
}
