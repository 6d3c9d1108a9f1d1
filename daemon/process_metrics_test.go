package daemon_test

// [metrics] listen as a process: the daemon counts what its listener and
// sendmail queue and what it delivers, and serves it on /metrics.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

func TestDaemonMetrics_CountsBySourceAndResult(t *testing.T) {
	sink := testsmtp.NewSink(t, 0, 0)
	smtpAddr := "127.0.0.1:" + strconv.Itoa(testsmtp.FreePort(t))
	metricsAddr := "127.0.0.1:" + strconv.Itoa(testsmtp.FreePort(t))
	e := testbin.NewEnv(t, fmt.Sprintf("[daemon]\nlisten = [%q]\n[metrics]\nlisten = %q\n\n[[smarthost]]\nname = \"sink\"\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\n",
		smtpAddr, metricsAddr, sink.Port))
	if _, err := spool.Create(e.Spool); err != nil { // as root, the daemon makes none
		t.Fatal(err)
	}
	d := startDaemon(t, e, smtpAddr)

	if err := smtp.SendMail(smtpAddr, nil, "app@example.org", []string{"ops@example.org"},
		[]byte("Message-ID: <over-smtp@test>\r\nSubject: over SMTP\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if r := testbin.Run(e.Cmd("sendmail", "-i", "ops@example.org"), "Message-ID: <by-sendmail@test>\nSubject: by sendmail\n\nbody\n"); r.Code != 0 {
		t.Fatal(r)
	}
	want := []string{
		`relay_messages_received_total{source="smtp"} 1`,
		`relay_messages_received_total{source="sendmail"} 1`,
		`relay_messages_received_total{source="maildrop"} 0`,
		`relay_delivery_attempts_total{smarthost="sink",result="sent"} 2`,
		`relay_connections_total{smarthost="sink",result="ok"} `,
		`relay_queue_delay_seconds_count{smarthost="sink"} 2`,
		`relay_queue_messages{state="incoming"} 0`,
		`relay_smarthost_up{smarthost="sink"} 1`,
	}
	var body string
	ok := testsmtp.WaitFor(30*time.Second, func() bool {
		body = scrape(t, metricsAddr)
		for _, w := range want {
			if !strings.Contains(body, "\n"+w) {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("/metrics does not have %q:\n%s\ndaemon:\n%s", want, body, d.stderr)
	}
	if sink.Count("over-smtp@test") != 1 || sink.Count("by-sendmail@test") != 1 {
		t.Errorf("the sink got %v", sink.Snapshot())
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	return string(b)
}

// A [metrics] listen address that cannot be had stops the daemon at
// start with one line, as the SMTP listener's does.
func TestDaemonMetrics_AddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := testbin.NewEnv(t, fmt.Sprintf("[metrics]\nlisten = %q\n", ln.Addr().String()))
	r := testbin.Run(e.Cmd("relay", "daemon"), "")
	if r.Code != 69 || !strings.Contains(r.Stderr, "[metrics] listen "+ln.Addr().String()) || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("daemon with its metrics address taken: %+v, want exit 69 and one line", r)
	}
}
