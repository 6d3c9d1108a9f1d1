package relay

// relay probe: connect to a smarthost the way a delivery does, and report
// each step (route, TCP, TLS, certificate, EHLO, AUTH, optionally a test
// message) so that the person at the terminal learns what works and, when
// something does not, why.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailaddr"
)

// ProbeOptions are the parts of a probe that do not come from the
// smarthost's configuration.
type ProbeOptions struct {
	HeloName string    // our name in EHLO
	Domain   string    // the mail domain: qualifies the test message's sender and Message-ID
	Hostname string    // this host's name, in the test message's Subject
	SendTo   string    // when set, send a test message to this address
	Debug    io.Writer // the SMTP dialogue, AUTH redacted (see RedactAuth); nil for none
	Now      func() time.Time
}

// ProbeResult is what a probe found out about one smarthost. Fields after
// the step that failed stay empty.
type ProbeResult struct {
	Smarthost *config.Smarthost
	Route     string        // "direct", or "via socks5://host:port" (credentials masked)
	Addr      string        // the address reached, "ip:port"; "" when none was
	Connect   time.Duration // time the TCP connection took
	// TLS is the protocol version and cipher suite, "TLSv1.3,
	// TLS_AES_128_GCM_SHA256"; "" when TLS was not (or not yet) set up.
	TLS string
	// Cert is the server's leaf certificate, also when it failed
	// verification; CertNote says how it was verified or why not.
	Cert     *x509.Certificate
	CertNote string
	// EHLO holds the capabilities the server announced, in its order;
	// EHLOClear says they are those announced before TLS (STARTTLS did not
	// succeed).
	EHLO      []string
	EHLOClear bool
	// Auth is the mechanisms tried and the login: "SCRAM-SHA-256 as
	// robot@example.test: ok", "CRAM-MD5, then PLAIN as …" after the
	// fallback; without ": ok" when it failed.
	Auth string
	// OAuth, for a smarthost with [smarthost.oauth]: the account, the
	// access token's expiry and whether it was cached or new (never the
	// token).
	OAuth string
	Sent  string // the test message's outcome
	// Step is the step that failed ("connect", "TLS", "AUTH", …) and
	// Failure why; both empty when every step worked.
	Step    string
	Failure *Failure
}

// OK reports whether every step worked.
func (r *ProbeResult) OK() bool { return r.Failure == nil }

