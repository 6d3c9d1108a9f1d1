package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

// SPEC section 8 against a real SOCKS5 server: microsocks, from Debian
// (e2e/callers.sh installs it and socat), started by each test on a free
// loopback port in front of the Postfix smarthost. microsocks logs
// "client[N] IP: connected to HOST:PORT" for every CONNECT it carried out,
// with HOST as the client sent it: the proof that relay went through it,
// and that relay handed it the smarthost's name unresolved.
//
// The proxy's password is SMARTHOST_PASS2 (a wrong one SMARTHOST_PASS):
// real secrets the suite already knows, so TestZZ_NoPasswordInOutput also
// proves that no proxy password shows in anything relay printed or wrote.

const proxyUser = "relay-proxy"

// needSocks skips the test when microsocks or socat is missing (fails it
// with RELAY_E2E=1), after needHarness.
func needSocks(t *testing.T) {
	t.Helper()
	needHarness(t)
	var missing []string
	for _, p := range []string{"microsocks", "socat"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	why := strings.Join(missing, " and ") + " not installed: sudo bash e2e/callers.sh install"
	if os.Getenv("RELAY_E2E") == "1" {
		t.Fatalf("RELAY_E2E=1 but %s", why)
	}
	t.Skip(why)
}

// ------------------------------------------------ helper processes --

// helperProc is a program (microsocks, socat) the test started; it is
// stopped, with the children it forked, when the test ends.
type helperProc struct {
	name string
	out  *testsmtp.LockedBuffer // stdout and stderr
	done chan struct{}
}

func startHelper(t *testing.T, name string, args ...string) *helperProc {
	t.Helper()
	cmd := exec.Command(name, args...)
	shown := slices.Clone(args)
	for i := range shown {
		if i > 0 && shown[i-1] == "-P" {
			shown[i] = "xxx" // microsocks's password: not in the test's log
		}
	}
	h := &helperProc{name: name + " " + strings.Join(shown, " "), out: &testsmtp.LockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	// A process group of its own: socat's forked children go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", h.name, err)
	}
	pid := cmd.Process.Pid
	go func() {
		cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-pid, syscall.SIGKILL) // our own process group
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			t.Errorf("cleanup: %s (pid %d) did not exit", h.name, pid)
		}
		if t.Failed() {
			t.Logf("%s printed:\n%s", h.name, h.out)
		}
	})
	return h
}

// waitDial waits until network/addr accepts a connection.
func (h *helperProc) waitDial(t *testing.T, network, addr string) {
	t.Helper()
	var err error
	exited := false
	testsmtp.WaitFor(5*time.Second, func() bool {
		select {
		case <-h.done:
			exited = true
			return true
		default:
		}
		var conn net.Conn
		if conn, err = net.DialTimeout(network, addr, time.Second); err == nil {
			conn.Close()
			return true
		}
		return false
	})
	switch {
	case exited:
		t.Fatalf("%s exited at once:\n%s", h.name, h.out)
	case err != nil:
		t.Fatalf("%s does not accept connections on %s: %v\n%s", h.name, addr, err, h.out)
	}
}

// connectedTo counts the CONNECTs microsocks carried out to hostport.
func (h *helperProc) connectedTo(hostport string) int {
	return strings.Count(h.out.String(), ": connected to "+hostport+"\n")
}

// microsocks starts microsocks on 127.0.0.1 (with user and password when
// pass is not ""), and returns it with its host:port.
func microsocks(t *testing.T, pass string) (*helperProc, string) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsmtp.FreePort(t)))
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-i", host, "-p", port}
	if pass != "" {
		args = append(args, "-u", proxyUser, "-P", pass)
	}
	h := startHelper(t, "microsocks", args...)
	h.waitDial(t, "tcp", addr)
	return h, addr
}

// proxyURL is socks5://[user:pass@]hostport, the password %-escaped, and
// how relay must show it (the password as xxx).
func proxyURL(pass, hostport string) (url, masked string) {
	if pass == "" {
		return "socks5://" + hostport, "socks5://" + hostport
	}
	var esc strings.Builder
	for _, c := range []byte(pass) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			esc.WriteByte(c)
		} else {
			fmt.Fprintf(&esc, "%%%02X", c)
		}
	}
	return "socks5://" + proxyUser + ":" + esc.String() + "@" + hostport,
		"socks5://" + proxyUser + ":xxx@" + hostport
}

// ------------------------------------------------------------ checks --

