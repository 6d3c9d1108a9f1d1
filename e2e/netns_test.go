package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"golang.org/x/sys/unix"
)

// TestNoAuthInClearToNonLoopback proves that relay does not send AUTH over
// a connection without TLS to a peer that is not loopback.
//
// The peer: a network namespace of our own joined to this one by a veth
// pair (10.231.N.1 here, 10.231.N.2 in the namespace). The test process
// opens a listening socket inside the namespace (setns on a locked thread:
// the socket stays in the namespace it was made in) and forwards each
// connection to Postfix's plain port 2526, which offers AUTH in clear. It
// records what relay sent, so the proof does not rest on Postfix's log
// alone.
func TestNoAuthInClearToNonLoopback(t *testing.T) {
	needHarness(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2 for the network namespace")
	}
	hostIP, nsIP := setupNetns(t)
	plain := envInt(t, "SMARTHOST_PORT_PLAIN")
	px := newProxy(t, nsName(), net.JoinHostPort(nsIP, strconv.Itoa(plain)), net.JoinHostPort(env["SMARTHOST_HOST"], strconv.Itoa(plain)))
	t.Logf("relay's side %s, the peer %s (in netns %s) forwards to Postfix's plain port", hostIP, px.addr, nsName())

	sh := okSmarthost(t, dirFor(t))
	sh.Host, sh.Port, sh.TLS = nsIP, plain, "none"
	sh.ServerName, sh.CAFile = "", ""
	c := newCase(t, sh, "")
	user := env["SMARTHOST_USER"]
	m := newMsg(t, user, []string{"bob@example.org"}, "must not be sent: AUTH would go in clear\n")
	c.submit(m, user, "bob@example.org")
	mark := logMark(t)
	_, lines := c.queueRun()

	expectDeferred(t, lines, 1, "without TLS", "loopback")
	expectStillQueued(t, c, 1, "without TLS")
	expectNotDelivered(t, m)

	sent, recv, n := px.transcript()
	if n == 0 {
		t.Fatalf("relay never reached the peer in the namespace: the test proves nothing")
	}
	if !regexp.MustCompile(`(?im)^EHLO `).MatchString(sent) {
		t.Errorf("relay did not even say EHLO to the peer:\n%s", sent)
	}
	if !regexp.MustCompile(`(?m)^250[ -]AUTH `).MatchString(recv) {
		t.Errorf("the peer did not offer AUTH, so the refusal proves nothing:\n%s", recv)
	}
	if regexp.MustCompile(`(?im)^(AUTH|MAIL)\b`).MatchString(sent) {
		t.Errorf("relay sent AUTH or MAIL in clear to %s:\n%s", nsIP, sent)
	}
	expectNoMailOrAuth(t, sessions(t, mark, "plain-"+strconv.Itoa(plain)), "Postfix behind the namespace")
}

// TestAuthInClearToLoopback is the control: the same plain port reached on
// 127.0.0.1 may be authenticated in clear (loopback), and delivers.
func TestAuthInClearToLoopback(t *testing.T) {
	needHarness(t)
	sh := okSmarthost(t, dirFor(t))
	sh.Port, sh.TLS = envInt(t, "SMARTHOST_PORT_PLAIN"), "none"
	sh.ServerName, sh.CAFile = "", ""
	c := newCase(t, sh, "")
	user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
	m := newMsg(t, user, []string{rcpt}, "AUTH in clear, but on loopback\n")
	c.submit(m, user, rcpt)
	_, lines := c.queueRun()
	rl := recipientLines(lines)
	if len(rl) != 1 || rl[0].kv["status"] != "sent" {
		t.Fatalf("want one status=sent line, got %d: %v", len(rl), rl)
	}
	if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 {
		t.Errorf("message in the Maildir %d time(s), want once", len(cs))
	}
	c.expectEmptyQueue()
}

func nsName() string { return "relay-e2e-" + strconv.Itoa(os.Getpid()) }

