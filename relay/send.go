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

// Send runs one transaction for the pending recipients of env. It returns
// a result for each of them. A non-nil error means the connection is no
// longer usable; the results are then complete (every recipient deferred or
// failed) as well.
func (c *Conn) Send(env *spool.Envelope, content io.Reader, size int64) (*Outcome, error) {
	pending := env.Pending()
	out := &Outcome{}
	all := func(f *Failure) (*Outcome, error) {
		out.Results = out.Results[:0]
		for _, r := range pending {
			out.Results = append(out.Results, RcptResult{r, f})
		}
		return out, nil
	}
	broken := func(f *Failure) (*Outcome, error) {
		c.broken = true
		out, _ = all(f)
		return out, f
	}

	if err := c.client.Mail(env.Sender, mailOptions(env, size)); err != nil {
		f := failure(StageMail, err)
		if f.Code == 0 {
			return broken(f)
		}
		c.Reset()
		return all(f)
	}
	var accepted []*spool.Recipient
	for _, r := range pending {
		err := c.client.Rcpt(r.Address, rcptOptions(env, r))
		if err == nil {
			accepted = append(accepted, r)
			continue
		}
		f := failure(StageRcpt, err)
		if f.Code == 0 {
			return broken(f)
		}
		out.Results = append(out.Results, RcptResult{r, f})
	}
	if len(accepted) == 0 {
		c.Reset()
		return out, nil
	}
	rcptResults := func(f *Failure) {
		for _, r := range accepted {
			out.Results = append(out.Results, RcptResult{r, f})
		}
	}

	w, err := c.client.Data()
	if err != nil {
		f := failure(StageData, err)
		if f.Code == 0 {
			c.broken = true
			rcptResults(f)
			return out, f
		}
		c.Reset()
		rcptResults(f)
		return out, nil
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
		rcptResults(f)
		return out, f
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		f := failure(StageData, err)
		if f.Code == 0 {
			c.broken = true
			rcptResults(f)
			return out, f
		}
		rcptResults(f)
		return out, nil
	}
	out.Reply = "250 " + oneLine(resp.StatusText)
	rcptResults(nil)
	return out, nil
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
