package daemon

// Serve, relay daemon's body, in the test process: the listener's sockets,
// the spool made on first use, the log, and the refusals before anything
// runs. Serve stops on SIGTERM only (as the process does).

import (
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// The spool is made on first use; mail a client sends to the listener is
// queued and delivered; SIGTERM ends it all with nil.
func TestServe_ListensDeliversAndStopsOnSIGTERM(t *testing.T) {
	keepMemoryLimit(t)
	sink := testsmtp.NewSink(t, 0, 0)
	addr := fmt.Sprintf("127.0.0.1:%d", testsmtp.FreePort(t))
	cfg := testConfig(t, sink.Port, fmt.Sprintf("[daemon]\nlisten = [%q]\nrescan = \"1h\"\n", addr))
	var stderr testsmtp.LockedBuffer
	done := make(chan error, 1)
	go func() { done <- Serve(cfg, reloader(cfg), &stderr) }()
	if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(stderr.String(), "status=started") || len(done) > 0 }) ||
		len(done) > 0 {
		t.Fatalf("Serve did not start:\n%s", stderr.String())
	}
	if _, err := spool.Open(cfg.Spool); err != nil {
		t.Errorf("Serve made no spool: %v", err)
	}
	msg := "Message-ID: <served@test>\r\nSubject: test\r\n\r\nbody\r\n"
	if err := smtp.SendMail(addr, nil, "app@example.com", []string{"rcpt@example.net"}, []byte(msg)); err != nil {
		t.Fatalf("SMTP to the listener: %v\n%s", err, stderr.String())
	}
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("served@test") == 1 }) {
		t.Fatalf("the listener's message was not delivered:\n%s", stderr.String())
	}
	stopServe(t, done, &stderr)
	if !strings.Contains(stderr.String(), "status=stopped") {
		t.Errorf("the stop is not logged:\n%s", stderr.String())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after the stop")
	}
}

func TestServe_SecondDaemonIsRefused(t *testing.T) {
	keepMemoryLimit(t)
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	first, err := createSpool(t, cfg, false).LockDaemon()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	if err := Serve(cfg, nil, &testsmtp.LockedBuffer{}); !IsRunning(err) {
		t.Errorf("Serve beside another daemon: %v, want an error IsRunning recognises", err)
	}
}

// A listen address another program holds: exit 75 (like a second
// daemon), before the spool is made.
func TestServe_ListenAddressInUse(t *testing.T) {
	keepMemoryLimit(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, testsmtp.ClosedPort(t), fmt.Sprintf("[daemon]\nlisten = [%q]\n", ln.Addr()))
	err = Serve(cfg, nil, &testsmtp.LockedBuffer{})
	if code := sysexits.Code(err, 0); code != sysexits.TempFail || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Serve: %v (exit %d), want 75 naming %s", err, code, ln.Addr())
	}
	if _, err := os.Stat(cfg.Spool); !os.IsNotExist(err) {
		t.Errorf("the spool was made although the daemon cannot run (%v)", err)
	}
}

// A log file that cannot be opened is a configuration error (78).
func TestServe_LogCannotBeOpened(t *testing.T) {
	keepMemoryLimit(t)
	cfg := testConfig(t, testsmtp.ClosedPort(t), "")
	cfg.Log.To = filepath.Join(t.TempDir(), "missing", "relay.log")
	err := Serve(cfg, nil, &testsmtp.LockedBuffer{})
	if code := sysexits.Code(err, 0); code != sysexits.Config {
		t.Errorf("Serve: %v (exit %d), want 78", err, code)
	}
}

// Serve ending with an error gives back the sockets it opened: a
// listen_users file that cannot be read (after the SMTP sockets are
// open), a log that cannot be opened (after the metrics socket is open
// too). The addresses are free for the next try.
func TestServe_ErrorAtStartFreesTheSockets(t *testing.T) {
	keepMemoryLimit(t)
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", testsmtp.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testsmtp.FreePort(t))
	free := func(t *testing.T, addrs ...string) {
		t.Helper()
		for _, a := range addrs {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				t.Errorf("%s is still held after Serve failed: %v", a, err)
				continue
			}
			ln.Close()
		}
	}
	t.Run("listen_users unreadable", func(t *testing.T) {
		cfg := testConfig(t, testsmtp.ClosedPort(t), fmt.Sprintf("[daemon]\nlisten = [%q]\n[metrics]\nlisten = %q\n", smtpAddr, metricsAddr))
		cfg.Daemon.ListenUsers = filepath.Join(t.TempDir(), "missing-passwd")
		if err := Serve(cfg, nil, &testsmtp.LockedBuffer{}); err == nil {
			t.Fatal("Serve with a missing listen_users file: nil error")
		}
		free(t, smtpAddr, metricsAddr)
	})
	t.Run("log unopenable", func(t *testing.T) {
		cfg := testConfig(t, testsmtp.ClosedPort(t), fmt.Sprintf("[daemon]\nlisten = [%q]\n[metrics]\nlisten = %q\n", smtpAddr, metricsAddr))
		cfg.Log.To = filepath.Join(t.TempDir(), "missing", "relay.log")
		if err := Serve(cfg, nil, &testsmtp.LockedBuffer{}); sysexits.Code(err, 0) != sysexits.Config {
			t.Fatalf("Serve with a log that cannot be opened: %v, want exit 78", err)
		}
		free(t, smtpAddr, metricsAddr)
	})
}
