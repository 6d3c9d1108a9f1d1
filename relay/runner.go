package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/route"
	"github.com/relaymail/relay/spool"
)

// Runner delivers the queue of one spool.
type Runner struct {
	Spool    *spool.Spool
	Config   *config.Config
	Log      *Logger
	HeloName string
	// Domain is the mail domain: postmaster@Domain receives bounces that
	// cannot be delivered.
	Domain string
	Now    func() time.Time
	// Debug receives the SMTP dialogue of every connection (nil: none).
	Debug io.Writer
	// Only restricts the pass to these messages (sendmail --wait, -v);
	// nil means the whole queue.
	Only []string
	// Rewrite changes sender and headers at delivery time (nil: none).
	Rewrite Rewriter
	// Observer is told what delivery does, for metrics (nil: nobody).
	Observer Observer
	// KeepConnections, when positive, keeps the connections a pass leaves
	// open for the next pass under the same context, for that long (a
	// runner that makes pass after pass saves a TLS handshake and AUTH
	// each time); Close closes them at once. Zero: every pass closes its
	// connections at its end.
	KeepConnections time.Duration

	idle *idleConns
	mem  *memory // outcomes the spool could not record (see unrecorded.go)
}

// Close closes the connections kept for a next pass (KeepConnections).
func (r *Runner) Close() {
	if r.idle != nil {
		r.closeIdle()
	}
}

// Stats counts what a pass did, per recipient.
type Stats struct {
	Messages, Delivered, Deferred, Failed, Held int
	// Waiting counts recipients held back by a smarthost's rate limit:
	// no attempt was made, they go when the limit allows.
	Waiting int
	// Unrecorded counts messages whose outcome the spool could not
	// record (counted nowhere else): delivery paused (see unrecorded.go).
	Unrecorded int
}

// pass is one message's way through one smarthost: what recording the
// outcome, the log and the reports need to know about it.
type pass struct {
	sh   *config.Smarthost
	conn *Conn
	// down is the failure that made the smarthost unusable, in this pass
	// or remembered from an earlier one: the message was deferred with it,
	// without a connection of its own, until downUntil.
	down      *Failure
	downUntil time.Time
	// noRoute: no smarthost serves the sender; sh is only where reports
	// would go.
	noRoute bool
	// split is set when the message's recipients go to different
	// smarthosts and this pass is one part of it (see split.go).
	split *split
}

// Run makes one delivery pass over the queue: every message that is due is
// tried once (see "Several smarthosts, parallel connections" in the package
// documentation). It returns when the pass is done or ctx is cancelled: a
// cancel closes the connections at once, and a transaction it cuts leaves
// its message queued as it was, never half-sent; a transaction whose final
// dot is out ends with its reply, recorded, first (see DialOptions.Abort).
func (r *Runner) Run(ctx context.Context) (Stats, error) {
	if len(r.Config.Smarthosts) == 0 {
		return Stats{}, errors.New("no [[smarthost]] configured: mail waits in the queue")
	}
	probs, err := r.Spool.Clean(r.Now())
	if err != nil {
		return Stats{}, err
	}
	for _, pr := range probs {
		r.Log.Info("spool", pr.Path, "status", "cleaned", "reason", pr.What)
	}
	ids := r.Only
	if ids == nil && r.remembers() {
		if ids, err = r.Spool.IDs(); err != nil {
			return Stats{}, err
		}
	}
	if err := r.checkSpool(ids); err != nil {
		return Stats{}, err
	}
	ru := r.newRun(ctx)
	if r.Only != nil {
		for _, id := range ids {
			if ctx.Err() != nil || r.stuck() != nil {
				break
			}
			ru.dispatchRedone()
			ru.dispatch(job{id: id})
		}
	} else {
		// The whole queue: one Scan reads every envelope (from the
		// index, see package spool) while the lanes deliver, so the
		// dispatcher neither opens a file per message to find the due
		// ones nor waits for a read before handing a message on. The
		// worker checks again under the message's lock.
		errStop := errors.New("stop")
		err = r.Spool.Scan(func(id string, m *spool.Message, err error) error {
			if ctx.Err() != nil || r.stuck() != nil {
				return errStop
			}
			ru.dispatchRedone()
			switch {
			case err != nil:
				ru.dispatch(job{id: id}) // reported, moved aside when corrupt
			case !m.Active:
				ru.dispatch(job{id: id, env: &m.Envelope})
			}
			return nil
		})
		if err != nil && err != errStop {
			ru.wait()
			if serr := r.Spool.SyncRemovals(); serr != nil {
				r.Log.Error("status", "error", "reason", serr.Error())
			}
			return ru.st, err
		}
	}
	ru.wait()
	if err := r.Spool.SyncRemovals(); err != nil {
		// The messages are gone from the queue; whether a power failure
		// could bring some back (to be sent again) is not known.
		r.Log.Error("status", "error", "reason", err.Error())
	}
	if ru.st.Unrecorded > 0 {
		return ru.st, fmt.Errorf("the outcome of %d message(s) could not be recorded (%v): delivery paused until the spool takes writes again; this process remembers who has the mail", ru.st.Unrecorded, r.stuck())
	}
	return ru.st, nil
}

