package failure

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// format1Reply is a reply line as ReplyLine writes it ("553 5.7.1 Sender
// address rejected"); a "-" after the code, as on the first line of a
// multi-line reply, is taken too.
var format1Reply = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([2-5][0-9][0-9])(?:[ -]+([245]\.[0-9]{1,3}\.[0-9]{1,3}))?(?:[ -]+(.*))?$`)
})

// format1Down is the reason of a recipient skipped because its smarthost
// was remembered as down: "NAME is down until TIME (REASON)", REASON being
// the reply line of the failure that took the smarthost down.
var format1Down = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`is down until \S+ \((.*)\)$`) })

// ParseFormat1Reason reads back a recipient's reason as spool format 1
// stored it: a reply line "CODE [X.Y.Z] text" or an error's text, after
// "gave up after LIFETIME: " once relay gave up. Format 1 did not store
// the stage: stage is what the caller knows of it ("" for nothing). The
// result's Reason is reason again; nil for an empty reason.
func ParseFormat1Reason(stage Stage, reason string) *Failure {
	line := strings.TrimSpace(reason)
	f := &Failure{Stage: stage}
	if rest, ok := strings.CutPrefix(line, "gave up after "); ok {
		if lifetime, r, ok := strings.Cut(rest, ": "); ok && lifetime != "" && !strings.Contains(lifetime, " ") {
			f.GaveUpAfter, line = lifetime, r
		}
	}
	if line == "" && f.GaveUpAfter == "" {
		return nil
	}
	if m := format1Reply().FindStringSubmatch(line); m != nil {
		f.Code, _ = strconv.Atoi(m[1])
		f.Enhanced, f.Text = m[2], m[3]
	} else {
		f.Text = line
		if m := format1Down().FindStringSubmatch(line); m != nil {
			f.Cause = ParseFormat1Reason("", m[1])
		}
	}
	return f
}

// ParseFormat1Error reads back an envelope's last error as spool format 1
// stored it: "STAGE: " and a reason (what Error writes). A line that does
// not start with a stage is read as a reason of unknown stage.
func ParseFormat1Error(line string) *Failure {
	line = strings.TrimSpace(line)
	if s, rest, ok := strings.Cut(line, ": "); ok && slices.Contains(Stages, Stage(s)) {
		return ParseFormat1Reason(Stage(s), rest)
	}
	return ParseFormat1Reason("", line)
}