// deliverThrough queues one message for c, runs the queue once and checks
// that it went through the proxy shown as via: one status=sent line with
// via=, TLS and the smarthost's queue ID; relay= without an address (relay
// never learnt the smarthost's IP); one copy in the Maildir; one session
// in Postfix's log of service that authenticated and sent it.
func deliverThrough(t *testing.T, c *tc, sh smarthost, via, service string) {
	t.Helper()
	user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
	m := newMsg(t, user, []string{rcpt}, "through a SOCKS5 proxy\n")
	c.submit(m, user, rcpt)
	mark := logMark(t)
	r, lines := c.queueRun()
	if r.Code != 0 {
		t.Errorf("queue run: %v", r)
	}
	rl := recipientLines(lines)
	if len(rl) != 1 {
		t.Fatalf("%d recipient log lines, want 1:\n%s", len(rl), r.Stderr)
	}
	kv := rl[0].kv
	if kv["status"] != "sent" || kv["to"] != "<"+rcpt+">" || kv["dsn"] != "2.0.0" {
		t.Errorf("want status=sent to=<%s> dsn=2.0.0: %s", rcpt, rl[0].raw)
	}
	if kv["via"] != via {
		t.Errorf("via=%q, want %q: %s", kv["via"], via, rl[0].raw)
	}
	if want := net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port)); kv["relay"] != want {
		t.Errorf("relay=%q, want %q (through a proxy relay knows no address of the smarthost)", kv["relay"], want)
	}
	if !tlsVersionRE.MatchString(kv["tls"]) {
		t.Errorf("tls=%q, want TLSv1.3 or TLSv1.2: %s", kv["tls"], rl[0].raw)
	}
	if !queuedAsRE.MatchString(kv["reply"]) {
		t.Errorf("reply=%q does not carry the smarthost's \"queued as\" ID", kv["reply"])
	}
	if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 {
		t.Errorf("message in the Maildir %d time(s), want exactly once", len(cs))
	}
	ss := sessions(t, mark, service)
	if len(ss) != 1 {
		t.Errorf("%d %s sessions in Postfix's log, want 1:\n%v", len(ss), service, ss)
	}
	for _, s := range ss {
		cmds := s.commands()
		if cmds["auth"] != "1" || cmds["mail"] != "1" || cmds["data"] != "1" {
			t.Errorf("session counters %v, want auth=1 mail=1 data=1", cmds)
		}
		if sh.TLS == "starttls" && cmds["starttls"] != "1" {
			t.Errorf("session counters %v, want starttls=1", cmds)
		}
	}
	c.expectEmptyQueue()
}

var smtpdConnectRE = regexp.MustCompile(`(?m)postfix/[^/\s]+/smtpd\[\d+\]: connect from .*$`)

// expectNoSmtpdConnect fails when Postfix logged any connection after mark
// (on any of its ports), watching its log for a while: Postfix logs
// through postlogd, a moment later.
func expectNoSmtpdConnect(t *testing.T, mark int64, what string) {
	t.Helper()
	var cs []string
	if testsmtp.WaitFor(1500*time.Millisecond, func() bool {
		cs = smtpdConnectRE.FindAllString(postfixLogSince(t, mark), -1)
		return len(cs) > 0
	}) {
		t.Errorf("%s: Postfix logged %d connection(s), want none:\n%s", what, len(cs), strings.Join(cs, "\n"))
	}
}

// expectProxyDeferral checks one pass that failed at the proxy: the mail
// deferred (log and queue) with a reason naming the proxy as masked, a
// hint about the proxy, no password shown, and nothing delivered.
func expectProxyDeferral(t *testing.T, c *tc, m msg, r result, lines []logLine, masked string, why ...string) {
	t.Helper()
	expectDeferred(t, lines, 1, append([]string{masked}, why...)...)
	for _, l := range recipientLines(lines) {
		if l.kv["via"] != masked {
			t.Errorf("via=%q, want %q: %s", l.kv["via"], masked, l.raw)
		}
		if h := l.kv["hint"]; !strings.Contains(strings.ToLower(h), "proxy") {
			t.Errorf("hint=%q does not explain that the proxy failed: %s", h, l.raw)
		}
	}
	expectStillQueued(t, c, 1, masked)
	noSecrets(t, "queue run stderr", r.Stderr)
	noSecrets(t, "queue run stdout", r.Stdout)
	noSecrets(t, "mailq", c.mailq())
	expectNotDelivered(t, m)
}

// ------------------------------------------------------------- tests --

