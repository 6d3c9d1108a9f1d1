package daemon_test

import (
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/daemon"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sendmailcompat"
)

// TestDeliverNow_WaitEndsDuringReplyToDot: sendmail --wait's time runs
// out while the smarthost, which has the whole message, takes its time to
// answer the dot: the reply is awaited and recorded (exit 0), the message
// leaves the queue, and a later pass sends nothing again.
func TestDeliverNow_WaitEndsDuringReplyToDot(t *testing.T) {
	s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{DotDelay: time.Second})
	e := newStopEnv(t, "", s.Port)
	cfg, err := config.Load(config.Location{Path: e.conf, Required: true})
	if err != nil {
		t.Fatal(err)
	}
	e.submit("wait@example.com")
	ids, _ := e.sp.IDs()
	sub := sendmailcompat.NewSubmitter(cfg)
	sub.Spool, sub.Log = e.sp, maillog.New(&testsmtp.LockedBuffer{})
	if err := daemon.DeliverNow(cfg, sub, ids[0], 300*time.Millisecond, nil); err != nil {
		t.Errorf("DeliverNow: %v, want the 250 that came after the wait recorded", err)
	}
	if n := e.queued(); n != 0 {
		t.Fatalf("%d messages still queued after their 250", n)
	}
	if n := copies(s)["wait@example.com"]; n != 1 {
		t.Errorf("the server got %d copies, want 1", n)
	}
}
