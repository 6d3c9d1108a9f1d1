package relay_test

// A fault-injecting SMTP smarthost for the tests, in the spirit of maddy's
// internal/testutils/smtp_server.go: go-smtp's server on 127.0.0.1:0 with a
// configurable error (or silence, or a dropped connection) at every stage of
// a delivery, STARTTLS or implicit TLS with a certificate made here, AUTH
// PLAIN and a lenient AUTH LOGIN with configurable prompts, and a record of
// everything received. Every server checks at the end of its test that the
// client closed all its connections.
//
// For byte-level control that go-smtp's server cannot give (a reply to the
// DATA command itself, an AUTH that "succeeds" without 235) there is
// rawServer below: scripted replies over plain TCP.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// hangMax bounds every hang of the test servers, so that a relay that
// fails to time out fails its test instead of hanging the suite.
const hangMax = 4 * time.Second

// Stages at which a faultServer can stop answering.
const (
	hangNever    = ""
	hangGreeting = "greeting" // accept, never send the 220
	hangEHLO     = "ehlo"     // greet, never answer EHLO
	hangRcpt     = "rcpt"     // never answer RCPT TO
	hangDot      = "dot"      // read the whole message, never answer the final dot
)

// serverConfig says how a faultServer behaves. The zero value is a plain
// SMTP server without TLS and without AUTH that accepts everything.
type serverConfig struct {
	// Greeting, when set, is sent instead of the 220 greeting, and the
	// connection is closed.
	Greeting *smtp.SMTPError
	// EHLO is the reply to EHLO (and HELO).
	EHLO *smtp.SMTPError

	// STARTTLS offers STARTTLS with the test certificate; ImplicitTLS
	// wraps the listener in TLS (port 465 style).
	STARTTLS    bool
	ImplicitTLS bool

	// AuthMechs are the AUTH mechanisms offered (PLAIN, LOGIN); none: no
	// AUTH extension. go-smtp offers AUTH only under TLS unless
	// AllowInsecureAuth.
	AuthMechs         []string
	AllowInsecureAuth bool
	// LoginPrompts are the two AUTH LOGIN challenges; default "Username:"
	// and "Password:".
	LoginPrompts []string
	// Password, when set, is the only password accepted (else 535).
	Password string
	// AuthErr is the reply to AUTH after the credentials arrived.
	AuthErr *smtp.SMTPError
	// AuthServer serves the mechanisms besides PLAIN and LOGIN (auth_test.go:
	// CRAM-MD5, SCRAM-SHA-256, XOAUTH2, OAUTHBEARER); nil for a mechanism
	// it does not serve. check records what it was given and applies
	// AuthErr and Password as for PLAIN.
	AuthServer func(mech string, check func(authSeen) error) sasl.Server

	// MailErr is the reply to MAIL FROM, by sender; the key "*" matches
	// every sender.
	MailErr map[string]*smtp.SMTPError
	// RcptErr is the reply to RCPT TO, by recipient.
	RcptErr map[string]*smtp.SMTPError
	// DataErr is the reply after the final dot.
	DataErr *smtp.SMTPError

	// Hang makes the server stop answering at a stage (hang* constants)
	// until the end of the test (at most hangMax).
	Hang string
	// DropMidData closes the connection after reading the first 4 KiB of
	// the message.
	DropMidData bool
	// DropAtDot closes the connection after reading the whole message,
	// without a reply.
	DropAtDot bool
}

// received is a message the server accepted (250 after the final dot).
type received struct {
	Conn int // which connection, from 1
	From string
	To   []string
	Body []byte
}

// authSeen is one set of credentials the server was given.
type authSeen struct {
	Conn           int
	Mech           string
	Identity, User string
	Pass           string
}

// faultServer is a running fault-injecting smarthost.
type faultServer struct {
	Port int
	Cert *testCert

	t       *testing.T
	cfg     serverConfig
	srv     *smtp.Server
	release chan struct{} // closed at the end of the test: hangs end
	wg      sync.WaitGroup
	errLog  lockedBuffer

	mu       sync.Mutex
	conns    int            // connections accepted
	open     int            // connections not closed yet
	connIDs  map[string]int // remote address → connection number
	live     []net.Conn     // accepted connections, for dropAll
	helos    []string
	auths    []authSeen
	mails    []string // every MAIL FROM, accepted or not
	mailConn []int    // connection of each MAIL FROM
	rcpts    []string // every RCPT TO, accepted or not
	messages []received
}

