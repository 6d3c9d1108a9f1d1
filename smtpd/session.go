package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/relaymail/relay/sendmailcompat"
)

// session is the state of one connection.
type session struct {
	srv     *Server
	s       *sendmailcompat.Submitter
	host    string // our name in the greeting and EHLO
	conn    net.Conn
	timeout time.Duration
	r       *bufio.Reader
	w       *bufio.Writer
	helo    string                 // the client's name from HELO or EHLO
	client  *sendmailcompat.Client // the network peer; nil for -bs
	errors  int
	tx      *transaction // nil outside MAIL … DATA

	encrypted    bool   // after STARTTLS
	user         string // after a successful AUTH
	authFailures int
}

// transaction is one message being described by MAIL and RCPT.
type transaction struct {
	from   string // as in MAIL FROM, without <>; "" is the null sender
	body   string // BODY=: 7BIT or 8BITMIME
	ret    string // RET=: FULL or HDRS
	envID  string // ENVID=, decoded
	rcpts  []string
	notify [][]string // NOTIFY= of each recipient; nil when not given
}

// errQuit ends the session normally once the pending replies (221, 421)
// are written.
var errQuit = errors.New("quit")

func (c *session) serve() error {
	c.reply(220, "", c.host+" ESMTP relay")
	for {
		line, err := c.readCommand()
		if err != nil {
			err = c.readFailed(err)
		}
		if err == errQuit {
			return c.w.Flush()
		}
		if err != nil {
			return err
		}
		if line == nil { // too long: already answered
			continue
		}
		if err := c.command(string(line)); err != nil {
			if err == errQuit {
				return c.w.Flush()
			}
			return err
		}
		if c.errors >= maxErrors {
			c.reply(421, "4.7.0", c.host+" Error: too many errors")
			return c.w.Flush()
		}
	}
}

// readFailed ends the session after a failed read: a timeout is told to
// the client, end of input (even in the middle of DATA) is the client's way
// to leave. Both give errQuit; other errors are returned as they are.
func (c *session) readFailed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errQuit
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.reply(421, "4.4.2", c.host+" Error: timeout exceeded")
		return errQuit
	}
	return err
}

// readCommand flushes the pending replies unless more complete commands
// are already waiting (PIPELINING), then reads one command line without its
// line end. A line longer than maxCommandLine is answered and skipped: it
// returns nil, nil.
func (c *session) readCommand() ([]byte, error) {
	if n := c.r.Buffered(); n == 0 || !hasLF(c.r, n) {
		if err := c.w.Flush(); err != nil {
			return nil, err
		}
	}
	line, err := c.r.ReadSlice('\n')
	tooLong := errors.Is(err, bufio.ErrBufferFull)
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = c.r.ReadSlice('\n')
	}
	if err != nil {
		return nil, err
	}
	if tooLong || len(line) > maxCommandLine {
		c.protocolError(500, "5.5.2", "Error: line too long")
		return nil, nil
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func hasLF(r *bufio.Reader, n int) bool {
	b, _ := r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// reply writes one reply; texts after the first make a multi-line reply.
// enh is the enhanced status code (RFC 2034), "" for none.
func (c *session) reply(code int, enh string, texts ...string) {
	for i, t := range texts {
		sep := ' '
		if i < len(texts)-1 {
			sep = '-'
		}
		t = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, t)
		if enh != "" {
			fmt.Fprintf(c.w, "%d%c%s %s\r\n", code, sep, enh, t)
		} else {
			fmt.Fprintf(c.w, "%d%c%s\r\n", code, sep, t)
		}
	}
}

func (c *session) protocolError(code int, enh, text string) {
	c.errors++
	c.reply(code, enh, text)
}

// command runs one command line. It returns errQuit after QUIT, or an I/O
// error that ends the session.
func (c *session) command(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch strings.ToUpper(verb) {
	case "EHLO":
		c.hello(arg, true)
	case "HELO":
		c.hello(arg, false)
	case "MAIL":
		c.mail(arg)
	case "RCPT":
		c.rcpt(arg)
	case "DATA":
		return c.data(arg)
	case "RSET":
		c.tx = nil
		c.reply(250, "2.0.0", "Ok")
	case "NOOP":
		c.reply(250, "2.0.0", "Ok")
	case "VRFY":
		c.reply(252, "2.0.0", "Cannot VRFY user; send mail and relay will try to deliver it")
	case "HELP":
		c.reply(214, "2.0.0", "Commands: EHLO HELO "+c.offered()+"MAIL RCPT DATA RSET NOOP VRFY QUIT")
	case "QUIT":
		c.reply(221, "2.0.0", "Bye")
		return errQuit
	case "STARTTLS":
		return c.startTLS(arg)
	case "AUTH":
		return c.auth(arg)
	case "EXPN", "BDAT", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML":
		c.protocolError(502, "5.5.1", "Error: command not implemented")
	default:
		c.protocolError(500, "5.5.2", "Error: command not recognized")
	}
	return nil
}