// Probe connects to the smarthost as a delivery does (same TLS
// configuration and verification, same refusal to send a password in
// clear), authenticates as a separate step, and sends a test message when
// o.SendTo is set. It never queues anything. The result is complete up to
// the step that failed.
func Probe(ctx context.Context, sh *config.Smarthost, o ProbeOptions) *ProbeResult {
	r := &ProbeResult{Smarthost: sh, Route: "direct"}
	fail := func(step string, f *Failure) *ProbeResult {
		if ctx.Err() != nil && f.Code == 0 {
			// What failed failed because of the stop.
			f = &Failure{Stage: f.Stage, Addr: f.Addr, Err: errProbeStopped}
		}
		r.Step, r.Failure = step, f
		return r
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var dbg io.Writer = io.Discard
	if o.Debug != nil {
		dbg = RedactAuth(o.Debug)
	}

	if sh.Proxy != "" {
		r.Route = "via " + config.MaskProxy(sh.Proxy)
		if p, err := config.ParseProxy(sh.Proxy); err == nil {
			r.Route = "via " + p.String()
		}
	}

	tcfg, err := TLSConfig(sh)
	if err != nil {
		return fail("configuration", &Failure{Stage: StageLocal, Err: err})
	}
	// Keep the certificate the server showed, to describe it also when it
	// fails verification. Chain, name and expiry errors carry it in a
	// *tls.CertificateVerificationError; VerifyConnection sees it after a
	// successful verification and when tls_fingerprint pins it. So no
	// second, unverified handshake is needed: nothing is ever sent over a
	// connection whose certificate failed.
	var peerCerts []*x509.Certificate
	pin := tcfg.VerifyConnection
	tcfg.VerifyConnection = func(cs tls.ConnectionState) error {
		peerCerts = cs.PeerCertificates
		if pin != nil {
			return pin(cs)
		}
		return nil
	}

	start := time.Now()
	raw, via, err := dialSmarthost(ctx, sh)
	if err != nil {
		return fail("connect", &Failure{Stage: StageConnect, Err: err})
	}
	r.Connect = time.Since(start)
	r.Addr = raw.RemoteAddr().String()
	if via != "" {
		r.Addr = net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port)) + " via " + via
	}

	// The EHLO answers are read off the dialogue: go-smtp keeps the
	// capabilities in a map, which loses the server's order. Before
	// STARTTLS the dialogue is tapped off the TCP connection (go-smtp's
	// debug writer is set only after STARTTLS); after it, and without TLS
	// at all, from go-smtp's debug writer.
	clearEHLO, tlsEHLO := &ehloCapture{}, &ehloCapture{}
	conn := raw
	if sh.TLS == "starttls" {
		conn = &startTLSTap{Conn: raw, w: io.MultiWriter(clearEHLO, dbg)}
	}
	// A stop (SIGTERM, Ctrl-C) closes the connection at once, whatever
	// the server does (see idleConn.abort); every wait is bounded by
	// CommandTimeout besides.
	idle := &idleConn{Conn: conn}
	defer context.AfterFunc(ctx, idle.abort)()
	noAuth := *sh
	noAuth.Username = "" // AUTH is the next step, reported on its own
	c, err := handshake(ctx, &noAuth, DialOptions{HeloName: o.HeloName, Debug: io.MultiWriter(tlsEHLO, dbg)}, tcfg, idle)
	r.EHLO = tlsEHLO.Capabilities()
	if r.EHLO == nil && sh.TLS == "starttls" {
		r.EHLO, r.EHLOClear = clearEHLO.Capabilities(), true
	}
	if err != nil {
		raw.Close()
		f := failure(StageConnect, err)
		f.Addr = r.Addr
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			peerCerts = cve.UnverifiedCertificates
		}
		if len(peerCerts) > 0 {
			r.Cert, r.CertNote = peerCerts[0], "NOT verified: "+certHow(sh, tcfg)
		}
		step := "TLS"
		switch f.Stage {
		case StageGreeting:
			step = "greeting"
		case StageEHLO:
			// go-smtp reads the greeting inside Hello: a refusal there
			// (421, 554) is labelled ehlo. The dialogue tells.
			step = "EHLO"
			if !clearEHLO.Sent() && !tlsEHLO.Sent() {
				step = "greeting"
			}
		}
		return fail(step, f)
	}
	c.Host = sh
	defer c.Close()

	if st, ok := c.tlsState(); ok {
		r.TLS = tlsVersionName(st.Version) + ", " + tls.CipherSuiteName(st.CipherSuite)
		if len(st.PeerCertificates) > 0 {
			r.Cert = st.PeerCertificates[0]
		}
		r.CertNote = certHow(sh, tcfg)
		if sh.TLSFingerprint == "" {
			r.CertNote = "verified " + r.CertNote
		}
	}

	if sh.Username == "" {
		r.Auth = "not configured (no username)"
	} else {
		// The mechanisms tried, in order: "PLAIN as robot@…", or
		// "CRAM-MD5, then PLAIN as robot@…" after a fallback.
		tried, err := c.authenticate(ctx, raw.RemoteAddr())
		if errors.Is(err, errAuthRedial) {
			// The server closed the session after refusing the first
			// mechanism: the fallback on a new connection, as Dial does.
			nc, nerr := Dial(ctx, sh, DialOptions{HeloName: o.HeloName, Debug: dbg, Abort: ctx})
			if nerr == nil {
				defer nc.Close()
				c = nc
				tried[len(tried)-1] += " (on a new connection)"
			}
			err = nerr
		}
		who := "as " + sh.Username
		if len(tried) > 0 {
			who = strings.Join(tried, ", then ") + " " + who
		}
		if sh.UsesOAuth() {
			r.OAuth = fmt.Sprintf("account %s (%s, flow %s)", sh.Username, sh.OAuth.Provider, sh.OAuth.Flow)
			if l := c.OAuth; l != nil {
				how := "cached"
				if l.Fresh {
					how = "new from the token endpoint"
				}
				r.OAuth += fmt.Sprintf(": access token valid until %s (%s)", l.Expiry.Local().Format(time.RFC3339), how)
			}
		}
		if err != nil {
			r.Auth = who
			return fail("AUTH", failure(StageAuth, err))
		}
		r.Auth = who + ": ok"
	}

	if o.SendTo != "" {
		id, reply, f := c.sendTestMessage(sh, o)
		if f != nil {
			r.Sent = "to " + o.SendTo + " as <" + id + ">"
			return fail("test message", f)
		}
		r.Sent = "sent to " + o.SendTo + " as <" + id + ">: " + reply
	}
	return r
}

