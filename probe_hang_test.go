package main_test

// relay probe against a smarthost that accepts the connection and never
// greets (or, probed with tls = "starttls", waits for a TLS handshake as
// a port-465 server does): SIGTERM and SIGINT end it within a second,
// with the report of what it found so far.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
)

func TestProbe_ServerNeverGreets_SignalEndsIt(t *testing.T) {
	bin := testbin.Binary(t)
	for _, tc := range []struct {
		tls string
		sig syscall.Signal
	}{{"none", syscall.SIGTERM}, {"starttls", syscall.SIGTERM}, {"none", syscall.SIGINT}, {"implicit", syscall.SIGINT}} {
		t.Run(tc.tls+"_"+tc.sig.String(), func(t *testing.T) {
			var conns atomic.Int32
			port := testsmtp.ServeLoopback(t, func(c net.Conn) {
				conns.Add(1)
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			})
			conf := filepath.Join(t.TempDir(), "relay.toml")
			text := fmt.Sprintf("domain = \"server1.example.com\"\n\n[rewrite]\naliases = \"\"\n\n[[smarthost]]\nname = \"silent\"\nhost = \"127.0.0.1\"\nport = %d\ntls = %q\n", port, tc.tls)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-C", conf, "probe")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			t.Cleanup(func() { cmd.Process.Kill(); <-done })
			if !testsmtp.WaitFor(10*time.Second, func() bool { return conns.Load() == 1 }) {
				t.Fatal("relay probe did not connect")
			}
			time.Sleep(100 * time.Millisecond)
			cmd.Process.Signal(tc.sig)
			select {
			case <-done:
			case <-time.After(time.Second):
				t.Fatalf("relay probe still waits 1s after %v", tc.sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != 69 {
				t.Errorf("exit %d, want 69 (the smarthost did not work):\n%s", code, out.String())
			}
			if !strings.Contains(out.String(), "told to stop") {
				t.Errorf("the report does not say the probe was stopped:\n%s", out.String())
			}
		})
	}
}
