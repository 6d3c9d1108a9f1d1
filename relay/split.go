package relay

import (
	"fmt"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/route"
	"github.com/relaymail/relay/spool"
)

// Routing by recipient: a message whose recipients go to different
// smarthosts (recipients patterns, route.Recipient) is split into one
// transaction per group of recipients that share their candidates. The
// parts of one message go one after the other, each through its own lane
// (and its own failover), with the message locked for each part in turn:
// one worker at a time holds it, as for an unsplit message.
//
// Every recipient keeps its own state, as always: a part delivered is
// recorded at once; a part deferred, refused or rate-limited changes only
// its own recipients. The parts of one pass count as one attempt (the
// backoff does not double per part), the next attempt is the earliest
// that any part asks for, and lifetime judges each part's recipients on
// their own. A failed recipient is reported when its part is recorded (a
// bounce per part with failures, naming that part's smarthost). The next
// pass routes the pending recipients again: only the part that failed is
// retried, since the delivered ones are no longer pending.
//
// A message whose pending recipients all share their candidates is not
// split: it goes exactly as before, every pending recipient in one
// transaction.

// part is the recipients of a message that go through the same
// candidates.
type part struct {
	rcpts map[string]bool // their addresses; nil: every pending recipient
	cands []*lane
	// why is the reason when there is no candidate (cands empty).
	why func(rcpt string) string
}

// split is what the parts of one split message share in one pass.
type split struct {
	due     bool      // the message was found due: its parts go in this pass
	tried   bool      // a part made an attempt
	counted bool      // the message is counted in Stats
	next    time.Time // the earliest next attempt a part asked for
}

func (s *split) attempted() bool { return s != nil && s.tried }

func (s *split) markAttempted() {
	if s != nil {
		s.tried = true
	}
}

// earliest is the next attempt of the message when a part asks for next:
// the earliest of the parts so far.
func (s *split) earliest(next time.Time) time.Time {
	if s == nil {
		return next
	}
	if !s.next.IsZero() && s.next.Before(next) {
		next = s.next
	}
	s.next = next
	return next
}

// plan routes a message (read without the lock) and gives its parts, in
// the order of their first recipients. sender is the sender after the
// sender map.
func (ru *run) plan(env *spool.Envelope, sender string) ([]part, *split) {
	cfg := ru.r.Config
	lanesOf := func(shs []*config.Smarthost) []*lane {
		var out []*lane
		for _, sh := range shs {
			out = append(out, ru.laneOf(sh))
		}
		return out
	}
	if env.Smarthost != "" {
		// sendmail -a NAME: that smarthost for every recipient.
		p := part{}
		if sh := route.Pinned(cfg, env.Smarthost, sender); sh != nil {
			p.cands = []*lane{ru.laneOf(sh)}
		} else {
			p.why = func(string) string {
				return fmt.Sprintf("the smarthost %q named with -a is not configured, or its senders do not allow <%s>: configure it, or submit without -a", env.Smarthost, sender)
			}
		}
		return []part{p}, nil
	}
	if !ru.r.sendable(env) {
		// Only failures to report: they go with the sender's route.
		return []part{{cands: lanesOf(route.Route(cfg, sender)), why: ru.noRouteWhy(sender)}}, nil
	}
	var parts []part
	index := map[string]int{}
	for _, rc := range env.Pending() {
		shs := route.Recipient(cfg, sender, rc.Address)
		names := make([]string, len(shs))
		for i, sh := range shs {
			names[i] = sh.Name
		}
		key := strings.Join(names, "\x00")
		if i, ok := index[key]; ok {
			parts[i].rcpts[rc.Address] = true
			continue
		}
		index[key] = len(parts)
		parts = append(parts, part{rcpts: map[string]bool{rc.Address: true}, cands: lanesOf(shs), why: ru.noRouteWhy(sender)})
	}
	if len(parts) == 1 {
		parts[0].rcpts = nil // not split: every pending recipient, as ever
		return parts, nil
	}
	return parts, &split{}
}

// noRouteWhy explains a recipient that no smarthost serves.
func (ru *run) noRouteWhy(sender string) func(rcpt string) string {
	byRecipient := false
	for _, sh := range ru.r.Config.Smarthosts {
		byRecipient = byRecipient || len(sh.Recipients) > 0
	}
	return func(rcpt string) string {
		if !byRecipient {
			return fmt.Sprintf("no smarthost serves the sender <%s>: add it to the senders of a [[smarthost]], or add a [[smarthost]] without senders", sender)
		}
		return fmt.Sprintf("no smarthost serves <%s> for the sender <%s>: add it to the recipients of a [[smarthost]] the sender may use, or add a [[smarthost]] without recipients", rcpt, sender)
	}
}

// advance moves j to its next part; false when it has none.
func (j *job) advance() bool {
	if j.cur+1 >= len(j.parts) {
		return false
	}
	j.cur++
	j.cands, j.next = j.parts[j.cur].cands, 0
	return true
}

// after is what a lane returns when it is done with j's part: the job of
// the next part, if any, for the dispatcher.
func (j job) after() *job {
	if !j.advance() {
		return nil
	}
	return &j
}

// lockPart takes j's message for its current part and returns the
// recipients of the part (nil for every pending one: an unsplit message).
// l is nil when there is nothing to do; then goOn says whether the next
// part may still have work (this part's recipients are no longer
// pending) rather than none (not due, held, another runner has it). The
// message must be due when its first part is taken; a later part asks
// only whether it is held: the first part's record moved the next
// attempt.
func (ru *run) lockPart(j *job) (l *spool.Locked, rcpts []*spool.Recipient, goOn bool) {
	l = ru.lock(j.id)
	if l == nil {
		return nil, nil, false
	}
	p := j.parts[j.cur]
	if p.rcpts == nil {
		if !ru.r.due(l.Env) {
			l.Close()
			return nil, nil, false
		}
		return l, nil, false
	}
	if l.Env.Held || !j.split.due && !ru.r.due(l.Env) {
		l.Close()
		return nil, nil, false
	}
	j.split.due = true
	for _, rc := range l.Env.Pending() {
		if p.rcpts[rc.Address] {
			rcpts = append(rcpts, rc)
		}
	}
	if len(rcpts) == 0 {
		l.Close()
		return nil, nil, true
	}
	return l, rcpts, false
}

// inOutcome keeps the recipients that have a result in out.
func inOutcome(rcpts []*spool.Recipient, out *Outcome) []*spool.Recipient {
	var keep []*spool.Recipient
	for _, rc := range rcpts {
		for _, res := range out.Results {
			if res.Rcpt == rc {
				keep = append(keep, rc)
				break
			}
		}
	}
	return keep
}
