package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/maillog"
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
}

// Stats counts what a pass did, per recipient.
type Stats struct {
	Messages, Delivered, Deferred, Failed, Held int
}

// pass is the state of one delivery pass through one smarthost.
type pass struct {
	sh   *config.Smarthost
	conn *Conn
	// down is the failure that made the smarthost unusable, in this pass
	// or remembered from an earlier one; until then every due message is
	// deferred with it, without a connection of its own.
	down      *Failure
	downUntil time.Time
	host      spool.HostState
}

// Run makes one delivery pass over the queue: every message that is due is
// tried once. It returns when the pass is done or ctx is cancelled: a
// cancel closes the connection at once, and the transaction it cuts leaves
// its message queued as it was (see DialOptions.Abort), never half-sent.
func (r *Runner) Run(ctx context.Context) (Stats, error) {
	var st Stats
	if len(r.Config.Smarthosts) == 0 {
		return st, errors.New("no [[smarthost]] configured: mail waits in the queue")
	}
	p := &pass{sh: &r.Config.Smarthosts[0]}
	p.host = r.Spool.Host(p.sh.Name)
	if p.host.Addr != hostAddr(p.sh) {
		p.host = spool.HostState{} // about an address no longer configured
	}
	if r.Now().Before(p.host.DownUntil) {
		p.down = &Failure{Stage: StageConnect, Err: fmt.Errorf("%s is down until %s (%s)", p.sh.Name, p.host.DownUntil.Format(time.RFC3339), p.host.Reason)}
		p.downUntil = p.host.DownUntil
	}
	defer func() {
		if p.conn != nil {
			p.conn.Close()
		}
	}()

	probs, err := r.Spool.Clean(r.Now())
	if err != nil {
		return st, err
	}
	for _, pr := range probs {
		r.Log.Info("spool", pr.Path, "status", "cleaned", "reason", pr.What)
	}
	ids := r.Only
	if ids == nil {
		if ids, err = r.Spool.IDs(); err != nil {
			return st, err
		}
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		if m, err := r.Spool.Read(id); err == nil && !r.due(&m.Envelope) {
			continue // cheap check without the lock
		}
		l, err := r.Spool.Lock(id)
		if errors.Is(err, spool.ErrBusy) || errors.Is(err, spool.ErrNotFound) {
			continue
		}
		if err != nil {
			r.Log.Error("id", id, "status", "error", "reason", err.Error())
			continue
		}
		if r.due(l.Env) {
			r.deliver(ctx, p, l, &st)
		}
		l.Close()
	}
	return st, nil
}

// due reports whether a message has work to do now: pending recipients
// whose time has come, or failures not yet reported to the sender.
func (r *Runner) due(env *spool.Envelope) bool {
	if env.Held {
		return false
	}
	// A pass over named messages (sendmail --wait) does not wait for their
	// next attempt time.
	return len(env.Pending()) > 0 && (r.Only != nil || !env.NextAttempt.After(r.Now())) || len(unnotified(env)) > 0
}

// deliver tries one locked message and records the outcome.
func (r *Runner) deliver(ctx context.Context, p *pass, l *spool.Locked, st *Stats) {
	st.Messages++
	var out *Outcome
	if len(l.Env.Pending()) > 0 && (r.Only != nil || !l.Env.NextAttempt.After(r.Now())) {
		out = r.send(ctx, p, l)
	} else {
		out = &Outcome{} // only failures to report
	}
	if err := r.record(l, out, p); err != nil {
		r.Log.Error("id", l.Env.ID, "status", "error", "reason", err.Error())
	}
	for _, res := range out.Results {
		switch {
		case res.Err == nil:
			st.Delivered++
		case res.Rcpt.Status == spool.Failed:
			st.Failed++
		default:
			st.Deferred++
		}
	}
	if l.Env.Held {
		st.Held++
	}
}

// send runs the transaction over the pass's connection, dialing when there
// is none, or defers everything when the smarthost is down.
func (r *Runner) send(ctx context.Context, p *pass, l *spool.Locked) *Outcome {
	if p.down == nil && (p.conn == nil || p.conn.Reset() != nil) {
		if p.conn != nil {
			p.conn.Close()
		}
		var err error
		p.conn, err = Dial(ctx, p.sh, DialOptions{HeloName: r.HeloName, Debug: r.Debug, Abort: ctx})
		if err != nil && ctx.Err() != nil {
			// Stopping is not an outage of the smarthost.
			p.conn = nil
			return allDeferred(l.Env, &Failure{Stage: StageConnect, Err: ErrAborted})
		}
		if err != nil {
			p.conn = nil
			p.down = failure(StageConnect, err)
			p.host.Addr = hostAddr(p.sh)
			p.host.Failures++
			p.host.Reason = p.down.ReplyLine()
			p.downUntil = r.Now().Add(r.backoff(p.host.Failures))
			p.host.DownUntil = p.downUntil
			if err := r.Spool.SetHost(p.sh.Name, p.host); err != nil {
				r.Log.Error("relay", p.sh.Name, "status", "error", "reason", err.Error())
			}
		} else if p.host != (spool.HostState{}) {
			p.host = spool.HostState{}
			r.Spool.SetHost(p.sh.Name, p.host)
		}
	}
	if p.down != nil {
		return allDeferred(l.Env, p.down)
	}
	sender, content := l.Env.Sender, io.Reader(l.Content())
	if r.Rewrite != nil {
		sender = r.Rewrite.Sender(l.Env)
		content = r.Rewrite.Content(l.Env, p.sh, sender, content)
	}
	out, err := p.conn.Send(l.Env, sender, content, l.Size)
	if err != nil {
		p.conn.Close()
		p.conn = nil
	}
	return out
}

