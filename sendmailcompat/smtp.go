package sendmailcompat

// SMTP intake: `sendmail -bs` (an SMTP session on stdin/stdout, as Symfony
// Mailer uses it) and, on any net.Conn, the daemon's loopback listener.
//
// The server is written here rather than taken from go-smtp's server
// package, because that parser refuses what callers of a local MTA send and
// Postfix accepts: an unqualified mailbox (`RCPT TO:<root>`, Ansible's mail
// module by default; `MAIL FROM:<root>`) is answered 501 before the backend
// sees it, and a quoted local part loses its quotes (`"a b"@x` arrives as
// `a b@x`). Every message goes through Submitter.Enqueue, so it is queued
// exactly as the sendmail command line queues it.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/sysexits"
)

// DefaultSMTPTimeout is how long a session may stay silent (and a reply
// may take to write) before it is ended with 421, as Postfix's
// smtpd_timeout.
const DefaultSMTPTimeout = 5 * time.Minute

// Limits of a session.
const (
	maxCommandLine = 4096 // RFC 5321 asks for 512; be generous with parameters
	maxRecipients  = 1000 // per message, as Postfix's smtpd_recipient_limit
	maxErrors      = 20   // protocol errors before 421, as Postfix's smtpd_hard_error_limit
)

// SMTPServer queues the messages of SMTP sessions through Submitter.
type SMTPServer struct {
	Submitter *Submitter
	// FullName is -F: the name of a From field added to a message without
	// one.
	FullName string
	// Timeout bounds each read of the client and each write of a reply;
	// 0 means DefaultSMTPTimeout.
	Timeout time.Duration
}

// ServeSMTP runs one SMTP session on in (commands and messages) and out
// (replies only): sendmail -bs. o supplies -F; nil is allowed. It returns
// nil when the session ends with QUIT, end of input or an idle timeout,
// even if messages were refused (the replies said so), and a *sysexits.Error
// with code 75 when standard input or output cannot be used.
func (s *Submitter) ServeSMTP(in io.Reader, out io.Writer, o *Options) error {
	srv := &SMTPServer{Submitter: s}
	if o != nil {
		srv.FullName = o.FullName
	}
	return srv.ServeConn(NewStdioConn(in, out))
}

// ServeConn runs one SMTP session on conn and closes it. When conn's peer
// is a TCP address (the daemon's listener), each message records it: a
// Received field "from HELO ([IP]) by host (relay) with ESMTP id …", as
// Postfix's smtpd writes one, and client=[IP]:port in the log line, instead
// of the submitting uid of -bs. It returns nil
// after QUIT, end of input, an idle timeout or a client that went away;
// an error only when conn fails otherwise (EBADF, EIO), as a
// *sysexits.Error with code 75.
func (srv *SMTPServer) ServeConn(conn net.Conn) error {
	defer conn.Close()
	timeout := srv.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	host := srv.Submitter.Hostname
	if host == "" {
		host = "localhost"
	}
	c := &smtpSession{
		srv:  srv,
		s:    srv.Submitter,
		host: host,
		r:    bufio.NewReaderSize(deadlineReader{conn, timeout}, 64<<10),
		w:    bufio.NewWriter(deadlineWriter{conn, timeout}),
	}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		c.client = &Client{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Protocol: "SMTP"}
	}
	err := c.serve()
	var ne net.Error
	if err == nil || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne) && ne.Timeout() {
		return nil // the client went away or stalled
	}
	return sysexits.Wrap(sysexits.TempFail, fmt.Errorf("SMTP session: %w", err))
}