// TestSOCKS5 delivers through microsocks: STARTTLS and implicit TLS, the
// certificate verified for smarthost.test against the private CA, without
// and with proxy credentials (per smarthost, and as the top-level
// default); wrong credentials defer, and so does a SOCKS failure reply,
// without any connection to Postfix; a unix-socket proxy; relay probe.
func TestSOCKS5(t *testing.T) {
	needSocks(t)
	pass := env["SMARTHOST_PASS2"]
	open, openAddr := microsocks(t, "")
	locked, lockedAddr := microsocks(t, pass)
	name := env["SMARTHOST_NAME"] // smarthost.test: resolved by microsocks
	starttls, implicit := envInt(t, "SMARTHOST_PORT_STARTTLS"), envInt(t, "SMARTHOST_PORT_TLS")
	starttlsSvc, implicitSvc := "starttls-"+strconv.Itoa(starttls), "tls-"+strconv.Itoa(implicit)
	// viaName is okSmarthost reached by name (so microsocks's log shows
	// that name), through proxy when it is not "".
	viaName := func(t *testing.T, proxy string) smarthost {
		sh := okSmarthost(t, dirFor(t))
		sh.Host, sh.ServerName, sh.Proxy = name, name, proxy
		return sh
	}
	hp := func(port int) string { return net.JoinHostPort(name, strconv.Itoa(port)) }

	t.Run("starttls without credentials", func(t *testing.T) {
		u, masked := proxyURL("", openAddr)
		sh := viaName(t, u)
		before := open.connectedTo(hp(starttls))
		deliverThrough(t, newCase(t, sh, ""), sh, masked, starttlsSvc)
		if n := open.connectedTo(hp(starttls)) - before; n != 1 {
			t.Errorf("microsocks connected to %s %d time(s), want 1:\n%s", hp(starttls), n, open.out)
		}
	})

	t.Run("implicit TLS without credentials", func(t *testing.T) {
		u, masked := proxyURL("", openAddr)
		sh := viaName(t, u)
		sh.Port, sh.TLS = implicit, "implicit"
		before := open.connectedTo(hp(implicit))
		deliverThrough(t, newCase(t, sh, ""), sh, masked, implicitSvc)
		if n := open.connectedTo(hp(implicit)) - before; n != 1 {
			t.Errorf("microsocks connected to %s %d time(s), want 1:\n%s", hp(implicit), n, open.out)
		}
	})

	t.Run("starttls with credentials", func(t *testing.T) {
		u, masked := proxyURL(pass, lockedAddr)
		sh := viaName(t, u)
		before := locked.connectedTo(hp(starttls))
		deliverThrough(t, newCase(t, sh, ""), sh, masked, starttlsSvc)
		if n := locked.connectedTo(hp(starttls)) - before; n != 1 {
			t.Errorf("microsocks connected to %s %d time(s), want 1:\n%s", hp(starttls), n, locked.out)
		}
	})

	t.Run("implicit TLS with credentials, top-level proxy", func(t *testing.T) {
		u, masked := proxyURL(pass, lockedAddr)
		sh := viaName(t, "")
		sh.Port, sh.TLS = implicit, "implicit"
		before := locked.connectedTo(hp(implicit))
		deliverThrough(t, newCase(t, sh, "proxy = "+strconv.Quote(u)), sh, masked, implicitSvc)
		if n := locked.connectedTo(hp(implicit)) - before; n != 1 {
			t.Errorf("microsocks connected to %s %d time(s), want 1:\n%s", hp(implicit), n, locked.out)
		}
	})

	t.Run("wrong credentials defer", func(t *testing.T) {
		u, masked := proxyURL(env["SMARTHOST_PASS"], lockedAddr) // not the proxy's
		sh := viaName(t, u)
		c := newCase(t, sh, "")
		user := env["SMARTHOST_USER"]
		m := newMsg(t, user, []string{"bob@example.org"}, "the proxy refuses us\n")
		c.submit(m, user, "bob@example.org")
		before := locked.connectedTo(hp(starttls))
		mark := logMark(t)
		r, lines := c.queueRun()
		expectProxyDeferral(t, c, m, r, lines, masked)
		expectNoSmtpdConnect(t, mark, "proxy refused the credentials")
		if n := locked.connectedTo(hp(starttls)) - before; n != 0 {
			t.Errorf("microsocks connected %d time(s) for wrong credentials", n)
		}
	})

	t.Run("proxy cannot reach the smarthost", func(t *testing.T) {
		// microsocks cannot resolve the name: it answers the CONNECT with
		// a SOCKS failure, which must defer, named and explained.
		u, masked := proxyURL("", openAddr)
		sh := viaName(t, u)
		sh.Host = "no-such-smarthost.invalid"
		c := newCase(t, sh, "")
		user := env["SMARTHOST_USER"]
		m := newMsg(t, user, []string{"bob@example.org"}, "the proxy cannot reach the smarthost\n")
		c.submit(m, user, "bob@example.org")
		mark := logMark(t)
		r, lines := c.queueRun()
		expectProxyDeferral(t, c, m, r, lines, masked, "general SOCKS server failure")
		expectNoSmtpdConnect(t, mark, "proxy could not reach the smarthost")
	})

	t.Run("unix socket", func(t *testing.T) {
		dir, err := os.MkdirTemp("", "relay-socks-") // short: sun_path
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		sock := filepath.Join(dir, "socks.sock")
		fwd := startHelper(t, "socat", "UNIX-LISTEN:"+sock+",fork,mode=600", "TCP:"+openAddr)
		fwd.waitDial(t, "unix", sock)
		u, masked := proxyURL("", "unix:"+sock)
		sh := viaName(t, u)
		before := open.connectedTo(hp(starttls))
		deliverThrough(t, newCase(t, sh, ""), sh, masked, starttlsSvc)
		if n := open.connectedTo(hp(starttls)) - before; n != 1 {
			t.Errorf("microsocks (behind the unix socket) connected to %s %d time(s), want 1:\n%s", hp(starttls), n, open.out)
		}
	})

	t.Run("probe shows the route", func(t *testing.T) {
		u, masked := proxyURL(pass, lockedAddr)
		c := newCase(t, viaName(t, u), "")
		before := locked.connectedTo(hp(starttls))
		mark := logMark(t)
		r := c.probeRun()
		if r.Code != 0 {
			t.Errorf("probe exit %d, want 0:\n%v", r.Code, r)
		}
		contains(t, "probe report", r.Stdout,
			"  route:        via "+masked+"\n",
			"verified for "+name+" against tls_ca_file "+env["SMARTHOST_CA"],
			"  AUTH:         PLAIN as "+env["SMARTHOST_USER"]+": ok\n",
			"  result:       OK\n")
		noSecrets(t, "probe stdout", r.Stdout)
		noSecrets(t, "probe stderr", r.Stderr)
		if n := locked.connectedTo(hp(starttls)) - before; n != 1 {
			t.Errorf("microsocks connected to %s %d time(s), want 1", hp(starttls), n)
		}
		if ss := sessions(t, mark, starttlsSvc); len(ss) != 1 {
			t.Errorf("%d sessions in Postfix's log, want 1", len(ss))
		}
	})
}

