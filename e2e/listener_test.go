package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// The SMTP listener of `relay daemon` ([daemon] listen): real SMTP clients
// (Python's smtplib, swaks) submit to it, the daemon delivers to the real
// Postfix smarthost. A client in a network namespace of its own shows the
// client policy: refused at connect unless its network is in
// listen_networks.
//
// Gate: the harness, python3 and swaks (e2e/callers.sh install), else
// skipped (failed with RELAY_E2E=1).

// needTool skips (fails with RELAY_E2E=1) when a client program is missing.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed: sudo bash e2e/callers.sh install", name)
		if os.Getenv("RELAY_E2E") == "1" {
			t.Fatalf("RELAY_E2E=1 but %s", msg)
		}
		t.Skip(msg)
	}
	return p
}

// listenerDaemon is a running `relay daemon`.
type listenerDaemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	out     *testsmtp.LockedBuffer
	done    chan struct{}
	stopped bool
}

// freeLoopbackPort returns a port free on 127.0.0.1 and ::1 a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			l6.Close()
			return port
		}
	}
	t.Fatal("no port free on both loopback addresses")
	return 0
}

// listenConfig rewrites c's relay.toml with a [daemon] table that listens
// on addrs and serves nets.
func listenConfig(c *tc, sh smarthost, addrs, nets []string) {
	q := func(xs []string) string {
		var parts []string
		for _, x := range xs {
			parts = append(parts, strconv.Quote(x))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	c.detached = true // the table below says detached_delivery itself
	c.writeConfig(sh, fmt.Sprintf("[daemon]\nlisten = %s\nlisten_networks = %s\ndetached_delivery = false\n", q(addrs), q(nets)))
}

// startListenerDaemon starts relay daemon on c and waits until ready
// (a loopback host:port) accepts connections.
func startListenerDaemon(t *testing.T, c *tc, ready string) *listenerDaemon {
	t.Helper()
	if _, err := os.Stat(filepath.Join(c.dir, "spool")); err != nil {
		// As root the daemon makes no spool: relay install would.
		if _, err := spool.Create(filepath.Join(c.dir, "spool")); err != nil {
			t.Fatal(err)
		}
	}
	d := &listenerDaemon{t: t, cmd: exec.Command(relayBin, "-C", c.conf, "daemon"), out: &testsmtp.LockedBuffer{}, done: make(chan struct{})}
	d.cmd.Env = cleanEnv()
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		if !d.stopped {
			d.cmd.Process.Kill()
			<-d.done
			d.record()
		}
	})
	var err error
	exited := false
	testsmtp.WaitFor(30*time.Second, func() bool {
		var conn net.Conn
		if conn, err = net.DialTimeout("tcp", ready, time.Second); err == nil {
			conn.Close()
			return true
		}
		select {
		case <-d.done:
			exited = true
			return true
		default:
			return false
		}
	})
	switch {
	case err == nil:
		return d
	case exited:
		t.Fatalf("relay daemon exited: %v\n%s", d.cmd.ProcessState, d.out)
	default:
		t.Fatalf("relay daemon does not listen on %s: %v\n%s", ready, err, d.out)
	}
	return nil
}

// record adds the daemon's output to what the password check searches.
func (d *listenerDaemon) record() {
	printedMu.Lock()
	printed.WriteString(d.out.String())
	printedMu.Unlock()
}

// stop sends SIGTERM and expects a clean exit.
func (d *listenerDaemon) stop() string {
	d.t.Helper()
	d.stopped = true
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("relay daemon did not stop within 30s of SIGTERM")
	}
	d.record()
	if !d.cmd.ProcessState.Success() {
		d.t.Errorf("relay daemon: %v after SIGTERM\n%s", d.cmd.ProcessState, d.out)
	}
	return d.out.String()
}

// waitArrived waits until each id is in the Maildir (the daemon delivers
// on its own), then lets Postfix settle and returns the copies.
func waitArrived(t *testing.T, d *listenerDaemon, ids ...string) map[string][]delivered {
	t.Helper()
	var got map[string][]delivered
	if !testsmtp.WaitFor(90*time.Second, func() bool {
		got = copiesOf(t, ids...)
		return len(got) == len(ids)
	}) {
		t.Fatalf("after 90s only %d of %d messages arrived at the smarthost\ndaemon:\n%s", len(got), len(ids), d.out)
	}
	return waitCopies(t, 30*time.Second, ids...)
}

