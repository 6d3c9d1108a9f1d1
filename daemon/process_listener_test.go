package daemon_test

// The daemon's SMTP listener ([daemon] listen) as a process: killed with
// SIGKILL under load it never answers 250 before the message is durable;
// started by systemd as an unprivileged user with an ambient capability it
// binds a low port and gives the capability up.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// daemonProc is a running `relay daemon`.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *testsmtp.LockedBuffer
	done   chan struct{}
}

// startDaemon starts relay daemon and waits until it listens on addr.
func startDaemon(t *testing.T, e *testbin.Env, addr string) *daemonProc {
	t.Helper()
	d := &daemonProc{cmd: e.Cmd("relay", "daemon"), stderr: &testsmtp.LockedBuffer{}, done: make(chan struct{})}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	waitListening(t, d, addr)
	return d
}

// waitListening waits until the daemon says it listens on addr and addr
// accepts connections. The port alone is not enough: it accepts (into the
// kernel's backlog) from the moment the socket listens, before the daemon
// has given up CAP_NET_BIND_SERVICE (listener.Listen), and it may be
// another process's (a daemon of another test run that took the same
// port, this one then exiting with EADDRINUSE). The daemon logs
// "status=listening" once Listen has returned, the capability given up.
func waitListening(t *testing.T, d *daemonProc, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if strings.Contains(d.stderr.String(), "listen="+addr+" ") && strings.Contains(d.stderr.String(), "status=listening") {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close() // a session that ends at once: harmless
				return
			}
		}
		select {
		case <-d.done:
			t.Fatalf("relay daemon exited: %v\n%s", d.cmd.ProcessState, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay daemon does not listen on %s: %v\n%s", addr, err, d.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killMsg is one message a client tries to send, and what it saw.
type killMsg struct {
	token  string
	sum    string // hex SHA-256 of the body
	sawDot bool   // the final dot was written
	queued string // the queue ID of the 250; "" when none came
}

// sendOne sends m over one session at addr; it returns when the session
// fails (the daemon was killed) or after the reply to DATA.
func sendOne(addr string, m *killMsg, body []byte) {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(nc)
	expect := func(code string) bool {
		for {
			line, err := br.ReadString('\n')
			if err != nil || len(line) < 4 || line[:3] != code {
				return false
			}
			if line[3] == ' ' {
				if code == "250" && strings.Contains(line, "queued as ") {
					m.queued = strings.TrimSpace(line[strings.LastIndex(line, " ")+1:])
				}
				return true
			}
		}
	}
	if !expect("220") {
		return
	}
	fmt.Fprintf(nc, "EHLO killtest\r\n")
	if !expect("250") {
		return
	}
	fmt.Fprintf(nc, "MAIL FROM:<app@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
	if !expect("250") || !expect("250") || !expect("354") {
		return
	}
	head := fmt.Sprintf("Subject: kill %s\r\nMessage-ID: <%s@kill.test>\r\nX-Sum: %s\r\n\r\n", m.token, m.token, m.sum)
	if _, err := io.WriteString(nc, head); err != nil {
		return
	}
	// In pieces: the kill finds messages half-written as well.
	for b := body; len(b) > 0; {
		n := min(len(b), 16<<10)
		if _, err := nc.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
	}
	if _, err := io.WriteString(nc, ".\r\n"); err != nil {
		return
	}
	m.sawDot = true
	expect("250")
}

// makeBody is a body of n lines of the token (no line begins with a dot).
func makeBody(token string, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "%s line %06d of the message body, long enough to make it count\r\n", token, i)
	}
	return b.Bytes()
}

// A 250 is never answered before the message is durable: many rounds of
// clients sending through the listener of a daemon killed with SIGKILL at
// a random moment. Afterwards every message whose client saw 250 is in the
// queue, complete; no message is there twice; nothing in the queue is
// partial (its body's checksum matches). The daemon restarts on the same
// spool each round (with the leftovers of the killed one). A SIGKILL keeps
// what was written to the page cache, so this proves the order (the 250
// after the rename into the queue), not the fsyncs; spool's tests cover
// those.
func TestDaemonListener_KillNever250BeforeDurable(t *testing.T) {
	if testing.Short() {
		t.Skip("tens of seconds")
	}
	port := testsmtp.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// The smarthost is a closed port: delivery defers, the queue keeps
	// everything for the check.
	e := testbin.NewEnv(t, fmt.Sprintf("[daemon]\nlisten = [%q]\n\n[[smarthost]]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\n",
		addr, testsmtp.FreePort(t)))
	if _, err := spool.Create(e.Spool); err != nil { // as root, the daemon makes none
		t.Fatal(err)
	}
	var all []*killMsg
	var mu sync.Mutex
	const rounds, clients = 60, 6
	killsInData := 0
	for round := range rounds {
		d := startDaemon(t, e, addr)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		inData := make(chan struct{}, clients)
		for c := range clients {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					tok := fmt.Sprintf("r%02dc%dm%03d%s", round, c, i, strconv.FormatUint(rand.Uint64()%1e6, 36))
					body := makeBody(tok, 200+rand.IntN(3000))
					sum := sha256.Sum256(body)
					m := &killMsg{token: tok, sum: hex.EncodeToString(sum[:])}
					mu.Lock()
					all = append(all, m)
					mu.Unlock()
					select {
					case inData <- struct{}{}:
					default:
					}
					sendOne(addr, m, body)
					if m.queued == "" {
						return // the daemon is gone
					}
				}
			})
		}
		<-inData
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		close(stop)
		wg.Wait()
	}
	for _, m := range all {
		if m.sawDot && m.queued == "" {
			killsInData++
		}
	}

	// The queue, message by message.
	seen := map[string]int{}
	queued := map[string]string{} // token → queue ID
	tokenRE := regexp.MustCompile(`(?m)^Subject: kill (\S+)\r$`)
	sumRE := regexp.MustCompile(`(?m)^X-Sum: ([0-9a-f]+)\r$`)
	for id := range e.Messages() {
		content := e.Content(id)
		head, body, ok := strings.Cut(content, "\r\n\r\n")
		tm, sm := tokenRE.FindStringSubmatch(head), sumRE.FindStringSubmatch(head)
		if !ok || tm == nil || sm == nil {
			t.Errorf("queued message %s is not one of the test's, or its header is cut:\n%.300s", id, content)
			continue
		}
		sum := sha256.Sum256([]byte(body))
		if hex.EncodeToString(sum[:]) != sm[1] {
			t.Errorf("queued message %s (%s) is partial: %d bytes of body, checksum differs", id, tm[1], len(body))
		}
		seen[tm[1]]++
		queued[tm[1]] = id
	}
	got250, lost := 0, 0
	for _, m := range all {
		if seen[m.token] > 1 {
			t.Errorf("message %s is queued %d times", m.token, seen[m.token])
		}
		if m.queued != "" {
			got250++
			if seen[m.token] == 0 {
				lost++
				t.Errorf("message %s was answered 250 (queued as %s) but is not in the queue", m.token, m.queued)
			} else if queued[m.token] != m.queued {
				t.Errorf("message %s: the 250 named %s, the queue holds it as %s", m.token, m.queued, queued[m.token])
			}
		}
	}
	t.Logf("%d rounds: %d messages begun, %d answered 250, %d cut after their final dot, %d in the queue, %d lost",
		rounds, len(all), got250, killsInData, len(seen), lost)
	if got250 == 0 {
		t.Fatal("no message was ever answered 250: the test proves nothing")
	}
}

