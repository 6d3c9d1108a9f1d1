package sendmailcompat

import (
	"errors"
	"strings"
	"time"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// Submission describes one message for Enqueue: its envelope as the
// submitter gives it and how its text is read. The sendmail command line
// fills it through Options (which embeds it); an SMTP session (package
// smtpd) fills one per transaction from MAIL, RCPT and their parameters.
type Submission struct {
	// Sender is the envelope sender as given (-f, -r, MAIL FROM), parsed
	// and qualified by Enqueue; with SenderSet, "" or "<>" is the null
	// sender. Without SenderSet the sender is the user's own address.
	Sender    string
	SenderSet bool
	// FullName (-F) names the sender in a From field added to a message
	// without one.
	FullName string
	// Recipients are the recipient arguments as given, each an address
	// list (or one RCPT TO path).
	Recipients []string
	Extract    bool // -t: recipients from the header as well
	// ReadEnvelopeFrom (--read-envelope-from): without -f, the envelope
	// sender is the From header's address (Submitter.EnvelopeFromHeader
	// does the same for every -t submission).
	ReadEnvelopeFrom bool
	// Smarthost (-a NAME, msmtp's account) names the [[smarthost]] that
	// carries every recipient; "" routes as usual.
	Smarthost  string
	IgnoreDots bool // -i, -oi: a lone dot does not end the input
	// The DSN options (RFC 3461): -N, -R, -V on the command line; NOTIFY,
	// RET, ENVID in SMTP. Body is -B or BODY: 7BIT or 8BITMIME.
	Notify []string
	Ret    string // FULL or HDRS
	EnvID  string
	Body   string
	// Hold keeps other runners away from the message for this long after
	// it is queued: its submitter delivers it itself (sendmail --wait, -v).
	Hold time.Duration
	// Client is the network peer of an SMTP session (the daemon's
	// listener), recorded in the Received field and the log line; nil for
	// the command line and -bs, whose submitter is the local user.
	Client *Client
}

// Receipt is what Enqueue reports about a message it queued.
type Receipt struct {
	ID string // the queue ID
	// Unroutable are the recipients with nowhere to go (an alias that
	// leads only to a command, a file or a loop), each with the reason.
	// They are queued as failed, so the sender gets a bounce.
	Unroutable []string
}

// Err is how sendmail reports a message queued with unroutable
// recipients: a *sysexits.Error with code 67 naming the queue ID and the
// recipients; nil when every recipient has somewhere to go.
func (r Receipt) Err() error {
	if len(r.Unroutable) == 0 {
		return nil
	}
	return sysexits.New(sysexits.NoUser, "queued as %s, but %d recipient(s) have nowhere to go and bounce: %s",
		r.ID, len(r.Unroutable), strings.Join(r.Unroutable, "; "))
}

// CheckSender is the envelope sender Enqueue would record for m, and the
// check of it that an SMTP server makes at MAIL: a *sysexits.Error with
// code 64 when m.Sender is no address, 77 when sender_login_map refuses
// it to the user.
func (s *Submitter) CheckSender(m *Submission) (string, error) {
	sender, err := s.envelopeSender(m)
	if err != nil {
		return "", err
	}
	if err := s.allowSender(m, sender); err != nil {
		return "", err
	}
	return sender, nil
}

// CheckRecipient is the check of one recipient that an SMTP server makes
// at RCPT, as Enqueue would make it: a *sysexits.Error with code 64 unless
// addr is exactly one address, 67 (whose text is the reason) when it has
// nowhere to go.
func (s *Submitter) CheckRecipient(addr string) error {
	rs, err := s.argRecipients([]string{addr})
	if err != nil {
		return err
	}
	if len(rs) != 1 {
		return usageErr("recipient %q: not one address", addr)
	}
	if s.Rewrite != nil {
		if _, nowhere := s.Rewrite.Recipients(rs); len(nowhere) > 0 {
			return sysexits.New(sysexits.NoUser, "%s", nowhere[0])
		}
	}
	return nil
}

// CheckFreeSpace refuses a message while the spool has less than
// min_free_space free: a *sysexits.Error with code 75 (try again later).
// Enqueue checks it; an SMTP server checks it at MAIL as well.
func (s *Submitter) CheckFreeSpace() error {
	if s.MinFreeSpace <= 0 {
		return nil
	}
	free, err := s.Spool.FreeSpace()
	if err != nil {
		return sysexits.Wrap(sysexits.TempFail, err)
	}
	if free < s.MinFreeSpace {
		return sysexits.New(sysexits.TempFail, "only %d MB free in %s, below min_free_space: try again later", free>>20, s.Spool.Dir)
	}
	return nil
}

// allowSender applies sender_login_map to a sender given with -f or MAIL
// FROM (the default sender, the user's own address, is always allowed).
// It is about local users: a network client of the daemon has no login.
func (s *Submitter) allowSender(m *Submission, sender string) error {
	if s.Rewrite == nil || !m.SenderSet || m.Client != nil {
		return nil
	}
	if err := s.Rewrite.AllowSender(s.User, sender); err != nil {
		return sysexits.New(sysexits.NoPerm, "%v", err)
	}
	return nil
}

func (s *Submitter) envelopeSender(m *Submission) (string, error) {
	if !m.SenderSet {
		return s.User + "@" + s.Domain, nil
	}
	a, err := mailaddr.ParseSender(m.Sender)
	if err != nil {
		return "", usageErr("-f %q: %v", m.Sender, err)
	}
	if a == "" {
		return "", nil
	}
	a = mailaddr.Qualify(a, s.Domain)
	if err := mailaddr.Valid(a); err != nil {
		return "", usageErr("-f %q: %v", m.Sender, err)
	}
	return a, nil
}

// argRecipients parses each argument as an address list.
func (s *Submitter) argRecipients(args []string) ([]spool.Recipient, error) {
	var out []spool.Recipient
	for _, arg := range args {
		list, err := mailaddr.ParseList(arg)
		if err != nil {
			return nil, usageErr("recipient %q: %v", arg, err)
		}
		for _, a := range list {
			r, err := s.recipient(a.Addr)
			if err != nil {
				return nil, usageErr("recipient %q: %v", arg, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *Submitter) recipient(addr string) (spool.Recipient, error) {
	if addr == "" {
		return spool.Recipient{}, errors.New("the null address <> is no recipient")
	}
	q := mailaddr.Qualify(addr, s.Domain)
	if err := mailaddr.Valid(q); err != nil {
		return spool.Recipient{}, err
	}
	r := spool.Recipient{Address: q, Status: spool.Pending}
	if q != addr {
		r.Original = addr
	}
	return r, nil
}