func allDeferred(env *spool.Envelope, f *Failure) *Outcome {
	out := &Outcome{}
	for _, rc := range env.Pending() {
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
	// A transaction cut by a stop (ErrAborted) is no attempt: its
	// recipients stay as they were, due as before.
	attempted := false // else the pass only reports failures
	for _, res := range out.Results {
		attempted = attempted || res.Err == nil || !errors.Is(res.Err, ErrAborted)
	}
	if attempted {
		env.Attempts++
		env.LastError, env.OwnSide = "", false
	}
	for _, res := range out.Results {
		switch {
		case res.Err != nil && errors.Is(res.Err, ErrAborted):
			// untouched
		case res.Err == nil:
			res.Rcpt.Status = spool.Delivered
			res.Rcpt.Reason = out.Reply
		case res.Err.Permanent() && !q.SoftBounce:
			res.Rcpt.Status = spool.Failed
			res.Rcpt.Reason = res.Err.ReplyLine()
		default:
			res.Rcpt.Reason = res.Err.ReplyLine()
			if env.LastError == "" {
				env.LastError = res.Err.Error()
			}
			env.OwnSide = env.OwnSide || res.Err.OwnSide()
		}
	}
	// Past the lifetime: mail that waits for relay's own side or the
	// account goes on hold (fix it, then release); a recipient the
	// smarthost keeps deferring is given up and reported.
	if pending := env.Pending(); len(pending) > 0 && q.Lifetime > 0 && now.Sub(env.Arrival) >= time.Duration(q.Lifetime) {
		if env.OwnSide || env.Bounce {
			env.Held = true
		} else {
			for _, rc := range pending {
				rc.Status = spool.Failed
				rc.Reason = "gave up after " + config.Duration(q.Lifetime).String() + ": " + rc.Reason
			}
		}
	}
	if attempted && len(env.Pending()) > 0 && !env.Held {
		next := now.Add(r.backoff(env.Attempts))
		if p.down != nil && p.downUntil.After(next) {
			next = p.downUntil
		}
		env.NextAttempt = next
	}
	if err := l.Update(); err != nil {
		return fmt.Errorf("recording the outcome: %w", err)
	}
	r.logOutcome(env, out, p)

	if err := r.notify(l, p, now); err != nil {
		return err
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
	if sh.Proxy != "" {
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
		switch {
		case res.Err == nil:
			kv = append(kv, "status", "sent", "dsn", "2.0.0", "reply", out.Reply)
		case res.Rcpt.Status == spool.Failed:
			kv = append(kv, "status", "bounced", "dsn", permanentDSN(res.Err), "reply", res.Err.ReplyLine())
			kv = withHint(kv, res.Err)
		case env.Held:
			kv = append(kv, "status", "held", "dsn", res.Err.DSN(), "reply", res.Err.ReplyLine())
			kv = append(withHint(kv, res.Err), "stage", string(res.Err.Stage))
		default:
			// soft_bounce defers a 5xx: the log still says 4.x.x.
			dsn := res.Err.DSN()
			if strings.HasPrefix(dsn, "5.") {
				dsn = "4." + dsn[2:]
			}
			kv = append(kv, "status", "deferred", "dsn", dsn, "reply", res.Err.ReplyLine())
			kv = append(withHint(kv, res.Err), "stage", string(res.Err.Stage))
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

// hostAddr names what a remembered host state is about: a change of host,
// port, TLS mode or proxy voids it (the proxy masked: no secret in the
// spool).
func hostAddr(sh *config.Smarthost) string {
	a := net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port)) + "/" + sh.TLS
	if sh.Proxy != "" {
		a += "/" + config.MaskProxy(sh.Proxy)
	}
	return a
}

// Due reports whether the queue holds work for a pass now: a due message,
// or (with maildrop) a drop to pick up.
func (r *Runner) Due(maildrop bool) bool {
	if maildrop {
		if names, err := r.Spool.Drops(r.Now()); err == nil && len(names) > 0 {
			return true
		}
	}
	ids, err := r.Spool.IDs()
	if err != nil {
		return false
	}
	for _, id := range ids {
		if m, err := r.Spool.Read(id); err == nil && !m.Active && r.due(&m.Envelope) {
			return true
		}
	}
	return false
}
