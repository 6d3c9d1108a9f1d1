package sendmailcompat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// Submitter is who submits and where the message goes.
type Submitter struct {
	Spool          *spool.Spool
	Domain         string // qualifies bare names
	Hostname       string // for the Received header
	UID            int
	User           string // login name
	Gecos          string // full name from the password database, for a generated From
	MaxMessageSize int64
	MinFreeSpace   int64
	Now            func() time.Time
	// Drop: the submitter cannot write the queue (a user of a system
	// install) and leaves the message in the maildrop for the pickup, which
	// adds the Received field with the uid it can trust.
	Drop bool
	// Log receives the enqueue line (the pickup writes it for drops).
	Log *maillog.Logger
	// Rewrite expands aliases and enforces sender_login_map (nil: none).
	Rewrite *rewrite.Rules
}

// addressFields are the headers whose bare local parts are qualified.
var addressFields = []string{
	"from", "sender", "reply-to", "to", "cc", "bcc",
	"resent-from", "resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc",
	"disposition-notification-to", "errors-to", "return-receipt-to", "mail-followup-to", "mail-reply-to",
}

// Enqueue reads a message from in as sendmail does with the flags in o and
// puts it durably into the spool. It returns the queue ID. Errors are
// *sysexits.Error (or system errors that sysexits.Code maps): 64 for bad
// arguments, 65 for bad or oversized input, 75 for a full disk, 77 for
// permissions, 73 when the spool file cannot be made. On error nothing is
// left in the queue.
//
// One exception: when a recipient has nowhere to go (an alias that leads
// only to a command, a file or a loop), the message is queued all the
// same (that recipient failed, so the sender gets a bounce) and Enqueue
// returns the queue ID with an exit-67 error that says so.
func (s *Submitter) Enqueue(o *Options, in io.Reader) (string, error) {
	now := s.Now()
	sender, err := s.envelopeSender(o)
	if err != nil {
		return "", err
	}
	if err := s.allowSender(o, sender); err != nil {
		return "", err
	}
	rcpts, err := s.argRecipients(o.Recipients)
	if err != nil {
		return "", err
	}
	if len(rcpts) == 0 && !o.Extract {
		return "", usageErr("no recipients given (name them as arguments, or use -t to take them from the headers)")
	}
	if err := s.checkFreeSpace(); err != nil {
		return "", err
	}

	input := newInputReader(in, o.IgnoreDots, s.MaxMessageSize)
	br := bufio.NewReaderSize(input, 64<<10)
	h, err := readHeader(br)
	if err != nil {
		return "", s.inputError(err)
	}
	for _, f := range h.fields {
		if isAddressField(f.key()) {
			if v, changed := mailaddr.QualifyHeader(f.value(), s.Domain); changed {
				f.setValue(v)
			}
		}
	}
	if o.Extract {
		hrcpts, err := headerRecipients(h)
		if err != nil {
			return "", err
		}
		rcpts = append(rcpts, hrcpts...)
	}
	rcpts = dedupe(rcpts)
	if len(rcpts) == 0 {
		return "", sysexits.New(sysexits.DataErr, "no recipient addresses found in the message header")
	}
	var nowhere []string
	if s.Rewrite != nil {
		rcpts, nowhere = s.Rewrite.Recipients(rcpts)
	}

	newDraft := s.Spool.NewDraft
	if s.Drop {
		newDraft = s.Spool.NewDrop
	}
	d, err := newDraft()
	if err != nil {
		return "", sysexits.Wrap(spoolCode(err), err)
	}
	defer d.Abort()
	msgID := s.fixHeader(h, d.ID, sender, o.FullName, o.Client, now)
	env := &spool.Envelope{
		Sender:      sender,
		Recipients:  rcpts,
		UID:         s.UID,
		User:        s.User,
		Arrival:     now,
		NextAttempt: now,
		DSN:         spool.DSN{Notify: o.Notify, Ret: o.Ret, EnvID: o.EnvID},
		Body:        o.Body,
		MessageID:   msgID,
	}
	if o.WaitSet || o.Verbose {
		// The submitter delivers this one itself (--wait, -v): other
		// runners leave it alone for as long as it waits.
		env.NextAttempt = now.Add(o.WaitDuration())
	}
	if err := d.WriteEnvelope(env); err != nil {
		return "", sysexits.Wrap(spoolCode(err), err)
	}
	if err := h.writeTo(d); err != nil {
		return "", sysexits.Wrap(spoolCode(err), err)
	}
	// Stream the body: the input reader's errors are the caller's, the
	// draft's are ours, and they need different exit codes.
	if _, err := io.Copy(d, readerOnly{br}); err != nil {
		if errors.Is(err, errInput) {
			return "", s.inputError(input.err)
		}
		return "", sysexits.Wrap(spoolCode(err), err)
	}
	if err := d.Commit(); err != nil {
		return "", sysexits.Wrap(spoolCode(err), err)
	}
	if !s.Drop {
		who := []string{"uid", strconv.Itoa(s.UID)}
		if o.Client != nil {
			who = []string{"client", o.Client.String()}
		}
		s.Log.Info(append(append([]string{"id", d.ID}, who...), "from", "<"+sender+">", "size", strconv.FormatInt(input.n, 10),
			"nrcpt", strconv.Itoa(len(rcpts)), "msgid", msgID, "status", "queued")...)
	}
	if len(nowhere) > 0 {
		return d.ID, sysexits.New(sysexits.NoUser, "queued as %s, but %d recipient(s) have nowhere to go and bounce: %s",
			d.ID, len(nowhere), strings.Join(nowhere, "; "))
	}
	return d.ID, nil
}

