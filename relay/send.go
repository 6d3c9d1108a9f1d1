package relay

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/relaymail/relay/rewrite"
	"io"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/spool"
	"golang.org/x/net/idna"
)

// Outcome is what one transaction did for each recipient it tried.
type Outcome struct {
	// Results holds one entry per pending recipient, in envelope order.
	Results []RcptResult
	// Reply is the smarthost's answer to the message ("250 2.0.0 Ok:
	// queued as …"), when it accepted it for some recipient (the last
	// one, when a 452 made several transactions).
	Reply string
	// Reencoded names the encodings applied when the message had to be
	// re-encoded for this server ("quoted-printable", "base64" or
	// "quoted-printable+base64"; see encode.go); "" when it went as queued.
	Reencoded string
}

// RcptResult is the outcome for one recipient: Err nil means delivered.
type RcptResult struct {
	Rcpt *spool.Recipient
	Err  *Failure
}

// errReadSpool marks a failure to read the queued message.
var errReadSpool = errors.New("reading the queued message")

// SpillDir is where Send keeps a copy of a message it cannot read twice
// (a rewritten one) and that is over 1 MiB: the file is removed as soon
// as it is created. "" is os.TempDir().
var SpillDir = ""

// Send delivers the message to the pending recipients of env, from the
// envelope sender sender (env.Sender after rewriting), and returns a
// result for each of them, in envelope order. A non-nil error means the
// connection is no longer usable; the results are complete all the same:
// recipients refused before the loss keep their refusal, the others are
// deferred with the error.
//
// Before MAIL FROM, Send reads the message once to see whether it must be
// re-encoded for this server (see encode.go), then checks the server's
// SIZE against the size that goes out (a larger message fails at once
// with 552 5.3.4, as Postfix bounces "message size exceeds fixed limit"
// of its next hop: waiting never makes it fit) and whether an address
// needs SMTPUTF8 (such a recipient, or the whole message for such a
// sender, is deferred when the server does not offer it: the mail waits
// for a smarthost that can carry it).
//
// A 452 to RCPT after some recipients were accepted ("too many
// recipients", RFC 5321 4.5.3.1.10) ends the recipients of this
// transaction: the message goes to those accepted, then a new transaction
// on the same connection carries the rest, until every recipient was
// accepted or refused.
func (c *Conn) Send(env *spool.Envelope, sender string, content io.Reader, size int64) (*Outcome, error) {
	return c.SendTo(env, env.Pending(), sender, content, size)
}

