package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

// TestOutage_500MessagesArriveExactlyOnce stops the smarthost, queues 500
// messages from five envelope senders, and checks SPEC section 6: a pass
// over the queue costs one failed connection, not one per message; the
// smarthost is then remembered as down, so the next pass defers what is
// due without connecting at all; `relay check` says mail is stuck (75);
// after the smarthost is back, `relay queue flush` forgets the down state
// and one `relay queue run` delivers every message exactly once.
//
// Mail deferred by a pass is not due again before the smarthost's down
// time ends (next_attempt >= down_until), so a second pass over it alone
// would connect to nothing whether or not relay remembers anything: 50 of
// the 500 are queued only after the first pass, and are what the second
// pass must defer without connecting.
//
// The smarthost is stopped for the length of this test only: a cleanup
// starts it again even when the test fails, so the tests after it find it
// running (the suite runs one test at a time).
//
// The five senders: the harness's Postfix refuses (553 5.7.1) a sender
// only when it belongs to another login (reject_known_sender_login_mismatch),
// so the senders are the login's own, three addresses nobody owns, and the
// null sender.
func TestOutage_500MessagesArriveExactlyOnce(t *testing.T) {
	needHarness(t)
	const (
		perSender = 100 // messages per sender, one submitting loop each
		late      = 10  // of them, queued only after the first pass
	)
	user := env["SMARTHOST_USER"] // robot@example.test
	senders := []string{
		user,
		"cron@example.org",
		"www-data@example.org",
		"backup@example.org",
		"<>", // the null sender (-f '<>'), as autoresponders send
	}
	total := perSender * len(senders)
	rcpt := "outage@example.org"
	port := envInt(t, "SMARTHOST_PORT_STARTTLS")
	addr := net.JoinHostPort(env["SMARTHOST_HOST"], strconv.Itoa(port))
	c := newCase(t, okSmarthost(t, dirFor(t)), "")
	t.Cleanup(func() { ensureHarnessRunning(t) })

	// ---- the smarthost goes down
	stopHarness(t)
	if conn, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after smarthost.sh stop", addr)
	}

	// ---- 500 messages, five senders, five parallel sendmail loops; the
	// last `late` of each loop are held back for the second pass.
	type queued struct {
		m      msg
		sender string
	}
	batches := make([][]queued, len(senders)) // per sender, in order
	for i, s := range senders {
		for j := range perSender {
			m := newMsg(t, user, []string{rcpt}, fmt.Sprintf("outage message %d of sender %d (%s)\n", j, i, s))
			batches[i] = append(batches[i], queued{m, s})
		}
	}
	submitAll := func(from, to int) time.Duration {
		t.Helper()
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		for _, b := range batches {
			wg.Go(func() {
				for _, q := range b[from:to] {
					if r := c.submitQuiet(t, q.m, q.sender, rcpt); r.Code != 0 || r.Stderr != "" || r.Stdout != "" {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("-f %s: %v", q.sender, r))
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d submissions failed; first: %s", len(failures), failures[0])
		}
		return time.Since(start)
	}
	early := total - late*len(senders)
	d := submitAll(0, perSender-late)
	t.Logf("queued %d messages from %d senders with %d parallel sendmail loops in %v", early, len(senders), len(senders), d.Round(time.Millisecond))
	q := c.queueList()
	if len(q) != early {
		t.Fatalf("queue list --json: %d messages, want %d", len(q), early)
	}
	bySender := map[string]int{}
	for _, e := range q {
		bySender[e.Sender]++
	}
	if len(bySender) != len(senders) {
		t.Errorf("queued senders %v, want %d distinct ones", bySender, len(senders))
	}

	// ---- pass 1, smarthost down: everything deferred after ONE failed
	// connection. Counted with strace where it works (each connect(2) to
	// the port), else with this network namespace's TCP ActiveOpens.
	conns, how, r1, lines := countConnects(t, c, port)
	t.Logf("pass 1 (smarthost down): %v for %d messages; %d connection attempt(s) to port %d (%s)", r1.Dur.Round(time.Millisecond), early, conns, port, how)
	if r1.Code != 0 {
		t.Errorf("queue run with the smarthost down: %v", r1)
	}
	switch {
	case how == "strace" && conns != 1:
		t.Errorf("pass 1 made %d connection attempts to the smarthost for %d messages, want 1", conns, early)
	case how != "strace" && (conns < 1 || conns > early/10):
		// Other processes may connect too: only "about one, not one
		// per message" can be told apart here.
		t.Errorf("pass 1: TCP ActiveOpens grew by %d for %d messages, want about 1", conns, early)
	}
	rl := recipientLines(lines)
	if len(rl) != early {
		t.Errorf("pass 1 logged %d recipient lines, want %d", len(rl), early)
	}
	bad := 0
	for _, l := range rl {
		if l.kv["status"] != "deferred" || l.kv["stage"] != "connect" || !strings.Contains(l.kv["reply"], "connection refused") {
			if bad++; bad <= 5 {
				t.Errorf("pass 1: want status=deferred stage=connect, reply \"connection refused\": %s", l.raw)
			}
		}
	}
	// Every reason names the same failure: the one connection's.
	q = c.queueList()
	reasons := reasonsOf(q)
	if len(q) != early || len(reasons) != 1 {
		t.Errorf("after pass 1: %d messages with %d distinct delay reasons, want %d with one: %v", len(q), len(reasons), early, reasons)
	}
	for reason := range reasons {
		contains(t, "delay_reason after pass 1", reason, "connection refused")
	}
	after1 := map[string]queueEntry{}
	bad = 0
	for _, e := range q {
		after1[e.QueueID] = e
		if e.Attempts != 1 || e.QueueName != "deferred" || len(e.Recipients) != 1 {
			if bad++; bad <= 5 {
				t.Errorf("after pass 1: %s queue_name=%s attempts=%d recipients=%d, want deferred, 1, 1", e.QueueID, e.QueueName, e.Attempts, len(e.Recipients))
			}
		}
	}
	expectCheck(t, c, 75, "pass 1")

	// ---- pass 2 right away, with new mail due: the smarthost is
	// remembered as down. A listener on its port (free while the harness
	// is stopped) counts every connection relay makes; it would get them.
	d = submitAll(perSender-late, perSender)
	t.Logf("queued %d more messages in %v", total-early, d.Round(time.Millisecond))
	ln := listenCounting(t, addr)
	r2, lines := c.queueRunQuiet()
	accepts := ln.close()
	t.Logf("pass 2 (remembered down): %v; %d connection(s) accepted on %s", r2.Dur.Round(time.Millisecond), accepts, addr)
	if r2.Code != 0 {
		t.Errorf("second queue run: %v", r2)
	}
	if accepts != 0 {
		t.Errorf("pass 2 connected %d time(s) to %s, want none: the smarthost should be remembered as down", accepts, addr)
	}
	rl = recipientLines(lines)
	if len(rl) != total-early {
		t.Errorf("pass 2 logged %d recipient lines, want %d (only the new messages are due)", len(rl), total-early)
	}
	bad = 0
	for _, l := range rl {
		if l.kv["status"] != "deferred" || !strings.Contains(l.kv["reply"], "down until") {
			if bad++; bad <= 5 {
				t.Errorf("pass 2: want status=deferred, reply \"down until\": %s", l.raw)
			}
		}
	}
	q = c.queueList()
	if len(q) != total {
		t.Errorf("after pass 2: %d messages queued, want %d", len(q), total)
	}
	fresh := 0
	bad = 0
	for _, e := range q {
		reason := reasonOf(e)
		if old, ok := after1[e.QueueID]; ok {
			// Not due yet: untouched by pass 2.
			if e.Attempts != 1 || e.NextAttempt != old.NextAttempt || reason != reasonOf(old) {
				if bad++; bad <= 5 {
					t.Errorf("pass 2 retried %s before its time: attempts=%d next_attempt=%d (was %d), reason %q", e.QueueID, e.Attempts, e.NextAttempt, old.NextAttempt, reason)
				}
			}
			continue
		}
		fresh++
		if e.Attempts != 1 || !strings.Contains(reason, "down until") || !strings.Contains(reason, "connection refused") {
			if bad++; bad <= 5 {
				t.Errorf("after pass 2: %s attempts=%d reason %q, want 1 and \"down until\" with the remembered \"connection refused\"", e.QueueID, e.Attempts, reason)
			}
		}
	}
	if fresh != total-early {
		t.Errorf("after pass 2: %d new messages in the queue, want %d", fresh, total-early)
	}
	contains(t, "mailq after pass 2", c.mailq(), "down until")
	expectCheck(t, c, 75, "pass 2")

	// ---- the smarthost is back: flush forgets the down state, one pass
	// delivers everything.
	startHarness(t)
	if r := run(t, nil, relayBin, "-C", c.conf, "queue", "flush"); r.Code != 0 {
		t.Fatalf("queue flush: %v", r)
	}
	now := time.Now().Unix()
	for _, e := range c.queueList() {
		if e.NextAttempt > now {
			t.Errorf("after flush: %s next_attempt %d is later than now (%d)", e.QueueID, e.NextAttempt, now)
			break
		}
	}
	mark := logMark(t)
	r3, lines := c.queueRunQuiet()
	t.Logf("pass 3 (after flush): delivered the queue of %d in %v (%.0f msg/s)", total, r3.Dur.Round(time.Millisecond), float64(total)/r3.Dur.Seconds())
	if r3.Code != 0 {
		t.Errorf("queue run after flush: exit %d\n%s", r3.Code, lastLines(r3.Stderr, 5))
	}
	sent := 0
	bad = 0
	for _, l := range recipientLines(lines) {
		if l.kv["status"] == "sent" {
			sent++
			continue
		}
		if bad++; bad <= 5 {
			t.Errorf("pass 3, not sent: %s", l.raw)
		}
	}
	if sent != total {
		t.Errorf("pass 3: %d status=sent lines, want %d", sent, total)
	}

	ids := make([]string, 0, total)
	for _, b := range batches {
		for _, q := range b {
			ids = append(ids, q.m.ID)
		}
	}
	missing, dup := missingAndDuplicated(t, 60*time.Second, ids...)
	t.Logf("Maildir: %d of %d Message-IDs present, %d missing, %d more than once", total-missing, total, missing, dup)
	if missing > 0 || dup > 0 {
		t.Errorf("of %d Message-IDs: %d missing from the Maildir, %d there more than once, want each exactly once", total, missing, dup)
	}
	c.expectEmptyQueue()
	expectCheck(t, c, 0, "delivery")

	carried := 0
	for _, s := range sessions(t, mark, "starttls-"+strconv.Itoa(port)) {
		if s.commands()["mail"] != "" {
			carried++
		}
	}
	t.Logf("%d smarthost connection(s) carried the %d messages", carried, total)
	if carried == 0 {
		t.Errorf("Postfix logged no session that carried mail after the flush")
	}
}

// reasonsOf counts the delay reasons of a queue listing.
func reasonsOf(q []queueEntry) map[string]int {
	out := map[string]int{}
	for _, e := range q {
		for _, r := range e.Recipients {
			out[r.DelayReason]++
		}
	}
	return out
}

// reasonOf is the delay reason of a message with one recipient.
func reasonOf(e queueEntry) string {
	if len(e.Recipients) != 1 {
		return fmt.Sprintf("(%d recipients)", len(e.Recipients))
	}
	return e.Recipients[0].DelayReason
}

// expectCheck runs `relay check` and wants exit code want.
func expectCheck(t *testing.T, c *tc, want int, after string) {
	t.Helper()
	r := run(t, nil, relayBin, "-C", c.conf, "check")
	if r.Code != want {
		t.Errorf("relay check after %s: exit %d, want %d\n%v", after, r.Code, want, r)
		return
	}
	if want == 75 {
		contains(t, "relay check", r.Stdout+r.Stderr, "stuck", "connection refused")
	}
}

// ------------------------------------------ stopping the smarthost --

func harnessCmd(t testing.TB, what string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "smarthost.sh", what).CombinedOutput()
	return string(out), err
}

func stopHarness(t *testing.T) {
	t.Helper()
	start := time.Now()
	if out, err := harnessCmd(t, "stop"); err != nil {
		t.Fatalf("smarthost.sh stop: %v\n%s", err, out)
	}
	t.Logf("smarthost stopped in %v", time.Since(start).Round(time.Millisecond))
}

func startHarness(t *testing.T) {
	t.Helper()
	start := time.Now()
	if out, err := harnessCmd(t, "start"); err != nil {
		t.Fatalf("smarthost.sh start: %v\n%s", err, out)
	}
	t.Logf("smarthost started again in %v", time.Since(start).Round(time.Millisecond))
}

// ensureHarnessRunning is the cleanup of a test that stops the smarthost:
// it starts it again unless it answers. When that fails, the tests after
// it are told so (needHarness) instead of failing one by one.
func ensureHarnessRunning(t *testing.T) {
	if _, err := harnessCmd(t, "status"); err == nil {
		return
	}
	out, err := harnessCmd(t, "start")
	if err == nil {
		_, err = harnessCmd(t, "status")
	}
	if err != nil {
		t.Errorf("could not start the smarthost again after %s: %v\n%s", t.Name(), err, out)
		harnessDown = fmt.Sprintf("%s stopped the smarthost and could not start it again: %v", t.Name(), err)
	}
}

// ------------------------------------------ counting connections --

// countingListener accepts on the smarthost's address, counts, and hangs
// up at once.
type countingListener struct {
	ln   net.Listener
	n    atomic.Int64
	done chan struct{}
}

func listenCounting(t *testing.T, addr string) *countingListener {
	t.Helper()
	var ln net.Listener
	var err error
	testsmtp.WaitFor(5*time.Second, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	if err != nil {
		t.Fatalf("listening on the stopped smarthost's address: %v", err)
	}
	l := &countingListener{ln: ln, done: make(chan struct{})}
	// Closed before anything else at the end, so the harness can bind.
	t.Cleanup(func() { l.close() })
	go func() {
		defer close(l.done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			l.n.Add(1)
			conn.Close()
		}
	}()
	return l
}

// close stops listening and returns the number of accepted connections.
func (l *countingListener) close() int64 {
	l.ln.Close()
	<-l.done
	return l.n.Load()
}

// countConnects makes one queue run and counts relay's connection attempts
// to port: exactly, from strace's record of connect(2), when strace works
// here; else from the growth of TCP ActiveOpens in /proc/net/snmp (of this
// network namespace: other processes count too).
func countConnects(t *testing.T, c *tc, port int) (int, string, result, []logLine) {
	t.Helper()
	if strace, err := exec.LookPath("strace"); err == nil && exec.Command(strace, "-qq", "-e", "trace=none", "true").Run() == nil {
		trace := filepath.Join(c.dir, "pass1.strace")
		r := run(t, nil, strace, "-f", "-qq", "-e", "trace=connect", "-o", trace, relayBin, "-C", c.conf, "queue", "run")
		n, err := connectsIn(trace, port)
		if err != nil {
			t.Errorf("counting connections with strace: %v", err)
		}
		return n, "strace", r, parseLog(r.Stderr)
	}
	before, err := tcpActiveOpens()
	if err != nil {
		t.Fatalf("neither strace nor /proc/net/snmp can count connections: %v", err)
	}
	r, lines := c.queueRunQuiet()
	after, err := tcpActiveOpens()
	if err != nil {
		t.Fatal(err)
	}
	return int(after - before), "TCP ActiveOpens of this network namespace", r, lines
}

// connectsIn counts connect(2) calls to port in an strace output file (a
// call split by another thread's is counted by its first half, which holds
// the address).
func connectsIn(trace string, port int) (int, error) {
	f, err := os.Open(trace)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, calls := 0, 0
	needle := fmt.Sprintf("htons(%d)", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "connect(") {
			continue
		}
		calls++
		if strings.Contains(line, needle) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if calls == 0 {
		// relay connects somewhere when it has mail to send.
		return 0, errors.New("no connect(2) call in " + trace)
	}
	return n, nil
}

// tcpActiveOpens reads the Tcp ActiveOpens counter (connect attempts) of
// this network namespace.
func tcpActiveOpens() (int64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "ActiveOpens" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	return 0, errors.New("/proc/net/snmp: no Tcp ActiveOpens")
}
