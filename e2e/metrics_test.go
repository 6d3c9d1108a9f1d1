package e2e_test

// The metrics against real monitoring: a real Prometheus (Debian's
// prometheus) scrapes relay daemon's [metrics] endpoint and a real node
// exporter (prometheus-node-exporter) whose textfile collector reads what
// `relay queue stats --format prometheus --output FILE` writes; the rules
// of contrib/prometheus are loaded. After a scripted sequence against the
// Postfix smarthost the test asks Prometheus' HTTP API for the values.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// monitoringBinary finds a program of the monitoring packages, which
// e2e/smarthost.sh install installs.
func monitoringBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not installed: run sudo bash e2e/smarthost.sh install (it installs prometheus and prometheus-node-exporter)", name)
	}
	return p
}

// startServer runs a monitoring server until the test ends, its output
// kept for the failure message, and waits until url answers 200.
func startServer(t *testing.T, readyURL, bin string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), filepath.Base(bin)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("%s output (last lines):\n%s", filepath.Base(bin), lastLines(string(b), 15))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("%s exited at start:\n%s", bin, b)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after 60s", bin, readyURL)
		}
	}
}

// prom asks a Prometheus server's HTTP API.
type prom struct {
	t    *testing.T
	base string
}

// query returns the values of an instant query's vector, by the labels
// of each series ("" for a single series without labels).
func (p prom) query(expr string) (map[string]float64, error) {
	resp, err := http.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", expr, r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		out[fmt.Sprint(s.Metric)] = v
	}
	return out, nil
}

// expect waits (Prometheus scrapes every second) until expr, a query
// with one result, has the value want, and fails the test with the last
// value otherwise.
func (p prom) expect(expr string, want float64) {
	p.t.Helper()
	p.expectFunc(expr, fmt.Sprint(want), func(v float64) bool { return v == want })
}

func (p prom) expectFunc(expr, what string, ok func(float64) bool) {
	p.t.Helper()
	var last map[string]float64
	var err error
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		last, err = p.query(expr)
		if err == nil && len(last) == 1 {
			for _, v := range last {
				if ok(v) {
					return
				}
			}
		}
	}
	p.t.Errorf("Prometheus: %s: got %v (err %v), want one series: %s", expr, last, err, what)
}

// alertState returns the state of alert name in Prometheus ("" when it
// is neither pending nor firing).
func (p prom) alertState(name string) string {
	resp, err := http.Get(p.base + "/api/v1/alerts")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&r)
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == name {
			return a.State
		}
	}
	return ""
}

