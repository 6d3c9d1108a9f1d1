package bounce

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"time"

	"github.com/relaymail/relay/mailaddr"
)

// Kind of report.
type Kind int

const (
	Failure Kind = iota // recipients failed permanently (Action: failed)
	Delay               // recipients still being retried after warn_after (Action: delayed)
)

func (k Kind) String() string {
	switch k {
	case Failure:
		return "failure"
	case Delay:
		return "delay"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Recipient is one recipient a report is about.
type Recipient struct {
	Address     string // final recipient (rfc822;…)
	Original    string // original recipient as submitted, if different ("" = none)
	Status      string // enhanced status code, e.g. "5.1.1" (Failure) or "4.4.1" (Delay)
	Diagnostic  string // the remote server's full reply, one line ("" when none: connection failures)
	RemoteMTA   string // host name of the smarthost that answered ("" if none)
	Explanation string // a plain-words sentence: what it means and how to fix it (may be ""); human-readable part only
	LastAttempt time.Time
}

// Report describes a delivery status notification to build.
type Report struct {
	Kind            Kind
	ReportingMTA    string    // our host name (Reporting-MTA: dns; …)
	From            string    // From header address of the report, e.g. "MAILER-DAEMON@server1.example.com"
	FromName        string    // e.g. "Mail Delivery System"
	To              string    // the original envelope sender: the report's recipient
	QueueID         string    // the original message's queue ID (X-Relay-Queue-ID)
	EnvID           string    // ORIGINAL-ENVELOPE-ID when the submitter gave -V
	Arrival         time.Time // Arrival-Date (omitted when zero)
	Recipients      []Recipient
	Ret             string    // "FULL", "HDRS" or "" (the submitter's -R)
	FullLimit       int64     // with Ret == "", include the whole message when OriginalSize is at most this (<= 0: headers only)
	Original        io.Reader // the original message as queued (header + body, LF or CRLF line ends); nil: no third part
	OriginalSize    int64     // must be accurate: it decides, with FullLimit, whether the body is quoted
	Now             time.Time // Date of the report (zero: time.Now())
	MessageIDDomain string    // for the report's own Message-ID
	RetryUntil      time.Time // Delay reports: Will-Retry-Until (omitted when zero)
}

// Errors of Build about the report itself.
var (
	ErrNoRecipients = errors.New("bounce: a report needs at least one recipient to report on")
	ErrNoTo         = errors.New("bounce: a report needs an address to go to (the null sender is never sent a report)")
)

// Subjects of the reports.
const (
	FailureSubject = "Undelivered Mail Returned to Sender"
	DelaySubject   = "Delayed Mail (still being retried)"
)

// quoteMode is what of the original message a report carries.
type quoteMode int

const (
	quoteNone    quoteMode = iota // no third part
	quoteHeaders                  // text/rfc822-headers
	quoteFull                     // message/rfc822
)

func (r *Report) quote() quoteMode {
	if r.Original == nil {
		return quoteNone
	}
	if r.Kind == Delay {
		return quoteHeaders
	}
	switch strings.ToUpper(strings.TrimSpace(r.Ret)) {
	case "FULL":
		return quoteFull
	case "HDRS":
		return quoteHeaders
	}
	if r.FullLimit > 0 && r.OriginalSize >= 0 && r.OriginalSize <= r.FullLimit {
		return quoteFull
	}
	return quoteHeaders
}

// Build writes the report as a complete RFC 5322 message with CRLF line
// ends: a multipart/report; report-type=delivery-status with a text/plain
// part for people, a message/delivery-status part, and the original
// message (message/rfc822) or its header (text/rfc822-headers), as
// Report.Ret, FullLimit and Kind decide (a delay warning quotes the header
// only).
//
// The original is streamed, never held in memory. Its lines are passed on
// unchanged except that every line end (LF, CRLF or a bare CR) becomes CRLF
// and a last line without one gets one; no dot-stuffing (the SMTP client's
// job). When the original is an io.Seeker (a file, io.SectionReader), it
// is read once more beforehand to label the quoted part "7bit" or "8bit"
// exactly (the label must precede the content); otherwise the part is
// labelled "8bit", which is also correct for 7-bit data.
//
// eightBit reports whether the written report contains any octet above
// 127 (an 8-bit original, or a non-ASCII address in the To header): its
// sender must then use BODY=8BITMIME (and SMTPUTF8 for a non-ASCII To).
// The report's own text parts are 7-bit: the human-readable part is
// quoted-printable when needed, and non-ASCII text in the delivery-status
// fields is encoded (RFC 2047 words; RFC 6533 utf-8 address type).
//
// Text from the report's fields never creates a header or status field
// line: CR, LF and other control characters become spaces.
func Build(w io.Writer, r *Report) (eightBit bool, err error) {
	if r == nil || len(r.Recipients) == 0 {
		return false, ErrNoRecipients
	}
	to := cleanLine(r.To)
	if to == "" {
		return false, ErrNoTo
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	mode := r.quote()
	label8 := false
	if mode != quoteNone {
		if label8, err = may8bit(r.Original, mode == quoteHeaders); err != nil {
			return false, err
		}
	}

	ew := &eightBitWriter{w: w}
	bw := bufio.NewWriterSize(ew, 32<<10)
	boundary := "=_relay_" + rand.Text()
	mta := cleanLine(r.ReportingMTA)
	if mta == "" {
		mta = "localhost"
	}

	// Top-level header.
	from := cleanLine(r.From)
	if from == "" {
		from = "MAILER-DAEMON@" + mta
	}
	subject := FailureSubject
	if r.Kind == Delay {
		subject = DelaySubject
	}
	writeField(bw, "From", mailaddr.FormatMailbox(cleanLine(r.FromName), from))
	writeField(bw, "To", mailaddr.FormatMailbox("", to))
	writeField(bw, "Subject", subject)
	writeField(bw, "Date", now.Format(time.RFC1123Z))
	writeField(bw, "Message-ID", messageID(now, r.MessageIDDomain, mta))
	writeField(bw, "Auto-Submitted", "auto-replied")
	writeField(bw, "MIME-Version", "1.0")
	bw.WriteString("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n")
	if label8 {
		// A multipart's encoding must cover its parts' (RFC 2045 6.4).
		writeField(bw, "Content-Transfer-Encoding", "8bit")
	}
	if id := cleanLine(r.QueueID); id != "" {
		writeField(bw, "X-Relay-Queue-ID", id)
	}
	bw.WriteString("\r\nThis is a MIME-encapsulated message.\r\n")

	// Part 1: for people.
	bw.WriteString("\r\n--" + boundary + "\r\n")
	bw.WriteString("Content-Description: Notification\r\n")
	bw.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	text := r.humanText(mta, mode)
	if needsQP(text) {
		bw.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		qw := quotedprintable.NewWriter(bw)
		io.WriteString(qw, text)
		qw.Close()
		if !strings.HasSuffix(text, "\n") {
			bw.WriteString("\r\n")
		}
	} else {
		bw.WriteString("\r\n")
		bw.WriteString(strings.ReplaceAll(text, "\n", "\r\n"))
	}

	// Part 2: for programs.
	bw.WriteString("\r\n--" + boundary + "\r\n")
	bw.WriteString("Content-Description: Delivery report\r\n")
	bw.WriteString("Content-Type: message/delivery-status\r\n\r\n")
	r.writeStatus(bw, mta)

	// Part 3: the original, or its header.
	if mode != quoteNone {
		bw.WriteString("\r\n--" + boundary + "\r\n")
		if mode == quoteFull {
			bw.WriteString("Content-Description: Undelivered Message\r\n")
			bw.WriteString("Content-Type: message/rfc822\r\n")
		} else {
			bw.WriteString("Content-Description: Message Headers\r\n")
			bw.WriteString("Content-Type: text/rfc822-headers\r\n")
		}
		if label8 {
			bw.WriteString("Content-Transfer-Encoding: 8bit\r\n")
		}
		bw.WriteString("\r\n")
		lc := &lineCopier{w: bw, headersOnly: mode == quoteHeaders}
		if err := lc.copyFrom(r.Original); err != nil {
			return false, fmt.Errorf("bounce: quoting the original message: %w", err)
		}
	}
	bw.WriteString("\r\n--" + boundary + "--\r\n")
	if err := bw.Flush(); err != nil {
		return false, fmt.Errorf("bounce: writing the report: %w", err)
	}
	return ew.seen, nil
}

// writeStatus writes the message/delivery-status content (RFC 3464 2.1).
func (r *Report) writeStatus(bw *bufio.Writer, mta string) {
	writeField(bw, "Reporting-MTA", "dns; "+asciiText(mta))
	if id := cleanLine(r.QueueID); id != "" {
		writeField(bw, "X-Relay-Queue-ID", asciiText(id))
	}
	if id := cleanLine(r.EnvID); id != "" {
		writeField(bw, "Original-Envelope-Id", asciiText(id))
	}
	if !r.Arrival.IsZero() {
		writeField(bw, "Arrival-Date", r.Arrival.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		bw.WriteString("\r\n")
		if o := cleanLine(rc.Original); o != "" {
			writeField(bw, "Original-Recipient", typedAddress(o))
		}
		writeField(bw, "Final-Recipient", typedAddress(cleanLine(rc.Address)))
		if r.Kind == Delay {
			writeField(bw, "Action", "delayed")
		} else {
			writeField(bw, "Action", "failed")
		}
		writeField(bw, "Status", r.status(rc))
		if h := cleanLine(rc.RemoteMTA); h != "" {
			writeField(bw, "Remote-MTA", "dns; "+asciiText(h))
		}
		if d := cleanLine(rc.Diagnostic); d != "" {
			writeField(bw, "Diagnostic-Code", "smtp; "+asciiText(d))
		}
		if !rc.LastAttempt.IsZero() {
			writeField(bw, "Last-Attempt-Date", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if r.Kind == Delay && !r.RetryUntil.IsZero() {
			writeField(bw, "Will-Retry-Until", r.RetryUntil.Format(time.RFC1123Z))
		}
	}
}

// status is rc's RFC 3463 status code, or a generic one of the report's
// class when rc has none or a malformed one.
func (r *Report) status(rc Recipient) string {
	s := strings.TrimSpace(rc.Status)
	if validStatus(s) {
		return s
	}
	if r.Kind == Delay {
		return "4.0.0"
	}
	return "5.0.0"
}

// validStatus reports whether s is class.subject.detail (RFC 3463: class
// 2, 4 or 5, then 1-3 digits, then 1-3 digits).
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// messageID makes a unique Message-ID for the report.
func messageID(now time.Time, domain, mta string) string {
	d := cleanDomain(domain)
	if d == "" {
		d = cleanDomain(mta)
	}
	if d == "" {
		d = "localhost"
	}
	return "<" + now.UTC().Format("20060102150405") + "." + rand.Text() + "@" + d + ">"
}

// cleanDomain keeps the characters a dot-atom domain may hold.
func cleanDomain(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' {
			b.WriteByte(c)
		}
	}
	return strings.Trim(b.String(), ".")
}

// eightBitWriter passes writes on, noting whether any octet was above 127.
type eightBitWriter struct {
	w    io.Writer
	seen bool
}

func (e *eightBitWriter) Write(p []byte) (int, error) {
	if !e.seen && has8bit(p) {
		e.seen = true
	}
	return e.w.Write(p)
}

func has8bit(p []byte) bool {
	for _, c := range p {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// errFound stops the 8-bit scan of the original at the first 8-bit octet.
var errFound = errors.New("8-bit data found")

type detect8 struct{}

func (detect8) Write(p []byte) (int, error) {
	if has8bit(p) {
		return 0, errFound
	}
	return len(p), nil
}

// may8bit reports whether the part of src that will be quoted may contain
// 8-bit data: exactly, by reading it and seeking back, when src is an
// io.Seeker; "yes" when it cannot tell.
func may8bit(src io.Reader, headersOnly bool) (bool, error) {
	s, ok := src.(io.Seeker)
	if !ok {
		return true, nil
	}
	pos, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return true, nil // a pipe, say: cannot read it twice
	}
	lc := &lineCopier{w: detect8{}, headersOnly: headersOnly}
	err = lc.copyFrom(src)
	found := errors.Is(err, errFound)
	if err != nil && !found {
		return false, fmt.Errorf("bounce: reading the original message: %w", err)
	}
	if _, err := s.Seek(pos, io.SeekStart); err != nil {
		return false, fmt.Errorf("bounce: rewinding the original message: %w", err)
	}
	return found, nil
}

// lineCopier copies a message, turning every line end (LF, CRLF, bare CR)
// into CRLF and ending an unterminated last line; with headersOnly it stops
// at the first empty line (which it does not copy).
type lineCopier struct {
	w           io.Writer
	headersOnly bool
	pendingCR   bool // the last octet seen was a CR: a line end, maybe with an LF to come
	midLine     bool // octets of the current line were written
	done        bool
}

func (c *lineCopier) copyFrom(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for !c.done {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := c.write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return c.finish()
}

func (c *lineCopier) write(p []byte) error {
	for len(p) > 0 && !c.done {
		if c.pendingCR {
			c.pendingCR = false
			if p[0] == '\n' {
				p = p[1:]
			}
			if err := c.endLine(); err != nil {
				return err
			}
			continue
		}
		i := indexLineEnd(p)
		if i < 0 {
			return c.text(p)
		}
		if i > 0 {
			if err := c.text(p[:i]); err != nil {
				return err
			}
		}
		if p[i] == '\r' {
			c.pendingCR = true
			p = p[i+1:]
			continue
		}
		p = p[i+1:]
		if err := c.endLine(); err != nil {
			return err
		}
	}
	return nil
}

func indexLineEnd(p []byte) int {
	for i, c := range p {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

func (c *lineCopier) text(p []byte) error {
	c.midLine = true
	_, err := c.w.Write(p)
	return err
}

func (c *lineCopier) endLine() error {
	if c.headersOnly && !c.midLine {
		c.done = true // the empty line after the header
		return nil
	}
	c.midLine = false
	_, err := io.WriteString(c.w, "\r\n")
	return err
}

func (c *lineCopier) finish() error {
	if c.done {
		return nil
	}
	if c.pendingCR {
		c.pendingCR = false
		if err := c.endLine(); err != nil || c.done {
			return err
		}
	}
	if c.midLine {
		return c.endLine()
	}
	return nil
}
