package relay

import (
	"strconv"
	"time"

	"github.com/relaymail/relay/spool"
)

// takeRate takes a send of ln's rate limit for the message about to go:
// slot is its time (zero without a limit), to give back if the message
// never reaches the smarthost. A non-zero wait says the limit is used up
// until then: the message must wait.
func (ru *run) takeRate(ln *lane) (slot, wait time.Time) {
	lim := ln.sh.RateLimit
	if lim.IsZero() {
		return time.Time{}, time.Time{}
	}
	now := ru.r.Now()
	ln.mu.Lock()
	full := ln.rateFull
	ln.mu.Unlock()
	if now.Before(full) {
		return time.Time{}, full // known in this pass: no need to look
	}
	wait, err := ru.r.Spool.TakeRate(ln.sh.Name, lim.N, lim.Per, now)
	if err != nil {
		// Without its record the limit cannot be kept: wait a little
		// rather than risk the account.
		ru.r.Log.Error("relay", ln.sh.Name, "status", "error", "reason", err.Error())
		return time.Time{}, now.Add(time.Duration(ru.r.Config.Queue.RetryMin))
	}
	if !wait.IsZero() {
		ln.mu.Lock()
		ln.rateFull = wait
		ln.mu.Unlock()
		return time.Time{}, wait
	}
	return now, time.Time{}
}

// returnRate gives a send back (the connection failed before the message
// went).
func (ru *run) returnRate(ln *lane, slot time.Time) {
	if slot.IsZero() {
		return
	}
	if err := ru.r.Spool.ReturnRate(ln.sh.Name, slot); err != nil {
		ru.r.Log.Error("relay", ln.sh.Name, "status", "error", "reason", err.Error())
	}
}

// holdForRate makes a message wait for ln's rate limit until until. It is
// no attempt: attempts, reasons and the retry backoff stay as they were,
// and the time waited (RateWaited) does not count toward the lifetime.
//
// rcpts are the recipients that wait (nil: every pending one); a part of
// a split message (sp) leaves the next attempt to the other parts when
// they ask for an earlier one.
func (ru *run) holdForRate(l *spool.Locked, ln *lane, until time.Time, rcpts []*spool.Recipient, sp *split) {
	r := ru.r
	env := l.Env
	now := r.Now()
	// Count each stretch of waiting once, also when a pass re-holds a
	// message whose wait has not ended (sendmail --wait).
	from := now
	if env.RateWait != nil && env.RateWait.Until.After(from) {
		from = env.RateWait.Until
	}
	if until.After(from) {
		env.RateWaited += until.Sub(from)
	}
	env.RateWait = &spool.RateWait{Smarthost: ln.sh.Name, Limit: ln.sh.RateLimit.String(), Until: until}
	if until.After(env.NextAttempt) {
		env.NextAttempt = until
	}
	if sp != nil {
		env.NextAttempt = sp.earliest(until)
	}
	if err := l.Update(); err != nil {
		r.Log.Error("id", env.ID, "status", "error", "reason", "recording the rate-limit wait: "+err.Error())
	}
	if rcpts == nil {
		rcpts = env.Pending()
	}
	n := len(rcpts)
	if r.Observer != nil {
		r.Observer.RateLimited(ln.sh.Name)
	}
	r.Log.Info("id", env.ID, "relay", ln.sh.Name, "status", "rate-limited", "rate_limit", ln.sh.RateLimit.String(),
		"until", until.Format(time.RFC3339), "nrcpt", strconv.Itoa(n))
	ru.mu.Lock()
	if sp == nil || !sp.counted {
		ru.st.Messages++
		if sp != nil {
			sp.counted = true
		}
	}
	ru.st.Waiting += n
	ru.mu.Unlock()
}
