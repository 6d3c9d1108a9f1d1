package daemon_test

// Black-box tests of relay daemon (the process_*_test.go files): the real
// binary (internal/testbin) against an in-process go-smtp smarthost
// (internal/testsmtp's sink) that records every message it answered 250
// to, and can read DATA slowly. They cover what needs a process of its
// own: signals are real signals to the real process, SIGKILL, a daemon
// started as another user with an ambient capability, a second daemon
// refused. Everything that can run inside the test binary is tested there
// (package daemon's own tests), where coverage counts.
//
// Tests wait for events with generous deadlines (a hang fails instead of
// blocking CI); none asserts how fast anything was.

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// TestMain removes the binary the tests built (testbin.Binary builds it
// on first use: the in-process tests never wait for it).
func TestMain(m *testing.M) { testbin.Main(m) }

// daemonConf is the configuration of a daemon test: the sink on port,
// no detached runners, retries and rescans far away so that only the
// watch explains a prompt delivery.
func daemonConf(port int) string {
	return fmt.Sprintf(`[queue]
retry_min = "1h"
retry_max = "2h"

[daemon]
detached_delivery = false
rescan = "1h"

[[smarthost]]
host = "127.0.0.1"
port = %d
tls = "none"
`, port)
}

// relayd is a running relay daemon process.
type relayd struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *testsmtp.LockedBuffer // its stdout and stderr
	done chan struct{}          // closed when it has exited
	code int                    // its exit code, once done
}

// runDaemon starts relay daemon on e's spool and waits until it says it
// started.
func runDaemon(t *testing.T, e *testbin.Env, global ...string) *relayd {
	t.Helper()
	if _, err := spool.Open(e.Spool); err != nil {
		if _, err := spool.Create(e.Spool); err != nil {
			t.Fatal(err)
		}
	}
	d := &relayd{t: t, cmd: e.Cmd("relay", append(global, "daemon")...), log: &testsmtp.LockedBuffer{}, done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		if err != nil && d.code == 0 {
			d.code = -1
		}
		close(d.done)
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
	})
	if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(d.log.String(), "status=started") || d.exited() }) || d.exited() {
		t.Fatalf("relay daemon did not start:\n%s", d.log.String())
	}
	return d
}

func (d *relayd) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits (up to limit) for the daemon to exit; it
// returns how long that took.
func (d *relayd) stop(sig syscall.Signal, limit time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(limit):
		d.t.Fatalf("relay daemon still runs %v after %v:\n%s", limit, sig, d.log.String())
	}
	return time.Since(start)
}

// queued counts the queue (the daemon may remove a message at any time:
// only the names are read).
func queued(t *testing.T, e *testbin.Env) int {
	t.Helper()
	ids, err := e.Open().IDs()
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

func testMessage(msgID string, body string) string {
	return fmt.Sprintf("From: a@example.com\nTo: b@example.net\nSubject: daemon test\nMessage-ID: <%s>\n\n%s", msgID, body)
}

// submitMail queues a message with Message-ID msgID through the binary's
// sendmail.
func submitMail(t *testing.T, e *testbin.Env, msgID, body string) {
	t.Helper()
	if r := testbin.Run(e.Cmd("sendmail", "-i", "b@example.net"), testMessage(msgID, body)); r.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", r.Code, r.Stderr)
	}
}
