package rewrite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/spool"
)

// Rules is the [rewrite] configuration with its files read: what relay
// changes in addresses and headers. It implements relay.Rewriter (Sender,
// Content) and is safe for concurrent use.
//
// A long-lived Rules (the daemon's runner, pickup and listener) notices
// when a file changes: at most once a second it compares each file's
// modification time, size and inode with those it read, and reads the
// files again when one differs. So a corrected sender map applies to the
// next message without a restart ("fix the map, then relay queue flush").
type Rules struct {
	Config *config.Config
	// Domain is the mail domain: it qualifies bare names.
	Domain string
	// Host is this machine's name, for %h and for display names such as
	// "root on server1".
	Host string

	cur     atomic.Pointer[Files]
	checked atomic.Int64 // unix nanoseconds of the last look at the files
	mu      sync.Mutex   // one reload at a time
}

// Files is what the files of the configuration held when they were read.
type Files struct {
	// Aliases, Senders and Logins are nil when the file is not configured
	// or does not exist.
	Aliases *Aliases
	Senders *SenderMap
	Logins  *LoginMap
	// Problems are those found in the files (bad lines, unservable
	// aliases), for relay check and newaliases.
	Problems []config.Problem
	// Errs: files that exist but could not be read, by key
	// ("rewrite.aliases"…).
	Errs map[string]error

	stamps map[string]stamp
}

// stamp identifies a version of a file; the zero stamp is "no file".
type stamp struct {
	mtime     time.Time
	size, ino uint64
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	st := stamp{mtime: fi.ModTime(), size: uint64(fi.Size())}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// Load reads the files of cfg's [rewrite] table. A file that does not
// exist is no error (the default /etc/aliases may be missing); one that
// cannot be read is recorded in Files().Errs, and the rest still works.
// host is the machine's name.
func Load(cfg *config.Config, host string) *Rules {
	r := &Rules{Config: cfg, Domain: cfg.MailDomain(), Host: host}
	r.cur.Store(readFiles(cfg))
	r.checked.Store(time.Now().UnixNano())
	return r
}

// FileProblems reads the [rewrite] files cfg names (aliases, sender map,
// sender_login_map) and returns their bad lines and unservable entries,
// with file:line; nothing else is looked at (not the host's name, nor
// /etc/mailname): relay check --config-only.
func FileProblems(cfg *config.Config) []config.Problem { return readFiles(cfg).Problems }

func readFiles(cfg *config.Config) *Files {
	f := &Files{Errs: map[string]error{}, stamps: map[string]stamp{}}
	rw := cfg.Rewrite
	note := func(key, path string, probs []config.Problem, err error) bool {
		f.Problems = append(f.Problems, probs...)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.Errs[key] = err
		}
		return err == nil
	}
	// The stamps are taken before reading: a change while reading is
	// seen at the next look.
	for _, p := range []string{rw.Aliases, rw.SenderMap, rw.SenderLoginMap} {
		if p != "" {
			f.stamps[p] = stampOf(p)
		}
	}
	if rw.Aliases != "" {
		a, probs, err := ParseAliases(rw.Aliases)
		if note("rewrite.aliases", rw.Aliases, probs, err) {
			f.Aliases = a
		}
	}
	if rw.SenderMap != "" {
		m, probs, err := ParseSenderMap(rw.SenderMap)
		if note("rewrite.sender_map", rw.SenderMap, probs, err) {
			f.Senders = m
		}
	}
	if rw.SenderLoginMap != "" {
		m, probs, err := ParseLoginMap(rw.SenderLoginMap)
		if note("rewrite.sender_login_map", rw.SenderLoginMap, probs, err) {
			f.Logins = m
		}
	}
	return f
}

// Files returns what the files hold now, reading them again when one
// changed since (looking at most once a second).
func (r *Rules) Files() *Files {
	now := time.Now().UnixNano()
	if last := r.checked.Load(); now-last >= int64(time.Second) && r.checked.CompareAndSwap(last, now) {
		r.mu.Lock()
		f := r.cur.Load()
		for p, st := range f.stamps {
			if stampOf(p) != st {
				r.cur.Store(readFiles(r.Config))
				break
			}
		}
		r.mu.Unlock()
	}
	return r.cur.Load()
}