// allowSender applies sender_login_map to a sender given with -f or MAIL
// FROM (the default sender, the user's own address, is always allowed).
// It is about local users: a network client of the daemon has no login.
func (s *Submitter) allowSender(o *Options, sender string) error {
	if s.Rewrite == nil || !o.SenderSet || o.Client != nil {
		return nil
	}
	if err := s.Rewrite.AllowSender(s.User, sender); err != nil {
		return sysexits.New(sysexits.NoPerm, "%v", err)
	}
	return nil
}

var errInput = errors.New("input error")

// readerOnly tags read errors so that io.Copy's caller can tell them from
// write errors.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%w: %w", errInput, err)
	}
	return n, err
}

func (s *Submitter) inputError(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return sysexits.New(sysexits.DataErr, "message larger than max_message_size (%d bytes): refused", s.MaxMessageSize)
	}
	return sysexits.New(sysexits.DataErr, "cannot read the message: %v", err)
}

// spoolCode is the exit code for a failure to write the spool: a full disk
// is temporary, a permission problem 77, anything else "cannot create" 73.
func spoolCode(err error) int { return sysexits.Code(err, sysexits.CantCreat) }

func (s *Submitter) checkFreeSpace() error {
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

func (s *Submitter) envelopeSender(o *Options) (string, error) {
	if !o.SenderSet {
		return s.User + "@" + s.Domain, nil
	}
	a, err := mailaddr.ParseSender(o.Sender)
	if err != nil {
		return "", usageErr("-f %q: %v", o.Sender, err)
	}
	if a == "" {
		return "", nil
	}
	a = mailaddr.Qualify(a, s.Domain)
	if err := mailaddr.Valid(a); err != nil {
		return "", usageErr("-f %q: %v", o.Sender, err)
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

// headerRecipients returns the recipients -t takes from the header (already
// qualified): the Resent- fields when any is present, else To, Cc and Bcc.
func headerRecipients(h *header) ([]spool.Recipient, error) {
	names := []string{"to", "cc", "bcc"}
	if h.has("resent-to") || h.has("resent-cc") || h.has("resent-bcc") {
		names = []string{"resent-to", "resent-cc", "resent-bcc"}
	}
	var out []spool.Recipient
	for _, name := range names {
		for _, f := range h.get(name) {
			list, err := mailaddr.ParseList(f.value())
			if err != nil {
				return nil, sysexits.New(sysexits.DataErr, "%s header: %v", f.name, err)
			}
			for _, a := range list {
				if a.Addr == "" {
					continue
				}
				if err := mailaddr.Valid(a.Addr); err != nil {
					return nil, sysexits.New(sysexits.DataErr, "%s header: %q: %v", f.name, a.Addr, err)
				}
				out = append(out, spool.Recipient{Address: a.Addr, Status: spool.Pending})
			}
		}
	}
	return out, nil
}

func dedupe(rs []spool.Recipient) []spool.Recipient {
	seen := make(map[string]bool, len(rs))
	out := rs[:0]
	for _, r := range rs {
		k := strings.ToLower(r.Address)
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

func isAddressField(key string) bool {
	for _, n := range addressFields {
		if n == key {
			return true
		}
	}
	return false
}

// fixHeader makes the header fit for the world as Postfix's cleanup does:
// Bcc, Resent-Bcc and Return-Path removed; From, Date and Message-ID added
// when missing; a Received field recording the submitting user (or the
// network client) on top. It returns the Message-ID.
func (s *Submitter) fixHeader(h *header, id, sender, fullName string, client *Client, now time.Time) string {
	h.remove("bcc")
	h.remove("resent-bcc")
	h.remove("return-path")
	if !h.has("from") {
		from := sender
		if from == "" {
			from = s.User + "@" + s.Domain
		}
		name := fullName
		if name == "" && client == nil { // a network client is no local user
			name = s.Gecos
		}
		h.add("From", mailaddr.FormatMailbox(name, from), false)
	}
	if !h.has("date") {
		h.add("Date", now.Format(time.RFC1123Z), false)
	}
	msgID := ""
	if f := h.get("message-id"); len(f) > 0 {
		msgID = strings.TrimSpace(f[0].value())
	} else {
		msgID = "<" + now.UTC().Format("20060102150405") + "." + id + "@" + s.Domain + ">"
		h.add("Message-ID", msgID, false)
	}
	if !s.Drop {
		rcv := receivedField(s.Hostname, s.UID, id, now, h.eol())
		if client != nil {
			rcv = client.receivedField(s.Hostname, id, now, h.eol())
		}
		h.fields = append([]*field{{name: "Received", raw: []byte(rcv)}}, h.fields...)
	}
	return msgID
}

// receivedField is the Received header line that records who submitted a
// message, as Postfix's pickup writes it.
func receivedField(host string, uid int, id string, now time.Time, eol string) string {
	return fmt.Sprintf("Received: by %s (relay, from userid %d)%s\tid %s; %s%s", host, uid, eol, id, now.Format(time.RFC1123Z), eol)
}