// smtpSession is the state of one connection.
type smtpSession struct {
	srv    *SMTPServer
	s      *Submitter
	host   string // our name in the greeting and EHLO
	r      *bufio.Reader
	w      *bufio.Writer
	helo   string  // the client's name from HELO or EHLO
	client *Client // the network peer; nil for -bs
	errors int
	tx     *transaction // nil outside MAIL … DATA
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

func (c *smtpSession) serve() error {
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
func (c *smtpSession) readFailed(err error) error {
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
func (c *smtpSession) readCommand() ([]byte, error) {
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
func (c *smtpSession) reply(code int, enh string, texts ...string) {
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

func (c *smtpSession) protocolError(code int, enh, text string) {
	c.errors++
	c.reply(code, enh, text)
}

// command runs one command line. It returns errQuit after QUIT, or an I/O
// error that ends the session.
func (c *smtpSession) command(line string) error {
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
		c.reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY QUIT")
	case "QUIT":
		c.reply(221, "2.0.0", "Bye")
		return errQuit
	case "EXPN", "STARTTLS", "AUTH", "BDAT", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML":
		c.protocolError(502, "5.5.1", "Error: command not implemented")
	default:
		c.protocolError(500, "5.5.2", "Error: command not recognized")
	}
	return nil
}

func (c *smtpSession) hello(arg string, extended bool) {
	name, _, _ := strings.Cut(arg, " ")
	if name == "" {
		if extended {
			c.protocolError(501, "5.5.4", "Syntax: EHLO hostname")
		} else {
			c.protocolError(501, "5.5.4", "Syntax: HELO hostname")
		}
		return
	}
	c.helo = name
	c.tx = nil
	if c.client != nil {
		c.client.Helo = name
		c.client.Protocol = "SMTP"
		if extended {
			c.client.Protocol = "ESMTP"
		}
	}
	if !extended {
		c.reply(250, "", c.host)
		return
	}
	size := "SIZE"
	if c.s.MaxMessageSize > 0 {
		size += " " + strconv.FormatInt(c.s.MaxMessageSize, 10)
	}
	c.reply(250, "", c.host, "PIPELINING", size, "8BITMIME", "DSN", "ENHANCEDSTATUSCODES")
}

func (c *smtpSession) mail(arg string) {
	if c.tx != nil {
		c.protocolError(503, "5.5.1", "Error: nested MAIL command")
		return
	}
	path, params, ok := cutPath(arg, "FROM:")
	if !ok {
		c.protocolError(501, "5.5.4", "Syntax: MAIL FROM:<address>")
		return
	}
	if path != "" {
		if _, err := c.s.envelopeSender(&Options{Sender: path, SenderSet: true}); err != nil || !exactAddress(path) {
			c.protocolError(501, "5.1.7", "Bad sender address syntax")
			return
		}
	}
	if sender, err := c.s.envelopeSender(&Options{Sender: path, SenderSet: true}); err == nil {
		if err := c.s.allowSender(&Options{SenderSet: true, Client: c.client}, sender); err != nil {
			c.reply(553, "5.7.1", "Sender address rejected: "+err.Error())
			return
		}
	}
	tx := &transaction{from: path}
	parsed, ok := c.esmtpParams(params)
	if !ok {
		return
	}
	for _, p := range parsed {
		key, val, hasVal := p.key, p.val, p.hasVal
		switch {
		case key == "SIZE" && hasVal:
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				c.protocolError(501, "5.5.4", "Bad SIZE parameter")
				return
			}
			if c.s.MaxMessageSize > 0 && n > c.s.MaxMessageSize {
				c.reply(552, "5.3.4", fmt.Sprintf("Message size exceeds fixed limit of %d bytes", c.s.MaxMessageSize))
				return
			}
		case key == "BODY" && hasVal:
			switch v := strings.ToUpper(val); v {
			case "7BIT", "8BITMIME":
				tx.body = v
			default:
				c.protocolError(501, "5.5.4", "Unsupported BODY parameter (use 7BIT or 8BITMIME)")
				return
			}
		case key == "RET" && hasVal:
			switch v := strings.ToUpper(val); v {
			case "FULL", "HDRS":
				tx.ret = v
			default:
				c.protocolError(501, "5.5.4", "Bad RET parameter (use FULL or HDRS)")
				return
			}
		case key == "ENVID" && hasVal:
			v, err := decodeXtext(val)
			if err != nil || !validEnvID(v) {
				c.protocolError(501, "5.5.4", "Bad ENVID parameter")
				return
			}
			tx.envID = v
		case key == "AUTH" && hasVal:
			// RFC 4954: accepted and ignored by a server without AUTH.
		default:
			c.protocolError(555, "5.5.4", "Unsupported option: "+p.raw)
			return
		}
	}
	if err := c.s.checkFreeSpace(); err != nil {
		c.reply(452, "4.3.1", "Insufficient system storage: "+err.Error())
		return
	}
	c.tx = tx
	c.reply(250, "2.1.0", "Ok")
}

func (c *smtpSession) rcpt(arg string) {
	if c.tx == nil {
		c.protocolError(503, "5.5.1", "Error: need MAIL command")
		return
	}
	path, params, ok := cutPath(arg, "TO:")
	if !ok {
		c.protocolError(501, "5.5.4", "Syntax: RCPT TO:<address>")
		return
	}
	if strings.HasPrefix(path, "-") {
		c.protocolError(501, "5.1.3", "Bad recipient address: begins with '-'")
		return
	}
	rs, err := c.s.argRecipients([]string{path})
	if err != nil || len(rs) != 1 || !exactAddress(path) {
		c.protocolError(501, "5.1.3", "Bad recipient address syntax")
		return
	}
	if c.s.Rewrite != nil {
		if _, nowhere := c.s.Rewrite.Recipients(rs); len(nowhere) > 0 {
			c.reply(550, "5.1.1", "Recipient address rejected: "+nowhere[0])
			return
		}
	}
	var notify []string
	parsed, ok := c.esmtpParams(params)
	if !ok {
		return
	}
	for _, p := range parsed {
		key, val, hasVal := p.key, p.val, p.hasVal
		switch {
		case key == "NOTIFY" && hasVal:
			n, err := parseNotify(val)
			if err != nil {
				c.protocolError(501, "5.5.4", "Bad NOTIFY parameter (use NEVER, or some of SUCCESS, DELAY, FAILURE)")
				return
			}
			notify = n
		case key == "ORCPT" && hasVal:
			// Accepted; the queue keeps no original recipient of its own.
			typ, _, ok := strings.Cut(val, ";")
			if !ok || typ == "" {
				c.protocolError(501, "5.5.4", "Bad ORCPT parameter")
				return
			}
		default:
			c.protocolError(555, "5.5.4", "Unsupported option: "+p.raw)
			return
		}
	}
	if len(c.tx.rcpts) >= maxRecipients {
		c.reply(452, "4.5.3", "Error: too many recipients")
		return
	}
	c.tx.rcpts = append(c.tx.rcpts, path)
	c.tx.notify = append(c.tx.notify, notify)
	c.reply(250, "2.1.5", "Ok")
}

// data reads a message and queues it. The 250 goes out only after Enqueue
// returned: the message is then durable.
func (c *smtpSession) data(arg string) error {
	switch {
	case arg != "":
		c.protocolError(501, "5.5.4", "Syntax: DATA")
		return nil
	case c.tx == nil:
		c.protocolError(503, "5.5.1", "Error: need MAIL command")
		return nil
	case len(c.tx.rcpts) == 0:
		c.protocolError(503, "5.5.1", "Error: need RCPT command")
		return nil
	}
	tx := c.tx
	c.tx = nil
	c.reply(354, "", "End data with <CR><LF>.<CR><LF>")
	if err := c.w.Flush(); err != nil {
		return err
	}
	o := &Options{
		Mode:       ModeDeliver,
		SenderSet:  true,
		Sender:     tx.from,
		Recipients: tx.rcpts,
		IgnoreDots: true, // the end of DATA is the dotReader's EOF
		FullName:   c.srv.FullName,
		Notify:     mergeNotify(tx.notify),
		Ret:        tx.ret,
		EnvID:      tx.envID,
		Body:       tx.body,
	}
	if c.client != nil {
		cl := *c.client
		o.Client = &cl
	}
	dr := &dotReader{r: c.r, atLineStart: true}
	id, err := c.s.Enqueue(o, dr)
	if err == nil || id != "" {
		// (With an ID the message is queued even if a recipient bounces.)
		// Enqueue read to the end; make sure of it all the same.
		_, err = io.Copy(io.Discard, dr)
		if dr.err == nil {
			c.reply(250, "2.0.0", "Ok: queued as "+id)
			return nil
		}
	} else if dr.err == nil {
		io.Copy(io.Discard, dr) // the rest of a refused message
	}
	if dr.err != nil {
		// The client went away or fell silent during DATA: nothing was
		// queued (Enqueue leaves nothing behind on error).
		return c.readFailed(dr.err)
	}
	code, enh, text := c.enqueueReply(err, dr.n)
	c.reply(code, enh, text)
	return nil
}

// enqueueReply maps an error of Enqueue to a reply. Only what the client
// can fix is permanent; relay's own failures are 451, never 5xx.
func (c *smtpSession) enqueueReply(err error, n int64) (int, string, string) {
	switch sysexits.Code(err, sysexits.TempFail) {
	case sysexits.DataErr:
		if c.s.MaxMessageSize > 0 && n > c.s.MaxMessageSize {
			return 552, "5.3.4", fmt.Sprintf("Message size exceeds fixed limit of %d bytes", c.s.MaxMessageSize)
		}
	case sysexits.Usage:
		// Addresses are checked at MAIL and RCPT; this is a safety net.
		return 553, "5.1.3", "Error: " + err.Error()
	}
	return 451, "4.3.0", "Error: queue file write error: " + err.Error()
}

// cutPath parses "FROM:<path> params" (prefix is "FROM:" or "TO:",
// matched without regard to case): it returns the mailbox without <> and
// an obsolete source route, and the parameters. Postfix's leniency is kept:
// spaces after the colon, and a path without <> when it has no spaces.
func cutPath(arg, prefix string) (path string, params []string, ok bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, false
	}
	s := strings.TrimLeft(arg[len(prefix):], " ")
	var rest string
	if strings.HasPrefix(s, "<") {
		end := closingAngle(s)
		if end < 0 {
			return "", nil, false
		}
		path, rest = s[1:end], s[end+1:]
		if rest != "" && rest[0] != ' ' {
			return "", nil, false
		}
	} else {
		path, rest, _ = strings.Cut(s, " ")
		if path == "" {
			return "", nil, false
		}
	}
	if strings.HasPrefix(path, "@") { // <@a,@b:user@c>
		i := strings.IndexByte(path, ':')
		if i < 0 {
			return "", nil, false
		}
		path = path[i+1:]
	}
	return path, strings.Fields(rest), true
}

// closingAngle returns the index of the '>' that closes the '<' at s[0],
// skipping quoted strings, or -1.
func closingAngle(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == '>':
			return i
		}
	}
	return -1
}