// ipCmd runs ip(8); its output is not relay's and is not recorded.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// setupNetns creates the namespace and the veth pair on a /30 of
// 10.231.0.0/16 that no interface of this machine uses, and removes both
// at the end. It returns the address on this side and in the namespace.
func setupNetns(t *testing.T) (hostIP, nsIP string) {
	t.Helper()
	ns := nsName()
	hostIf, nsIf := fmt.Sprintf("re2e%dh", os.Getpid()%100000), fmt.Sprintf("re2e%dn", os.Getpid()%100000)
	// Leftovers of a killed run with the same pid: ours by name.
	ipCmd("netns", "del", ns)
	ipCmd("link", "del", hostIf)

	used := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip4 := ipn.IP.To4(); ip4 != nil && ip4[0] == 10 && ip4[1] == 231 {
				used[strconv.Itoa(int(ip4[2]))] = true
			}
		}
	}
	third := ""
	for n := 77; n < 255; n++ {
		if !used[strconv.Itoa(n)] {
			third = strconv.Itoa(n)
			break
		}
	}
	if third == "" {
		t.Fatal("no free /30 in 10.231.0.0/16")
	}
	hostIP, nsIP = "10.231."+third+".1", "10.231."+third+".2"

	if err := ipCmd("netns", "add", ns); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	t.Cleanup(func() {
		if err := ipCmd("netns", "del", ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		// Deleting the namespace deletes its veth end and so the pair;
		// make sure.
		ipCmd("link", "del", hostIf)
	})
	steps := [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns},
		{"addr", "add", hostIP + "/30", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", ns, "addr", "add", nsIP + "/30", "dev", nsIf},
		{"-n", ns, "link", "set", nsIf, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the carrier on both ends.
	var b []byte
	if !testsmtp.WaitFor(5*time.Second, func() bool {
		b, _ = os.ReadFile("/sys/class/net/" + hostIf + "/operstate")
		return strings.TrimSpace(string(b)) == "up"
	}) {
		t.Fatalf("%s did not come up (operstate %q)", hostIf, bytes.TrimSpace(b))
	}
	return hostIP, nsIP
}

// listenInNetns opens a TCP listener inside the named network namespace.
func listenInNetns(ns, addr string) (net.Listener, error) {
	type res struct {
		l   net.Listener
		err error
	}
	ch := make(chan res, 1)
	// A goroutine of its own: if switching back fails, it exits with its
	// thread still locked, and Go then terminates that thread.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, err}
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{l, lerr} // thread stays locked and dies with us
			return
		}
		runtime.UnlockOSThread()
		ch <- res{l, lerr}
	}()
	r := <-ch
	return r.l, r.err
}

// proxy forwards connections from a listener in the namespace to target in
// ours and keeps both directions of the dialogue.
type proxy struct {
	addr       string
	sent, recv testsmtp.LockedBuffer
	mu         sync.Mutex
	conns      int // accepted
	finished   int // both directions closed
}

func newProxy(t *testing.T, ns, listen, target string) *proxy {
	t.Helper()
	l, err := listenInNetns(ns, listen)
	if err != nil {
		t.Fatalf("listening in the namespace: %v", err)
	}
	p := &proxy{addr: l.Addr().String()}
	testsmtp.Serve(t, l, func(in net.Conn) {
		p.mu.Lock()
		p.conns++
		p.mu.Unlock()
		p.serve(in, target)
	})
	return p
}

func (p *proxy) serve(in net.Conn, target string) {
	defer in.Close()
	out, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	deadline := time.Now().Add(60 * time.Second)
	in.SetDeadline(deadline)
	out.SetDeadline(deadline)
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(io.MultiWriter(&p.sent, out), in)
		out.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(io.MultiWriter(&p.recv, in), out)
		in.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
	p.mu.Lock()
	p.finished++
	p.mu.Unlock()
}

// transcript waits (a while) for the connections to end, then returns
// what relay sent, what it received, and the number of connections.
func (p *proxy) transcript() (sent, recv string, conns int) {
	testsmtp.WaitFor(10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.finished == p.conns
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.ReplaceAll(p.sent.String(), "\r\n", "\n"), strings.ReplaceAll(p.recv.String(), "\r\n", "\n"), p.conns
}