// pythonSMTP is Python's smtplib, as Django's SMTP backend drives it: it
// prints the reply to DATA.
const pythonSMTP = `
import smtplib, sys
from email.message import EmailMessage
host, port, helo, frm, to, mid = sys.argv[1:7]
m = EmailMessage()
m['From'] = frm
m['To'] = to
m['Subject'] = 'relay e2e listener smtplib ' + mid
m['Message-ID'] = '<' + mid + '>'
m.set_content('sent by Python smtplib through relay\'s SMTP listener\n')
s = smtplib.SMTP(host, int(port), local_hostname=helo, timeout=60)
s.ehlo()
s.mail(frm)
s.rcpt(to)
code, msg = s.data(m.as_bytes())
print(code, msg.decode())
s.quit()
sys.exit(0 if code == 250 else 1)
`

func runClient(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", filepath.Base(name), out)
	printedMu.Lock()
	printed.Write(out) // relay's replies are in it
	printedMu.Unlock()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), code
}

// swaksArgs sends one message with Message-ID id through server:port.
func swaksArgs(server string, port int, helo, from, to, id string) []string {
	return []string{"--server", server, "--port", strconv.Itoa(port), "--helo", helo,
		"--from", from, "--to", to, "--timeout", "60",
		"--header", "Message-Id: <" + id + ">", "--header", "Subject: relay e2e listener swaks " + id,
		"--body", "sent by swaks through relay's SMTP listener"}
}

var listenerQueuedRE = regexp.MustCompile(`250 2\.0\.0 Ok: queued as ([0-9A-Z]+)`)

// receivedOf returns the first Received field of a delivered message
// written by relay (with its continuation lines).
func receivedOf(t *testing.T, d delivered) string {
	t.Helper()
	b, err := os.ReadFile(d.path)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n")
	m := regexp.MustCompile(`(?m)^Received: from .*\n(?:[ \t].*\n)*`).FindAllString(head+"\n", -1)
	for _, r := range m {
		if strings.Contains(r, "(relay)") {
			return r
		}
	}
	t.Errorf("no Received field of relay in the delivered message:\n%s", head)
	return ""
}

// Python's smtplib (over 127.0.0.1) and swaks (over ::1) submit to the
// listener; the daemon delivers both to the smarthost, each once, with the
// client recorded in the Received field and the log.
func TestListener_SmtplibAndSwaks(t *testing.T) {
	needHarness(t)
	python := needTool(t, "python3")
	swaks := needTool(t, "swaks")
	port := freeLoopbackPort(t)
	sh := okSmarthost(t, dirFor(t))
	c := newCase(t, sh, "")
	v4, v6 := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), net.JoinHostPort("::1", strconv.Itoa(port))
	listenConfig(c, sh, []string{v4, v6}, nil)
	d := startListenerDaemon(t, c, v4)

	user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
	pyID, swID := token()+"@python.e2e.relay.test", token()+"@swaks.e2e.relay.test"
	script := filepath.Join(c.dir, "send.py")
	if err := os.WriteFile(script, []byte(pythonSMTP), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runClient(t, python, script, "127.0.0.1", strconv.Itoa(port), "django.client.test", user, rcpt, pyID)
	if code != 0 || !listenerQueuedRE.MatchString(out) {
		t.Fatalf("smtplib: exit %d, want 0 and \"250 2.0.0 Ok: queued as ID\"", code)
	}
	out, code = runClient(t, swaks, swaksArgs("::1", port, "swaks.client.test", user, rcpt, swID)...)
	if code != 0 || !listenerQueuedRE.MatchString(out) {
		t.Fatalf("swaks: exit %d, want 0 and \"250 2.0.0 Ok: queued as ID\"", code)
	}

	copies := waitArrived(t, d, pyID, swID)
	for id, want := range map[string]*regexp.Regexp{
		pyID: regexp.MustCompile(`^Received: from django\.client\.test \(\[127\.0\.0\.1\]\)\n\tby \S+ \(relay\) with ESMTP id [0-9A-Z]+;\n`),
		swID: regexp.MustCompile(`^Received: from swaks\.client\.test \(\[IPv6:::1\]\)\n\tby \S+ \(relay\) with ESMTP id [0-9A-Z]+;\n`),
	} {
		cs := copies[id]
		if len(cs) != 1 {
			t.Errorf("%s arrived %d times, want once", id, len(cs))
			continue
		}
		if r := receivedOf(t, cs[0]); !want.MatchString(r) {
			t.Errorf("%s: relay's Received field is\n%s\nwant it to match %s", id, r, want)
		}
	}
	log := d.stop()
	for _, client := range []string{`\[127\.0\.0\.1\]`, `\[::1\]`} {
		if !regexp.MustCompile(`client=` + client + `:\d+ from=<` + regexp.QuoteMeta(user) + `> .*status=queued`).MatchString(log) {
			t.Errorf("no enqueue line with client=%s in the daemon's log:\n%s", client, log)
		}
	}
	c.expectEmptyQueue()
}

