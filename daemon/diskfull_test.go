package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/relaymail/relay/internal/testqueue"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/daemon"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
)

// TestDaemon_SpoolFullDuringPass_NoDuplicateAndBackOff: a 20 MB spool
// fills up while the smarthost takes a message for one of its two
// recipients and defers the other, so the envelope update that records
// both fails. The daemon must neither send the message again to the
// recipient that has it (it did, once a second) nor keep connecting
// while the spool cannot record anything; once there is room again it
// delivers to the other recipient only.
func TestDaemon_SpoolFullDuringPass_NoDuplicateAndBackOff(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	testqueue.SmallFileSystem(t, dir, "20m")

	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{
		RcptErr:  map[string]*smtp.SMTPError{"b@example.net": {Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "try later"}},
		DotDelay: 300 * time.Millisecond,
	})
	_, port, _ := strings.Cut(srv.Addr(), ":")
	conf := filepath.Join(t.TempDir(), "relay.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`spool = %q
domain = "example.com"
min_free_space = 0

[queue]
retry_min = "1s"
retry_max = "2s"

[rewrite]
aliases = ""

[[smarthost]]
host = "127.0.0.1"
port = %s
tls = "none"
`, dir, port)), 0o600)
	cfg, err := config.Load(config.Location{Path: conf, Required: true})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	sub := &sendmailcompat.Submitter{Spool: sp, Domain: "example.com", Hostname: "host.example.com",
		UID: os.Getuid(), User: "tester", Now: time.Now}
	o, _ := sendmailcompat.ParseArgs([]string{"-i", "-f", "tester@example.com", "a@example.net", "b@example.net"})
	if _, err := sub.Enqueue(o.Message(), strings.NewReader("Message-ID: <full@example.com>\nSubject: s\n\nbody\n")); err != nil {
		t.Fatal(err)
	}

	var log testsmtp.LockedBuffer
	d := &daemon.Daemon{Spool: sp, Config: cfg, Log: maillog.New(&log), Rescan: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the daemon did not stop")
		}
	})

	// The smarthost has the message (its dot is read, the reply waits):
	// fill the spool before the runner records the outcome.
	if !testsmtp.WaitFor(10*time.Second, func() bool { return len(srv.Messages()) > 0 }) {
		t.Fatalf("nothing delivered:\n%s", log.String())
	}
	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)

	time.Sleep(5 * time.Second)
	if n := srv.DeliveredTo("a@example.net"); n != 1 {
		t.Errorf("a@example.net received the message %d times while the spool was full:\n%s", n, log.String())
	}
	if n, m := srv.Conns(), len(srv.Mails()); n > 1 || m > 1 {
		t.Errorf("%d connections and %d transactions in 5 s while the spool was full, want the one:\n%s", n, m, log.String())
	}
	if !strings.Contains(log.String(), "delivery paused") {
		t.Errorf("the log does not say that delivery is paused:\n%s", log.String())
	}

	// Room again, and the smarthost takes b: b gets it, a not again.
	os.Remove(filler)
	srv.SetConfig(func(c *testsmtp.ServerConfig) { c.RcptErr = nil })
	if !testsmtp.WaitFor(30*time.Second, func() bool { return srv.DeliveredTo("b@example.net") > 0 }) {
		t.Fatalf("b@example.net never got it after the spool had room again:\n%s", log.String())
	}
	if !testsmtp.WaitFor(5*time.Second, func() bool { ids, _ := sp.IDs(); return len(ids) == 0 }) {
		t.Errorf("the message is still queued:\n%s", log.String())
	}
	if a, b := srv.DeliveredTo("a@example.net"), srv.DeliveredTo("b@example.net"); a != 1 || b != 1 {
		t.Errorf("delivered to a %d times, to b %d times; want once each:\n%s", a, b, log.String())
	}
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// The last pages: tmpfs may take a few bytes more.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
}
