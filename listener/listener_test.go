package listener

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// fixture is a Server on a real spool, serving one loopback listener.
type fixture struct {
	t      testing.TB
	srv    *Server
	sp     *spool.Spool
	log    *testsmtp.LockedBuffer
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func newFixture(t testing.TB, o Options) *fixture {
	t.Helper()
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, sp: sp, log: &testsmtp.LockedBuffer{}, done: make(chan error, 1)}
	lg := maillog.New(f.log)
	o.Submitter = &sendmailcompat.Submitter{
		Spool: sp, Domain: "server1.example.com", Hostname: "server1",
		UID: 999, User: "relay", MaxMessageSize: 1 << 20, Now: time.Now, Log: lg,
	}
	o.Log = lg
	f.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	lns, err := Listen([]string{"127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lns[0].Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.done <- f.srv.Serve(ctx, lns) }()
	t.Cleanup(func() { f.stop() })
	return f
}

// stop cancels Serve and waits for it (once).
func (f *fixture) stop() error {
	f.t.Helper()
	f.cancel()
	select {
	case err, ok := <-f.done:
		if ok {
			close(f.done)
		}
		return err
	case <-time.After(30 * time.Second):
		f.t.Fatal("Serve did not return after its context was cancelled")
		return nil
	}
}

func (f *fixture) ids() []string {
	f.t.Helper()
	ids, err := f.sp.IDs()
	if err != nil {
		f.t.Fatal(err)
	}
	return ids
}

func (f *fixture) content(id string) string {
	f.t.Helper()
	r, err := f.sp.OpenContent(id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

// dial opens a raw client connection; replies are read with a deadline so
// that a missing reply fails the test instead of hanging it.
func dial(t *testing.T, addr string) (*textproto.Conn, net.Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return textproto.NewConn(nc), nc
}

func expect(t *testing.T, nc net.Conn, c *textproto.Conn, code int) string {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, msg, err := c.ReadResponse(0)
	if err != nil && got == 0 {
		t.Fatalf("want %d, read failed: %v", code, err)
	}
	if got != code {
		t.Fatalf("want %d, got %d %s", code, got, msg)
	}
	return msg
}

// A loopback client sends through the listener with go-smtp's client: the
// message is queued with the client recorded, the 250 names its queue ID.
func TestServe_LoopbackClientQueues(t *testing.T) {
	f := newFixture(t, Options{})
	cl, err := smtp.Dial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Hello("app.example"); err != nil {
		t.Fatal(err)
	}
	if max, ok := cl.MaxMessageSize(); !ok || max != 1<<20 {
		t.Errorf("SIZE %d %v, want max_message_size 1048576", max, ok)
	}
	if err := cl.Mail("app@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := cl.Rcpt("root", nil); err != nil { // Ansible's default: a bare name
		t.Fatal(err)
	}
	w, err := cl.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: via the listener\r\nBcc: hidden@example.org\r\n\r\nhello\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cl.Quit()
	ids := f.ids()
	if len(ids) != 1 {
		t.Fatalf("queue %v, want one message", ids)
	}
	m, err := f.sp.Read(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Sender != "app@example.org" || len(m.Recipients) != 1 || m.Recipients[0].Address != "root@server1.example.com" {
		t.Errorf("envelope %+v", m.Envelope)
	}
	content := f.content(ids[0])
	if !regexp.MustCompile(`^Received: from app\.example \(\[127\.0\.0\.1\]\)\r\n\tby server1 \(relay\) with ESMTP id ` + ids[0] + `;\r\n`).MatchString(content) {
		t.Errorf("no Received field for the client on top:\n%s", content)
	}
	if strings.Contains(content, "Bcc:") || !strings.Contains(content, "\r\nMessage-ID: <") {
		t.Errorf("header not fixed up as sendmail's:\n%s", content)
	}
	if !regexp.MustCompile(`id=` + ids[0] + ` client=\[127\.0\.0\.1\]:\d+ from=<app@example.org> .*status=queued`).MatchString(f.log.String()) {
		t.Errorf("log:\n%s", f.log.String())
	}
}

// The policy on addresses, loopback in all its forms included.
func TestAllowed(t *testing.T) {
	nets, err := ParseNetworks([]string{"172.17.0.1/16", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{Networks: nets})
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "::ffff:127.0.0.1": true,
		"172.17.0.2": true, "::ffff:172.17.255.255": true, "2001:db8::7": true,
		"172.18.0.1": false, "10.0.0.1": false, "192.0.2.7": false, "::": false, "0.0.0.0": false,
		"2001:db9::1": false, "fe80::1": false,
	} {
		if got := f.srv.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
	if _, err := ParseNetworks([]string{"172.17.0.0"}); err == nil {
		t.Error("ParseNetworks accepted an address without a prefix length")
	}
}

// fakeConn is one end of a pipe that claims a TCP peer address.
type fakeConn struct {
	net.Conn
	remote *net.TCPAddr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

// admit hands nc to the server as its accept loop does.
func (f *fixture) admit(nc net.Conn) {
	<-f.srv.slots
	if !f.srv.admit(nc) {
		f.srv.slots <- struct{}{}
	}
}

// A client outside loopback and listen_networks reads 554 5.7.1 before any
// greeting and is disconnected; the log names it once a minute. With its
// network listed it is greeted and served.
func TestAdmit_RefusedUnlessListed(t *testing.T) {
	f := newFixture(t, Options{})
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}
	for range 3 {
		server, client := net.Pipe()
		go f.admit(fakeConn{server, remote})
		client.SetReadDeadline(time.Now().Add(20 * time.Second))
		b, err := io.ReadAll(client)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^554 5\.7\.1 server1 Error: access denied for 192\.0\.2\.7 .*\r\n$`).Match(b) {
			t.Errorf("refused client read %q, want one 554 5.7.1 line and the end", b)
		}
	}
	if n := strings.Count(f.log.String(), "client=[192.0.2.7]:40000 status=refused"); n != 1 {
		t.Errorf("%d refusal lines, want 1 (the next two within a minute suppressed):\n%s", n, f.log.String())
	}
	if len(f.ids()) != 0 {
		t.Error("something was queued")
	}

	g := newFixture(t, Options{Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	server, client := net.Pipe()
	go g.admit(fakeConn{server, remote})
	c := textproto.NewConn(client)
	expect(t, client, c, 220)
	c.PrintfLine("HELO container")
	expect(t, client, c, 250)
	c.PrintfLine("MAIL FROM:<app@example.org>")
	expect(t, client, c, 250)
	c.PrintfLine("RCPT TO:<bob@example.org>")
	expect(t, client, c, 250)
	c.PrintfLine("DATA")
	expect(t, client, c, 354)
	c.PrintfLine("Subject: from a container\r\n\r\nbody\r\n.")
	expect(t, client, c, 250)
	c.PrintfLine("QUIT")
	expect(t, client, c, 221)
	ids := g.ids()
	if len(ids) != 1 || !strings.HasPrefix(g.content(ids[0]), "Received: from container ([192.0.2.7])\r\n\tby server1 (relay) with SMTP id ") {
		t.Fatalf("queue %v", ids)
	}
}

// One address may hold MaxPerClient sessions; one more reads 421 4.7.0.
// A session that ends frees its place.
func TestServe_PerClientLimit(t *testing.T) {
	f := newFixture(t, Options{MaxPerClient: 2})
	var first net.Conn
	for i := range 2 {
		c, nc := dial(t, f.addr)
		expect(t, nc, c, 220)
		if i == 0 {
			first = nc
		}
	}
	c, nc := dial(t, f.addr)
	msg := expect(t, nc, c, 421)
	if !strings.Contains(msg, "too many connections from 127.0.0.1") {
		t.Errorf("421 says %q", msg)
	}
	if !strings.Contains(f.log.String(), "status=refused reason=\"too many connections") {
		t.Errorf("log:\n%s", f.log.String())
	}
	first.Write([]byte("QUIT\r\n"))
	io.Copy(io.Discard, first) // 221, then the server closes
	// The session's place is freed just after it closed the connection.
	var code int
	var err error
	testsmtp.WaitFor(20*time.Second, func() bool {
		c, nc = dial(t, f.addr)
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		code, msg, err = c.ReadResponse(0)
		return code != 421 // 220, or a failure no retry mends
	})
	if code != 220 {
		t.Fatalf("after a session ended: %d %s %v, want 220", code, msg, err)
	}
}

// Past MaxConnections the listener stops accepting: the next client waits
// (it is not refused) and is greeted once a session ends.
func TestServe_MaxConnectionsQueuesClients(t *testing.T) {
	f := newFixture(t, Options{MaxConnections: 1})
	c1, nc1 := dial(t, f.addr)
	expect(t, nc1, c1, 220)
	_, nc2 := dial(t, f.addr) // the kernel completes the handshake
	greeted := make(chan string, 1)
	go func() {
		nc2.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, _ := textproto.NewConn(nc2).ReadLine()
		greeted <- line
	}()
	select {
	case line := <-greeted:
		t.Fatalf("the second client was answered %q while the only slot was taken", line)
	case <-time.After(300 * time.Millisecond):
	}
	c1.PrintfLine("QUIT")
	expect(t, nc1, c1, 221)
	if line := <-greeted; !strings.HasPrefix(line, "220 ") {
		t.Fatalf("the waiting client read %q, want the 220 greeting", line)
	}
}

// Stopping: a client in the middle of DATA reads 421 4.3.2 and nothing is
// queued; a client between commands reads 421 too; a message whose final
// dot arrived is queued and answered 250; Serve returns.
func TestServe_StopInterruptsSessions(t *testing.T) {
	f := newFixture(t, Options{})
	// A finished message, then idle.
	idle, nIdle := dial(t, f.addr)
	expect(t, nIdle, idle, 220)
	for _, step := range []struct {
		line string
		code int
	}{{"EHLO a", 250}, {"MAIL FROM:<a@example.org>", 250}, {"RCPT TO:<b@example.org>", 250}, {"DATA", 354}, {"Subject: done\r\n\r\nx\r\n.", 250}} {
		idle.PrintfLine("%s", step.line)
		expect(t, nIdle, idle, step.code)
	}
	// Half a message.
	half, nHalf := dial(t, f.addr)
	expect(t, nHalf, half, 220)
	for _, step := range []struct {
		line string
		code int
	}{{"EHLO b", 250}, {"MAIL FROM:<a@example.org>", 250}, {"RCPT TO:<b@example.org>", 250}, {"DATA", 354}} {
		half.PrintfLine("%s", step.line)
		expect(t, nHalf, half, step.code)
	}
	half.PrintfLine("Subject: never finished\r\n\r\nfirst line")
	if err := f.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	for _, c := range []struct {
		c  *textproto.Conn
		nc net.Conn
	}{{idle, nIdle}, {half, nHalf}} {
		msg := expect(t, c.nc, c.c, 421)
		if !strings.Contains(msg, "4.3.2") || !strings.Contains(msg, "shutting down") {
			t.Errorf("421 says %q", msg)
		}
		// The end: EOF, or a reset when the client's last line was
		// still unread.
		if b, err := io.ReadAll(c.nc); len(b) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("after the 421: %q %v, want the end", b, err)
		}
	}
	ids := f.ids()
	if len(ids) != 1 || !strings.Contains(f.content(ids[0]), "Subject: done") {
		t.Errorf("queue %v: want only the finished message", ids)
	}
	if _, err := net.Dial("tcp", f.addr); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}
}

// Listen reports an address in use with its cause, and leaves nothing
// open.
func TestListen_Errors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	_, err = Listen([]string{freeAddr, busy.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "another program listens there") || !strings.Contains(err.Error(), busy.Addr().String()) ||
		sysexits.Code(err, 0) != sysexits.TempFail {
		t.Fatalf("Listen on a busy port: %v (exit code %d), want 75 with a hint", err, sysexits.Code(err, 0))
	}
	// The first one was closed again.
	l, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("Listen left %s open: %v", freeAddr, err)
	}
	l.Close()
	// An address this machine does not have (yet): bound all the same.
	lns, err := Listen([]string{"192.0.2.77:0"})
	if err != nil {
		t.Fatalf("IP_FREEBIND: %v", err)
	}
	lns[0].Close()
}

// New refuses a submitter that could only use the maildrop.
func TestNew_NeedsWritableQueue(t *testing.T) {
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Submitter: &sendmailcompat.Submitter{Spool: sp, Drop: true}})
	if err == nil || errors.Is(err, nil) {
		t.Fatal("New accepted a maildrop submitter")
	}
}