// newFaultServer starts a server on 127.0.0.1 that lives until the end of
// the test. At the end it fails the test if a connection is still open.
func newFaultServer(t *testing.T, cfg serverConfig) *faultServer {
	t.Helper()
	s := &faultServer{
		t:       t,
		cfg:     cfg,
		Cert:    localhostCert(t),
		release: make(chan struct{}),
		connIDs: map[string]int{},
	}
	if s.cfg.LoginPrompts == nil {
		s.cfg.LoginPrompts = []string{"Username:", "Password:"}
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "smarthost.test"
	srv.AllowInsecureAuth = cfg.AllowInsecureAuth
	srv.ErrorLog = bufLogger{&s.errLog}
	srv.ReadTimeout = 10 * time.Second // a safety net; the tests end long before
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{s.Cert.Pair}}
	if cfg.STARTTLS {
		srv.TLSConfig = tlsCfg
	}
	s.srv = srv

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	var l net.Listener = &trackListener{Listener: ln, s: s}
	if cfg.ImplicitTLS {
		l = tls.NewListener(l, tlsCfg)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(l)
	}()

	t.Cleanup(func() {
		close(s.release)
		// Leak check: relay must have closed (or QUIT) every connection;
		// the server then sees EOF and closes its side.
		deadline := time.Now().Add(3 * time.Second)
		for s.openConns() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := s.openConns(); n > 0 {
			t.Errorf("faultServer: %d of %d connections still open at the end of the test (relay leaked a connection)", n, s.Conns())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		cancel()
		// Serve may have started after Shutdown looked for listeners.
		ln.Close()
		<-served
		s.wg.Wait()
		if s.errLog.Len() > 0 {
			t.Logf("faultServer log:\n%s", s.errLog.String())
		}
	})
	return s
}

// Conns is the number of connections accepted so far.
// dropAll closes every connection the server has accepted, as a server
// does with sessions idle too long.
func (s *faultServer) dropAll() {
	s.mu.Lock()
	live := s.live
	s.live = nil
	s.mu.Unlock()
	for _, c := range live {
		c.Close()
	}
}

func (s *faultServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *faultServer) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Helos returns the names the client gave in EHLO, per session.
func (s *faultServer) Helos() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.helos...)
}

// Auths returns the credentials seen.
func (s *faultServer) Auths() []authSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]authSeen(nil), s.auths...)
}

// Mails returns every MAIL FROM address received, accepted or not.
func (s *faultServer) Mails() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mails...)
}

// MailsOn returns how many MAIL FROM commands each connection carried.
func (s *faultServer) MailsOn() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int]int{}
	for _, c := range s.mailConn {
		m[c]++
	}
	return m
}

// Rcpts returns every RCPT TO address received, accepted or not.
func (s *faultServer) Rcpts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rcpts...)
}

// Messages returns the messages accepted.
func (s *faultServer) Messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.messages...)
}

// DeliveredTo counts the accepted messages that went to rcpt.
func (s *faultServer) DeliveredTo(rcpt string) int {
	n := 0
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if to == rcpt {
				n++
			}
		}
	}
	return n
}

// config returns the current configuration; setConfig changes it for the
// commands to come (between passes, say).
func (s *faultServer) config() serverConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *faultServer) setConfig(f func(*serverConfig)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.cfg)
}

// hang blocks until the end of the test, at most hangMax.
func (s *faultServer) hang() {
	select {
	case <-s.release:
	case <-time.After(hangMax):
	}
}

// trackListener counts connections and plays the greeting faults, which
// go-smtp's server cannot.
type trackListener struct {
	net.Listener
	s *faultServer
}

func (l *trackListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.s
		s.mu.Lock()
		s.conns++
		s.open++
		s.connIDs[c.RemoteAddr().String()] = s.conns
		tc := &trackConn{Conn: c, s: s}
		s.live = append(s.live, tc)
		s.mu.Unlock()
		cfg := s.config()
		switch {
		case cfg.Greeting != nil:
			io.WriteString(tc, replyText(cfg.Greeting)+"\r\n")
			s.wg.Add(1)
			go func() {
				// Wait for the client to go, so that it reads the reply
				// and not a reset connection.
				defer s.wg.Done()
				tc.SetReadDeadline(time.Now().Add(3 * time.Second))
				io.Copy(io.Discard, tc)
				tc.Close()
			}()
			continue
		case cfg.Hang == hangGreeting:
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				done := make(chan struct{})
				go func() { io.Copy(io.Discard, tc); close(done) }()
				select {
				case <-done: // the client gave up
				case <-s.release:
				case <-time.After(hangMax):
				}
				tc.Close()
				<-done
			}()
			continue
		}
		return tc, nil
	}
}

// trackConn notices when a connection is closed, for the leak check.
type trackConn struct {
	net.Conn
	s    *faultServer
	once sync.Once
}