// SendTo is Send to some of the pending recipients of env: those of one
// smarthost, when the message's recipients go to several (a split
// message). The results are about pending only, in its order.
func (c *Conn) SendTo(env *spool.Envelope, pending []*spool.Recipient, sender string, content io.Reader, size int64) (*Outcome, error) {
	out := &Outcome{}
	results := make(map[*spool.Recipient]*Failure, len(pending))
	// finish gives every recipient without an outcome yet the failure f
	// (nil: delivered) and lists the outcomes in envelope order.
	finish := func(f *Failure, connErr error) (*Outcome, error) {
		if f != nil && f.Code == 0 && c.idle.aborted() {
			f = &Failure{Stage: f.Stage, Err: ErrAborted}
			connErr = f
		}
		for _, r := range pending {
			if _, done := results[r]; !done {
				results[r] = f
			}
			out.Results = append(out.Results, RcptResult{r, results[r]})
		}
		return out, connErr
	}
	// failed ends the transaction with err at stage: a reply leaves the
	// connection usable after RSET, no reply leaves it broken.
	failed := func(stage Stage, err error) (*Outcome, error) {
		f := failure(stage, err)
		if f.Code == 0 {
			c.broken = true
			return finish(f, f)
		}
		c.Reset()
		return finish(f, nil)
	}
	// drop ends the session without a word: the message could not be sent
	// whole (never end a DATA half written), or the spool failed.
	drop := func(err error) (*Outcome, error) {
		c.broken = true
		c.client.Close()
		stage := StageData
		if errors.Is(err, errReadSpool) {
			stage = StageLocal
		}
		f := &Failure{Stage: stage, Err: err}
		return finish(f, f)
	}

	src, err := rereadable(content)
	if err != nil {
		return drop(err)
	}
	defer src.Close()
	eightBitOK, _ := c.client.Extension("8BITMIME")
	plan, sendSize, err := prepareMessage(src, size, eightBitOK)
	if uf := (*rewrite.UnfoldableError)(nil); errors.As(err, &uf) {
		// No server may take it as it is, and relay cannot change it
		// (rewrite.FoldHeader); intake refuses such mail now, but it may
		// have been queued before: a bounce that says why.
		return finish(&Failure{Stage: StageData, Code: 554, Enhanced: "5.6.0", Text: uf.Error() + ", so relay did not send the message"}, nil)
	}
	if err != nil {
		return drop(err)
	}
	if plan != nil {
		out.Reencoded = plan.encodings()
	}
	if limit, ok := c.client.MaxMessageSize(); ok && limit > 0 && sendSize > int64(limit) {
		return finish(&Failure{Stage: StageData, Code: 552, Enhanced: "5.3.4",
			Text: fmt.Sprintf("message size %d exceeds size limit %d of the smarthost (SIZE in its EHLO): relay did not send it", sendSize, limit)}, nil)
	}

	utf8OK, _ := c.client.Extension("SMTPUTF8")
	from, fromUTF8 := smtpAddress(sender)
	if fromUTF8 && !utf8OK {
		return finish(&Failure{Stage: StageMail, Err: fmt.Errorf("the sender %s needs SMTPUTF8, which the smarthost does not offer", sender)}, nil)
	}
	type rcptTo struct {
		r    *spool.Recipient
		addr string
	}
	var todo []rcptTo
	needUTF8 := fromUTF8
	for _, r := range pending {
		addr, u := smtpAddress(r.Address)
		if u && !utf8OK {
			results[r] = &Failure{Stage: StageMail, Err: fmt.Errorf("the recipient %s needs SMTPUTF8, which the smarthost does not offer", r.Address)}
			continue
		}
		needUTF8 = needUTF8 || u
		todo = append(todo, rcptTo{r, addr})
	}

	for len(todo) > 0 {
		opts := mailOptions(env, sendSize)
		opts.UTF8 = needUTF8
		c.clean = false
		if err := c.client.Mail(from, opts); err != nil {
			return failed(StageMail, err)
		}
		var accepted []*spool.Recipient
		var next []rcptTo
		for i, t := range todo {
			err := c.client.Rcpt(t.addr, rcptOptions(env, t.r))
			if err == nil {
				accepted = append(accepted, t.r)
				continue
			}
			f := failure(StageRcpt, err)
			if f.Code == 0 {
				return failed(StageRcpt, err)
			}
			if len(accepted) > 0 && tooManyRecipients(f) {
				next = todo[i:]
				break
			}
			results[t.r] = f
		}
		if len(accepted) == 0 {
			c.Reset()
			break // every recipient has its refusal
		}
		w, err := c.client.Data()
		if err != nil {
			return failed(StageData, err)
		}
		if err := src.rewind(); err != nil {
			return drop(err)
		}
		c.idle.startBudget(time.Now().Add(dataBudget(sendSize)))
		if plan != nil {
			_, err = plan.write(w, readTagged{src})
		} else {
			_, err = io.Copy(w, readTagged{src})
		}
		if err != nil && c.idle.overBudget() && !errors.Is(err, errReadSpool) {
			err = fmt.Errorf("the smarthost took the message too slowly: %d octets did not go through within the budget of %v (DATA may take %v plus a second per %d KiB): %w",
				sendSize, dataBudget(sendSize).Round(time.Second), DataBudgetBase, DataMinRate>>10, err)
		}
		c.idle.stopBudget()
		if err != nil {
			// Never end a DATA we could not send whole: drop the
			// connection instead of writing the final dot, so nothing
			// half is delivered.
			return drop(err)
		}
		// From here a stop waits for the reply (DialOptions.Abort): once
		// the dot is out the server has the message, and only its reply
		// tells whether it took it.
		c.idle.beginDot()
		resp, err := w.CloseWithResponse()
		stopped := c.idle.endDot()
		var f *Failure
		if err != nil {
			f = failure(StageData, err)
			if f.Code == 0 {
				c.broken = true
				return finish(f, f)
			}
		} else {
			out.Reply = "250 " + oneLine(resp.StatusText)
		}
		// The reply to the final dot ends the transaction: the next MAIL
		// needs no RSET.
		c.clean, c.lastUsed = true, time.Now()
		for _, r := range accepted {
			results[r] = f
		}
		todo = next
		if stopped {
			// The reply is recorded; the recipients of a next
			// transaction stay queued as they were.
			c.broken = true
			f := &Failure{Stage: StageMail, Err: ErrAborted}
			return finish(f, f)
		}
	}
	return finish(nil, nil)
}

