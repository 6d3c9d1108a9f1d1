package daemon_test

// SIGTERM and SIGINT to the real relay binary (relay queue run, relay
// daemon): a stop ends every network wait at once, except the wait for
// the reply to a final dot that is out, which is waited for and recorded
// (relay.DialOptions.Abort). Stops land at random moments of that wait,
// a hundred times: not one message may arrive twice.

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
)

// stopEnv is a spool and a configuration for the binary, the smarthost
// 127.0.0.1:port without TLS; retries and rescans far away, no detached
// runner, no alias file.
type stopEnv struct {
	t    *testing.T
	bin  string
	conf string
	sp   *spool.Spool
}

func newStopEnv(t *testing.T, bin string, port int) *stopEnv {
	t.Helper()
	dir := t.TempDir()
	e := &stopEnv{t: t, bin: bin, conf: filepath.Join(dir, "relay.toml")}
	text := fmt.Sprintf(`spool = %q
domain = "server1.example.com"

[queue]
retry_min = "1h"
retry_max = "2h"

[daemon]
detached_delivery = false
rescan = "1h"

[rewrite]
aliases = ""

[[smarthost]]
host = "127.0.0.1"
port = %d
tls = "none"
`, filepath.Join(dir, "spool"), port)
	if err := os.WriteFile(e.conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Create(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	e.sp = sp
	return e
}

// submit queues a message with Message-ID msgID straight into the queue.
func (e *stopEnv) submit(msgID string) {
	e.t.Helper()
	s := &sendmailcompat.Submitter{Spool: e.sp, Domain: "server1.example.com", Hostname: "host.example.com",
		UID: os.Getuid(), User: "tester", Now: time.Now}
	o, err := sendmailcompat.ParseArgs([]string{"-i", "-f", "tester@example.com", "rcpt@example.net"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := s.Enqueue(o.Message(), strings.NewReader("Message-ID: <"+msgID+">\nSubject: stop test\n\nbody\n")); err != nil {
		e.t.Fatal(err)
	}
}

func (e *stopEnv) queued() int {
	e.t.Helper()
	ids, err := e.sp.IDs()
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ids)
}

// proc is a running relay.
type proc struct {
	cmd  *exec.Cmd
	out  *testsmtp.LockedBuffer
	done chan struct{}
}

func (e *stopEnv) start(args ...string) *proc {
	e.t.Helper()
	p := &proc{cmd: exec.Command(e.bin, append([]string{"-C", e.conf}, args...)...), out: &testsmtp.LockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits at most limit for the exit, which must be 0.
func (p *proc) stop(t *testing.T, sig syscall.Signal, limit time.Duration) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("%s still runs %v after %v:\n%s", strings.Join(p.cmd.Args[1:], " "), limit, sig, p.out.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s: exit %d after %v:\n%s", strings.Join(p.cmd.Args[1:], " "), code, sig, p.out.String())
	}
}

// copies counts the messages the server accepted, per Message-ID.
func copies(s *testsmtp.FaultServer) map[string]int {
	n := map[string]int{}
	for _, m := range s.Messages() {
		_, rest, _ := bytes.Cut(m.Body, []byte("Message-ID: <"))
		id, _, _ := bytes.Cut(rest, []byte(">"))
		n[string(id)]++
	}
	return n
}

func TestProcess_Stop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := testbin.Binary(t)

	// A smarthost that accepts and never greets: SIGTERM and SIGINT end
	// relay queue run within a second, the message untouched.
	t.Run("QueueRunServerNeverGreets", func(t *testing.T) {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
			var mu sync.Mutex
			conns := 0
			port := testsmtp.ServeLoopback(t, func(c net.Conn) {
				mu.Lock()
				conns++
				mu.Unlock()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			})
			e := newStopEnv(t, bin, port)
			e.submit("silent@example.com")
			p := e.start("queue", "run")
			if !testsmtp.WaitFor(10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return conns == 1 }) {
				t.Fatalf("no connection:\n%s", p.out.String())
			}
			time.Sleep(100 * time.Millisecond)
			p.stop(t, sig, time.Second)
			ids, _ := e.sp.IDs()
			if len(ids) != 1 {
				t.Fatalf("%d messages queued, want the one", len(ids))
			}
			if m, err := e.sp.Read(ids[0]); err != nil || m.Attempts != 0 {
				t.Errorf("after %v: %v, attempts %d: want the message untouched", sig, err, m.Attempts)
			}
		}
	})

	// SIGTERM while the smarthost, which has the whole message, takes
	// its time to answer the dot: relay waits for the 250 and records
	// it. 100 relay queue runs, then 20 daemons, each stopped at a random
	// moment of that wait; a last run delivers what is left. Every
	// message arrives exactly once.
	t.Run("DuringReplyToDotNoDuplicate", func(t *testing.T) {
		const delay = 150 * time.Millisecond
		s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{DotDelay: delay})
		e := newStopEnv(t, bin, s.Port)
		var ids []string
		stopAt := func(i int, p *proc) {
			if !testsmtp.WaitFor(20*time.Second, func() bool { return copies(s)[ids[i]] > 0 || p.exited() }) {
				t.Fatalf("stop %d: the server did not get the message:\n%s", i, p.out.String())
			}
			time.Sleep(rand.N(delay))
			p.stop(t, syscall.SIGTERM, 10*time.Second)
		}
		for i := range 100 {
			ids = append(ids, fmt.Sprintf("run%d@example.com", i))
			e.submit(ids[i])
			stopAt(i, e.start("queue", "run"))
		}
		for i := 100; i < 120; i++ {
			ids = append(ids, fmt.Sprintf("daemon%d@example.com", i))
			p := e.start("daemon")
			if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(p.out.String(), "status=started") || p.exited() }) {
				t.Fatalf("the daemon did not start:\n%s", p.out.String())
			}
			e.submit(ids[i])
			stopAt(i, p)
		}
		s.SetConfig(func(c *testsmtp.ServerConfig) { c.DotDelay = 0 })
		last := e.start("queue", "run")
		select {
		case <-last.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("the last queue run did not end:\n%s", last.out.String())
		}
		got := copies(s)
		dups := 0
		for _, id := range ids {
			switch n := got[id]; {
			case n == 0:
				t.Errorf("%s never arrived", id)
			case n > 1:
				dups += n - 1
			}
		}
		if dups > 0 {
			t.Errorf("%d extra copies of %d messages stopped during the reply to their dot", dups, len(ids))
		}
		if n := e.queued(); n != 0 {
			t.Errorf("%d messages still queued", n)
		}
	})
}
