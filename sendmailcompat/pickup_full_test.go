package sendmailcompat_test

import (
	"github.com/relaymail/relay/internal/testqueue"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
)

// A drop that cannot be queued because the spool is full stays in the
// maildrop, is reported once as deferred, and is not tried again at once:
// a runner that asks whether work is left (relay queue run) does not
// make pass after pass. It is taken once there is room again.
func TestPickup_SpoolFull_DeferredOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	testqueue.SmallFileSystem(t, dir, "1m")
	s := testqueue.NewSubmitter(t)
	sp, err := spool.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "maildrop"), 0o733)
	s.Spool, s.Drop = sp, true
	if _, _, err := submitDrop(t, s, []string{"bob@example.org"}); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run() // until ENOSPC

	var log []string
	p := &sendmailcompat.Pickup{Spool: sp, Hostname: "server1", MaxMessageSize: 1 << 20, Now: s.Now,
		User: func(int) string { return "alice" }, Log: func(kv ...string) { log = append(log, strings.Join(kv, " ")) }}
	for range 3 {
		if n, err := p.Run(); n != 0 || err != nil {
			t.Fatalf("pickup on a full spool took %d, %v", n, err)
		}
	}
	if len(log) != 1 || !strings.Contains(log[0], "status deferred") || !strings.Contains(log[0], "no space left") {
		t.Errorf("log %q, want one deferral", log)
	}
	if names, _ := sp.Drops(s.Now()); len(names) != 0 {
		t.Errorf("the deferred drop is still listed as work: %v", names)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "maildrop")); len(left) != 1 {
		t.Errorf("maildrop holds %v, want the drop", left)
	}
	if bad, _ := os.ReadDir(filepath.Join(dir, "corrupt")); len(bad) != 0 {
		t.Errorf("corrupt/ holds %v", bad)
	}

	// Room again, and a new process (a new spool handle): taken.
	os.Remove(filler)
	sp2, _ := spool.Open(dir)
	p.Spool = sp2
	if n, err := p.Run(); n != 1 || err != nil {
		t.Errorf("pickup with room again took %d, %v; log %q", n, err, log)
	}
}