// tooManyRecipients reports whether a refusal at RCPT says that the
// transaction holds as many recipients as the server takes (RFC 5321
// 4.5.3.1.10: 452, or 552 from older servers), rather than something
// about this recipient.
func tooManyRecipients(f *Failure) bool {
	switch {
	case f.Code == 452:
		return true
	case f.Code == 552 || f.Code/100 == 4:
		return f.Enhanced == "4.5.3" || f.Enhanced == "5.5.3" || strings.Contains(strings.ToLower(f.Text), "too many recipients")
	}
	return false
}

// smtpAddress returns addr as it goes into MAIL FROM or RCPT TO, a
// non-ASCII domain written as A-labels (punycode), and whether it still
// needs SMTPUTF8 (a local part that is not ASCII; then addr is returned
// unchanged).
func smtpAddress(addr string) (string, bool) {
	if isASCII(addr) {
		return addr, false
	}
	i := strings.LastIndexByte(addr, '@')
	if i < 0 || !isASCII(addr[:i]) {
		return addr, true
	}
	domain, err := idna.Lookup.ToASCII(addr[i+1:])
	if err != nil {
		return addr, true
	}
	return addr[:i+1] + domain, false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// prepareMessage decides how the message goes out: as it is (plan nil)
// or re-encoded, and its size then. It leaves src anywhere.
func prepareMessage(src *rereader, size int64, eightBitOK bool) (*encodePlan, int64, error) {
	if err := src.rewind(); err != nil {
		return nil, 0, err
	}
	sc, err := scanMessage(readTagged{src})
	if err != nil {
		return nil, 0, err
	}
	if !sc.LongLine && (eightBitOK || !sc.EightBit) {
		return nil, size, nil
	}
	if err := src.rewind(); err != nil {
		return nil, 0, err
	}
	plan, err := planEncoding(readTagged{src}, eightBitOK)
	if err != nil || plan == nil {
		return nil, size, err
	}
	if err := src.rewind(); err != nil {
		return nil, 0, err
	}
	n, err := plan.write(io.Discard, readTagged{src})
	if err != nil {
		return nil, 0, err
	}
	return plan, n, nil
}

// rereader is the message, readable again from its start.
type rereader struct {
	io.ReadSeeker
	start int64
	file  *os.File // a spill file to close, or nil
}

func (r *rereader) rewind() error {
	if _, err := r.Seek(r.start, io.SeekStart); err != nil {
		return fmt.Errorf("%w: %w", errReadSpool, err)
	}
	return nil
}

func (r *rereader) Close() error {
	if r.file != nil {
		return r.file.Close()
	}
	return nil
}

// rereadable makes content readable more than once: as it is when it can
// seek (the spool file), else in memory up to 1 MiB, else through a
// removed temporary file in SpillDir.
func rereadable(content io.Reader) (*rereader, error) {
	if rs, ok := content.(io.ReadSeeker); ok {
		pos, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			return &rereader{ReadSeeker: rs, start: pos}, nil
		}
	}
	const inMemory = 1 << 20
	buf, err := io.ReadAll(io.LimitReader(readTagged{content}, inMemory+1))
	if err != nil {
		return nil, err
	}
	if len(buf) <= inMemory {
		return &rereader{ReadSeeker: bytes.NewReader(buf)}, nil
	}
	f, err := os.CreateTemp(SpillDir, "relay-send-*")
	if err != nil {
		return nil, fmt.Errorf("%w: a copy to read it twice: %w", errReadSpool, err)
	}
	os.Remove(f.Name())
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: a copy to read it twice: %w", errReadSpool, err)
	}
	if _, err := io.Copy(f, readTagged{content}); err != nil {
		f.Close()
		if !errors.Is(err, errReadSpool) {
			err = fmt.Errorf("%w: a copy to read it twice: %w", errReadSpool, err)
		}
		return nil, err
	}
	return &rereader{ReadSeeker: f, file: f}, nil
}

