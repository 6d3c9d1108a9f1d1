package failure

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Stage is the step of a delivery at which something failed.
type Stage string

const (
	StageConnect  Stage = "connect"
	StageTLS      Stage = "tls"
	StageGreeting Stage = "greeting"
	StageEHLO     Stage = "ehlo"
	StageAuth     Stage = "auth"
	StageMail     Stage = "mail"
	StageRcpt     Stage = "rcpt"
	StageData     Stage = "data"
	StageLocal    Stage = "local" // relay's own side: password, spool read
)

// Stages lists every stage, in the order of an SMTP session.
var Stages = []Stage{StageLocal, StageConnect, StageTLS, StageGreeting, StageEHLO, StageAuth, StageMail, StageRcpt, StageData}

// Failure is why one step of a delivery failed: a reply of the smarthost
// (Code > 0) or an error without one (network, TLS, timeout, local). It is
// an error while relay delivers, and the record of a recipient's last
// failure in the spool (the fields with a JSON name).
type Failure struct {
	// Stage is where the session failed; "" when unknown.
	Stage Stage `json:"stage,omitempty"`
	// Code is the SMTP reply code; 0 without a reply.
	Code int `json:"code,omitempty"`
	// Enhanced is the enhanced status code such as "5.7.1", when given.
	Enhanced string `json:"enhanced,omitempty"`
	// Text is the reply text, lines joined with "; ", or the error's text
	// when there was no reply (while delivering, Err may stand for it).
	Text string `json:"text,omitempty"`
	// Time is when the failure happened (zero: not known, as in failures
	// converted from spool format 1).
	Time time.Time `json:"time,omitzero"`
	// GaveUpAfter, when set, says that relay stopped retrying after the
	// lifetime, as configured ("5d"): the recipient failed because of
	// that, not because the smarthost refused it for good.
	GaveUpAfter string `json:"gave_up_after,omitempty"`
	// Cause, on a failure that skipped the connection because its
	// smarthost is remembered as down (package relay), is the failure
	// that took the smarthost down: what the explanation is about.
	Cause *Failure `json:"cause,omitempty"`

	// Err is the error when there was no reply; it is not stored (its Go
	// type, which the explanations look at, does not survive the spool).
	Err error `json:"-"`
	// Addr is the address reached ("ip:port") when the failure came after
	// the TCP connection was made; "" before. Not stored.
	Addr string `json:"-"`
}

func (f *Failure) Error() string {
	if f.Stage == "" {
		return f.ReplyLine()
	}
	return string(f.Stage) + ": " + f.ReplyLine()
}

func (f *Failure) Unwrap() error { return f.Err }

// text is Text, or the error's text when the failure is live and was
// made from an error alone.
func (f *Failure) text() string {
	if f.Text == "" && f.Err != nil {
		return f.Err.Error()
	}
	return f.Text
}

// ReplyLine is the reply as one line: "553 5.7.1 Sender address rejected";
// for a failure without a reply, the error's text.
func (f *Failure) ReplyLine() string {
	if f.Code == 0 {
		return f.text()
	}
	s := fmt.Sprint(f.Code)
	if f.Enhanced != "" && !strings.HasPrefix(f.Text, f.Enhanced) {
		s += " " + f.Enhanced
	}
	return s + " " + f.Text
}

// Reason is the failure as mailq and relay queue show it: the reply line,
// after "gave up after LIFETIME: " once relay gave up.
func (f *Failure) Reason() string {
	if f.GaveUpAfter != "" {
		return "gave up after " + f.GaveUpAfter + ": " + f.ReplyLine()
	}
	return f.ReplyLine()
}

// Stored is the failure as the spool keeps it: the error's text in Text,
// the time it happened, nothing that does not survive a restart.
func (f *Failure) Stored(at time.Time) *Failure {
	s := *f
	s.Text = f.text()
	s.Time = at
	s.Err, s.Addr = nil, ""
	return &s
}

// Permanent reports whether the failure refuses a recipient for good: a
// 5xx at RCPT (552 excepted, RFC 5321 4.5.3.1.10) or at or after DATA.
// Every failure before RCPT is an own-side or account failure and never
// permanent, whatever its code.
func (f *Failure) Permanent() bool {
	if f.Code/100 != 5 || f.accountCondition() {
		return false
	}
	switch f.Stage {
	case StageRcpt:
		return f.Code != 552
	case StageData:
		return true
	}
	return false
}

// OwnSide reports whether the failure lies with relay's side or the
// account rather than with a recipient or a message: such mail is never
// bounced, and is reported loudly.
func (f *Failure) OwnSide() bool {
	switch f.Stage {
	case StageRcpt, StageData:
		return f.accountCondition()
	}
	return true
}

// accountRefusal matches replies at RCPT or DATA that speak of the account,
// not the recipient (SPEC 6): relaying denied (Postfix says it at RCPT), a
// sending quota or limit exceeded. The mail is fine; it must wait, not
// bounce.
var accountRefusal = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)relay(ing)? (access )?(denied|not permitted)|quota exceeded|sending limit|limit exceeded|too many messages|daily (message|sending)`)
})

func (f *Failure) accountCondition() bool {
	return f.Code > 0 && accountRefusal().MatchString(f.Text) && !strings.Contains(strings.ToLower(f.Text), "mailbox")
}

// DSN is the status code for the log: the enhanced code when the server
// gave one, else one derived from the reply class. A failure that only
// defers says 4.x.x even when the server's code was 5.x.x (the 553 of a
// foreign sender, a 535), as Postfix logs a soft bounce: a log reader must
// not take a deferral for a permanent refusal. The reply keeps the code.
func (f *Failure) DSN() string {
	d := f.Enhanced
	if d == "" {
		d = "4.0.0"
		if f.Code/100 == 5 {
			d = "5.0.0"
		}
	}
	if !f.Permanent() && strings.HasPrefix(d, "5.") {
		d = "4." + d[2:]
	}
	return d
}

// FailedStatus is the RFC 3463 status of a recipient that failed for good,
// for its bounce: 5.4.7 when relay gave up after the lifetime, else the
// server's enhanced code when it is a 5.x.x, else 5.0.0.
func (f *Failure) FailedStatus() string {
	switch {
	case f.GaveUpAfter != "":
		return "5.4.7"
	case strings.HasPrefix(f.Enhanced, "5.") && EnhancedCode().MatchString(f.Enhanced):
		return f.Enhanced
	}
	return "5.0.0"
}

// EnhancedCode matches an enhanced status code (RFC 3463): "5.7.1".
var EnhancedCode = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`) })