// errProbeStopped is the failure of a probe cut short by a signal.
var errProbeStopped = errors.New("interrupted: relay probe was told to stop")

// certHow says against what the certificate is (or was to be) verified.
func certHow(sh *config.Smarthost, tcfg *tls.Config) string {
	switch {
	case sh.TLSFingerprint != "":
		return "pinned by tls_fingerprint"
	case sh.TLSCAFile != "":
		return "for " + tcfg.ServerName + " against tls_ca_file " + sh.TLSCAFile
	}
	return "for " + tcfg.ServerName + " against the system roots"
}

// probeSender is the test message's envelope sender: envelope_from, else
// the login when it is an address (providers accept only the login's own
// address), else root at the mail domain.
func probeSender(sh *config.Smarthost, domain string) string {
	switch {
	case sh.EnvelopeFrom != "":
		return sh.EnvelopeFrom
	case mailaddr.HasDomain(sh.Username):
		return sh.Username
	}
	return mailaddr.Qualify("root", domain)
}

// sendTestMessage sends one short message over the connection and returns
// its Message-ID and the server's final reply.
func (c *Conn) sendTestMessage(sh *config.Smarthost, o ProbeOptions) (id, reply string, f *Failure) {
	from := probeSender(sh, o.Domain)
	now := o.Now()
	var rnd [6]byte
	rand.Read(rnd[:])
	domain := o.Domain
	if domain == "" {
		domain = "localhost"
	}
	id = fmt.Sprintf("%d.%s.probe@%s", now.Unix(), hex.EncodeToString(rnd[:]), domain)
	host := o.Hostname
	if host == "" {
		host = o.HeloName
	}
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\n", from)
	fmt.Fprintf(&msg, "To: %s\r\n", o.SendTo)
	fmt.Fprintf(&msg, "Subject: relay probe from %s\r\n", host)
	fmt.Fprintf(&msg, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "Message-ID: <%s>\r\n", id)
	msg.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n")
	fmt.Fprintf(&msg, "This is a test message of `relay probe --send-to` on %s,\r\nsent through the smarthost %q (%s:%d) directly, without the queue.\r\n\r\nIf you read this, mail from %s through this smarthost arrives.\r\n",
		host, sh.Name, sh.Host, sh.Port, host)

	if err := c.client.Mail(from, nil); err != nil {
		return id, "", failure(StageMail, err)
	}
	if err := c.client.Rcpt(o.SendTo, nil); err != nil {
		return id, "", failure(StageRcpt, err)
	}
	w, err := c.client.Data()
	if err != nil {
		return id, "", failure(StageData, err)
	}
	if _, err := w.Write(msg.Bytes()); err != nil {
		c.broken = true
		return id, "", failure(StageData, err)
	}
	// As in a delivery, a stop after the dot waits for the reply.
	c.idle.beginDot()
	resp, err := w.CloseWithResponse()
	if c.idle.endDot() {
		c.broken = true
	}
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			c.broken = true
		}
		return id, "", failure(StageData, err)
	}
	return id, "250 " + oneLine(resp.StatusText), nil
}

// Format writes the report of one smarthost, as relay probe prints it.
// explain gives the plain-words explanation of a failure.
func (r *ProbeResult) Format(w io.Writer, explain func(*Failure) string, now time.Time) {
	sh := r.Smarthost
	var b strings.Builder
	line := func(label, value string) {
		for i, l := range strings.Split(strings.TrimRight(value, "\n"), "\n") {
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(&b, "  %-13s %s\n", label, l)
		}
	}
	fmt.Fprintf(&b, "smarthost %q %s (%s)\n", sh.Name, net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port)), sh.TLS)
	failed := func(step, value string) string {
		if r.Step != step {
			return value
		}
		if value != "" {
			value += ": "
		}
		return value + "failed: " + r.Failure.ReplyLine()
	}
	line("route:", failed("route", r.Route))
	switch {
	case r.Step == "route":
	case r.Step == "configuration":
		line("config:", failed(r.Step, ""))
	case r.Step == "connect":
		line("connected:", failed("connect", ""))
	default:
		line("connected:", fmt.Sprintf("%s in %d ms", r.Addr, r.Connect.Milliseconds()))
	}
	switch {
	case r.Step == "TLS":
		line("TLS:", failed("TLS", ""))
	case r.TLS != "":
		line("TLS:", r.TLS)
	case sh.TLS == "none" && r.Addr != "":
		line("TLS:", `none (tls = "none"): everything is sent in clear`)
	}
	if r.Cert != nil {
		line("certificate:", describeCert(r.Cert, r.CertNote, r.Failure != nil && r.Step == "TLS", now))
		sum := sha256.Sum256(r.Cert.Raw)
		line("fingerprint:", "sha256:"+hex.EncodeToString(sum[:]))
	}
	if len(r.EHLO) > 0 {
		s := strings.Join(r.EHLO, " ")
		if r.EHLOClear {
			s += "   (before TLS)"
		}
		line("EHLO:", s)
	} else if r.Step == "EHLO" || r.Step == "greeting" {
		line(r.Step+":", failed(r.Step, ""))
	}
	if r.OAuth != "" {
		line("OAuth:", r.OAuth)
	}
	if r.Auth != "" {
		line("AUTH:", failed("AUTH", r.Auth))
	}
	if r.Sent != "" {
		line("test message:", failed("test message", r.Sent))
	}
	if r.OK() {
		line("result:", "OK")
	} else {
		line("result:", "FAILED at "+r.Step)
		if e := explain(r.Failure); e != "" {
			line("explanation:", wrap(e, 64))
		}
	}
	io.WriteString(w, b.String())
}