// TestSOCKS5_ProxyDown: nothing listens at the proxy's address. The mail
// is deferred with the proxy named and explained, and relay does not fall
// back to a direct connection: Postfix logs no connection at all.
func TestSOCKS5_ProxyDown(t *testing.T) {
	needSocks(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsmtp.FreePort(t)))
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("something listens on %s", addr)
	}
	u, masked := proxyURL(env["SMARTHOST_PASS2"], addr)
	sh := okSmarthost(t, dirFor(t))
	sh.Host, sh.Proxy = env["SMARTHOST_NAME"], u
	c := newCase(t, sh, "")
	user := env["SMARTHOST_USER"]
	m := newMsg(t, user, []string{"bob@example.org"}, "the proxy is down\n")
	c.submit(m, user, "bob@example.org")
	mark := logMark(t)
	r, lines := c.queueRun()
	expectProxyDeferral(t, c, m, r, lines, masked, "connection refused")
	expectNoSmtpdConnect(t, mark, "proxy down")
}

// TestSOCKS5_NoLocalDNS: the smarthost's name resolves only in a network
// namespace of our own (its /etc/netns/NAME/hosts), where microsocks runs;
// relay, in this namespace, cannot resolve it, and delivers all the same:
// it handed the name to the proxy, as microsocks's log shows.
//
// In the namespace the name maps to this side's veth address, where a
// socat forwards to Postfix's STARTTLS port on 127.0.0.1.
func TestSOCKS5_NoLocalDNS(t *testing.T) {
	needSocks(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2 for the network namespace")
	}
	const hidden = "hidden-smarthost.test"
	if b, err := os.ReadFile("/etc/hosts"); err == nil && bytes.Contains(b, []byte(hidden)) {
		t.Fatalf("/etc/hosts names %s: the test needs a name only the namespace knows", hidden)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	addrs, err := net.DefaultResolver.LookupHost(ctx, hidden)
	cancel()
	if err == nil {
		t.Fatalf("%s resolves here (%v): the test would prove nothing", hidden, addrs)
	}

	hostIP, nsIP := setupNetns(t)
	ns := nsName()
	etc := filepath.Join("/etc/netns", ns)
	_, err = os.Stat("/etc/netns")
	madeParent := os.IsNotExist(err)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(etc); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if madeParent {
			os.Remove("/etc/netns") // only when empty
		}
	})
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte("127.0.0.1 localhost\n"+hostIP+" "+hidden+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", ns, "getent", "hosts", hidden).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), hostIP+" ") {
		t.Fatalf("in netns %s, getent hosts %s = %q (%v), want %s", ns, hidden, out, err, hostIP)
	}

	port := envInt(t, "SMARTHOST_PORT_STARTTLS")
	fwdAddr := net.JoinHostPort(hostIP, strconv.Itoa(port))
	fwd := startHelper(t, "socat", fmt.Sprintf("TCP-LISTEN:%d,bind=%s,reuseaddr,fork", port, hostIP),
		"TCP:"+net.JoinHostPort(env["SMARTHOST_HOST"], strconv.Itoa(port)))
	fwd.waitDial(t, "tcp", fwdAddr)
	proxyAddr := net.JoinHostPort(nsIP, "1080")
	ms := startHelper(t, "ip", "netns", "exec", ns, "microsocks", "-i", nsIP, "-p", "1080")
	ms.waitDial(t, "tcp", proxyAddr)
	t.Logf("relay here, microsocks at %s in netns %s, %s -> %s there, socat %s -> Postfix", proxyAddr, ns, hidden, hostIP, fwdAddr)

	u, masked := proxyURL("", proxyAddr)
	sh := okSmarthost(t, dirFor(t))
	sh.Host, sh.Port, sh.ServerName, sh.Proxy = hidden, port, env["SMARTHOST_NAME"], u
	deliverThrough(t, newCase(t, sh, ""), sh, masked, "starttls-"+strconv.Itoa(port))
	want := net.JoinHostPort(hidden, strconv.Itoa(port))
	if n := ms.connectedTo(want); n != 1 {
		t.Errorf("microsocks connected to %s %d time(s), want 1 (the name handed over unresolved):\n%s", want, n, ms.out)
	}
}