// due reports whether a message has work to do now: pending recipients
// whose time has come, or failures not yet reported to the sender.
func (r *Runner) due(env *spool.Envelope) bool {
	if env.Held {
		return false
	}
	return r.sendable(env) || len(unnotified(env)) > 0
}

// sendable reports whether a message has pending recipients whose time
// has come. A pass over named messages (sendmail --wait) does not wait for
// their next attempt time.
func (r *Runner) sendable(env *spool.Envelope) bool {
	return len(env.Pending()) > 0 && (r.Only != nil || !env.NextAttempt.After(r.Now()))
}

// sendVia runs the transaction of a locked message over conn, through
// sh: the sender map's sender (Rewrite.Sender) was routed to sh, whose
// envelope_from or preset rule gives the envelope sender that goes out
// (route.OutgoingSender), then the header changes for sh apply (Rewrite.Content).
// A non-nil error means conn is no longer usable.
//
// rcpts are the recipients of this transaction (nil: every pending one).
func (r *Runner) sendVia(conn *Conn, sh *config.Smarthost, l *spool.Locked, rcpts []*spool.Recipient) (*Outcome, error) {
	sender := l.Env.Sender
	if r.Rewrite != nil {
		sender = r.Rewrite.Sender(l.Env)
	}
	sender, _ = route.OutgoingSender(sh, sender)
	content := io.Reader(l.Content())
	if r.Rewrite != nil {
		content = r.Rewrite.Content(l.Env, sh, sender, content)
	}
	if rcpts == nil {
		rcpts = l.Env.Pending()
	}
	return conn.SendTo(l.Env, rcpts, sender, content, l.Size)
}

// ownSide reports whether one of rcpts waits for relay's own side or the
// account (spool.Envelope.OwnSide, for some recipients).
func ownSide(rcpts []*spool.Recipient) bool {
	for _, rc := range rcpts {
		if rc.Failure != nil && rc.Failure.OwnSide() {
			return true
		}
	}
	return false
}

// allDeferred defers rcpts (nil: every pending recipient of env) with f.
func allDeferred(env *spool.Envelope, rcpts []*spool.Recipient, f *Failure) *Outcome {
	if rcpts == nil {
		rcpts = env.Pending()
	}
	out := &Outcome{}
	for _, rc := range rcpts {
		out.Results = append(out.Results, RcptResult{rc, f})
	}
	return out
}

