package sendmailcompat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/spool"
)

// Pickup moves messages from the maildrop of a system install into the
// queue. It runs as the spool owner (relay queue run, the daemon). A drop
// is written by a user and trusted for nothing but its content: the
// submitter is the file's owner, the queue ID is new, and the Received
// field recording the submitter is written here.
type Pickup struct {
	Spool          *spool.Spool
	Hostname       string
	MaxMessageSize int64
	// User gives the login name of a uid.
	User func(uid int) string
	Now  func() time.Time
	// Log receives one line per message taken or drop refused.
	Log func(kv ...string)
	// Rewrite (nil: none) applies the alias file and sender_login_map
	// here too: the submitter may not have been able to read them, and a
	// drop is trusted for nothing.
	Rewrite *rewrite.Rules
}

// NewPickup assembles the maildrop pickup of sp from the configuration
// (relay queue run and the daemon); log receives its lines.
func NewPickup(cfg *config.Config, sp *spool.Spool, log *maillog.Logger) *Pickup {
	host, _ := os.Hostname()
	return &Pickup{
		Spool: sp, Hostname: host, MaxMessageSize: int64(cfg.MaxMessageSize), Now: time.Now, Log: log.Info,
		User:    func(uid int) string { login, _ := LookupUser(uid); return login },
		Rewrite: rewrite.Load(cfg, host),
	}
}

// Run takes every complete drop. A drop that is no message is unlinked or
// moved to corrupt/ and reported; it never stops the others. A drop
// already queued (a crash came between the commit of its message and its
// removal) is only removed. One that cannot be dealt with now (a full
// disk) is reported once and left for a minute (spool.DeferDrop), so
// that it does not make every pass repeat.
func (p *Pickup) Run() (int, error) {
	now := p.Now()
	names, err := p.Spool.Drops(now)
	if err != nil || len(names) == 0 {
		return 0, err
	}
	queued, err := p.Spool.QueuedDrops(names)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if id, ok := queued[name]; ok {
			if err := p.Spool.RemoveQueuedDrop(name, id); err != nil {
				p.Log("id", id, "maildrop", name, "status", "error", "reason", err.Error())
				p.Spool.DeferDrop(name, now)
			} else {
				p.Log("id", id, "maildrop", name, "status", "removed", "reason", "already queued (the pickup that queued it stopped before removing it)")
			}
			continue
		}
		id, err := p.take(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // its owner took it back
		}
		if err != nil {
			// Refused: no message, dealt with (or, if relay cannot remove
			// it, left for root). Deferred: it may be taken later (a full
			// disk). Either way not tried again at once.
			status := "refused"
			if p.Spool.HasDrop(name) {
				p.Spool.DeferDrop(name, now)
				if !errors.Is(err, spool.ErrHostile) && !errors.Is(err, spool.ErrCorrupt) && !errors.Is(err, spool.ErrTooLarge) {
					status = "deferred"
				}
			}
			p.Log("maildrop", name, "status", status, "reason", err.Error())
			continue
		}
		if id != "" {
			n++
		}
	}
	return n, nil
}

// take moves one drop into the queue and returns its queue ID.
func (p *Pickup) take(name string) (string, error) {
	d, err := p.Spool.OpenDrop(name, p.MaxMessageSize)
	if err != nil {
		return "", err
	}
	defer d.Close()
	if err := validDrop(d.Env); err != nil {
		return "", p.Spool.RejectDrop(d, err)
	}
	user := p.User(d.UID)
	if p.Rewrite != nil {
		// The user's own address is always allowed; any other sender
		// came with -f, which sendmail checked, unless the drop was
		// written by hand.
		if err := p.Rewrite.AllowSender(user, d.Env.Sender); err != nil {
			return "", p.Spool.RejectDrop(d, err)
		}
	}
	now := p.Now()
	draft, err := p.Spool.NewDraft()
	if err != nil {
		return "", err
	}
	defer draft.Abort()
	env := &spool.Envelope{
		Sender:      d.Env.Sender,
		UID:         d.UID,
		User:        user,
		Arrival:     now,
		NextAttempt: now,
		DSN:         d.Env.DSN,
		Body:        d.Env.Body,
		MessageID:   d.Env.MessageID,
		Drop:        &d.Origin,
		Smarthost:   d.Env.Smarthost,
	}
	for _, r := range d.Env.Recipients {
		env.Recipients = append(env.Recipients, spool.Recipient{Address: r.Address, Original: r.Original, Status: spool.Pending})
	}
	if p.Rewrite != nil {
		// Expanding an expanded list again gives the same list.
		env.Recipients, _ = p.Rewrite.Recipients(env.Recipients)
	}
	if err := draft.WriteEnvelope(env); err != nil {
		return "", err
	}
	br := bufio.NewReaderSize(d.Content(), 64<<10)
	eol := "\n"
	if line, _ := br.Peek(1000); crlfFirstLine(line) {
		eol = "\r\n"
	}
	if _, err := io.WriteString(draft, receivedField(p.Hostname, d.UID, draft.ID, now, eol)); err != nil {
		return "", err
	}
	if _, err := io.Copy(draft, br); err != nil {
		return "", err
	}
	if err := draft.Commit(); err != nil {
		return "", err
	}
	if err := p.Spool.FinishDrop(d); err != nil {
		// The message is queued; a drop left behind would be taken again,
		// so say so loudly.
		p.Log("id", draft.ID, "maildrop", name, "status", "error", "reason", err.Error())
	}
	p.Log("id", draft.ID, "uid", fmt.Sprint(d.UID), "from", "<"+env.Sender+">", "size", fmt.Sprint(d.Size),
		"nrcpt", fmt.Sprint(len(env.Recipients)), "msgid", env.MessageID, "status", "queued")
	return draft.ID, nil
}

func crlfFirstLine(b []byte) bool {
	for i, c := range b {
		if c == '\n' {
			return i > 0 && b[i-1] == '\r'
		}
	}
	return false
}

// validDrop checks what a hostile submitter could have put in a drop's
// envelope.
func validDrop(env *spool.Envelope) error {
	if env.Sender != "" {
		if err := mailaddr.Valid(env.Sender); err != nil {
			return fmt.Errorf("sender %q: %w", env.Sender, err)
		}
	}
	if len(env.Recipients) == 0 || len(env.Recipients) > 100000 {
		return errors.New("no recipients")
	}
	for _, r := range env.Recipients {
		if err := mailaddr.Valid(r.Address); err != nil {
			return fmt.Errorf("recipient %q: %w", r.Address, err)
		}
	}
	for _, n := range env.DSN.Notify {
		switch n {
		case "NEVER", "SUCCESS", "DELAY", "FAILURE":
		default:
			return fmt.Errorf("DSN notify %q", n)
		}
	}
	if r := env.DSN.Ret; r != "" && r != "FULL" && r != "HDRS" {
		return fmt.Errorf("DSN ret %q", r)
	}
	if e := env.DSN.EnvID; e != "" && !ValidEnvID(e) {
		return fmt.Errorf("DSN envid %q", e)
	}
	if b := env.Body; b != "" && b != "7BIT" && b != "8BITMIME" {
		return fmt.Errorf("body %q", b)
	}
	// The message ID is not checked: it is only a copy of the header
	// field for the log (quoted there), and intake accepts any value, so
	// refusing one here would lose mail sendmail said it had taken.
	return nil
}