// TestSOCKS5_IgnoresAllProxy: an ALL_PROXY (or all_proxy) in relay's
// environment never changes the route. It points at a port where nothing
// listens, so a relay that used it would defer; a smarthost without proxy
// is reached directly.
func TestSOCKS5_IgnoresAllProxy(t *testing.T) {
	needSocks(t)
	const dead = "127.0.0.1:1"
	if conn, err := net.DialTimeout("tcp", dead, time.Second); err == nil {
		conn.Close()
		t.Fatalf("something listens on %s: the test would prove nothing", dead)
	}
	port := envInt(t, "SMARTHOST_PORT_STARTTLS")
	for _, k := range []string{"ALL_PROXY", "all_proxy"} {
		t.Run(k, func(t *testing.T) {
			c := newCase(t, okSmarthost(t, dirFor(t)), "")
			user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
			m := newMsg(t, user, []string{rcpt}, "ALL_PROXY in the environment\n")
			c.submit(m, user, rcpt)
			mark := logMark(t)
			environ := append(cleanEnv(), k+"=socks5://"+dead)
			r := runEnv(t, environ, nil, relayBin, "-C", c.conf, "queue", "run")
			lines := parseLog(r.Stderr)
			for _, l := range lines {
				t.Logf("relay: %s", l.raw)
			}
			rl := recipientLines(lines)
			if len(rl) != 1 {
				t.Fatalf("%d recipient log lines, want 1:\n%v", len(rl), r)
			}
			expectSent(t, rl[0], rcpt, port) // relay=127.0.0.1[127.0.0.1]:port: direct
			if v, ok := rl[0].kv["via"]; ok {
				t.Errorf("via=%q: relay used %s", v, k)
			}
			if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 {
				t.Errorf("message in the Maildir %d time(s), want once", len(cs))
			}
			if ss := sessions(t, mark, "starttls-"+strconv.Itoa(port)); len(ss) != 1 {
				t.Errorf("%d sessions in Postfix's log, want 1", len(ss))
			}
			c.expectEmptyQueue()
		})
	}
}