// scrapeOK fetches the daemon's /metrics and checks it with promtool.
func scrapeOK(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmd := exec.Command(monitoringBinary(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("promtool check metrics on the daemon's /metrics: %v\n%s", err, out)
	}
}

func TestMetrics_PrometheusAndNodeExporterSeeTheQueue(t *testing.T) {
	needHarness(t)
	defer ensureHarnessRunning(t)
	promBin := monitoringBinary(t, "prometheus")
	nodeBin := monitoringBinary(t, "prometheus-node-exporter")
	rules, err := filepath.Abs("../contrib/prometheus/relay.rules.yml")
	if err != nil {
		t.Fatal(err)
	}

	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := newCase(t, okSmarthost(t, dirFor(t)), fmt.Sprintf("[metrics]\nlisten = %q\n", metricsAddr))
	d := startE2EDaemon(t, c)

	textDir := filepath.Join(c.dir, "textfile")
	os.Mkdir(textDir, 0o755)
	nodeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startServer(t, "http://"+nodeAddr+"/metrics", nodeBin, "--web.listen-address="+nodeAddr,
		"--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+textDir)

	promDir := t.TempDir()
	promConf := filepath.Join(promDir, "prometheus.yml")
	os.WriteFile(promConf, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: relay
    static_configs: [{targets: [%q]}]
  - job_name: node
    static_configs: [{targets: [%q]}]
`, rules, metricsAddr, nodeAddr)), 0o644)
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startServer(t, "http://"+promAddr+"/-/ready", promBin, "--config.file="+promConf,
		"--storage.tsdb.path="+filepath.Join(promDir, "data"), "--web.listen-address="+promAddr, "--log.level=warn")
	p := prom{t, "http://" + promAddr}

	textfile := func() {
		t.Helper()
		out := filepath.Join(textDir, "relay.prom")
		if r := run(t, nil, relayBin, "-C", c.conf, "queue", "stats", "--format", "prometheus", "--output", out); r.Code != 0 {
			t.Fatalf("queue stats --output: %v", r)
		}
	}

	// Three messages sent, one deferred by the smarthost (450 at RCPT),
	// one refused (550 at RCPT: bounced, and the bounce is sent too).
	from := env["SMARTHOST_USER"]
	var sent []msg
	for i := range 3 {
		to := fmt.Sprintf("metrics%d@example.test", i)
		m := newMsg(t, from, []string{to}, "counted\n")
		c.submit(m, from, to)
		sent = append(sent, m)
	}
	tempFail, refused := env["SMARTHOST_TEMPFAIL_RCPT"], env["SMARTHOST_REFUSED_RCPT"]
	c.submit(newMsg(t, from, []string{tempFail}, "deferred\n"), from, tempFail)
	c.submit(newMsg(t, from, []string{refused}, "bounced\n"), from, refused)

	p.expect(`relay_delivery_attempts_total{job="relay",result="sent"}`, 4) // 3 + the bounce
	p.expect(`relay_delivery_attempts_total{job="relay",result="deferred"}`, 1)
	p.expect(`relay_delivery_attempts_total{job="relay",result="bounced"}`, 1)
	p.expect(`relay_bounces_total{job="relay",kind="failure"}`, 1)
	p.expect(`relay_messages_received_total{job="relay",source="sendmail"}`, 5)
	p.expect(`relay_messages_received_total{job="relay",source="smtp"}`, 0)
	p.expect(`relay_queue_delay_seconds_count{job="relay"}`, 4)
	p.expectFunc(`relay_delivery_duration_seconds_count{job="relay"}`, ">= 5", func(v float64) bool { return v >= 5 })
	p.expectFunc(`relay_connections_total{job="relay",result="ok"}`, ">= 1", func(v float64) bool { return v >= 1 })
	p.expectFunc(`relay_smarthost_certificate_expiry_timestamp_seconds{job="relay"} - time()`, "a certificate valid for days",
		func(v float64) bool { return v > 86400 })
	p.expect(`relay_queue_messages{job="relay",state="deferred"}`, 1)
	p.expect(`relay_smarthost_up{job="relay"}`, 1)
	p.expect(`relay_build_info{job="relay"}`, 1)
	settle(t, 30*time.Second)
	if n := len(copiesOf(t, sent[0].ID, sent[1].ID, sent[2].ID)); n != 3 {
		t.Errorf("%d of the 3 sent messages in the smarthost's Maildir", n)
	}

	// The smarthost stops: the next message is deferred at connect, the
	// smarthost remembered down; the textfile says so too.
	stopHarness(t)
	c.submit(newMsg(t, from, []string{"metrics-outage@example.test"}, "waits\n"), from, "metrics-outage@example.test")
	p.expect(`relay_smarthost_up{job="relay"}`, 0)
	p.expectFunc(`relay_connections_total{job="relay",result="connect"}`, ">= 1", func(v float64) bool { return v >= 1 })
	p.expect(`relay_delivery_attempts_total{job="relay",result="deferred"}`, 2)
	p.expect(`relay_queue_messages{job="relay",state="deferred"}`, 2)
	textfile()
	p.expect(`relay_smarthost_up{job="node"}`, 0)
	p.expect(`relay_queue_messages{job="node",state="deferred"}`, 2)
	p.expect(`relay_queue_messages{job="node",state="held"}`, 0)
	p.expectFunc(`relay_queue_stats_timestamp_seconds{job="node"}`, "written within a minute", func(v float64) bool {
		return time.Since(time.Unix(int64(v), 0)) < time.Minute
	})
	// The rule sees it at once (pending: it fires after 15 minutes).
	for deadline := time.Now().Add(30 * time.Second); p.alertState("RelaySmarthostDown") != "pending"; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("alert RelaySmarthostDown is %q, want pending while the smarthost is down", p.alertState("RelaySmarthostDown"))
			break
		}
	}
	scrapeOK(t, metricsAddr)

	// Back up, and a flush: the waiting message goes, temp-fail is tried
	// (and deferred) once more.
	startHarness(t)
	if r := run(t, nil, relayBin, "-C", c.conf, "queue", "flush"); r.Code != 0 {
		t.Fatalf("queue flush: %v", r)
	}
	p.expect(`relay_delivery_attempts_total{job="relay",result="sent"}`, 5)
	p.expect(`relay_delivery_attempts_total{job="relay",result="deferred"}`, 3)
	p.expect(`relay_smarthost_up{job="relay"}`, 1)
	p.expect(`relay_queue_messages{job="relay",state="deferred"}`, 1)
	p.expect(`relay_queue_smarthost_messages{job="relay"}`, 1)
	textfile()
	p.expect(`relay_smarthost_up{job="node"}`, 1)
	p.expect(`relay_queue_messages{job="node",state="deferred"}`, 1)
	p.expect(`relay_queue_domain_messages{job="node",domain="example.test"}`, 1)
	scrapeOK(t, metricsAddr)
	if t.Failed() {
		t.Logf("daemon log:\n%s", lastLines(d.logText(), 40))
	}
}
