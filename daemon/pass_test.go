package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

func TestPass_PicksUpTheMaildropThenDeliversTheQueue(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, true)
	submit(t, sp, "queued@test", false)
	submit(t, sp, "dropped@test", true)
	log := maillog.New(&testsmtp.LockedBuffer{})
	r := relay.NewRunner(cfg, sp, log)
	worked, err := Pass(context.Background(), sp, r, sendmailcompat.NewPickup(cfg, sp, log))
	if err != nil || !worked {
		t.Fatalf("Pass: worked %v, err %v; want true, nil", worked, err)
	}
	if sink.Count("queued@test") != 1 || sink.Count("dropped@test") != 1 {
		t.Errorf("delivered %v, want each message once", sink.Snapshot())
	}
	if n := queueLen(t, sp); n != 0 {
		t.Errorf("%d message(s) left in the queue", n)
	}
	drops, _ := sp.Drops(time.Now())
	if len(drops) != 0 {
		t.Errorf("drops left behind: %v", drops)
	}
}

func TestPass_NothingToDo(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, true)
	log := maillog.New(&testsmtp.LockedBuffer{})
	worked, err := Pass(context.Background(), sp, relay.NewRunner(cfg, sp, log), sendmailcompat.NewPickup(cfg, sp, log))
	if err != nil || worked {
		t.Errorf("Pass on an empty spool: worked %v, err %v; want false, nil", worked, err)
	}
}

func TestPass_NoSmarthost_PicksUpAndExits78(t *testing.T) {
	cfg := testConfig(t, 0, "")
	sp := createSpool(t, cfg, true)
	submit(t, sp, "dropped@test", true)
	log := maillog.New(&testsmtp.LockedBuffer{})
	worked, err := Pass(context.Background(), sp, relay.NewRunner(cfg, sp, log), sendmailcompat.NewPickup(cfg, sp, log))
	if !worked {
		t.Error("the drop was not taken")
	}
	if code := sysexits.Code(err, 0); code != sysexits.Config || !strings.Contains(err.Error(), "no [[smarthost]] configured") {
		t.Errorf("err %v (exit %d), want exit 78 naming the missing smarthost", err, code)
	}
	if n := queueLen(t, sp); n != 1 {
		t.Errorf("%d message(s) queued, want the picked-up drop", n)
	}
}

func TestPass_FailedPickupStillDeliversTheQueue(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, true)
	submit(t, sp, "queued@test", false)
	log := maillog.New(&testsmtp.LockedBuffer{})
	// A pickup whose maildrop cannot be listed (it has none).
	broken, err := spool.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	worked, err := Pass(context.Background(), sp, relay.NewRunner(cfg, sp, log), sendmailcompat.NewPickup(cfg, broken, log))
	if err == nil || !strings.HasPrefix(err.Error(), "maildrop pickup: ") {
		t.Errorf("err %v, want the pickup's failure", err)
	}
	if !worked || sink.Count("queued@test") != 1 {
		t.Errorf("worked %v, delivered %v: the queue was not delivered", worked, sink.Snapshot())
	}
	if lines := splitErrors(err); len(lines) != 1 {
		t.Errorf("the daemon would log %d lines for %v, want 1", len(lines), err)
	}
}

func TestSplitErrors(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	if got := splitErrors(nil); len(got) != 0 {
		t.Errorf("nil: %v", got)
	}
	if got := splitErrors(a); len(got) != 1 || got[0] != a {
		t.Errorf("one: %v", got)
	}
	if got := splitErrors(errors.Join(a, b)); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("joined: %v", got)
	}
}
