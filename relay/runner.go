package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/spool"
)

// Runner delivers the queue of one spool.
type Runner struct {
	Spool    *spool.Spool
	Config   *config.Config
	Log      *Logger
	HeloName string
	Now      func() time.Time
	// Debug receives the SMTP dialogue of every connection (nil: none).
	Debug io.Writer
}

// Stats counts what a pass did, per recipient.
type Stats struct {
	Messages, Delivered, Deferred, Failed int
}

// Run makes one delivery pass over the queue: every message that is due is
// tried once. It returns when the pass is done or ctx is cancelled (the
// message being sent is finished first: no half-sent mail).
func (r *Runner) Run(ctx context.Context) (Stats, error) {
	var st Stats
	if len(r.Config.Smarthosts) == 0 {
		return st, errors.New("no [[smarthost]] configured: mail waits in the queue")
	}
	sh := &r.Config.Smarthosts[0]
	probs, err := r.Spool.Clean(r.Now())
	if err != nil {
		return st, err
	}
	for _, p := range probs {
		r.Log.Log("spool", p.Path, "status", "cleaned", "reason", p.What)
	}
	ids, err := r.Spool.IDs()
	if err != nil {
		return st, err
	}
	var conn *Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	// down is the failure that made the smarthost unusable in this pass:
	// the rest of the queue is deferred with it, without a connection each.
	var down *Failure
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
			r.Log.Log("id", id, "status", "error", "reason", err.Error())
			continue
		}
		if !r.due(l.Env) {
			l.Close()
			continue
		}
		st.Messages++
		var out *Outcome
		if down == nil && (conn == nil || conn.Reset() != nil) {
			if conn != nil {
				conn.Close()
			}
			conn, err = Dial(ctx, sh, DialOptions{HeloName: r.HeloName, Debug: r.Debug})
			if err != nil {
				conn = nil
				down = failure(StageConnect, err)
			}
		}
		if down != nil {
			out = allDeferred(l.Env, down)
		} else {
			out, err = conn.Send(l.Env, l.Content(), l.Size)
			if err != nil {
				conn.Close()
				conn = nil
			}
		}
		if err := r.record(l, out, conn, sh); err != nil {
			r.Log.Log("id", id, "status", "error", "reason", err.Error())
		}
		l.Close()
		for _, res := range out.Results {
			switch {
			case res.Err == nil:
				st.Delivered++
			case res.Err.Permanent():
				st.Failed++
			default:
				st.Deferred++
			}
		}
	}
	return st, nil
}

func (r *Runner) due(env *spool.Envelope) bool {
	return !env.Held && !env.NextAttempt.After(r.Now()) && len(env.Pending()) > 0
}

func allDeferred(env *spool.Envelope, f *Failure) *Outcome {
	out := &Outcome{}
	for _, rc := range env.Pending() {
		out.Results = append(out.Results, RcptResult{rc, f})
	}
	return out
}

// record writes the outcome into the spool — first, before the log or the
// next message — then logs a line per recipient.
func (r *Runner) record(l *spool.Locked, out *Outcome, conn *Conn, sh *config.Smarthost) error {
	env := l.Env
	now := r.Now()
	env.Attempts++
	var lastErr string
	for _, res := range out.Results {
		switch {
		case res.Err == nil:
			res.Rcpt.Status = spool.Delivered
			res.Rcpt.Reason = out.Reply
		case res.Err.Permanent():
			res.Rcpt.Status = spool.Failed
			res.Rcpt.Reason = res.Err.ReplyLine()
		default:
			res.Rcpt.Reason = res.Err.ReplyLine()
			if lastErr == "" {
				lastErr = res.Err.Error()
			}
		}
	}
	env.LastError = lastErr
	var err error
	switch {
	case len(env.Pending()) > 0:
		env.NextAttempt = now.Add(r.backoff(env.Attempts))
		err = l.Update()
	case anyFailed(env):
		// Kept, with the reasons, until bounces are sent (or it is deleted).
		err = l.Update()
	default:
		err = l.Delete()
	}
	if err != nil {
		return fmt.Errorf("recording the outcome: %w", err)
	}
	relayField := net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port))
	reached, tlsField := "", ""
	if conn != nil {
		reached, tlsField = conn.Addr, conn.TLS
	} else if len(out.Results) > 0 && out.Results[0].Err != nil {
		reached = out.Results[0].Err.Addr
	}
	if ip, port, err := net.SplitHostPort(reached); err == nil {
		relayField = sh.Host + "[" + ip + "]:" + port
	}
	for _, res := range out.Results {
		kv := []string{"id", env.ID, "to", "<" + res.Rcpt.Address + ">", "relay", relayField}
		if tlsField != "" {
			kv = append(kv, "tls", tlsField)
		}
		kv = append(kv, "delay", fmtDelay(now.Sub(env.Arrival)), "attempt", strconv.Itoa(env.Attempts))
		switch {
		case res.Err == nil:
			kv = append(kv, "status", "sent", "dsn", "2.0.0", "reply", out.Reply)
		case res.Err.Permanent():
			kv = append(kv, "status", "bounced", "dsn", res.Err.DSN(), "reply", res.Err.ReplyLine())
		default:
			kv = append(kv, "status", "deferred", "dsn", res.Err.DSN(), "reply", res.Err.ReplyLine(), "stage", string(res.Err.Stage))
		}
		r.Log.Log(kv...)
	}
	return nil
}

func anyFailed(env *spool.Envelope) bool {
	for _, rc := range env.Recipients {
		if rc.Status == spool.Failed {
			return true
		}
	}
	return false
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
