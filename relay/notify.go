package relay

import (
	"bufio"
	"fmt"
	"io"
	"mime"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/relaymail/relay/bounce"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/spool"
)

// FullReportLimit: a bounce carries the whole original message up to this
// size when the sender did not choose with -R; above it, the header only.
const FullReportLimit = 100 << 10

// unnotified returns the failed recipients whose failure was not reported
// yet.
func unnotified(env *spool.Envelope) []*spool.Recipient {
	var out []*spool.Recipient
	for i := range env.Recipients {
		if rc := &env.Recipients[i]; rc.Status == spool.Failed && !rc.Notified {
			out = append(out, rc)
		}
	}
	return out
}

// wants reports whether the sender asked for notices of this kind (RFC
// 3461 NOTIFY; without it, failures and delays).
func wants(env *spool.Envelope, kind string) bool {
	if len(env.DSN.Notify) == 0 {
		return kind != "SUCCESS"
	}
	return slices.Contains(env.DSN.Notify, kind)
}

// notify reports what the sender must learn, after the outcome is
// recorded: failed recipients in a bounce (once: each is marked notified in
// the same update that follows the queued bounce), and a delay warning
// after warn_after. relay's own bounces are never bounced: a failed one is
// redirected to postmaster, and if postmaster fails too it goes on hold.
func (r *Runner) notify(l *spool.Locked, p *pass, now time.Time) error {
	env := l.Env
	changed := false
	if failed := unnotified(env); len(failed) > 0 {
		changed = true
		switch {
		case env.Bounce || isReport(l):
			// Never a bounce of a bounce, ours or another system's.
			pm := "postmaster@" + r.Domain
			for _, rc := range failed {
				if strings.EqualFold(rc.Address, pm) {
					env.Held = true
					r.Log.Info("id", env.ID, "to", "<"+pm+">", "status", "held", "reason", "a bounce that postmaster cannot receive either: "+rc.Reason())
					continue
				}
				r.Log.Info("id", env.ID, "to", "<"+rc.Address+">", "status", "redirected", "orig_to", "<"+pm+">", "reason", rc.Reason())
				rc.Original, rc.Address = rc.Address, pm
				rc.Status, rc.Failure = spool.Pending, nil
			}
			env.NextAttempt = now
		case env.Sender == "" || !wants(env, "FAILURE"):
			for _, rc := range failed {
				rc.Notified = true
			}
		default:
			id, err := r.enqueueReport(l, bounce.Failure, failed, p, now)
			if err != nil {
				return fmt.Errorf("queueing the bounce: %w", err)
			}
			r.Log.Info("id", env.ID, "status", "bounce", "bounce_id", id, "to", "<"+env.Sender+">", "nrcpt", fmt.Sprint(len(failed)))
			if r.Observer != nil {
				r.Observer.Report("failure")
			}
			for _, rc := range failed {
				rc.Notified = true
			}
		}
	}
	warnAfter := time.Duration(r.Config.Queue.WarnAfter)
	if warnAfter > 0 && !env.Warned && !env.Bounce && env.Sender != "" && !env.Held &&
		len(env.Pending()) > 0 && now.Sub(env.Arrival) >= warnAfter && wants(env, "DELAY") {
		id, err := r.enqueueReport(l, bounce.Delay, env.Pending(), p, now)
		if err != nil {
			return fmt.Errorf("queueing the delay warning: %w", err)
		}
		r.Log.Info("id", env.ID, "status", "delay-warning", "warning_id", id, "to", "<"+env.Sender+">")
		if r.Observer != nil {
			r.Observer.Report("delay")
		}
		env.Warned, changed = true, true
	}
	if !changed {
		return nil
	}
	return l.Update()
}

// enqueueReport queues a delivery status notification about rcpts of the
// locked message to its sender, from bounce_from.
func (r *Runner) enqueueReport(l *spool.Locked, kind bounce.Kind, rcpts []*spool.Recipient, p *pass, now time.Time) (string, error) {
	env := l.Env
	from := bounceFrom(p.sh, r.Domain)
	rep := &bounce.Report{
		Kind:            kind,
		ReportingMTA:    r.HeloName,
		From:            from,
		FromName:        "Mail Delivery System",
		To:              env.Sender,
		QueueID:         env.ID,
		EnvID:           env.DSN.EnvID,
		Arrival:         env.Arrival,
		Ret:             env.DSN.Ret,
		FullLimit:       FullReportLimit,
		Original:        l.Content(),
		OriginalSize:    l.Size,
		Now:             now,
		MessageIDDomain: r.Domain,
		RetryUntil:      env.Arrival.Add(time.Duration(r.Config.Queue.Lifetime)),
	}
	for _, rc := range rcpts {
		br := bounce.RecipientOf(kind, rc.Address, rc.Original, rc.Failure)
		br.RemoteMTA, br.LastAttempt = p.sh.Host, now
		rep.Recipients = append(rep.Recipients, br)
	}
	d, err := r.Spool.NewDraft()
	if err != nil {
		return "", err
	}
	defer d.Abort()
	rcptsTo := []spool.Recipient{{Address: env.Sender, Status: spool.Pending}}
	if x, ok := r.Rewrite.(aliaser); ok {
		// A local sender (root@server1.lan) reaches a person through
		// the aliases, as its mail did.
		rcptsTo, _ = x.Recipients(rcptsTo)
	}
	benv := &spool.Envelope{
		Sender:      from,
		Recipients:  rcptsTo,
		UID:         -1,
		User:        "MAILER-DAEMON",
		Arrival:     now,
		NextAttempt: now,
		Bounce:      true,
		// The report may quote an 8-bit original.
		Body: "8BITMIME",
	}
	if err := d.WriteEnvelope(benv); err != nil {
		return "", err
	}
	if _, err := bounce.Build(d, rep); err != nil {
		return "", err
	}
	if err := d.Commit(); err != nil {
		return "", err
	}
	return d.ID, nil
}

// aliaser is a Rewriter that also expands recipients through the alias
// file (package rewrite's Rules): relay's own reports to a local sender go
// where that sender's mail goes.
type aliaser interface {
	Recipients(in []spool.Recipient) (out []spool.Recipient, nowhere []string)
}

// bounceFrom is the envelope sender of relay's reports: bounce_from, else
// the smarthost login when it is an address (providers refuse the null
// sender), else MAILER-DAEMON at the mail domain.
func bounceFrom(sh *config.Smarthost, domain string) string {
	switch {
	case sh.BounceFrom != "":
		return sh.BounceFrom
	case strings.Contains(sh.Username, "@"):
		return sh.Username
	}
	return "MAILER-DAEMON@" + domain
}

// permanentDSN is the status logged for a recipient that failed: the
// server's, or 5.4.7 for one given up after the lifetime.
func permanentDSN(f *Failure) string {
	if f.Permanent() {
		return f.DSN()
	}
	return "5.4.7"
}

// isReport reports whether the message is itself a delivery or
// disposition report, or an automatic reply (RFC 3834): such mail, from
// another system with an ordinary sender, is never answered with a bounce
// either. Mail merely auto-generated (cron) is bounced as usual.
func isReport(l *spool.Locked) bool {
	h, _ := textproto.NewReader(bufio.NewReader(io.LimitReader(l.Content(), 256<<10))).ReadMIMEHeader()
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); strings.HasPrefix(v, "auto-replied") {
		return true
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/report" {
		return false
	}
	switch strings.ToLower(params["report-type"]) {
	case "delivery-status", "global-delivery-status", "disposition-notification", "global-disposition-notification":
		return true
	}
	return false
}
