package relay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"

	pkgfailure "github.com/relaymail/relay/failure"
)

// Failure is why one step of a delivery failed; package failure holds the
// type, its classification and the explanations, so that the readers of
// the queue (mailq, bounce) need not import the SMTP client. What is
// relay's own is how a Go error becomes one (failure, below).
type Failure = pkgfailure.Failure

// Stage is the step of a delivery at which something failed.
type Stage = pkgfailure.Stage

const (
	StageConnect  = pkgfailure.StageConnect
	StageTLS      = pkgfailure.StageTLS
	StageGreeting = pkgfailure.StageGreeting
	StageEHLO     = pkgfailure.StageEHLO
	StageAuth     = pkgfailure.StageAuth
	StageMail     = pkgfailure.StageMail
	StageRcpt     = pkgfailure.StageRcpt
	StageData     = pkgfailure.StageData
	StageLocal    = pkgfailure.StageLocal
)

// Explain says in plain words what a failure means and how to fix it (see
// package failure).
func Explain(f *Failure) string { return pkgfailure.Explain(f) }

// failure makes a Failure of err at stage: go-smtp's *smtp.SMTPError
// becomes a reply (code, enhanced code, text), anything else an error
// without one.
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
			if ok && enhancedCode().MatchString(code) {
				lines[i] = rest
				if f.Enhanced == "" {
					f.Enhanced = code
				}
			}
		}
		f.Text = oneLine(strings.Join(lines, "\n"))
		return f
	}
	return &Failure{Stage: stage, Err: err}
}

var enhancedCode = pkgfailure.EnhancedCode

func oneLine(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