// A client in a network namespace (a non-loopback address, 10.231.N.2)
// reads 554 5.7.1 at connect, nothing is queued and the daemon logs its
// address; once its network is in listen_networks the same client is
// served and its mail arrives.
func TestListener_NetnsClientNeedsListenNetworks(t *testing.T) {
	needHarness(t)
	swaks := needTool(t, "swaks")
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2 for the network namespace")
	}
	hostIP, nsIP := setupNetns(t)
	port := freeLoopbackPort(t)
	sh := okSmarthost(t, dirFor(t))
	c := newCase(t, sh, "")
	lo, outer := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), net.JoinHostPort(hostIP, strconv.Itoa(port))
	user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
	inNS := func(id string) (string, int) {
		return runClient(t, "ip", append([]string{"netns", "exec", nsName(), swaks}, swaksArgs(hostIP, port, "container.test", user, rcpt, id)...)...)
	}

	// Not listed: refused at connect.
	listenConfig(c, sh, []string{lo, outer}, nil)
	d := startListenerDaemon(t, c, lo)
	refusedID := token() + "@refused.e2e.relay.test"
	out, code := inNS(refusedID)
	if code == 0 || !strings.Contains(out, "554 5.7.1") || strings.Contains(out, "220 ") {
		t.Errorf("swaks from %s: exit %d; want a failure with \"554 5.7.1\" and no 220 greeting", nsIP, code)
	}
	log := d.stop()
	if n := len(regexp.MustCompile(`client=\[`+regexp.QuoteMeta(nsIP)+`\]:\d+ status=refused`).FindAllString(log, -1)); n != 1 {
		t.Errorf("%d refusal lines naming %s in the daemon's log, want 1:\n%s", n, nsIP, log)
	}
	if q := c.queueList(); len(q) != 0 {
		t.Errorf("a refused client's mail was queued: %+v", q)
	}

	// Listed: served.
	listenConfig(c, sh, []string{lo, outer}, []string{nsIP + "/32"})
	d = startListenerDaemon(t, c, lo)
	okID := token() + "@listed.e2e.relay.test"
	out, code = inNS(okID)
	if code != 0 || !listenerQueuedRE.MatchString(out) {
		t.Fatalf("swaks from %s with its network listed: exit %d, want 0 and a 250 queued as", nsIP, code)
	}
	copies := waitArrived(t, d, okID)
	if cs := copies[okID]; len(cs) != 1 {
		t.Errorf("arrived %d times, want once", len(cs))
	} else if r := receivedOf(t, cs[0]); !strings.HasPrefix(r, "Received: from container.test (["+nsIP+"])\n") {
		t.Errorf("Received field %q does not name the client %s", r, nsIP)
	}
	d.stop()
	if cs := copiesOf(t, refusedID)[refusedID]; len(cs) != 0 {
		t.Errorf("the refused message arrived %d times", len(cs))
	}
	c.expectEmptyQueue()
}