// exactAddress reports whether a (a path from MAIL or RCPT) is one bare
// mailbox: no display name, comment or second address that the lenient
// header parser would have read around it.
func exactAddress(a string) bool {
	if a == "" || strings.ContainsAny(a, "\r\n\x00") {
		return false
	}
	list, err := mailaddr.ParseList(a)
	return err == nil && len(list) == 1 && list[0].Addr == a
}

// mergeNotify turns the NOTIFY of each recipient into the one NOTIFY the
// queue keeps per message: the common value when all recipients agree;
// otherwise the union of what they asked for (a recipient without NOTIFY
// counts as DELAY,FAILURE, the usual default), so nobody loses a
// notification they asked for.
func mergeNotify(per [][]string) []string {
	same := true
	for _, n := range per[1:] {
		if !slices.Equal(n, per[0]) {
			same = false
			break
		}
	}
	if same {
		return per[0]
	}
	want := map[string]bool{}
	for _, n := range per {
		if n == nil {
			n = []string{"DELAY", "FAILURE"}
		}
		for _, v := range n {
			want[v] = true
		}
	}
	var out []string
	for _, v := range []string{"SUCCESS", "DELAY", "FAILURE"} {
		if want[v] {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return []string{"NEVER"}
	}
	return out
}

// decodeXtext decodes RFC 3461 xtext ("+2B" is '+').
func decodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", errors.New("truncated xtext")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil || strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] {
				return "", errors.New("bad xtext")
			}
			b.WriteByte(byte(v))
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", errors.New("bad xtext")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// dotReader yields the message of DATA: up to the line holding a lone dot
// (CRLF or, leniently, LF), with the leading dot of dot-stuffed lines
// removed. Line ends are kept as sent; lines of any length pass. err keeps
// the first I/O error of the connection: the message is then incomplete.
type dotReader struct {
	r           *bufio.Reader
	pending     []byte
	atLineStart bool
	done        bool
	err         error
	n           int64 // bytes yielded
}