// Err returns the first file error, for callers that must not go on
// without the files (nil when every configured file was read or absent).
func (r *Rules) Err() error {
	errs := r.Files().Errs
	for _, k := range []string{"rewrite.aliases", "rewrite.sender_map", "rewrite.sender_login_map"} {
		if err := errs[k]; err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// shortHost is the first label of Host ("server1" of
// "server1.example.com").
func (r *Rules) shortHost() string {
	h, _, _ := strings.Cut(r.Host, ".")
	if h == "" {
		h, _, _ = strings.Cut(r.Domain, ".")
	}
	return h
}

// Local reports whether addr is a local address: a bare name, or one at
// the mail domain, this host's name (full or short) or localhost. Aliases
// and the local-name keys of the maps apply to local addresses only.
func (r *Rules) Local(addr string) bool {
	if !mailaddr.HasDomain(addr) {
		return true
	}
	d := strings.ToLower(strings.TrimSuffix(mailaddr.Domain(addr), "."))
	for _, l := range []string{r.Domain, r.Host, r.shortHost(), "localhost", "localhost.localdomain"} {
		if l != "" && d == strings.ToLower(l) {
			return true
		}
	}
	return false
}

func (r *Rules) qualify(addr string) string { return mailaddr.Qualify(addr, r.Domain) }

// Expand returns what the envelope recipient addr (as given: bare names
// are qualified here) becomes through the alias file: see expander.expand.
func (r *Rules) Expand(addr string) []Expansion {
	x := &expander{a: r.Files().Aliases, local: r.Local, qual: r.qualify}
	return x.expand(addr)
}

// Recipients expands the envelope recipients of a message at enqueue:
// each becomes its aliases' addresses, with the address as written kept
// in Original (for the DSN's ORCPT). A recipient with nowhere to go is
// kept as Failed with the reason, so the sender gets a bounce; bad lists
// the recipients (as written) in that state.
func (r *Rules) Recipients(in []spool.Recipient) (out []spool.Recipient, bad []string) {
	seen := map[string]bool{}
	for _, rc := range in {
		orig := rc.Original
		if orig == "" {
			orig = rc.Address
		}
		for _, x := range r.Expand(rc.Address) {
			k := strings.ToLower(x.Address)
			if seen[k] {
				continue
			}
			seen[k] = true
			n := spool.Recipient{Address: x.Address, Status: spool.Pending}
			if !strings.EqualFold(orig, x.Address) {
				n.Original = orig
			}
			if x.Undeliverable != "" {
				n.Status = spool.Failed
				// Refused as a smarthost would refuse it at RCPT: failed
				// for good, explained and bounced like one.
				n.Failure = &failure.Failure{Stage: failure.StageRcpt, Code: 550, Enhanced: "5.1.1", Text: "<" + orig + ">: " + x.Undeliverable}
				bad = append(bad, orig+": "+x.Undeliverable)
			}
			out = append(out, n)
		}
	}
	return out, bad
}

// MapSender returns the envelope sender after the sender map, and the
// rule that changed it ("" when none did).
func (r *Rules) MapSender(sender string) (string, string) {
	if v, rule := r.Files().Senders.Lookup(sender, r.Local); v != "" {
		return v, rule
	}
	return sender, ""
}

// Sender implements relay.Rewriter: the sender map, applied at delivery
// so that a corrected map applies to mail already queued. relay's own
// reports keep their sender (bounce_from).
func (r *Rules) Sender(env *spool.Envelope) string {
	if env.Bounce {
		return env.Sender
	}
	s, _ := r.MapSender(env.Sender)
	return s
}

// AllowSender checks sender_login_map: whether user may submit with the
// envelope sender sender (-f, MAIL FROM). The error says which entry
// refused it.
func (r *Rules) AllowSender(user, sender string) error {
	ok, where := r.Files().Logins.Allowed(user, sender, r.Domain)
	if ok {
		return nil
	}
	s := sender
	if s == "" {
		s = "<>"
	}
	return fmt.Errorf("user %s may not send as %s (sender_login_map %s)", user, s, where)
}
