package testsmtp

// FaultServer is a fault-injecting SMTP smarthost, in the spirit of maddy's
// internal/testutils/smtp_server.go: go-smtp's server on 127.0.0.1:0 with a
// configurable error (or silence, or a dropped connection) at every stage of
// a delivery, STARTTLS or implicit TLS with the certificate of cert.go, AUTH
// PLAIN and a lenient AUTH LOGIN with configurable prompts, and a record of
// everything received. Every server checks at the end of its test that the
// client closed all its connections. Its sessions are in fault_session.go.
//
// For byte-level control that go-smtp's server cannot give (a reply to the
// DATA command itself, an AUTH that "succeeds" without 235) there is
// RawServer in raw.go: scripted replies over plain TCP.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// HangMax bounds every hang of the test servers, so that a relay that
// fails to time out fails its test instead of hanging the suite.
const HangMax = 4 * time.Second

// Stages at which a FaultServer can stop answering (ServerConfig.Hang).
const (
	HangNever    = ""         // answer every command
	HangGreeting = "greeting" // accept, never send the 220
	HangEHLO     = "ehlo"     // greet, never answer EHLO
	HangRcpt     = "rcpt"     // never answer RCPT TO
	HangDot      = "dot"      // read the whole message, never answer the final dot
)

// ServerConfig says how a FaultServer behaves. The zero value is a plain
// SMTP server without TLS and without AUTH that accepts everything.
type ServerConfig struct {
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
	AuthServer func(mech string, check func(AuthSeen) error) sasl.Server

	// MailErr is the reply to MAIL FROM, by sender; the key "*" matches
	// every sender.
	MailErr map[string]*smtp.SMTPError
	// RcptErr is the reply to RCPT TO, by recipient.
	RcptErr map[string]*smtp.SMTPError
	// DataErr is the reply after the final dot.
	DataErr *smtp.SMTPError

	// Hang makes the server stop answering at a stage (hang* constants)
	// until the end of the test (at most HangMax).
	Hang string
	// DropMidData closes the connection after reading the first 4 KiB of
	// the message.
	DropMidData bool
	// DropAtDot closes the connection after reading the whole message,
	// without a reply.
	DropAtDot bool
	// MaxLineOctets, when set, makes the server strict about line length
	// as some are: a message with a line longer (line end not counted) is
	// answered 554 5.6.0 after the final dot and not kept.
	MaxLineOctets int
	// DotDelay pauses before the reply to the final dot. The message
	// counts as received (Messages) as soon as the dot is read, as a
	// real server has it queued before it answers, whether or not the
	// client waits for the reply.
	DotDelay time.Duration
}

// Received is a message the server accepted (250 after the final dot).
type Received struct {
	Conn int // which connection, from 1
	From string
	To   []string
	Body []byte
}

// AuthSeen is one set of credentials the server was given.
type AuthSeen struct {
	Conn           int
	Mech           string
	Identity, User string
	Pass           string
}

// FaultServer is a running fault-injecting smarthost.
type FaultServer struct {
	Port int   // on 127.0.0.1
	Cert *Cert // its certificate, for STARTTLS and ImplicitTLS

	t       *testing.T
	cfg     ServerConfig
	srv     *smtp.Server
	release chan struct{} // closed at the end of the test: hangs end
	wg      sync.WaitGroup
	errLog  LockedBuffer

	mu       sync.Mutex
	conns    int            // connections accepted
	open     int            // connections not closed yet
	connIDs  map[string]int // remote address → connection number
	live     []net.Conn     // accepted connections, for DropAll
	helos    []string
	auths    []AuthSeen
	mails    []string // every MAIL FROM, accepted or not
	mailConn []int    // connection of each MAIL FROM
	rcpts    []string // every RCPT TO, accepted or not
	messages []Received
}

// NewFaultServer starts a server on 127.0.0.1 that lives until the end of
// the test. At the end it fails the test if a connection is still open.
func NewFaultServer(t *testing.T, cfg ServerConfig) *FaultServer {
	t.Helper()
	s := &FaultServer{
		t:       t,
		cfg:     cfg,
		Cert:    LocalhostCert(t),
		release: make(chan struct{}),
		connIDs: map[string]int{},
	}
	if s.cfg.LoginPrompts == nil {
		s.cfg.LoginPrompts = []string{"Username:", "Password:"}
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "smarthost.test"
	srv.AllowInsecureAuth = cfg.AllowInsecureAuth
	srv.ErrorLog = BufLogger{W: &s.errLog}
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
			t.Errorf("FaultServer: %d of %d connections still open at the end of the test (relay leaked a connection)", n, s.Conns())
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
			t.Logf("FaultServer log:\n%s", s.errLog.String())
		}
	})
	return s
}

// DropAll closes every connection the server has accepted, as a server
// does with sessions idle too long.
func (s *FaultServer) DropAll() {
	s.mu.Lock()
	live := s.live
	s.live = nil
	s.mu.Unlock()
	for _, c := range live {
		c.Close()
	}
}

// Conns is the number of connections accepted so far.
func (s *FaultServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *FaultServer) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Helos returns the names the client gave in EHLO, per session.
func (s *FaultServer) Helos() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.helos...)
}

// Auths returns the credentials seen.
func (s *FaultServer) Auths() []AuthSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AuthSeen(nil), s.auths...)
}

// Mails returns every MAIL FROM address received, accepted or not.
func (s *FaultServer) Mails() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mails...)
}

// MailsOn returns how many MAIL FROM commands each connection carried.
func (s *FaultServer) MailsOn() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int]int{}
	for _, c := range s.mailConn {
		m[c]++
	}
	return m
}

// Rcpts returns every RCPT TO address received, accepted or not.
func (s *FaultServer) Rcpts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rcpts...)
}

// Messages returns the messages accepted.
func (s *FaultServer) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.messages...)
}

// DeliveredTo counts the accepted messages that went to rcpt.
func (s *FaultServer) DeliveredTo(rcpt string) int {
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

// Config returns the current configuration.
func (s *FaultServer) Config() ServerConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SetConfig changes the configuration for the commands to come (between
// passes, say); the sessions already open see it at their next command.
func (s *FaultServer) SetConfig(f func(*ServerConfig)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.cfg)
}

// hang blocks until the end of the test, at most HangMax.
func (s *FaultServer) hang() {
	select {
	case <-s.release:
	case <-time.After(HangMax):
	}
}

// Addr is the server's address, "127.0.0.1:port": the Target of a
// SocksServer in front of it, say.
func (s *FaultServer) Addr() string {
	return fmt.Sprintf("127.0.0.1:%d", s.Port)
}

// BufLogger is go-smtp's server Logger writing into a buffer: the server
// may log after a test ended, when t.Logf would panic.
type BufLogger struct{ W io.Writer }

// Printf writes one formatted line.
func (l BufLogger) Printf(format string, v ...any) { fmt.Fprintf(l.W, format+"\n", v...) }

// Println writes one line.
func (l BufLogger) Println(v ...any) { fmt.Fprintln(l.W, v...) }

// ReplyText formats an SMTP error as the reply line a server sends.
func ReplyText(e *smtp.SMTPError) string {
	if e.EnhancedCode == smtp.NoEnhancedCode || e.EnhancedCode == (smtp.EnhancedCode{}) {
		return fmt.Sprintf("%d %s", e.Code, e.Message)
	}
	c := e.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, c[0], c[1], c[2], e.Message)
}