// record writes the outcome into the spool — delivered recipients first,
// before anything else — then reports failures to the sender, then logs a
// line per recipient.
func (r *Runner) record(l *spool.Locked, out *Outcome, p *pass) error {
	env := l.Env
	now := r.Now()
	q := r.Config.Queue
	diskNext := env.NextAttempt
	// A transaction cut by a stop (ErrAborted) is no attempt: its
	// recipients stay as they were, due as before.
	attempted := false // else the pass only reports failures
	for _, res := range out.Results {
		attempted = attempted || res.Err == nil || !errors.Is(res.Err, ErrAborted)
	}
	// The parts of a split message (split.go) make one attempt together.
	if attempted && !p.split.attempted() {
		env.Attempts++
		env.LastFailure = nil
		env.RateWait = nil
	}
	if attempted {
		p.split.markAttempted()
	}
	for _, res := range out.Results {
		switch {
		case res.Err != nil && errors.Is(res.Err, ErrAborted):
			// untouched
		case res.Err == nil:
			res.Rcpt.Status = spool.Delivered
			res.Rcpt.Reply, res.Rcpt.Failure = out.Reply, nil
		case res.Err.Permanent() && !q.SoftBounce:
			res.Rcpt.Status = spool.Failed
			res.Rcpt.Failure = res.Err.Stored(now)
		default:
			res.Rcpt.Failure = res.Err.Stored(now)
			if env.LastFailure == nil {
				env.LastFailure = res.Rcpt.Failure
			}
		}
	}
	// Past the lifetime: mail that waits for relay's own side or the
	// account goes on hold (fix it, then release); a recipient the
	// smarthost keeps deferring is given up and reported.
	// Time spent waiting for a rate limit does not count.
	// A part of a split message judges only its own recipients: the
	// others have their own smarthost and their own part.
	pending := env.Pending()
	if p.split != nil {
		pending = inOutcome(pending, out)
	}
	if len(pending) > 0 && q.Lifetime > 0 && now.Sub(env.Arrival)-env.RateWaited >= time.Duration(q.Lifetime) {
		if ownSide(pending) || env.Bounce {
			env.Held = true
		} else {
			for _, rc := range pending {
				rc.Status = spool.Failed
				var gaveUp Failure
				if rc.Failure != nil {
					gaveUp = *rc.Failure
				}
				gaveUp.GaveUpAfter = config.Duration(q.Lifetime).String()
				rc.Failure = &gaveUp
			}
		}
	}
	if attempted && len(env.Pending()) > 0 && !env.Held {
		next := now.Add(r.backoff(env.Attempts))
		if p.down != nil && p.downUntil.After(next) {
			next = p.downUntil
		}
		env.NextAttempt = p.split.earliest(next)
	}
	if len(env.Pending()) == 0 && len(unnotified(env)) == 0 && !env.Held {
		// Done: removing the message is the record (durable once the
		// queue directory is synced, which the next messages' removals
		// share and Run waits for: spool.DeleteSoon), with nothing to
		// report; the new envelope need not be written first.
		err := l.DeleteSoon()
		r.logOutcome(env, out, p)
		if err != nil {
			r.remember(env, diskNext, err)
			return fmt.Errorf("%w: %w", errNotRecorded, err)
		}
		r.forget(env.ID)
		return nil
	}
	if err := l.Update(); err != nil {
		// The spool still holds the old envelope: this process remembers
		// the outcome instead and stops delivering (unrecorded.go).
		r.remember(env, diskNext, err)
		r.logOutcome(env, out, p)
		return fmt.Errorf("%w: %w", errNotRecorded, err)
	}
	r.forget(env.ID)
	r.logOutcome(env, out, p)

	if err := r.notify(l, p, now); err != nil {
		// The report waits in the envelope (not notified yet); trying to
		// queue it again at every pass would only fail again: pause as
		// for an outcome not recorded.
		r.pause(err)
		return fmt.Errorf("%w: %w", errNotRecorded, err)
	}
	if len(env.Pending()) == 0 && len(unnotified(env)) == 0 && !env.Held {
		// Every recipient delivered, or failed and reported.
		return l.Delete()
	}
	return nil
}

func (r *Runner) logOutcome(env *spool.Envelope, out *Outcome, p *pass) {
	sh := p.sh
	relayField := net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port))
	if p.noRoute {
		relayField = "none"
	}
	reached, tlsField := "", ""
	if p.conn != nil {
		reached, tlsField = p.conn.Addr, p.conn.TLS
	} else if len(out.Results) > 0 && out.Results[0].Err != nil {
		reached = out.Results[0].Err.Addr
	}
	if ip, port, err := net.SplitHostPort(reached); err == nil {
		relayField = sh.Host + "[" + ip + "]:" + port
	}
	via := ""
	if sh.Proxy != "" && !p.noRoute {
		via = config.MaskProxy(sh.Proxy)
	}
	now := r.Now()
	for _, res := range out.Results {
		kv := []string{"id", env.ID, "to", "<" + res.Rcpt.Address + ">", "relay", relayField}
		if via != "" {
			kv = append(kv, "via", via)
		}
		if tlsField != "" {
			kv = append(kv, "tls", tlsField)
		}
		kv = append(kv, "delay", fmtDelay(now.Sub(env.Arrival)), "attempt", strconv.Itoa(env.Attempts))
		var status string
		switch {
		case res.Err == nil:
			status = "sent"
			kv = append(kv, "status", status, "dsn", "2.0.0", "reply", out.Reply)
		case res.Rcpt.Status == spool.Failed:
			status = "bounced"
			kv = append(kv, "status", status, "dsn", permanentDSN(res.Err), "reply", res.Err.ReplyLine())
			kv = withHint(kv, res.Err)
		case env.Held:
			status = "held"
			kv = append(kv, "status", status, "dsn", res.Err.DSN(), "reply", res.Err.ReplyLine())
			kv = append(withHint(kv, res.Err), "stage", string(res.Err.Stage))
		default:
			// soft_bounce defers a 5xx: the log still says 4.x.x.
			dsn := res.Err.DSN()
			if strings.HasPrefix(dsn, "5.") {
				dsn = "4." + dsn[2:]
			}
			status = "deferred"
			kv = append(kv, "status", status, "dsn", dsn, "reply", res.Err.ReplyLine())
			kv = append(withHint(kv, res.Err), "stage", string(res.Err.Stage))
		}
		if r.Observer != nil {
			name := sh.Name
			if p.noRoute {
				name = "none"
			}
			r.Observer.Recipient(name, status, now.Sub(env.Arrival))
		}
		// Failures of relay's own side or the account are errors: they
		// hold up all mail until someone acts.
		level := maillog.Info
		if res.Err != nil && res.Err.OwnSide() {
			level = maillog.Error
		}
		r.Log.Log(level, kv...)
	}
}