// wrap breaks text into lines of at most width bytes where it can.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		switch {
		case n == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// describeCert gives subject, issuer, expiry and verification of a
// certificate on one line.
func describeCert(c *x509.Certificate, note string, failed bool, now time.Time) string {
	var parts []string
	parts = append(parts, "subject "+nameOr(c.Subject.String()), "issuer "+nameOr(c.Issuer.String()))
	days := int(math.Floor(c.NotAfter.Sub(now).Hours() / 24))
	switch {
	case now.After(c.NotAfter):
		parts = append(parts, fmt.Sprintf("EXPIRED %s (%d days ago)", c.NotAfter.UTC().Format(time.DateOnly), -days))
	case now.Before(c.NotBefore):
		parts = append(parts, fmt.Sprintf("NOT YET VALID before %s", c.NotBefore.UTC().Format(time.DateOnly)))
	case days < 1:
		parts = append(parts, fmt.Sprintf("expires %s (in less than a day)", c.NotAfter.UTC().Format(time.DateOnly)))
	default:
		parts = append(parts, fmt.Sprintf("expires %s (%d days)", c.NotAfter.UTC().Format(time.DateOnly), days))
	}
	if failed {
		var names []string
		names = append(names, c.DNSNames...)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) > 0 {
			parts = append(parts, "names "+strings.Join(names, ", "))
		}
	}
	if note != "" {
		parts = append(parts, note)
	}
	return strings.Join(parts, "; ")
}

func nameOr(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

// ---------------------------------------------------------------- EHLO --

// ehloCapture reads an SMTP dialogue and keeps the capabilities of the last
// complete answer to EHLO.
type ehloCapture struct {
	mu      sync.Mutex
	buf     []byte
	inEHLO  bool
	sent    bool // an EHLO (or HELO) was sent
	pending []string
	caps    []string
}

func (e *ehloCapture) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buf = append(e.buf, p...)
	for {
		i := bytes.IndexByte(e.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(e.buf[:i]), "\r")
		e.buf = e.buf[i+1:]
		if code, last, text, ok := replyLine(line); ok {
			if !e.inEHLO {
				continue
			}
			if code != "250" {
				e.inEHLO = false
				continue
			}
			e.pending = append(e.pending, text)
			if last {
				if len(e.pending) > 1 {
					e.caps = append([]string(nil), e.pending[1:]...) // the first line is the server's name
				} else {
					e.caps = []string{}
				}
				e.inEHLO = false
			}
			continue
		}
		if len(line) >= 5 && (strings.EqualFold(line[:5], "EHLO ") || strings.EqualFold(line[:5], "HELO ")) {
			e.inEHLO, e.pending, e.sent = true, nil, true
		}
	}
	if len(e.buf) > 64<<10 {
		e.buf = e.buf[:0] // no SMTP line is that long; this is message data
	}
	return len(p), nil
}

// Sent reports whether an EHLO or HELO was sent.
func (e *ehloCapture) Sent() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent
}

// Capabilities returns the last EHLO answer's keywords; nil when none was
// seen.
func (e *ehloCapture) Capabilities() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.caps
}

