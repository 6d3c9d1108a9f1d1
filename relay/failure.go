package relay

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/emersion/go-smtp"
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

// Failure is why one step of a delivery failed: a reply of the smarthost
// (Code > 0) or an error without one (network, TLS, timeout, local).
type Failure struct {
	Stage    Stage
	Code     int    // SMTP reply code; 0 without a reply
	Enhanced string // enhanced status code such as "5.7.1", when given
	Reply    string // reply text, lines joined with "; "
	Err      error  // the error when there was no reply
	// Addr is the address reached ("ip:port") when the failure came after
	// the TCP connection was made; "" before.
	Addr string
}

func (f *Failure) Error() string {
	if f.Code > 0 {
		return fmt.Sprintf("%s: %s", f.Stage, f.ReplyLine())
	}
	return fmt.Sprintf("%s: %v", f.Stage, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// ReplyLine is the reply as one line: "553 5.7.1 Sender address rejected".
func (f *Failure) ReplyLine() string {
	if f.Code == 0 {
		return f.Err.Error()
	}
	s := fmt.Sprint(f.Code)
	if f.Enhanced != "" && !strings.HasPrefix(f.Reply, f.Enhanced) {
		s += " " + f.Enhanced
	}
	return s + " " + f.Reply
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
var accountRefusal = regexp.MustCompile(`(?i)relay(ing)? (access )?(denied|not permitted)|quota exceeded|sending limit|limit exceeded|too many messages|daily (message|sending)`)

func (f *Failure) accountCondition() bool {
	return f.Code > 0 && accountRefusal.MatchString(f.Reply) && !strings.Contains(strings.ToLower(f.Reply), "mailbox")
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

// failure makes a Failure of err at stage.
func failure(stage Stage, err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		f := &Failure{Stage: stage, Code: se.Code}
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			c := se.EnhancedCode
			f.Enhanced = fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
		}
		// go-smtp parses the enhanced code of the first line only; servers
		// also put it on later lines, or on the last one alone.
		lines := strings.Split(se.Message, "\n")
		for i, line := range lines {
			code, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
			if ok && enhancedCode.MatchString(code) {
				lines[i] = rest
				if f.Enhanced == "" {
					f.Enhanced = code
				}
			}
		}
		f.Reply = oneLine(strings.Join(lines, "\n"))
		return f
	}
	return &Failure{Stage: stage, Err: err}
}

var enhancedCode = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

func oneLine(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
