package relay

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/spool"
)

// Outcome is what one transaction did for each recipient it tried.
type Outcome struct {
	// Results holds one entry per pending recipient, in envelope order.
	Results []RcptResult
	// Reply is the smarthost's answer to the message ("250 2.0.0 Ok:
	// queued as …"), when it accepted it for some recipient.
	Reply string
}

// RcptResult is the outcome for one recipient: Err nil means delivered.
type RcptResult struct {
	Rcpt *spool.Recipient
	Err  *Failure
}

// errReadSpool marks a failure to read the queued message.
var errReadSpool = errors.New("reading the queued message")

// Send runs one transaction for the pending recipients of env, from the
// envelope sender sender (env.Sender after rewriting), and returns
// a result for each of them, in envelope order. A non-nil error means the
// connection is no longer usable; the results are complete all the same:
// recipients refused before the loss keep their refusal, the others are
// deferred with the error.
func (c *Conn) Send(env *spool.Envelope, sender string, content io.Reader, size int64) (*Outcome, error) {
	pending := env.Pending()
	out := &Outcome{}
	results := make(map[*spool.Recipient]*Failure, len(pending))
	var accepted []*spool.Recipient
	// finish gives every recipient without an outcome yet the failure f
	// (nil: delivered) and lists the outcomes in envelope order.
	finish := func(f *Failure, connErr error) (*Outcome, error) {
		if f != nil && f.Code == 0 && c.aborted != nil && c.aborted.Load() {
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

	if err := c.client.Mail(sender, mailOptions(env, size)); err != nil {
		return failed(StageMail, err)
	}
	for _, r := range pending {
		err := c.client.Rcpt(r.Address, rcptOptions(env, r))
		if err == nil {
			accepted = append(accepted, r)
			continue
		}
		f := failure(StageRcpt, err)
		if f.Code == 0 {
			return failed(StageRcpt, err)
		}
		results[r] = f
	}
	if len(accepted) == 0 {
		c.Reset()
		return finish(nil, nil) // every recipient has its refusal
	}
	w, err := c.client.Data()
	if err != nil {
		return failed(StageData, err)
	}
	if _, err := io.Copy(w, readTagged{content}); err != nil {
		// Never end a DATA we could not send whole: drop the connection
		// instead of writing the final dot, so nothing half is delivered.
		c.broken = true
		c.client.Close()
		stage := StageData
		if errors.Is(err, errReadSpool) {
			stage = StageLocal
		}
		f := &Failure{Stage: stage, Err: err}
		return finish(f, f)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return failed(StageData, err)
	}
	out.Reply = "250 " + oneLine(resp.StatusText)
	return finish(nil, nil)
}

// Usable reports whether the connection can carry another transaction.
func (c *Conn) Usable() bool { return !c.broken }

// Reset ends a transaction (RSET) so the connection can carry the next
// message; a failure marks the connection unusable.
func (c *Conn) Reset() error {
	if c.broken {
		return errors.New("connection broken")
	}
	err := c.client.Reset()
	if err != nil {
		c.broken = true
	}
	return err
}

func mailOptions(env *spool.Envelope, size int64) *smtp.MailOptions {
	o := &smtp.MailOptions{Size: size, EnvelopeID: env.DSN.EnvID}
	switch env.Body {
	case "8BITMIME":
		o.Body = smtp.Body8BitMIME
	case "7BIT":
		o.Body = smtp.Body7Bit
	}
	switch env.DSN.Ret {
	case "FULL":
		o.Return = smtp.DSNReturnFull
	case "HDRS":
		o.Return = smtp.DSNReturnHeaders
	}
	return o
}

func rcptOptions(env *spool.Envelope, r *spool.Recipient) *smtp.RcptOptions {
	o := &smtp.RcptOptions{}
	for _, n := range env.DSN.Notify {
		o.Notify = append(o.Notify, smtp.DSNNotify(strings.ToUpper(n)))
	}
	if r.Original != "" && strings.Contains(r.Original, "@") {
		o.OriginalRecipientType = smtp.DSNAddressTypeRFC822
		o.OriginalRecipient = r.Original
	}
	return o
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
