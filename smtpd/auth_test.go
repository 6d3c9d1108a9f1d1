package smtpd_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/smtpd"
)

// tcpClient speaks SMTP line by line to a Server on a real TCP
// connection, so that STARTTLS can switch it to TLS.
type tcpClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// serveTCP serves one connection with srv and returns a client for it.
func serveTCP(t *testing.T, srv *smtpd.Server) *tcpClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := ln.Accept()
		ln.Close()
		if err == nil {
			srv.ServeConn(nc)
		}
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return &tcpClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// reply reads one reply: its code and its lines' texts.
func (c *tcpClient) reply() (int, []string) {
	c.t.Helper()
	var texts []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading a reply: %v (after %q)", err, texts)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 {
			c.t.Fatalf("short reply line %q", line)
		}
		texts = append(texts, line[4:])
		if line[3] == ' ' {
			code, _ := strconv.Atoi(line[:3])
			return code, texts
		}
	}
}

// cmd sends a line and wants the reply's code; it returns the texts.
func (c *tcpClient) cmd(line string, want int) []string {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatal(err)
	}
	code, texts := c.reply()
	if code != want {
		c.t.Fatalf("%q: %d %q, want %d", line, code, texts, want)
	}
	return texts
}

// startTLS issues STARTTLS and shakes hands (the test certificate is
// trusted as any client of a self-signed listener would: by pinning).
func (c *tcpClient) startTLS() {
	c.t.Helper()
	c.cmd("STARTTLS", 220)
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake after STARTTLS: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// authServer is a Server with STARTTLS and one user, app / s3cret.
func authServer(t *testing.T, s *sendmailcompat.Submitter) *smtpd.Server {
	cert := testsmtp.LocalhostCert(t)
	return &smtpd.Server{
		Submitter:        s,
		TLS:              &tls.Config{Certificates: []tls.Certificate{cert.Pair}},
		Auth:             func(u, p string) bool { return u == "app" && p == "s3cret" },
		AuthFailureDelay: time.Millisecond,
	}
}

// The whole happy path: STARTTLS, AUTH PLAIN, a message; the Received
// field says ESMTPSA and the log names the user.
func TestAuth_SubmitAfterSTARTTLS(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	var log strings.Builder
	s.Log = maillog.New(&log)
	c := serveTCP(t, authServer(t, s))
	c.reply()
	ehlo := c.cmd("EHLO app.example", 250)
	if !slices.Contains(ehlo, "STARTTLS") || slices.ContainsFunc(ehlo, func(l string) bool { return strings.HasPrefix(l, "AUTH") }) {
		t.Fatalf("EHLO in clear: %q, want STARTTLS and no AUTH", ehlo)
	}
	c.startTLS()
	ehlo = c.cmd("EHLO app.example", 250)
	if slices.Contains(ehlo, "STARTTLS") || !slices.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Fatalf("EHLO over TLS: %q, want AUTH PLAIN LOGIN and no STARTTLS", ehlo)
	}
	c.cmd("STARTTLS", 503)
	c.cmd("AUTH PLAIN "+plain("app", "s3cret"), 235)
	c.cmd("AUTH PLAIN "+plain("app", "s3cret"), 503) // once is enough
	c.cmd("MAIL FROM:<grafana@example.org>", 250)
	c.cmd("AUTH LOGIN", 503) // not inside a transaction
	c.cmd("RCPT TO:<ops@example.org>", 250)
	c.cmd("DATA", 354)
	id := queuedID(t, c.cmd("Subject: alert\r\n\r\nfiring\r\n.", 250)[0])
	c.cmd("QUIT", 221)

	m, content := testqueue.Read(t, s.Spool, id)
	if got := testqueue.Addresses(m); !slices.Equal(got, []string{"ops@example.org"}) {
		t.Errorf("recipients %q", got)
	}
	if !strings.Contains(content, "Received: from app.example ([127.0.0.1])") || !strings.Contains(content, "with ESMTPSA id "+id) {
		t.Errorf("Received field does not say ESMTPSA from app.example:\n%s", testqueue.HeaderOf(content))
	}
	if !strings.Contains(log.String(), "sasl_username=app") {
		t.Errorf("log line without sasl_username=app:\n%s", log.String())
	}
}

// AUTH LOGIN, with and without the user name in the command; a
// cancelled exchange and an unknown mechanism.
func TestAuth_LoginMechanism(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := serveTCP(t, authServer(t, s))
	c.reply()
	c.cmd("EHLO a", 250)
	c.startTLS()
	c.cmd("EHLO a", 250)
	c.cmd("AUTH CRAM-MD5", 504)
	if got := c.cmd("AUTH LOGIN", 334); got[0] != "VXNlcm5hbWU6" {
		t.Errorf("LOGIN's first challenge %q, want base64 of Username:", got[0])
	}
	c.cmd("*", 501) // cancelled
	c.cmd("AUTH LOGIN", 334)
	c.cmd("not base64!", 501)
	c.cmd("AUTH LOGIN "+b64("app"), 334)
	c.cmd(b64("s3cret"), 235)
	c.cmd("MAIL FROM:<a@example.org>", 250)

	c = serveTCP(t, authServer(t, s))
	c.reply()
	c.cmd("EHLO a", 250)
	c.startTLS()
	c.cmd("EHLO a", 250)
	c.cmd("AUTH LOGIN", 334)
	c.cmd(b64("app"), 334)
	c.cmd(b64("s3cret"), 235)
	// PLAIN with an authorisation identity of another user is refused.
	c = serveTCP(t, authServer(t, s))
	c.reply()
	c.cmd("EHLO a", 250)
	c.startTLS()
	c.cmd("AUTH PLAIN "+b64("root\x00app\x00s3cret"), 535)
	c.cmd("AUTH PLAIN", 334)
	c.cmd(b64("app\x00app\x00s3cret"), 235)
}

