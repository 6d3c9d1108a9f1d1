package bounce

import (
	"bufio"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"
)

// Line lengths: header fields are folded at spaces to stay near softLine
// octets; a run without spaces is broken at hardLine (RFC 5322 allows 998).
const (
	softLine = 78
	hardLine = 990
)

// cleanLine makes s safe as (part of) one header or text line: CR, LF and
// the other control characters become spaces, invalid UTF-8 becomes
// U+FFFD, and the ends are trimmed.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// writeField writes "name: value" CRLF, folded (RFC 5322 2.2.3) so that
// no line is longer than hardLine octets. It folds only at a single space
// between two non-space characters, so unfolding (removing the CRLF)
// restores value exactly; a run of more than hardLine octets without such
// a space is broken with CRLF SP, which adds a space when unfolded.
func writeField(bw *bufio.Writer, name, value string) {
	s := name + ": " + value
	start := len(name) + 2 // never fold between the name and the value
	for len(s) > softLine {
		i := foldPoint(s, start)
		if i == 0 {
			break // no space to fold at, but short enough
		}
		if i < 0 {
			// No space to fold at: break inside the run.
			i = hardLine
			for i > 0 && !utf8.RuneStart(s[i]) {
				i--
			}
			bw.WriteString(s[:i])
			bw.WriteString("\r\n ")
			s = s[i:]
		} else {
			bw.WriteString(s[:i])
			bw.WriteString("\r\n")
			s = s[i:] // starts with the space: the folding white space
		}
		start = 1
	}
	bw.WriteString(s)
	bw.WriteString("\r\n")
}

// foldPoint returns where to fold s (the index of a space), preferring the
// last one within softLine, else the first within hardLine; 0 when there is
// none but s fits in hardLine; -1 when s must be broken without a space.
func foldPoint(s string, start int) int {
	ok := func(i int) bool {
		return s[i] == ' ' && i > 0 && i+1 < len(s) && s[i-1] != ' ' && s[i-1] != '\t' && s[i+1] != ' ' && s[i+1] != '\t'
	}
	for i := min(softLine, len(s)-1); i >= start; i-- {
		if ok(i) {
			return i
		}
	}
	for i := softLine + 1; i < len(s) && i <= hardLine; i++ {
		if ok(i) {
			return i
		}
	}
	if len(s) <= hardLine {
		return 0
	}
	return -1
}

// asciiText makes text 7-bit for a delivery-status field: runs of words
// with non-ASCII characters become RFC 2047 encoded words.
func asciiText(s string) string {
	if isASCII(s) {
		return s
	}
	words := strings.Split(s, " ")
	var out []string
	for i := 0; i < len(words); {
		if isASCII(words[i]) {
			out = append(out, words[i])
			i++
			continue
		}
		j := i + 1
		for j < len(words) && !isASCII(words[j]) {
			j++
		}
		out = append(out, mime.QEncoding.Encode("utf-8", strings.Join(words[i:j], " ")))
		i = j
	}
	return strings.Join(out, " ")
}

// typedAddress is an address with its RFC 3464 address type: rfc822, or
// for a non-ASCII address RFC 6533's utf-8 type in its 7-bit xtext form.
func typedAddress(a string) string {
	if l := strings.ToLower(a); strings.HasPrefix(l, "rfc822;") {
		a = strings.TrimSpace(a[len("rfc822;"):])
	}
	if isASCII(a) {
		return "rfc822;" + a
	}
	var b strings.Builder
	b.WriteString("utf-8;")
	for _, r := range a {
		// QCHAR: printable ASCII but "+", "=" and "\".
		if r > 0x20 && r < 0x7f && r != '+' && r != '=' && r != '\\' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "\\x{%02X}", r)
		}
	}
	return b.String()
}

// needsQP reports whether the human-readable text cannot go as 7bit:
// non-ASCII characters or a line longer than the SMTP limit.
func needsQP(text string) bool {
	if !isASCII(text) {
		return true
	}
	for line := range strings.SplitSeq(text, "\n") {
		if len(line) > hardLine {
			return true
		}
	}
	return false
}

// humanText is the text/plain part, with LF line ends.
func (r *Report) humanText(mta string, mode quoteMode) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("This is the mail delivery system at host %s.\n\n", mta)
	n := len(r.Recipients)
	plural := func(one, many string) string {
		if n == 1 {
			return one
		}
		return many
	}
	if r.Kind == Delay {
		p("THIS IS A WARNING ONLY. YOU DO NOT NEED TO SEND YOUR MESSAGE AGAIN.\n\n")
		p("%s", wrap(fmt.Sprintf("Your message could not be delivered yet to the %s below. %s",
			plural("recipient", "recipients"), plural("It is", "They are")+" still being retried."), "", 72))
		if !r.RetryUntil.IsZero() {
			p("%s", wrap("Delivery will be tried until "+r.RetryUntil.Format(time.RFC1123Z)+
				"; if the message still cannot be delivered by then, it will be returned to you.", "", 72))
		}
	} else {
		p("%s", wrap(fmt.Sprintf("Your message could not be delivered to the %s below. Delivery has been given up;"+
			" the reason is given for each recipient.", plural("recipient", "recipients")), "", 72))
	}
	if !r.Arrival.IsZero() {
		id := ""
		if q := cleanLine(r.QueueID); q != "" {
			id = " (queue ID " + q + ")"
		}
		p("%s", wrap("Your message was received on "+r.Arrival.Format(time.RFC1123Z)+id+".", "", 72))
	}
	for _, rc := range r.Recipients {
		p("<%s>", cleanLine(rc.Address))
		if o := cleanLine(rc.Original); o != "" {
			p(" (you sent it to <%s>)", o)
		}
		p("\n    Status: %s\n", r.status(rc))
		if d := cleanLine(rc.Diagnostic); d != "" {
			if h := cleanLine(rc.RemoteMTA); h != "" {
				p("    The mail server %s replied:\n", h)
			} else {
				p("    The mail server replied:\n")
			}
			p("        %s\n", d)
		} else if h := cleanLine(rc.RemoteMTA); h != "" {
			p("    Mail server: %s (no reply)\n", h)
		}
		if e := cleanLine(rc.Explanation); e != "" {
			p("%s", wrap("What this means: "+e, "    ", 72))
		}
		if !rc.LastAttempt.IsZero() {
			p("    Last attempt: %s\n", rc.LastAttempt.Format(time.RFC1123Z))
		}
		p("\n")
	}
	switch mode {
	case quoteFull:
		p("%s", wrap("The delivery report for mail programs follows, then your message.", "", 72))
	case quoteHeaders:
		p("%s", wrap("The delivery report for mail programs follows, then the header of your message.", "", 72))
	default:
		p("%s", wrap("The delivery report for mail programs follows.", "", 72))
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// wrap fills text into lines of at most width columns (longer words stand
// alone), each starting with indent, and ends with an empty line unless
// indent is set (then with a line end only).
func wrap(text, indent string, width int) string {
	var b strings.Builder
	col := 0
	for _, w := range strings.Fields(text) {
		wl := utf8.RuneCountInString(w)
		switch {
		case col == 0:
			b.WriteString(indent)
			col = utf8.RuneCountInString(indent)
		case col+1+wl > width:
			b.WriteString("\n")
			b.WriteString(indent)
			col = utf8.RuneCountInString(indent)
		default:
			b.WriteString(" ")
			col++
		}
		b.WriteString(w)
		col += wl
	}
	if col > 0 {
		b.WriteString("\n")
	}
	if indent == "" {
		b.WriteString("\n")
	}
	return b.String()
}
