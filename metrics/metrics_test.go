package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/metrics"
)

func TestRegistry_TextFormat(t *testing.T) {
	r := &metrics.Registry{}
	c := r.Counter("relay_test_total", "A counter.\nWith a \\ and a newline.", "smarthost", "result")
	c.Inc("b", "ok")
	c.Add(2, "a \"quoted\"\n", "ok")
	r.Counter("relay_unused_total", "Never touched: not written.")
	h := r.Histogram("relay_test_seconds", "A histogram.", []float64{0.5, 1}, "smarthost")
	h.Observe(0.25, "a")
	h.Observe(0.5, "a")
	h.Observe(3, "a")
	g := r.Gauge("relay_test_timestamp_seconds", "A gauge.")
	g.Set(1796466290)
	r.Collect(func(w *metrics.Writer) {
		w.Family("relay_collected", "Written at scrape time.", metrics.Gauge)
		w.Sample("relay_collected", []string{"state", "held"}, 0.125)
	})
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP relay_test_total A counter.\nWith a \\ and a newline.
# TYPE relay_test_total counter
relay_test_total{smarthost="a \"quoted\"\n",result="ok"} 2
relay_test_total{smarthost="b",result="ok"} 1
# HELP relay_test_seconds A histogram.
# TYPE relay_test_seconds histogram
relay_test_seconds_bucket{smarthost="a",le="0.5"} 2
relay_test_seconds_bucket{smarthost="a",le="1"} 2
relay_test_seconds_bucket{smarthost="a",le="+Inf"} 3
relay_test_seconds_sum{smarthost="a"} 3.75
relay_test_seconds_count{smarthost="a"} 3
# HELP relay_test_timestamp_seconds A gauge.
# TYPE relay_test_timestamp_seconds gauge
relay_test_timestamp_seconds 1796466290
# HELP relay_collected Written at scrape time.
# TYPE relay_collected gauge
relay_collected{state="held"} 0.125
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = &b
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

// serve starts a Server on a loopback port and returns its address.
func serve(t *testing.T, s *metrics.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

func get(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, request)
	b, _ := io.ReadAll(bufio.NewReader(c))
	return string(b)
}

func TestServer_AnswersGETMetrics(t *testing.T) {
	r := &metrics.Registry{}
	r.Counter("relay_x_total", "X.").Inc()
	addr := serve(t, &metrics.Server{Registry: r})
	resp := get(t, addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 200 OK\r\n") || !strings.Contains(resp, "Content-Type: "+metrics.ContentType+"\r\n") ||
		!strings.HasSuffix(resp, "\r\n\r\n# HELP relay_x_total X.\n# TYPE relay_x_total counter\nrelay_x_total 1\n") {
		t.Errorf("GET /metrics:\n%s", resp)
	}
	if resp := get(t, addr, "GET /other HTTP/1.1\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 404 ") {
		t.Errorf("GET /other:\n%s", resp)
	}
	if resp := get(t, addr, "POST /metrics HTTP/1.1\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 405 ") {
		t.Errorf("POST:\n%s", resp)
	}
}

// A client that is not allowed is closed at connect: not a byte of the
// metrics, and the refusal is reported.
func TestServer_RefusesClientsNotAllowed(t *testing.T) {
	r := &metrics.Registry{}
	r.Counter("relay_x_total", "X.").Inc()
	refused := make(chan string, 1)
	addr := serve(t, &metrics.Server{Registry: r,
		Allowed: func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.1") },
		Refused: func(a string) { refused <- a }})
	if resp := get(t, addr, "GET /metrics HTTP/1.1\r\n\r\n"); resp != "" {
		t.Errorf("refused client got:\n%s", resp)
	}
	select {
	case a := <-refused:
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("refused %q", a)
		}
	case <-time.After(10 * time.Second):
		t.Error("the refusal was not reported")
	}
}