// withHint adds the plain explanation of a failure (see Explain), when the
// table has one.
func withHint(kv []string, f *Failure) []string {
	if h := Explain(f); h != "" {
		kv = append(kv, "hint", h)
	}
	return kv
}

// backoff is retry_min doubled per attempt, at most retry_max.
func (r *Runner) backoff(attempts int) time.Duration {
	lo, hi := time.Duration(r.Config.Queue.RetryMin), time.Duration(r.Config.Queue.RetryMax)
	d := lo
	for i := 1; i < attempts && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// hostAddr names what a remembered host state is about: every setting that
// decides whether a connection to the smarthost works. A state recorded
// under another name is void, so a corrected configuration is tried at
// once rather than after the outage's backoff. The name is the address in
// clear (host, port, TLS mode, the proxy masked) and a digest of the rest:
// tls_fingerprint, tls_server_name, tls_min_version, username, auth,
// password_command, whether an inline password is set, source_address,
// ip_family and the name given in EHLO (helo, the smarthost's helo_name,
// else the runner's: the top-level helo_name, domain or the host name),
// the [smarthost.oauth] settings, and
// tls_ca_file, tls_client_cert, tls_client_key, password_file,
// client_secret_file, service_account_file and the OAuth token file by
// path, size, modification time and inode (an edit in place or a replaced file
// counts: relay oauth login ends a wait on a refused grant). No secret
// goes into it, not even as part of a digest: neither an inline password
// nor a proxy's, nor any file's contents; a change of those alone waits
// for the backoff or relay queue flush.
func hostAddr(sh *config.Smarthost, helo string) string {
	a := net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port)) + "/" + sh.TLS
	if sh.Proxy != "" {
		a += "/" + config.MaskProxy(sh.Proxy)
	}
	h := sha256.New()
	for _, v := range []string{sh.TLSFingerprint, sh.TLSServerName, sh.TLSMinVersion, sh.Username, sh.Auth,
		strings.Join(sh.PasswordCommand, "\x00"), strconv.FormatBool(sh.Password != "")} {
		fmt.Fprintf(h, "%q\n", v)
	}
	if o := sh.OAuth; sh.UsesOAuth() {
		// A new login rewrites the token file: its version counts, so
		// that mail waiting on a refused grant goes at once after it.
		for _, v := range append([]string{o.Provider, o.Flow, o.ClientID, o.Tenant, o.Subject,
			o.DeviceAuthorizationURL, o.AuthorizationURL, o.TokenURL}, o.Scopes...) {
			fmt.Fprintf(h, "%q\n", v)
		}
		for _, f := range []string{o.ClientSecretFile, o.ServiceAccountFile, o.TokenFile} {
			fmt.Fprintf(h, "%q %s\n", f, fileVersion(f))
		}
	}
	for _, f := range []string{sh.TLSCAFile, sh.TLSClientCert, sh.TLSClientKey, sh.PasswordFile} {
		fmt.Fprintf(h, "%q %s\n", f, fileVersion(f))
	}
	// The connection's own side, written only when set, so that the
	// states of smarthosts without them keep their names. The EHLO name
	// is the one the connection gives: a smarthost that refused it is
	// tried again at once after a change of the top-level helo_name too.
	if sh.HeloName != "" {
		helo = sh.HeloName
	}
	for _, v := range []string{sh.SourceAddress, sh.IPFamily, helo} {
		if v != "" {
			fmt.Fprintf(h, "own %q\n", v)
		}
	}
	return a + " settings=" + hex.EncodeToString(h.Sum(nil)[:8])
}

// fileVersion names the version of the file at path that a connection
// would read: its size, modification time and inode ("" for no file, "-"
// when it cannot be looked at).
func fileVersion(path string) string {
	if path == "" {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "-"
	}
	v := fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		v += fmt.Sprintf(" %d:%d", st.Dev, st.Ino)
	}
	return v
}

// Due reports whether the queue holds work for a pass now: a due message,
// or (with maildrop) a drop to pick up.
func (r *Runner) Due(maildrop bool) bool {
	if maildrop {
		if names, err := r.Spool.Drops(r.Now()); err == nil && len(names) > 0 {
			return true
		}
	}
	if r.stuck() != nil {
		return false // the next pass would do nothing: see unrecorded.go
	}
	errDue := errors.New("due")
	err := r.Spool.Scan(func(_ string, m *spool.Message, err error) error {
		if err == nil {
			r.recall(&m.Envelope)
		}
		if err == nil && !m.Active && r.due(&m.Envelope) {
			return errDue
		}
		return nil
	})
	return err == errDue
}
