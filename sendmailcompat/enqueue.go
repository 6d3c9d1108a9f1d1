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
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// addressFields are the headers whose bare local parts are qualified.
var addressFields = []string{
	"from", "sender", "reply-to", "to", "cc", "bcc",
	"resent-from", "resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc",
	"disposition-notification-to", "errors-to", "return-receipt-to", "mail-followup-to", "mail-reply-to",
}

// Enqueue reads a message from in as sendmail does with m and puts it
// durably into the spool (the maildrop with Drop). In order:
//
//  1. the envelope sender (the user's own address, or m.Sender qualified)
//     and sender_login_map for a local user;
//  2. the recipients given, qualified; min_free_space;
//  3. the header, read up to the empty line; the bare names in address
//     fields qualified; without -f, with --read-envelope-from or with -t
//     and envelope_from_header, the envelope sender taken from From (and
//     checked against sender_login_map as a -f would be); -a's smarthost
//     checked; with -t the recipients of To, Cc and Bcc (or of the
//     Resent- fields) added; duplicates dropped;
//  4. aliases expanded (Rewrite), a recipient with nowhere to go kept as
//     failed;
//  5. a draft made; Bcc and Return-Path removed, From, Date, Message-ID
//     added when missing, the Received field on top (fixHeader); the
//     envelope, the header and the body streamed in, max_message_size
//     enforced while reading;
//  6. the commit (fsync, rename, directory fsync): only then does the
//     message exist, and only then is the enqueue line logged.
//
// The Receipt names the queue ID and the recipients that have nowhere to
// go: the message is queued all the same (they failed, so the sender gets
// a bounce), and Receipt.Err says so as sendmail's exit 67. Errors are
// *sysexits.Error (or system errors that sysexits.Code maps): 64 for bad
// arguments, 65 for bad or oversized input, 75 for a full disk, 77 for
// permissions, 73 when the spool file cannot be made. On error nothing is
// left in the queue.
func (s *Submitter) Enqueue(m Submission, in io.Reader) (Receipt, error) {
	now := s.Now()
	sender, err := s.CheckSender(&m)
	if err != nil {
		return Receipt{}, err
	}
	rcpts, err := s.argRecipients(m.Recipients)
	if err != nil {
		return Receipt{}, err
	}
	if len(rcpts) == 0 && !m.Extract {
		return Receipt{}, usageErr("no recipients given (name them as arguments, or use -t to take them from the headers)")
	}
	if err := s.CheckFreeSpace(); err != nil {
		return Receipt{}, err
	}

	input := newInputReader(in, m.IgnoreDots, s.MaxMessageSize)
	br := bufio.NewReaderSize(input, 64<<10)
	h, err := readHeader(br, s.HeaderSizeLimit)
	if err != nil {
		return Receipt{}, s.inputError(err)
	}
	for _, f := range h.fields {
		if isAddressField(f.key()) {
			if v, changed := mailaddr.QualifyHeader(f.value(), s.Domain); changed {
				f.setValue(v)
			}
		}
	}
	if err := sendableHeader(h); err != nil {
		return Receipt{}, err
	}
	if s.senderFromHeader(&m) {
		if from, ok := headerSender(h); ok {
			sender = from
			if err := s.allowSender(&Submission{SenderSet: true}, sender); err != nil {
				return Receipt{}, err
			}
		}
	}
	if err := s.checkPinned(m.Smarthost, sender); err != nil {
		return Receipt{}, err
	}
	if m.Extract {
		hrcpts, err := headerRecipients(h)
		if err != nil {
			return Receipt{}, err
		}
		rcpts = append(rcpts, hrcpts...)
	}
	rcpts = dedupe(rcpts)
	if len(rcpts) == 0 {
		return Receipt{}, sysexits.New(sysexits.DataErr, "no recipient addresses found in the message header")
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
		return Receipt{}, sysexits.Wrap(spoolCode(err), err)
	}
	defer d.Abort()
	msgID := s.fixHeader(h, d.ID, sender, m.FullName, m.Client, now)
	env := &spool.Envelope{
		Sender:      sender,
		Recipients:  rcpts,
		UID:         s.UID,
		User:        s.User,
		Arrival:     now,
		NextAttempt: now.Add(m.Hold),
		DSN:         spool.DSN{Notify: m.Notify, Ret: m.Ret, EnvID: m.EnvID},
		Body:        m.Body,
		MessageID:   msgID,
		Smarthost:   m.Smarthost,
		Source:      s.Source,
	}
	if err := d.WriteEnvelope(env); err != nil {
		return Receipt{}, sysexits.Wrap(spoolCode(err), err)
	}
	if err := h.writeTo(d); err != nil {
		return Receipt{}, sysexits.Wrap(spoolCode(err), err)
	}
	// Stream the body: the input reader's errors are the caller's, the
	// draft's are ours, and they need different exit codes.
	if _, err := io.Copy(d, readerOnly{br}); err != nil {
		if errors.Is(err, errInput) {
			return Receipt{}, s.inputError(input.err)
		}
		return Receipt{}, sysexits.Wrap(spoolCode(err), err)
	}
	if err := d.Commit(); err != nil {
		return Receipt{}, sysexits.Wrap(spoolCode(err), err)
	}
	if !s.Drop {
		who := []string{"uid", strconv.Itoa(s.UID)}
		if m.Client != nil {
			who = []string{"client", m.Client.String()}
			if m.Client.User != "" {
				who = append(who, "sasl_username", m.Client.User)
			}
		}
		s.Log.Info(append(append([]string{"id", d.ID}, who...), "from", "<"+sender+">", "size", strconv.FormatInt(input.n, 10),
			"nrcpt", strconv.Itoa(len(rcpts)), "msgid", msgID, "status", "queued")...)
	}
	return Receipt{ID: d.ID, Unroutable: nowhere}, nil
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
	if errors.Is(err, ErrHeaderTooLarge) {
		return sysexits.Wrap(sysexits.DataErr, headerTooLarge{s.headerLimit()})
	}
	return sysexits.New(sysexits.DataErr, "cannot read the message: %v", err)
}

// headerTooLarge is ErrHeaderTooLarge with the limit, in one line.
type headerTooLarge struct{ limit int64 }

func (e headerTooLarge) Error() string {
	return fmt.Sprintf("message header larger than header_size_limit (%d bytes): refused", e.limit)
}

func (e headerTooLarge) Is(target error) bool { return target == ErrHeaderTooLarge }

// headerLimit is header_size_limit in effect.
func (s *Submitter) headerLimit() int64 {
	if s.HeaderSizeLimit <= 0 {
		return DefaultHeaderSizeLimit
	}
	return s.HeaderSizeLimit
}

// spoolCode is the exit code for a failure to write the spool: a full disk
// is temporary, a permission problem 77, anything else "cannot create" 73.
func spoolCode(err error) int { return sysexits.Code(err, sysexits.CantCreat) }

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
