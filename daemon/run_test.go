package daemon

import (
	"context"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
)

func TestRun_WatchDeliversNewMailAndStops(t *testing.T) {
	keepMemoryLimit(t)
	sink := testsmtp.NewSink(t, 0, 0)
	cfg := testConfig(t, sink.Port, "")
	sp := createSpool(t, cfg, true)
	before := submit(t, sp, "before@test", false)
	var logBuf testsmtp.LockedBuffer
	d := &Daemon{Spool: sp, Config: cfg, Log: maillog.New(&logBuf), Rescan: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("before@test") == 1 }) {
		t.Fatalf("mail queued before the start was not delivered; log:\n%s", logBuf.String())
	}
	// Only the watch can explain these: the rescan is an hour away.
	submit(t, sp, "queued@test", false)
	submit(t, sp, "dropped@test", true)
	if !testsmtp.WaitFor(30*time.Second, func() bool {
		return sink.Count("queued@test") == 1 && sink.Count("dropped@test") == 1
	}) {
		t.Fatalf("new mail not delivered: %v; log:\n%s", sink.Snapshot(), logBuf.String())
	}
	if _, err := sp.LockDaemon(); !IsRunning(err) {
		t.Errorf("a second daemon lock: %v, want ErrDaemonRunning", err)
	}
	if !sp.RunnerActive() {
		t.Error("the daemon does not hold the run lock")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	if _, err := sp.Read(before); err == nil {
		t.Error("a delivered message is still queued")
	}
	if !strings.Contains(logBuf.String(), "status=stopped") {
		t.Errorf("no stop in the log:\n%s", logBuf.String())
	}
}

func TestSMTPListener_QueuesAsTheDaemon(t *testing.T) {
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	sp := createSpool(t, cfg, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := smtpListener(cfg, sp, maillog.New(&testsmtp.LockedBuffer{}), []net.Listener{ln}, listenerSecrets{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc(ctx) }()
	msg := "Message-ID: <listener@test>\r\nSubject: test\r\n\r\nbody\r\n"
	if err := smtp.SendMail(ln.Addr().String(), nil, "app@example.com", []string{"rcpt@example.net"}, []byte(msg)); err != nil {
		t.Fatalf("SMTP: %v", err)
	}
	cancel()
	<-done
	ids, err := sp.IDs()
	if err != nil || len(ids) != 1 {
		t.Fatalf("queued %v (%v), want one message", ids, err)
	}
	m, err := sp.Read(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Sender != "app@example.com" || len(m.Recipients) != 1 || m.Recipients[0].Address != "rcpt@example.net" {
		t.Errorf("envelope %+v", m.Envelope)
	}
}