// replyLine parses a server reply line "250-TEXT" / "250 TEXT" / "250".
func replyLine(line string) (code string, last bool, text string, ok bool) {
	if len(line) < 3 || !isDigits(line[:3]) {
		return "", false, "", false
	}
	switch {
	case len(line) == 3:
		return line, true, "", true
	case line[3] == ' ':
		return line[:3], true, line[4:], true
	case line[3] == '-':
		return line[:3], false, line[4:], true
	}
	return "", false, "", false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// startTLSTap copies the plain-text dialogue before TLS to w: what is
// read and written up to the server's 220 to STARTTLS. After that the
// bytes are TLS records and go-smtp's debug writer shows the dialogue.
type startTLSTap struct {
	net.Conn
	mu       sync.Mutex
	w        io.Writer // nil once TLS starts
	starting bool      // STARTTLS sent, its reply not complete yet
	reply    []byte
}

func (t *startTLSTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	if t.w != nil {
		t.w.Write(p)
		if len(p) >= 8 && strings.EqualFold(string(p[:8]), "STARTTLS") {
			t.starting, t.reply = true, nil
		}
	}
	t.mu.Unlock()
	return t.Conn.Write(p)
}

func (t *startTLSTap) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil || n == 0 {
		return n, err
	}
	t.w.Write(p[:n])
	if t.starting {
		t.reply = append(t.reply, p[:n]...)
		for {
			i := bytes.IndexByte(t.reply, '\n')
			if i < 0 {
				break
			}
			code, last, _, ok := replyLine(strings.TrimRight(string(t.reply[:i]), "\r"))
			t.reply = t.reply[i+1:]
			if ok && last {
				t.starting = false
				if code == "220" {
					t.w = nil // from here on: TLS
				}
				break
			}
		}
	}
	return n, err
}

// -------------------------------------------------------- RedactAuth --

// RedactAuth returns a writer for an SMTP dialogue (go-smtp's DebugWriter:
// client and server lines interleaved) that passes everything to w except
// the secrets of AUTH: a client line "AUTH MECH initial-response" keeps only
// the mechanism ("AUTH PLAIN ****"), and the line after a 334 challenge
// (the client's answer: a user name, a password, a token) becomes "****".
// It works line by line, so no part of a secret is written before its line
// is complete.
func RedactAuth(w io.Writer) io.Writer {
	return &redactor{w: w}
}

type redactor struct {
	mu       sync.Mutex
	w        io.Writer
	buf      []byte
	answer   bool // the next line answers a 334 challenge
	overlong bool // buf holds only the start of a long sensitive line
	lastCR   bool // the last byte written was a CR
}

// redactMaxLine bounds a line held back; longer ones are passed on in parts
// unless they are sensitive, which are cut short (only their start matters).
const redactMaxLine = 8 << 10

func (r *redactor) Write(p []byte) (int, error) {
	n := len(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		p = p[len(chunk):]
		if !r.overlong {
			r.buf = append(r.buf, chunk...)
		}
		if i < 0 {
			r.lastCR = chunk[len(chunk)-1] == '\r'
			if len(r.buf) > redactMaxLine {
				if r.sensitive(r.buf) {
					r.buf, r.overlong = r.buf[:64], true
				} else if _, err := r.w.Write(r.buf); err != nil {
					r.buf = r.buf[:0]
					return 0, err
				} else {
					r.buf = r.buf[:0]
				}
			}
			continue
		}
		if r.overlong {
			if len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' || len(chunk) == 1 && r.lastCR {
				r.buf = append(r.buf, '\r')
			}
			r.buf = append(r.buf, '\n')
		}
		out := r.redact(r.buf)
		r.buf, r.overlong = r.buf[:0], false
		if _, err := r.w.Write(out); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (r *redactor) sensitive(line []byte) bool {
	return r.answer || isAuthCommand(line)
}

func isAuthCommand(line []byte) bool {
	return len(line) >= 5 && strings.EqualFold(string(line[:5]), "AUTH ")
}

// redact handles one complete line (with its line end).
func (r *redactor) redact(line []byte) []byte {
	body := bytes.TrimRight(line, "\r\n")
	end := line[len(body):]
	if r.answer {
		r.answer = false
		return append([]byte("****"), end...)
	}
	s := string(body)
	if code, last, _, ok := replyLine(s); ok {
		if code == "334" && last {
			r.answer = true
		}
		return append([]byte(nil), line...)
	}
	if isAuthCommand(body) {
		f := strings.Fields(s)
		out := "AUTH"
		if len(f) > 1 {
			out += " " + f[1]
		}
		if len(f) > 2 {
			out += " ****"
		}
		return append([]byte(out), end...)
	}
	return append([]byte(nil), line...)
}
