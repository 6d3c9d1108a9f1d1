package smtpd

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/sysexits"
)

// DefaultTimeout is how long a session may stay silent (and a reply may
// take to write) before it is ended with 421, as Postfix's smtpd_timeout.
const DefaultTimeout = 5 * time.Minute

// Limits of a session.
const (
	maxCommandLine = 4096 // RFC 5321 asks for 512; be generous with parameters
	maxRecipients  = 1000 // per message, as Postfix's smtpd_recipient_limit
	maxErrors      = 20   // protocol errors before 421, as Postfix's smtpd_hard_error_limit
)

// Server queues the messages of SMTP sessions through Submitter, one
// Enqueue per transaction.
type Server struct {
	Submitter *sendmailcompat.Submitter
	// FullName is sendmail's -F: the name of a From field added to a
	// message without one.
	FullName string
	// Timeout bounds each read of the client and each write of a reply;
	// 0 means DefaultTimeout.
	Timeout time.Duration

	// TLS, when set, is offered as STARTTLS (RFC 3207). The daemon's
	// listener sets it ([daemon] listen_tls); -bs never does.
	TLS *tls.Config
	// Auth, when set, is offered as AUTH PLAIN and LOGIN (RFC 4954), and
	// only once the session is encrypted: it reports whether password is
	// user's ([daemon] listen_users). See auth.go for the failure rules.
	Auth func(user, password string) bool
	// AuthRequired refuses MAIL (530 5.7.0) until the client has
	// authenticated: a client the listener admits only with credentials
	// (listen_auth_networks).
	AuthRequired bool
	// AuthFailureDelay is how long a refused AUTH waits before its 535;
	// 0 means DefaultAuthFailureDelay.
	AuthFailureDelay time.Duration
	// MaxAuthFailures is how many refused AUTHs end a session (421); 0
	// means DefaultMaxAuthFailures.
	MaxAuthFailures int
	// Queued, when set, is called after each message is queued and its
	// 250 sent: sendmail -bs starts delivery there, as sendmail does
	// after its message (the listener's daemon sees new mail itself).
	Queued func()
}

// ServeStdio runs one SMTP session on in (commands and messages) and out
// (replies only): sendmail -bs. It returns nil when the session ends with
// QUIT, end of input or an idle timeout, even if messages were refused
// (the replies said so), and a *sysexits.Error with code 75 when standard
// input or output cannot be used.
func (srv *Server) ServeStdio(in io.Reader, out io.Writer) error {
	return srv.ServeConn(NewStdioConn(in, out))
}

// ServeConn runs one SMTP session on conn and closes it. When conn's peer
// is a TCP address (the daemon's listener), each message records it: a
// Received field "from HELO ([IP]) by host (relay) with ESMTP id …", as
// Postfix's smtpd writes one, and client=[IP]:port in the log line, instead
// of the submitting uid of -bs. It returns nil after QUIT, end of input, an idle timeout or a client that went away;
// an error only when conn fails otherwise (EBADF, EIO), as a
// *sysexits.Error with code 75.
func (srv *Server) ServeConn(conn net.Conn) error {
	defer conn.Close()
	timeout := srv.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	host := srv.Submitter.Hostname
	if host == "" {
		host = "localhost"
	}
	c := &session{
		srv:     srv,
		s:       srv.Submitter,
		host:    host,
		conn:    conn,
		timeout: timeout,
		r:       bufio.NewReaderSize(deadlineReader{conn, timeout}, 64<<10),
		w:       bufio.NewWriter(deadlineWriter{conn, timeout}),
	}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		c.client = &sendmailcompat.Client{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Protocol: "SMTP"}
	}
	err := c.serve()
	var ne net.Error
	if err == nil || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne) && ne.Timeout() {
		return nil // the client went away or stalled
	}
	return sysexits.Wrap(sysexits.TempFail, fmt.Errorf("SMTP session: %w", err))
}

// RefuseSession answers an SMTP client on the other end of sendmail -bs
// that relay cannot accept mail, and why, in a 421 greeting: a client
// reads that, not the exit code.
func RefuseSession(out io.Writer, err error) {
	io.WriteString(out, "421 4.3.0 relay cannot accept mail: "+strings.Join(strings.Fields(err.Error()), " ")+"\r\n")
}

// deadlineReader gives each read of conn its own deadline: the session
// times out after a silence, not after a total duration.
type deadlineReader struct {
	conn    net.Conn
	timeout time.Duration
}

func (d deadlineReader) Read(p []byte) (int, error) {
	if err := d.conn.SetReadDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.conn.Read(p)
}

type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	if err := d.conn.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.conn.Write(p)
}
