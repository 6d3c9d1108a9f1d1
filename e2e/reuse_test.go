package e2e_test

// Connection reuse and parallel connections against the real Postfix
// (SPEC §5): a queue of 500 messages goes over at most max_connections
// smtpd sessions, each message into the Maildir exactly once.

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestReuse_500Messages_AtMostMaxConnections(t *testing.T) {
	needHarness(t)
	const total, maxConn, loops = 500, 3, 4
	c := newCase(t, okSmarthost(t, dirFor(t)), "[queue]\nmax_connections = "+strconv.Itoa(maxConn)+"\n")
	user := env["SMARTHOST_USER"]
	rcpt := "reuse@example.org"
	ms := make([]msg, total)
	for i := range ms {
		ms[i] = newMsg(t, user, []string{rcpt}, "message "+strconv.Itoa(i)+"\n")
	}
	var wg sync.WaitGroup
	var failMu sync.Mutex
	var failures []string
	for w := range loops {
		wg.Go(func() {
			for i := w; i < total; i += loops {
				if r := c.submitQuiet(t, ms[i], user, rcpt); r.Code != 0 || r.Stderr != "" {
					failMu.Lock()
					failures = append(failures, r.String())
					failMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d submissions failed; first: %s", len(failures), failures[0])
	}

	mark := logMark(t)
	r, lines := c.queueRunQuiet()
	t.Logf("one queue run delivered %d messages in %v (%.0f msg/s)", total, r.Dur.Round(time.Millisecond), float64(total)/r.Dur.Seconds())
	if r.Code != 0 {
		t.Errorf("queue run: exit %d\n%s", r.Code, lastLines(r.Stderr, 5))
	}
	sent := 0
	for _, l := range recipientLines(lines) {
		if l.kv["status"] == "sent" {
			sent++
		}
	}
	if sent != total {
		t.Errorf("%d status=sent lines, want one per recipient (%d)", sent, total)
	}

	ids := make([]string, total)
	for i, m := range ms {
		ids[i] = m.ID
	}
	missing, dup := missingAndDuplicated(t, 120*time.Second, ids...)
	if missing > 0 || dup > 0 {
		t.Errorf("of %d Message-IDs: %d missing from the Maildir, %d there more than once", total, missing, dup)
	}
	c.expectEmptyQueue()

	// Postfix's own count: the sessions that carried mail, and how many
	// transactions each.
	conns, mails := 0, 0
	for _, s := range sessions(t, mark, "starttls-"+env["SMARTHOST_PORT_STARTTLS"]) {
		if n, _ := strconv.Atoi(s.commands()["mail"]); n > 0 {
			conns++
			mails += n
			t.Logf("session %s: %s", s.pid, s.disconnect)
		}
	}
	t.Logf("%d smtpd session(s) carried the %d messages", conns, mails)
	if conns == 0 || conns > maxConn {
		t.Errorf("%d sessions carried mail, want 1 to %d (max_connections)", conns, maxConn)
	}
	if mails != total {
		t.Errorf("Postfix logged %d MAIL commands, want %d", mails, total)
	}
}
