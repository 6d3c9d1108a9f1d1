package mailq_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// statsQueue builds a queue whose every count is known, seen at now:
//
//	incoming  2 messages (100 + 200 bytes), 1 and 7 minutes old
//	deferred  1 message (300 bytes), 3 hours old, waiting for ops's rate limit
//	held      1 message (400 bytes), 50 minutes old
//	corrupt   1 file
//
// alice@example.com goes through "ops" (its senders), everyone else
// through "main"; example.org has 3 messages with pending recipients,
// example.net 1 (its other recipient delivered), example.com 1.
func statsQueue(t *testing.T) (*config.Config, *spool.Spool, time.Time) {
	cfg, sp, now, _ := statsQueueIDs(t)
	return cfg, sp, now
}

// statsQueueIDs is statsQueue with the IDs of each state's messages.
func statsQueueIDs(t *testing.T) (*config.Config, *spool.Spool, time.Time, map[string][]string) {
	t.Helper()
	sp := testqueue.NewSpool(t)
	now := time.Now()
	ids := map[string][]string{}
	add := func(age time.Duration, size int, sender string, rcpts ...string) string {
		env := envelope(sender, rcpts...)
		env.Arrival = now.Add(-age)
		return enqueue(t, sp, env, content(size))
	}
	ids["incoming"] = append(ids["incoming"], add(time.Minute, 100, "bob@example.org", "a@example.org", "b@Example.ORG"))
	ids["incoming"] = append(ids["incoming"], add(7*time.Minute, 200, "bob@example.org", "c@example.org"))
	deferred := add(3*time.Hour, 300, "alice@example.com", "d@example.net", "e@example.net")
	ids["deferred"] = []string{deferred}
	update(t, sp, deferred, func(e *spool.Envelope) {
		e.Attempts = 2
		e.Recipients[0].Status = spool.Delivered
		e.RateWait = &spool.RateWait{Smarthost: "ops", Limit: "1/h", Until: now.Add(time.Hour)}
	})
	held := add(50*time.Minute, 400, "carol@example.org", "f@example.com", "g@example.org")
	ids["held"] = []string{held}
	update(t, sp, held, func(e *spool.Envelope) { e.Held, e.Attempts = true, 5 })
	dir, _ := sp.Corrupt()
	if err := os.WriteFile(filepath.Join(dir, "0000000000000A"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Spool: sp.Dir, Smarthosts: []config.Smarthost{
		{Name: "ops", Host: "ops.example", Senders: []string{"alice@example.com"}},
		{Name: "main", Host: "main.example"},
	}}
	return cfg, sp, now, ids
}

// queueBytes is the size of the queue files of ids: what stats counts
// as a state's bytes (the messages and their arrival envelopes).
func queueBytes(t *testing.T, sp *spool.Spool, ids ...string) int64 {
	t.Helper()
	var n int64
	for _, id := range ids {
		fi, err := os.Stat(filepath.Join(sp.Dir, "queue", id))
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestStats_CountsStatesAgesDomainsAndSmarthosts(t *testing.T) {
	cfg, sp, now, ids := statsQueueIDs(t)
	if err := sp.SetHost("main", spool.HostState{DownUntil: now.Add(10 * time.Minute), Failures: 3, Failure: failure.Failure{Stage: failure.StageConnect, Text: "connection refused"}}); err != nil {
		t.Fatal(err)
	}
	st, err := mailq.CollectStats(cfg, sp, 2, now, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		n     int
		bytes int64
		ages  string
		older time.Duration // the oldest is at least this old
	}{
		"incoming": {2, queueBytes(t, sp, ids["incoming"]...), "1 1 0 0 0 0 0", 7 * time.Minute},
		"deferred": {1, queueBytes(t, sp, ids["deferred"]...), "0 0 0 0 0 0 1", 3 * time.Hour},
		"held":     {1, queueBytes(t, sp, ids["held"]...), "0 0 0 0 1 0 0", 50 * time.Minute},
		"corrupt":  {1, 7, "1 0 0 0 0 0 0", 0},
	}
	for state, w := range want {
		s := st.States[state]
		ages := strings.Trim(strings.Join(strings.Fields(strings.Trim(strings.ReplaceAll(strings.Trim(jsonOf(t, s.Ages), "[]"), ",", " "), " ")), " "), " ")
		if s.Messages != w.n || s.Bytes != w.bytes || ages != w.ages || s.OldestAge < w.older.Seconds() || s.OldestAge > (w.older+time.Minute).Seconds() {
			t.Errorf("%s: %d messages, %d bytes, ages %s, oldest %.0fs; want %d, %d, %s, %s", state, s.Messages, s.Bytes, ages, s.OldestAge, w.n, w.bytes, w.ages, w.older)
		}
	}
	// Top 2 of 3 domains, by messages with pending recipients.
	if got := jsonOf(t, st.Domains); got != `[{"domain":"example.org","messages":3,"recipients":4},{"domain":"example.com","messages":1,"recipients":1}]` {
		t.Errorf("domains: %s", got)
	}
	opsBytes, mainBytes := queueBytes(t, sp, ids["deferred"]...), queueBytes(t, sp, append(ids["incoming"], ids["held"]...)...)
	if got := jsonOf(t, st.Smarthosts); !strings.Contains(got, fmt.Sprintf(`{"name":"ops","messages":1,"bytes":%d,"rate_limited":1,"up":true}`, opsBytes)) ||
		!strings.Contains(got, fmt.Sprintf(`{"name":"main","messages":3,"bytes":%d,"rate_limited":0,"up":false,"down_until":`, mainBytes)+jsonOf(t, now.Add(10*time.Minute).Unix())+`,"consecutive_failures":3}`) {
		t.Errorf("smarthosts: %s", got)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The Prometheus output is what promtool accepts, with the values of
// the queue; the file is written atomically and readable by node
// exporter (0644), no temporary file left beside it.
func TestStats_PrometheusFileForTheTextfileCollector(t *testing.T) {
	cfg, sp, _, ids := statsQueueIDs(t)
	out := filepath.Join(t.TempDir(), "relay.prom")
	var stdout bytes.Buffer
	q := mailq.Queue{Config: cfg, Out: &stdout, Warn: &stdout}
	if err := q.Stats(mailq.StatsOptions{Format: "prometheus", Output: out, Domains: 10}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, line := range []string{
		`relay_queue_messages{state="incoming"} 2`,
		`relay_queue_messages{state="held"} 1`,
		`relay_queue_messages{state="corrupt"} 1`,
		fmt.Sprintf(`relay_queue_bytes{state="held"} %d`, queueBytes(t, sp, ids["held"]...)),
		`relay_queue_messages_by_age{state="deferred",age="160m+"} 1`,
		`relay_queue_smarthost_messages{smarthost="ops"} 1`,
		`relay_queue_rate_limited_messages{smarthost="ops"} 1`,
		`relay_smarthost_up{smarthost="main"} 1`,
		`relay_queue_domain_messages{domain="example.net"} 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("no line %q in:\n%s", line, text)
		}
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("%d files beside the output, want it alone", len(entries))
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing with --output", stdout.String())
	}
	promtoolCheck(t, b)
}

// promtoolCheck runs promtool check metrics on text when promtool is
// installed (CI installs Debian's prometheus before the e2e suite, which
// checks the daemon's and the textfile's output again).
func promtoolCheck(t *testing.T, text []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: the output is checked by the e2e suite")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestStats_JSONAndTextAndEmptyQueue(t *testing.T) {
	cfg, sp, _, ids := statsQueueIDs(t)
	var out bytes.Buffer
	q := mailq.Queue{Config: cfg, Out: &out, Warn: &out}
	if err := q.Stats(mailq.StatsOptions{Format: "json", Domains: 1}); err != nil {
		t.Fatal(err)
	}
	var st mailq.Stats
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.States["held"].Messages != 1 || len(st.Domains) != 1 {
		t.Errorf("json: %v %+v\n%s", err, st, out.String())
	}
	out.Reset()
	if err := q.Stats(mailq.StatsOptions{Domains: 10}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("held              1 %12d", queueBytes(t, sp, ids["held"]...))) || !strings.Contains(out.String(), "example.org") {
		t.Errorf("text:\n%s", out.String())
	}

	// A spool that does not exist yet is an empty queue.
	empty := &config.Config{Spool: filepath.Join(t.TempDir(), "none")}
	out.Reset()
	q = mailq.Queue{Config: empty, Out: &out, Warn: &out}
	if err := q.Stats(mailq.StatsOptions{Format: "prometheus"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `relay_queue_messages{state="incoming"} 0`) {
		t.Errorf("empty queue:\n%s", out.String())
	}
	promtoolCheck(t, out.Bytes())
}

func TestStats_RefusedToOthers_Exit77(t *testing.T) {
	cfg, sp, _ := statsQueue(t)
	var out bytes.Buffer
	var err error
	withoutAccess(t, sp, func() {
		err = mailq.Queue{Config: cfg, Out: &out, Warn: &out}.Stats(mailq.StatsOptions{})
	})
	if sysexits.Code(err, 0) != sysexits.NoPerm {
		t.Errorf("err %v (exit %d), want 77", err, sysexits.Code(err, 0))
	}
}

func TestCheck_ThresholdsAndExitCodes(t *testing.T) {
	cfg, sp, now := statsQueue(t)
	st, err := mailq.CollectStats(cfg, sp, 0, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	lenient := mailq.CheckLimits{Held: mailq.CheckOK, Corrupt: mailq.CheckOK}
	cases := []struct {
		name  string
		lim   mailq.CheckLimits
		state int
		text  string
	}{
		{"defaults: held mail is critical", mailq.DefaultCheckLimits, mailq.CheckCritical, "1 held"},
		{"nothing over any threshold", lenient, mailq.CheckOK, "RELAY QUEUE OK: 3 waiting, 1 held, oldest 3h0m0s"},
		{"count warning", withLim(lenient, func(l *mailq.CheckLimits) { l.WarnCount = 3 }), mailq.CheckWarning, "3 messages waiting (warning at 3)"},
		{"count critical", withLim(lenient, func(l *mailq.CheckLimits) { l.WarnCount, l.CritCount = 2, 3 }), mailq.CheckCritical, "critical at 3"},
		{"age warning", withLim(lenient, func(l *mailq.CheckLimits) { l.WarnAge = time.Hour }), mailq.CheckWarning, "(warning at 1h0m0s)"},
		{"age critical", withLim(lenient, func(l *mailq.CheckLimits) { l.WarnAge, l.CritAge = time.Hour, 2*time.Hour }), mailq.CheckCritical, "(critical at 2h0m0s)"},
		{"held as a warning", withLim(lenient, func(l *mailq.CheckLimits) { l.Held = mailq.CheckWarning }), mailq.CheckWarning, "1 held"},
		{"corrupt as critical", withLim(lenient, func(l *mailq.CheckLimits) { l.Corrupt = mailq.CheckCritical }), mailq.CheckCritical, "1 corrupt file"},
	}
	for _, c := range cases {
		state, line := mailq.Check(st, c.lim)
		if state != c.state || !strings.Contains(line, c.text) || strings.Count(line, "\n") != 0 {
			t.Errorf("%s: state %d, %q; want %d and %q", c.name, state, line, c.state, c.text)
		}
		// Performance data as the monitoring-plugins guidelines write it.
		_, perf, ok := strings.Cut(line, " | ")
		if !ok || !strings.Contains(perf, "waiting=3;") || !strings.Contains(perf, "oldest_age=10800s;") || !strings.Contains(perf, "held=1;;;0") {
			t.Errorf("%s: performance data %q", c.name, perf)
		}
	}
}

func withLim(l mailq.CheckLimits, fn func(*mailq.CheckLimits)) mailq.CheckLimits {
	fn(&l)
	return l
}

func TestCheck_EmptyQueueIsOKAndUnreadableIsUnknown(t *testing.T) {
	var out bytes.Buffer
	q := mailq.Queue{Config: &config.Config{Spool: filepath.Join(t.TempDir(), "none")}, Out: &out, Warn: &out}
	if state := q.Check(mailq.DefaultCheckLimits); state != mailq.CheckOK || !strings.HasPrefix(out.String(), "RELAY QUEUE OK: 0 waiting, 0 held |") {
		t.Errorf("empty: %d %q", state, out.String())
	}
	cfg, sp, _ := statsQueue(t)
	out.Reset()
	q.Config = cfg
	var state int
	withoutAccess(t, sp, func() { state = q.Check(mailq.DefaultCheckLimits) })
	if state != mailq.CheckUnknown || !strings.HasPrefix(out.String(), "RELAY QUEUE UNKNOWN: permission denied") {
		t.Errorf("unreadable: %d %q", state, out.String())
	}
}

func TestShowMessage_BodyAndHeaders(t *testing.T) {
	sp := testqueue.NewSpool(t)
	body := "Subject: hello\r\nFrom: alice@example.com\r\n\r\nline one\r\n\r\nline three\r\n"
	id := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), body)
	cfg := &config.Config{Spool: sp.Dir}
	var out bytes.Buffer
	q := mailq.Queue{Config: cfg, Out: &out, Warn: &out}
	if err := q.ShowMessage(id, false); err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(body, "\r\n", "\n"); out.String() != want {
		t.Errorf("--body: %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := q.ShowMessage(id, true); err != nil {
		t.Fatal(err)
	}
	if want := "Subject: hello\nFrom: alice@example.com\n"; out.String() != want {
		t.Errorf("--headers: %q, want %q", out.String(), want)
	}
	if err := q.ShowMessage(spool.NewID(time.Now()), false); sysexits.Code(err, 0) != sysexits.NoInput {
		t.Errorf("missing message: %v, want exit 66", err)
	}
	var err error
	withoutAccess(t, sp, func() { err = q.ShowMessage(id, false) })
	if sysexits.Code(err, 0) != sysexits.NoPerm {
		t.Errorf("others: %v (exit %d), want 77", err, sysexits.Code(err, 0))
	}
}
