package spool

import (
	"time"

	"github.com/relaymail/relay/failure"
)

// Status is where one recipient stands.
type Status string

const (
	Pending   Status = "pending"   // not delivered yet (new or deferred)
	Delivered Status = "delivered" // the smarthost answered 250
	Failed    Status = "failed"    // refused permanently (5xx)
)

// Envelope is everything relay knows about a message besides its content.
type Envelope struct {
	ID          string      `json:"id"`
	Sender      string      `json:"sender"` // "" is the null sender <>
	Recipients  []Recipient `json:"recipients"`
	UID         int         `json:"uid"`
	User        string      `json:"user"`
	Arrival     time.Time   `json:"arrival"`
	Attempts    int         `json:"attempts"`
	NextAttempt time.Time   `json:"next_attempt"`
	// LastFailure is the failure that deferred the message at its last
	// attempt (its first deferred recipient's); nil when the last attempt
	// deferred nothing.
	LastFailure *failure.Failure `json:"last_failure,omitempty"`
	DSN         DSN              `json:"dsn,omitzero"`
	Body        string           `json:"body,omitempty"` // "7BIT" or "8BITMIME" as declared with -B; "" undeclared
	MessageID   string           `json:"message_id,omitempty"`
	Held        bool             `json:"held,omitempty"`
	// Bounce marks a delivery status notification relay made itself: it is
	// never answered with another one.
	Bounce bool `json:"bounce,omitempty"`
	// Warned: the delay warning (warn_after) was sent.
	Warned bool `json:"warned,omitempty"`
	// RateWait, when set, says that the message waits for a smarthost's
	// rate limit (not for a retry): mailq shows it. The next real attempt
	// clears it.
	RateWait *RateWait `json:"rate_wait,omitempty"`
	// RateWaited is the time the message spent waiting for rate limits in
	// all: it does not count toward the lifetime.
	RateWaited time.Duration `json:"rate_waited,omitempty"`
	// Source is how the message came in when not by the sendmail
	// command or the maildrop (Drop says that one): "smtp" for the
	// daemon's SMTP listener. For the metrics' count of received mail.
	Source string `json:"source,omitempty"`
	// Drop is the maildrop file the message was taken from (system
	// install): a pickup that finds that file still there after a crash
	// removes it instead of queueing it again (see QueuedDrops).
	Drop *DropOrigin `json:"drop,omitempty"`
	// Smarthost is the [[smarthost]] the submitter named (sendmail -a
	// NAME): every recipient goes through it alone; "" routes as usual.
	Smarthost string `json:"smarthost,omitempty"`
}

// RateWait is a message held back by the rate limit of a smarthost.
type RateWait struct {
	Smarthost string    `json:"smarthost"`
	Limit     string    `json:"limit"` // as configured, "100/h"
	Until     time.Time `json:"until"` // when a send is free again
}

// Recipient is one envelope recipient with its own delivery state.
type Recipient struct {
	Address string `json:"address"`
	// Original is the address as the submitter wrote it, when relay changed
	// it (qualification, later aliasing).
	Original string `json:"original,omitempty"`
	Status   Status `json:"status"`
	// Reply is the smarthost's reply that took the recipient
	// ("250 2.0.0 Ok: queued as …"). It stays text: it is shown, never
	// classified or explained.
	Reply string `json:"reply,omitempty"`
	// Failure is the recipient's last failure: why it is deferred or why it
	// failed; nil when it had none (new, delivered, redirected).
	Failure *failure.Failure `json:"failure,omitempty"`
	// Notified: the failure of this recipient was reported to the sender
	// (a bounce is queued), or needs no report (NOTIFY=NEVER, null sender).
	Notified bool `json:"notified,omitempty"`
}

// DSN holds the delivery status notification options of RFC 3461 given with
// sendmail's -N, -R and -V.
type DSN struct {
	Notify []string `json:"notify,omitempty"` // NEVER, or some of SUCCESS, DELAY, FAILURE
	Ret    string   `json:"ret,omitempty"`    // FULL or HDRS
	EnvID  string   `json:"envid,omitempty"`
}

// Pending reports the recipients not delivered yet and not failed.
func (e *Envelope) Pending() []*Recipient {
	var out []*Recipient
	for i := range e.Recipients {
		if e.Recipients[i].Status == Pending {
			out = append(out, &e.Recipients[i])
		}
	}
	return out
}

// Reason is the recipient's last reply or failure as one line, as mailq
// and relay queue show it ("" when it has none).
func (r Recipient) Reason() string {
	if r.Failure != nil {
		return r.Failure.Reason()
	}
	return r.Reply
}

// LastError is the last failure as one line with its stage
// ("rcpt: 452 4.2.2 Mailbox full"), as relay queue show and relay check
// show it; "" when the last attempt deferred nothing.
func (e *Envelope) LastError() string {
	if e.LastFailure == nil {
		return ""
	}
	return e.LastFailure.Error()
}

// OwnSide reports whether a pending recipient waits for relay's side or
// the account (connect, TLS, AUTH, MAIL FROM, an account condition; see
// package failure), not for itself: relay check reports such mail as
// stuck, and past lifetime it goes on hold instead of bouncing.
func (e *Envelope) OwnSide() bool {
	for i := range e.Recipients {
		if rc := &e.Recipients[i]; rc.Status == Pending && rc.Failure != nil && rc.Failure.OwnSide() {
			return true
		}
	}
	return false
}
