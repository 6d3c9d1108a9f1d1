package daemon

import (
	"fmt"
	"io"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// scrape fetches /metrics from addr with a plain HTTP/1.0 request and
// returns the body.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("metrics endpoint: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("metrics endpoint: %v", err)
	}
	head, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok || !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("metrics endpoint answered:\n%s", b)
	}
	return body
}

// Serve with [metrics] listen, in the test process: a message the
// listener receives is counted by source, its delivery by smarthost and
// result, the connection and the transaction's duration; the queue
// gauges are there; SIGTERM ends it with nil.
func TestServe_MetricsCountWhatTheDaemonDoes(t *testing.T) {
	keepMemoryLimit(t)
	sink := testsmtp.NewSink(t, 0, 0)
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", testsmtp.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testsmtp.FreePort(t))
	cfg := testConfig(t, sink.Port, fmt.Sprintf("[daemon]\nlisten = [%q]\nrescan = \"1h\"\n\n[metrics]\nlisten = %q\n", smtpAddr, metricsAddr))
	var stderr testsmtp.LockedBuffer
	done := make(chan error, 1)
	go func() { done <- Serve(cfg, reloader(cfg), &stderr) }()
	if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(stderr.String(), "status=started") || len(done) > 0 }) ||
		len(done) > 0 {
		t.Fatalf("Serve did not start:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "status=metrics listen="+metricsAddr) {
		t.Errorf("the metrics address is not logged:\n%s", stderr.String())
	}
	msg := "Message-ID: <counted@test>\r\nSubject: test\r\n\r\nbody\r\n"
	if err := smtp.SendMail(smtpAddr, nil, "app@example.com", []string{"rcpt@example.net"}, []byte(msg)); err != nil {
		t.Fatalf("SMTP to the listener: %v\n%s", err, stderr.String())
	}
	if !testsmtp.WaitFor(30*time.Second, func() bool { return sink.Count("counted@test") == 1 }) {
		t.Fatalf("the listener's message was not delivered:\n%s", stderr.String())
	}
	want := []string{
		`relay_messages_received_total{source="smtp"} 1`,
		`relay_messages_received_total{source="sendmail"} 0`,
		`relay_delivery_attempts_total{smarthost="127.0.0.1",result="sent"} 1`,
		`relay_connections_total{smarthost="127.0.0.1",result="ok"} 1`,
		`relay_delivery_duration_seconds_count{smarthost="127.0.0.1"} 1`,
		`relay_queue_delay_seconds_count{smarthost="127.0.0.1"} 1`,
		`relay_queue_messages{state="incoming"} 0`,
		`relay_build_info{`,
	}
	var body string
	// The counters move when the delivery is recorded, just after the
	// sink has the message; the queue gauges once the message is removed
	// (at the end of the pass) and a scrape counts the queue again (a
	// count serves statsMaxAge).
	testsmtp.WaitFor(2*statsMaxAge, func() bool {
		body = scrape(t, metricsAddr)
		return strings.Contains(body, want[2]) && strings.Contains(body, want[6])
	})
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("no %q in /metrics:\n%s", w, body)
		}
	}
	stopServe(t, done, &stderr)
	if _, err := spool.Open(cfg.Spool); err != nil {
		t.Errorf("no spool: %v", err)
	}
}

// The daemon's Observer methods, each on its own: a bounce and a delay
// warning, a rate-limit wait, a certificate's and a token's expiry, a
// deferral (no queue delay observed), and arrivals by source.
func TestMetrics_ObserverAndArrivals(t *testing.T) {
	m := NewMetrics(nil)
	exp := time.Unix(1800000000, 0)
	m.Connection("mail", "tls", exp)
	m.Recipient("mail", "deferred", time.Minute)
	m.Report("failure")
	m.Report("delay")
	m.RateLimited("mail")
	m.TokenExpiry("mail", exp)
	m.Received(&spool.Envelope{Bounce: true})
	m.Received(&spool.Envelope{Drop: &spool.DropOrigin{}})
	m.Received(&spool.Envelope{Source: "smtp"})
	m.Received(&spool.Envelope{})
	var b strings.Builder
	if _, err := m.Registry.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`relay_connections_total{smarthost="mail",result="tls"} 1`,
		`relay_smarthost_certificate_expiry_timestamp_seconds{smarthost="mail"} 1800000000`,
		`relay_delivery_attempts_total{smarthost="mail",result="deferred"} 1`,
		`relay_bounces_total{kind="failure"} 1`,
		`relay_bounces_total{kind="delay"} 1`,
		`relay_rate_limit_waits_total{smarthost="mail"} 1`,
		`relay_oauth_token_expiry_timestamp_seconds{smarthost="mail"} 1800000000`,
		`relay_messages_received_total{source="maildrop"} 1`,
		`relay_messages_received_total{source="smtp"} 1`,
		`relay_messages_received_total{source="sendmail"} 1`,
	} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("no %q in:\n%s", w, b.String())
		}
	}
	if strings.Contains(b.String(), "relay_queue_delay_seconds_count") {
		t.Errorf("a deferral observed a queue delay:\n%s", b.String())
	}
}
