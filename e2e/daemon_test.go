package e2e_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// e2eDaemon is relay daemon running against the real smarthost; its log
// lines are read as they come, each stamped with the time it was read.
type e2eDaemon struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	sent map[string]time.Time // queue ID → when its status=sent line came
	log  strings.Builder
	done chan struct{}
}

var sentRE = regexp.MustCompile(`\bid=(\S+) .*status=sent`)

func startE2EDaemon(t *testing.T, c *tc) *e2eDaemon {
	t.Helper()
	d := &e2eDaemon{sent: map[string]time.Time{}, done: make(chan struct{})}
	d.cmd = exec.Command(relayBin, "-C", c.conf, "daemon")
	d.cmd.Env = cleanEnv()
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			now := time.Now()
			line := sc.Text()
			printedMu.Lock()
			printed.WriteString(line + "\n")
			printedMu.Unlock()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			if m := sentRE.FindStringSubmatch(line); m != nil {
				d.sent[m[1]] = now
			}
			d.mu.Unlock()
			if strings.Contains(line, "status=started") {
				once.Do(func() { close(started) })
			}
		}
		d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
	})
	select {
	case <-started:
	case <-d.done:
		t.Fatalf("relay daemon exited at start:\n%s", d.logText())
	case <-time.After(10 * time.Second):
		t.Fatalf("relay daemon did not start:\n%s", d.logText())
	}
	return d
}

func (d *e2eDaemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// newSent returns a queue ID sent that is not in seen, with its time.
func (d *e2eDaemon) newSent(seen map[string]bool) (string, time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, at := range d.sent {
		if !seen[id] {
			return id, at, true
		}
	}
	return "", time.Time{}, false
}

// TestDaemon_PickupLatency: 100 submissions, one after the other, each
// picked up by the daemon's watch and delivered to the real Postfix. The
// daemon's rescan is an hour and nothing else starts a runner, so only the
// watch can explain that each message leaves; the latency from sendmail's
// return to the smarthost's 250 (the daemon's status=sent line) is
// printed, not asserted.
func TestDaemon_PickupLatency(t *testing.T) {
	sh := okSmarthost(t, dirFor(t))
	c := newCase(t, sh, "")
	c.detached = true // the [daemon] table is written here instead
	c.writeConfig(sh, "[daemon]\ndetached_delivery = false\nrescan = \"1h\"\n")
	d := startE2EDaemon(t, c)

	const n = 100
	seen := map[string]bool{}
	var ids []string
	var lat []time.Duration
	for i := 0; i < n; i++ {
		m := newMsg(t, "robot@example.test", []string{"alice@example.test"}, fmt.Sprintf("message %d\n", i))
		ids = append(ids, m.ID)
		r := run(t, bytes.NewReader(m.Body), relayBin, "sendmail", "-C", c.conf, "-i", "-f", "robot@example.test", "alice@example.test")
		returned := time.Now()
		if r.Code != 0 {
			t.Fatalf("sendmail: %v", r)
		}
		var qid string
		var at time.Time
		deadline := returned.Add(30 * time.Second)
		for {
			var ok bool
			if qid, at, ok = d.newSent(seen); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %d not delivered (no status=sent line):\n%s", i, d.logText())
			}
			time.Sleep(time.Millisecond)
		}
		seen[qid] = true
		lat = append(lat, at.Sub(returned))
	}
	copies := waitCopies(t, 60*time.Second, ids...)
	for _, id := range ids {
		if len(copies[id]) != 1 {
			t.Errorf("%s: %d copies in the Maildir, want 1", id, len(copies[id]))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	over := 0
	for _, l := range lat {
		if l > time.Second {
			over++
		}
	}
	t.Logf("pickup latency, sendmail returned → smarthost's 250, %d messages: p50 %v  p90 %v  p99 %v  max %v; over 1 s: %d",
		n, lat[n/2].Round(100*time.Microsecond), lat[n*9/10].Round(100*time.Microsecond), lat[n*99/100].Round(100*time.Microsecond), lat[n-1].Round(100*time.Microsecond), over)
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop after SIGTERM")
	}
	c.expectEmptyQueue()
}
