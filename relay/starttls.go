package relay

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"time"

	"github.com/emersion/go-smtp"
)

// errNoStartTLS: the server's EHLO does not offer STARTTLS.
var errNoStartTLS = errors.New("smtp: server doesn't support STARTTLS")

// startTLS speaks the plain-text part of a tls = "starttls" session —
// the greeting, EHLO with our name, STARTTLS — and returns a go-smtp
// client over the TLS connection (the handshake happens at its first
// command, the Hello that follows) and the length of the greeting that
// client will read first (see below).
//
// go-smtp's NewClientStartTLS says "EHLO localhost" before STARTTLS and
// offers no way to give another name (upstream's choice: that EHLO is
// unprotected, and a server must forget it after STARTTLS, RFC 3207 4.2).
// But servers that check the name before TLS (smtp-relay.gmail.com, hosts
// with reject_non_fqdn_helo_hostname) refuse "localhost" or offer no
// STARTTLS to it, and the name a smarthost logs is the first one. So a
// client of go-smtp reads the greeting and says EHLO with our name (its
// Hello), then relay sends STARTTLS itself, and a second client speaks
// over TLS. A new client reads a greeting before anything else, which a
// session after STARTTLS has not: it is given one (greetedConn), which
// the debug writer skips (skipWriter).
//
// Anything the server sent after its 220 to STARTTLS and before the TLS
// handshake is discarded, never read as a reply (the STARTTLS command
// injection of CVE-2011-0411).
//
// An error is a reply (*smtp.SMTPError), errNoStartTLS, or a network
// error.
func startTLS(conn net.Conn, tcfg *tls.Config, name string) (*smtp.Client, *tls.Conn, int, error) {
	clear := smtp.NewClient(conn)
	clear.CommandTimeout = CommandTimeout
	if err := clear.Hello(name); err != nil {
		clear.Close()
		return nil, nil, 0, err
	}
	if ok, _ := clear.Extension("STARTTLS"); !ok {
		clear.Close()
		return nil, nil, 0, errNoStartTLS
	}
	conn.SetDeadline(time.Now().Add(CommandTimeout))
	err := startTLSCommand(conn)
	conn.SetDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, nil, 0, err
	}
	tc := tls.Client(conn, tcfg)
	return smtp.NewClient(&greetedConn{Conn: tc, greeting: []byte(afterSTARTTLS)}), tc, len(afterSTARTTLS), nil
}

// startTLSCommand sends STARTTLS and reads its reply, which must be 220.
// The reader is thrown away after it: what follows the reply is TLS.
func startTLSCommand(conn net.Conn) error {
	if _, err := io.WriteString(conn, "STARTTLS\r\n"); err != nil {
		return err
	}
	_, _, err := textproto.NewReader(bufio.NewReader(conn)).ReadResponse(220)
	var te *textproto.Error
	if errors.As(err, &te) {
		// failure reads the enhanced code out of the text.
		return &smtp.SMTPError{Code: te.Code, EnhancedCode: smtp.NoEnhancedCode, Message: te.Msg}
	}
	return err
}

// afterSTARTTLS is the greeting greetedConn gives go-smtp's client.
const afterSTARTTLS = "220 TLS started\r\n"

// greetedConn is the TLS connection after STARTTLS, with the greeting a
// new go-smtp client reads first in front of it.
type greetedConn struct {
	*tls.Conn
	greeting []byte
}

func (c *greetedConn) Read(p []byte) (int, error) {
	if len(c.greeting) > 0 {
		n := copy(p, c.greeting)
		c.greeting = c.greeting[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// skipWriter drops the first n bytes written to it: the greeting that
// greetedConn gives the client is not part of the dialogue shown.
type skipWriter struct {
	w io.Writer
	n int
}

func (s *skipWriter) Write(p []byte) (int, error) {
	if s.n >= len(p) {
		s.n -= len(p)
		return len(p), nil
	}
	q := p[s.n:]
	s.n = 0
	if _, err := s.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