func (d *dotReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		switch {
		case d.done:
			return 0, io.EOF
		case d.err != nil:
			return 0, d.err
		}
		line, err := d.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil // a long line: the rest comes with the next slice
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			d.err = err
			return 0, err
		}
		if d.atLineStart && len(line) > 0 && line[0] == '.' {
			if string(line) == ".\r\n" || string(line) == ".\n" {
				d.done = true
				return 0, io.EOF
			}
			line = line[1:]
		}
		d.atLineStart = line[len(line)-1] == '\n'
		d.pending = line
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	d.n += int64(n)
	return n, nil
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

// NewStdioConn makes a net.Conn of a reader (the client's commands) and a
// writer (the replies), for sendmail -bs. Read deadlines work whatever in
// is (a goroutine reads it ahead by one chunk; it stays blocked in in.Read
// after Close until in delivers or ends); write deadlines are accepted and
// not enforced. Close closes neither in nor out.
func NewStdioConn(in io.Reader, out io.Writer) net.Conn {
	c := &stdioConn{out: out, chunks: make(chan chunk), closed: make(chan struct{})}
	go c.readLoop(in)
	return c
}

type stdioConn struct {
	out    io.Writer
	chunks chan chunk
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time

	// Used by Read only (one reader at a time, as net.Conn users do).
	pending []byte
	readErr error
}