func (c *trackConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.open--
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

func (s *faultServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	id := s.connIDs[c.Conn().RemoteAddr().String()]
	s.helos = append(s.helos, c.Hostname())
	cfg := s.cfg
	s.mu.Unlock()
	if cfg.Hang == hangEHLO {
		s.hang()
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "too late"}
	}
	if cfg.EHLO != nil {
		return nil, cfg.EHLO
	}
	return &session{s: s, conn: c, id: id}, nil
}

// session is one SMTP session of a faultServer.
type session struct {
	s    *faultServer
	conn *smtp.Conn
	id   int
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (se *session) AuthMechanisms() []string { return se.s.config().AuthMechs }

func (se *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			return se.authenticate(authSeen{Mech: mech, Identity: identity, User: user, Pass: pass})
		}), nil
	case sasl.Login:
		return &loginServer{prompts: se.s.config().LoginPrompts, auth: func(user, pass string) error {
			return se.authenticate(authSeen{Mech: mech, User: user, Pass: pass})
		}}, nil
	}
	if f := se.s.config().AuthServer; f != nil {
		if srv := f(mech, func(a authSeen) error { a.Mech = mech; return se.authenticate(a) }); srv != nil {
			return srv, nil
		}
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *session) authenticate(a authSeen) error {
	s := se.s
	a.Conn = se.id
	s.mu.Lock()
	s.auths = append(s.auths, a)
	cfg := s.cfg
	s.mu.Unlock()
	if cfg.AuthErr != nil {
		return cfg.AuthErr
	}
	if cfg.Password != "" && a.Pass != cfg.Password {
		return smtp.ErrAuthFailed
	}
	return nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	s := se.s
	s.mu.Lock()
	s.mails = append(s.mails, from)
	s.mailConn = append(s.mailConn, se.id)
	cfg := s.cfg
	s.mu.Unlock()
	if e, ok := cfg.MailErr[from]; ok {
		return e
	}
	if e, ok := cfg.MailErr["*"]; ok {
		return e
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := se.s
	s.mu.Lock()
	s.rcpts = append(s.rcpts, to)
	cfg := s.cfg
	s.mu.Unlock()
	if cfg.Hang == hangRcpt {
		s.hang()
	}
	if e, ok := cfg.RcptErr[to]; ok {
		return e
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	s := se.s
	cfg := s.config()
	if cfg.DropMidData {
		io.CopyN(io.Discard, r, 4096)
		se.conn.Conn().Close()
		return errors.New("dropped mid-DATA")
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch {
	case cfg.DropAtDot:
		se.conn.Conn().Close()
		return errors.New("dropped at the final dot")
	case cfg.Hang == hangDot:
		s.hang()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "too late"}
	case cfg.DataErr != nil:
		return cfg.DataErr
	}
	s.mu.Lock()
	s.messages = append(s.messages, received{Conn: se.id, From: se.from, To: append([]string(nil), se.to...), Body: body})
	s.mu.Unlock()
	return nil
}

func (se *session) Reset() {
	se.from = ""
	se.to = nil
}

func (se *session) Logout() error { return nil }

// loginServer is AUTH LOGIN with configurable prompts (go-sasl has no LOGIN
// server). A client's initial response is taken as the user name.
type loginServer struct {
	prompts []string
	auth    func(user, pass string) error
	step    int
	user    string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if resp == nil {
			return []byte(l.prompts[0]), false, nil
		}
		l.step++
		l.user = string(resp)
		return []byte(l.prompts[1]), false, nil
	case 2:
		l.user = string(resp)
		return []byte(l.prompts[1]), false, nil
	case 3:
		return nil, true, l.auth(l.user, string(resp))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}

// testCert is a self-signed certificate for 127.0.0.1 and localhost.
type testCert struct {
	Pair        tls.Certificate
	PEM         []byte // the certificate, for tls_ca_file
	Fingerprint string // hex SHA-256 of the DER, for tls_fingerprint
}

var (
	certOnce sync.Once
	certVal  *testCert
	certErr  error
)

func localhostCert(t testing.TB) *testCert {
	t.Helper()
	certOnce.Do(func() { certVal, certErr = makeCert() })
	if certErr != nil {
		t.Fatal(certErr)
	}
	return certVal
}

func makeCert() (*testCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay test smarthost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &testCert{Pair: pair, PEM: certPEM, Fingerprint: hex.EncodeToString(sum[:])}, nil
}

// caFile writes the certificate to a file for tls_ca_file.
func (c *testCert) caFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, c.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

// bufLogger is go-smtp's server Logger writing into a buffer: the server
// may log after a test ended, when t.Logf would panic.
type bufLogger struct{ w io.Writer }

func (l bufLogger) Printf(format string, v ...any) { fmt.Fprintf(l.w, format+"\n", v...) }
func (l bufLogger) Println(v ...any)               { fmt.Fprintln(l.w, v...) }

// replyText formats an SMTP error as the reply line a server sends.
func replyText(e *smtp.SMTPError) string {
	if e.EnhancedCode == smtp.NoEnhancedCode || e.EnhancedCode == (smtp.EnhancedCode{}) {
		return fmt.Sprintf("%d %s", e.Code, e.Message)
	}
	c := e.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, c[0], c[1], c[2], e.Message)
}

// rawServer is a scripted SMTP server over plain TCP for transcript tests.
// reply is called with "" for the greeting and then with every line the
// client sends (AUTH responses included), and returns the reply to write:
// one or more lines separated by "\n", without line ends; "" writes
// nothing (the server stays silent) and rawClose closes the connection.
// After a 354 reply, the server reads the message up to the final dot
// itself and calls reply with "." for the answer to it.
type rawServer struct {
	Port int

	mu     sync.Mutex
	conns  int
	lines  []string // every line received, in order, across connections
	bodies []string // every message received up to its final dot
	stop   chan struct{}
	// replyMu serializes the calls of reply, which may keep state.
	replyMu sync.Mutex
}

const (
	rawClose = "\x00close"
	// rawStall, prefixed to a reply, writes the reply and then stops
	// reading and answering until the end of the test (at most hangMax),
	// when it closes the connection.
	rawStall = "\x00stall"
)

func newRawServer(t *testing.T, reply func(line string) string) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{Port: ln.Addr().(*net.TCPAddr).Port, stop: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s.serve(c, reply)
			}()
		}
	}()
	t.Cleanup(func() {
		close(s.stop)
		ln.Close()
		mu.Lock()
		for _, c := range open {
			// Unblocks a serve waiting for the client; closing twice is
			// harmless.
			c.SetDeadline(time.Now())
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *rawServer) serve(c net.Conn, replyFn func(string) string) {
	reply := func(l string) string {
		s.replyMu.Lock()
		defer s.replyMu.Unlock()
		return replyFn(l)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	write := func(r string) bool {
		switch r {
		case "":
			return true
		case rawClose:
			return false
		}
		if rest, ok := strings.CutPrefix(r, rawStall); ok {
			io.WriteString(c, strings.ReplaceAll(rest, "\n", "\r\n")+"\r\n")
			select {
			case <-s.stop:
			case <-time.After(hangMax):
			}
			return false
		}
		_, err := io.WriteString(c, strings.ReplaceAll(r, "\n", "\r\n")+"\r\n")
		return err == nil
	}
	if !write(reply("")) {
		return
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.lines = append(s.lines, line)
		s.mu.Unlock()
		r := reply(line)
		if !write(r) {
			return
		}
		if strings.HasPrefix(r, "354") {
			var body strings.Builder
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				body.WriteString(l)
			}
			s.mu.Lock()
			s.bodies = append(s.bodies, body.String())
			s.mu.Unlock()
			if !write(reply(".")) {
				return
			}
		}
	}
}

// Lines returns every line received so far.
func (s *rawServer) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// Conns is the number of connections accepted so far.
func (s *rawServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Bodies returns the messages received up to their final dot.
func (s *rawServer) Bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// Commands returns the command verbs received (the first word of each line,
// upper-cased), AUTH responses and "*" included as they are.
func (s *rawServer) Commands() []string {
	var out []string
	for _, l := range s.Lines() {
		verb, _, _ := strings.Cut(l, " ")
		out = append(out, strings.ToUpper(verb))
	}
	return out
}

// smtpReplies is a rawServer script for an ordinary smarthost that offers
// the given EHLO keywords and accepts everything; over overrides the reply
// to a command verb ("GREETING", "EHLO", "AUTH", "MAIL", "RCPT", "DATA",
// "." for the final dot). An AUTH exchange is left to the override.
func smtpReplies(ehlo []string, over map[string]func(line string) string) func(string) string {
	return func(line string) string {
		verb := strings.ToUpper(line)
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		if line == "" {
			verb = "GREETING"
		}
		if f, ok := over[verb]; ok {
			return f(line)
		}
		switch verb {
		case "GREETING":
			return "220 raw.test ESMTP"
		case "EHLO":
			return strings.Join(append([]string{"250-raw.test"}, prefixAll("250-", ehlo)...), "\n") + "\n250 8BITMIME"
		case "MAIL", "RCPT", "RSET", "NOOP":
			return "250 2.0.0 Ok"
		case "DATA":
			return "354 End data with <CR><LF>.<CR><LF>"
		case ".":
			return "250 2.0.0 Ok: queued as RAW1"
		case "QUIT":
			return "221 2.0.0 Bye"
		}
		if f, ok := over["*"]; ok {
			return f(line)
		}
		return "502 5.5.2 Error: command not recognized"
	}
}

func prefixAll(p string, s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = p + x
	}
	return out
}