// The way systemd runs the daemon with a listener on port 25: as an
// unprivileged user (nobody here) holding only the ambient capability
// CAP_NET_BIND_SERVICE. The daemon binds a port below 1024, then gives the
// capability up (no program it runs inherits it) and serves.
func TestDaemonListener_LowPortWithAmbientCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the daemon as another user with a capability")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv(1) from util-linux")
	}
	port := 0
	for p := 1020; p > 900 && port == 0; p-- {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			port = p
		}
	}
	if port == 0 {
		t.Skip("no free port below 1024")
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	e := testbin.NewEnv(t, fmt.Sprintf("[daemon]\nlisten = [%q]\n", addr))
	// nobody must reach the configuration and own the spool.
	for d := e.Dir; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(e.Conf, 0o644)
	if _, err := spool.Create(e.Spool); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", e.Spool).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	d := &daemonProc{stderr: &testsmtp.LockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all,+net_bind_service", "--ambient-caps=+net_bind_service", "--bounding-set=-all,+net_bind_service",
		testbin.Binary(t), "-C", e.Conf, "daemon")
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	waitListening(t, d, addr)

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{"CapPrm", "CapEff", "CapAmb", "CapInh"} {
		m := regexp.MustCompile(`(?m)^` + set + `:\s*([0-9a-f]+)$`).FindSubmatch(status)
		if m == nil || strings.Trim(string(m[1]), "0") != "" {
			t.Errorf("the daemon still holds capabilities: %s = %q, want none", set, m)
		}
	}
	if !regexp.MustCompile(`(?m)^Uid:\s+65534\s`).Match(status) {
		t.Errorf("the daemon does not run as nobody:\n%s", status)
	}
	m := &killMsg{token: "lowport", sum: "0"}
	sendOne(addr, m, []byte("body\r\n"))
	if m.queued == "" {
		t.Fatalf("no 250 from the daemon on port %d\n%s", port, d.stderr)
	}
	if msgs := e.Messages(); msgs[m.queued] == nil || msgs[m.queued].UID != 65534 {
		t.Errorf("queue %v: want %s queued by uid 65534", msgs, m.queued)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	if !d.cmd.ProcessState.Success() {
		t.Errorf("daemon: %v after SIGTERM\n%s", d.cmd.ProcessState, d.stderr)
	}
}