type chunk struct {
	b   []byte
	err error
}

func (c *stdioConn) readLoop(in io.Reader) {
	for {
		buf := make([]byte, 32<<10)
		n, err := in.Read(buf)
		if n == 0 && err == nil {
			continue
		}
		select {
		case c.chunks <- chunk{buf[:n], err}:
		case <-c.closed:
			return
		}
		if err != nil {
			return
		}
	}
}

func (c *stdioConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 && c.readErr == nil {
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		default:
		}
		c.mu.Lock()
		deadline := c.deadline
		c.mu.Unlock()
		var timer <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timer = t.C
		}
		select {
		case ch := <-c.chunks:
			c.pending, c.readErr = ch.b, ch.err
		case <-timer:
			return 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return 0, c.readErr
}

func (c *stdioConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.out.Write(p)
}

func (c *stdioConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *stdioConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *stdioConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *stdioConn) SetWriteDeadline(time.Time) error { return nil }

func (c *stdioConn) LocalAddr() net.Addr  { return stdioAddr("stdout") }
func (c *stdioConn) RemoteAddr() net.Addr { return stdioAddr("stdin") }

type stdioAddr string

func (a stdioAddr) Network() string { return "stdio" }
func (a stdioAddr) String() string  { return string(a) }

// Client is the network peer of an SMTP session, as recorded with each
// message it sends.
type Client struct {
	Addr     netip.AddrPort
	Helo     string // the name given in HELO or EHLO; "" before either
	Protocol string // "ESMTP" after EHLO, else "SMTP"
}

// String is the client in log lines: [IP]:port.
func (c *Client) String() string {
	return "[" + c.Addr.Addr().String() + "]:" + strconv.Itoa(int(c.Addr.Port()))
}

// receivedField is the Received field of a message from c, as Postfix's
// smtpd writes it (without a DNS name: relay looks none up):
//
//	Received: from app.example ([127.0.0.1])
//		by host (relay) with ESMTP id 1K0WJNDJ9DXBQP5;
//		Mon, 23 Nov 2026 01:02:03 +0000
//
// An IPv6 client is an RFC 5321 address literal, [IPv6:::1]. The HELO name
// is the client's word: anything but printable ASCII, parentheses and
// semicolons is replaced with '?', and it is cut at 255 bytes.
func (c *Client) receivedField(host, id string, now time.Time, eol string) string {
	ip := c.Addr.Addr()
	lit := "[" + ip.String() + "]"
	if ip.Is6() {
		lit = "[IPv6:" + ip.String() + "]"
	}
	helo := c.Helo
	if len(helo) > 255 {
		helo = helo[:255]
	}
	helo = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' || r == '(' || r == ')' || r == ';' {
			return '?'
		}
		return r
	}, helo)
	if helo == "" {
		helo = "unknown"
	}
	proto := c.Protocol
	if proto == "" {
		proto = "SMTP"
	}
	return fmt.Sprintf("Received: from %s (%s)%s\tby %s (relay) with %s id %s;%s\t%s%s",
		helo, lit, eol, host, proto, id, eol, now.Format(time.RFC1123Z), eol)
}

// esmtpParam is one KEY[=VALUE] parameter of MAIL or RCPT.
type esmtpParam struct {
	raw, key, val string
	hasVal        bool
}

// esmtpParams splits MAIL or RCPT parameters, keys in upper case; a key
// given twice is answered with 501 (ok false).
func (c *smtpSession) esmtpParams(params []string) ([]esmtpParam, bool) {
	out := make([]esmtpParam, 0, len(params))
	seen := map[string]bool{}
	for _, p := range params {
		key, val, hasVal := strings.Cut(p, "=")
		key = strings.ToUpper(key)
		if seen[key] {
			c.protocolError(501, "5.5.4", "Error: "+key+" given twice")
			return nil, false
		}
		seen[key] = true
		out = append(out, esmtpParam{p, key, val, hasVal})
	}
	return out, true
}
