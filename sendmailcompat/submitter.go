package sendmailcompat

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
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
	// HeaderSizeLimit bounds the header section held in memory
	// (header_size_limit); 0 means DefaultHeaderSizeLimit.
	HeaderSizeLimit int64
	MinFreeSpace    int64
	Now             func() time.Time
	// Drop: the submitter cannot write the queue (a user of a system
	// install) and leaves the message in the maildrop for the pickup, which
	// adds the Received field with the uid it can trust.
	Drop bool
	// Log receives the enqueue line (the pickup writes it for drops).
	Log *maillog.Logger
	// Source is recorded in the envelope (spool.Envelope.Source): "smtp"
	// for the daemon's listener, "" for the sendmail command.
	Source string
	// Rewrite expands aliases and enforces sender_login_map (nil: none).
	Rewrite *rewrite.Rules
	// EnvelopeFromHeader (envelope_from_header): a -t submission without
	// -f takes its envelope sender from the From header.
	EnvelopeFromHeader bool
}

// NewSubmitter is the one place a Submitter is assembled from the
// configuration, for the calling user: sendmail, sendmail -bs, sendmail -bv
// and relay rewrite take theirs here (through OpenSubmitter when they
// queue), the daemon's SMTP listener too (it sets Spool and Log). Without a
// spool it can only say what addresses become (Verify).
func NewSubmitter(cfg *config.Config) *Submitter {
	s := &Submitter{
		Domain:          cfg.MailDomain(),
		UID:             os.Getuid(),
		MaxMessageSize:  int64(cfg.MaxMessageSize),
		HeaderSizeLimit: int64(cfg.HeaderSizeLimit),
		MinFreeSpace:    int64(cfg.MinFreeSpace),
		Now:             time.Now,

		EnvelopeFromHeader: cfg.EnvelopeFromHeader,
	}
	s.Hostname, _ = os.Hostname()
	s.User, s.Gecos = LookupUser(s.UID)
	s.Rewrite = rewrite.Load(cfg, s.Hostname)
	return s
}

// OpenSubmitter is NewSubmitter with the spool to queue into: opened, or
// made on first use (a single-user install), and, for root, with the
// identity of the spool's owner taken (spool.BecomeOwner). A user who cannot
// write the queue (a system install) submits through the maildrop (Drop).
// Errors are *sysexits.Error or map to an exit code through sysexits.Code:
// 73 when the spool cannot be made, 77 for permissions, 75 when the alias
// file cannot be read (mail would go to the wrong place).
func OpenSubmitter(cfg *config.Config) (*Submitter, error) {
	s := NewSubmitter(cfg)
	var err error
	if s.Spool, err = spool.Open(cfg.Spool); errors.Is(err, fs.ErrNotExist) {
		s.Spool, err = spool.Create(cfg.Spool)
	}
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Code(err, sysexits.CantCreat), err)
	}
	if err := s.Spool.BecomeOwner(); err != nil {
		return nil, err
	}
	s.Drop = !s.Spool.Writable() && s.Spool.HasMaildrop()
	if err := s.Rewrite.Err(); err != nil && !s.Drop {
		// Without the alias file mail would go to the wrong place; a
		// drop is expanded again by the pickup, which can read it.
		return nil, sysexits.New(sysexits.TempFail, "%v: try again when it is readable", err)
	}
	return s, nil
}

// LookupUser returns the login and full name of uid. relay is built
// without cgo (a static binary starts measurably faster, and sendmail's
// speed is mostly start-up), so os/user reads /etc/passwd only; users from
// LDAP or SSSD are found through getent, which asks NSS, on that rarer
// path. An unknown uid becomes "uid1000".
func LookupUser(uid int) (login, gecos string) {
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil {
		return u.Username, u.Name
	}
	out, err := exec.Command("getent", "passwd", id).Output()
	if f := strings.Split(strings.TrimSpace(string(out)), ":"); err == nil && len(f) >= 5 && f[0] != "" {
		name, _, _ := strings.Cut(f[4], ",")
		return f[0], name
	}
	return "uid" + id, ""
}
