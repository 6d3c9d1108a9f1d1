package e2e_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// Without a daemon, sendmail -q and relay queue flush move the queue now
// (SPEC section 6): deferred mail reaches the smarthost within seconds,
// through the detached runner they start.
func TestFlush_WithoutDaemonDelivers(t *testing.T) {
	user := env["SMARTHOST_USER"]
	for _, args := range [][]string{{"sendmail", "-q"}, {"queue", "flush"}} {
		t.Run(args[0], func(t *testing.T) {
			sh := okSmarthost(t, dirFor(t))
			c := newCase(t, sh, "") // no runner behind the test's back while it defers
			m := newMsg(t, user, []string{"flushed@example.org"}, "deferred, then flushed\n")
			c.submit(m, user, "flushed@example.org")
			sp, err := spool.Open(filepath.Join(c.dir, "spool"))
			if err != nil {
				t.Fatal(err)
			}
			ids, _ := sp.IDs()
			if len(ids) != 1 {
				t.Fatalf("%d queued", len(ids))
			}
			later := time.Now().Add(time.Hour)
			if err := sp.Change(ids[0], time.Second, func(e *spool.Envelope) bool { e.NextAttempt, e.Attempts = later, 1; return true }); err != nil {
				t.Fatal(err)
			}
			c.detached = true // detached_delivery on, as installed
			c.writeConfig(sh, "")
			if r := run(t, nil, relayBin, append([]string{"-C", c.conf}, args...)...); r.Code != 0 {
				t.Fatalf("%v: %+v", args, r)
			}
			if !testsmtp.WaitFor(30*time.Second, func() bool { return len(c.queueList()) == 0 }) {
				t.Fatalf("still queued 30 s after %v: %+v", args, c.queueList())
			}
			if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 {
				t.Errorf("%d copies delivered, want 1", len(cs))
			}
		})
	}
}