// Usable reports whether the connection can carry another transaction.
func (c *Conn) Usable() bool { return !c.broken }

// Reset makes the connection ready for the next message; a failure marks
// it unusable. An open transaction is ended with RSET. After a completed
// one nothing is needed (RFC 5321 3.3: a transaction ends with the reply to
// its DATA), which also spares the EHLO that go-smtp sends again after
// each RSET; a connection idle for longer than freshFor is probed with
// NOOP first, so a session the server dropped meanwhile costs a new
// connection, not a deferred message.
func (c *Conn) Reset() error {
	if c.broken {
		return errors.New("connection broken")
	}
	if c.clean && time.Since(c.lastUsed) < freshFor {
		return nil
	}
	var err error
	if c.clean {
		err = c.client.Noop()
	} else {
		err = c.client.Reset()
	}
	if err != nil {
		c.broken = true
		return err
	}
	c.clean, c.lastUsed = true, time.Now()
	return nil
}

// freshFor is how long after its last reply a connection is reused without
// a NOOP to check that it is still there.
var freshFor = 2 * time.Second

// mailOptions are the MAIL FROM parameters. go-smtp sends the DSN ones
// only when the server offers DSN, and BODY=8BITMIME whenever the server
// offers 8BITMIME (what o.Body says does not matter). A value go-smtp
// would refuse (an ENVID that is not printable ASCII) is left out rather
// than failing the transaction.
func mailOptions(env *spool.Envelope, size int64) *smtp.MailOptions {
	o := &smtp.MailOptions{Size: size}
	if printableASCII(env.DSN.EnvID) {
		o.EnvelopeID = env.DSN.EnvID
	}
	switch env.Body {
	case "8BITMIME":
		o.Body = smtp.Body8BitMIME
	case "7BIT":
		o.Body = smtp.Body7Bit
	}
	switch strings.ToUpper(env.DSN.Ret) {
	case "FULL":
		o.Return = smtp.DSNReturnFull
	case "HDRS":
		o.Return = smtp.DSNReturnHeaders
	}
	return o
}

// rcptOptions are the RCPT TO parameters (DSN NOTIFY and ORCPT), left out
// when they are not valid (NEVER with another value, an unknown value, a
// non-ASCII original address).
func rcptOptions(env *spool.Envelope, r *spool.Recipient) *smtp.RcptOptions {
	o := &smtp.RcptOptions{}
	never := false
	for _, n := range env.DSN.Notify {
		v := smtp.DSNNotify(strings.ToUpper(strings.TrimSpace(n)))
		switch v {
		case smtp.DSNNotifyNever:
			never = true
		case smtp.DSNNotifySuccess, smtp.DSNNotifyDelayed, smtp.DSNNotifyFailure:
		default:
			continue
		}
		o.Notify = append(o.Notify, v)
	}
	if never && len(o.Notify) > 1 {
		o.Notify = nil
	}
	if r.Original != "" && strings.Contains(r.Original, "@") && printableASCII(r.Original) {
		o.OriginalRecipientType = smtp.DSNAddressTypeRFC822
		o.OriginalRecipient = r.Original
	}
	return o
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return s != ""
}

// readTagged marks read errors so Send can tell a failing spool from a
// failing network.
type readTagged struct{ r io.Reader }

func (t readTagged) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", errReadSpool, err)
	}
	return n, err
}