// AUTH before STARTTLS is refused with 538 and the password is not
// tried; without Auth, AUTH is not a command at all.
func TestAuth_RefusedBeforeSTARTTLS(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	tried := 0
	srv := authServer(t, s)
	srv.Auth = func(u, p string) bool { tried++; return true }
	c := serveTCP(t, srv)
	c.reply()
	c.cmd("EHLO a", 250)
	c.cmd("AUTH PLAIN "+plain("app", "s3cret"), 538)
	c.cmd("AUTH LOGIN", 538)
	c.cmd("QUIT", 221)
	if tried != 0 {
		t.Errorf("the password was checked %d times before TLS", tried)
	}

	srv = &smtpd.Server{Submitter: s, TLS: authServer(t, s).TLS}
	c = serveTCP(t, srv)
	c.reply()
	c.cmd("EHLO a", 250)
	c.startTLS()
	if ehlo := c.cmd("EHLO a", 250); slices.ContainsFunc(ehlo, func(l string) bool { return strings.HasPrefix(l, "AUTH") }) {
		t.Errorf("AUTH offered without users: %q", ehlo)
	}
	c.cmd("AUTH PLAIN "+plain("app", "s3cret"), 502)
}

// A wrong password: 535, not before the delay; the third ends the
// session with 421.
func TestAuth_WrongPasswordDelayedThenDisconnected(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	var log strings.Builder
	s.Log = maillog.New(&log)
	srv := authServer(t, s)
	srv.AuthFailureDelay = 200 * time.Millisecond
	c := serveTCP(t, srv)
	c.reply()
	c.cmd("EHLO a", 250)
	c.startTLS()
	c.cmd("EHLO a", 250)
	start := time.Now()
	c.cmd("AUTH PLAIN "+plain("app", "guess1"), 535)
	if d := time.Since(start); d < srv.AuthFailureDelay {
		t.Errorf("535 after %v, want no sooner than %v", d, srv.AuthFailureDelay)
	}
	c.cmd("AUTH LOGIN "+b64("app"), 334)
	c.cmd(b64("guess2"), 535)
	c.cmd("MAIL FROM:<a@example.org>", 250) // not required from this client
	c.cmd("RSET", 250)
	if _, err := c.conn.Write([]byte("AUTH PLAIN " + plain("nobody", "guess3") + "\r\n")); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.reply(); code != 535 {
		t.Fatalf("third failure: %d, want 535", code)
	}
	if code, text := c.reply(); code != 421 || !strings.Contains(text[0], "too many failed authentications") {
		t.Fatalf("after the third failure: %d %q, want 421", code, text)
	}
	if _, err := c.r.ReadByte(); err == nil {
		t.Error("the session went on after 421")
	}
	if n := strings.Count(log.String(), "status=auth-failed"); n != 3 {
		t.Errorf("%d auth failures logged, want 3:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), "sasl_username=nobody") {
		t.Errorf("the failure's user is not logged:\n%s", log.String())
	}
}

// A client admitted only with credentials: no MAIL before STARTTLS and
// AUTH.
func TestAuth_Required(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	srv := authServer(t, s)
	srv.AuthRequired = true
	c := serveTCP(t, srv)
	c.reply()
	c.cmd("EHLO a", 250)
	if got := c.cmd("MAIL FROM:<a@example.org>", 530); !strings.Contains(got[0], "STARTTLS") {
		t.Errorf("530 in clear says %q, want it to name STARTTLS", got[0])
	}
	c.startTLS()
	c.cmd("EHLO a", 250)
	c.cmd("MAIL FROM:<a@example.org>", 530)
	c.cmd("AUTH PLAIN "+plain("app", "wrong"), 535)
	c.cmd("MAIL FROM:<a@example.org>", 530)
	c.cmd("AUTH PLAIN "+plain("app", "s3cret"), 235)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
}

// Commands pipelined after STARTTLS in clear are dropped (CVE-2011-0411),
// and STARTTLS forgets the transaction and the HELO name.
func TestSTARTTLS_DropsPipelinedCleartext(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	c := serveTCP(t, authServer(t, s))
	c.reply()
	c.cmd("EHLO a", 250)
	if _, err := c.conn.Write([]byte("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.reply(); code != 220 {
		t.Fatalf("STARTTLS: %d", code)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	c.cmd("RCPT TO:<b@example.org>", 503) // the injected MAIL was not taken
}
