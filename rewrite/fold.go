package rewrite

// Header lines over 998 octets (RFC 5322 2.1.1, RFC 5321 4.5.3.1.6) are
// re-encoded at delivery (package relay) as long body lines are, since strict servers
// reset the connection or answer 554 on them. In order of preference:
//
//  1. folded: a line break put before white space that is already there
//     (RFC 5322 2.2.3), so that unfolding gives back the very same value;
//     lines are kept near 78 octets where the white space allows it;
//  2. an unstructured field (Subject, Comments, Content-Description,
//     Thread-Topic, X-…) that has a run of over 998 octets without white
//     space is written as RFC 2047 encoded words (UTF-8 when the value is
//     UTF-8, else unknown-8bit), which can be folded between them;
//  3. any other field (an address, a Message-ID, a DKIM signature) cannot
//     be changed without changing what it says (UnfoldableError): intake
//     refuses such a message (sendmail exits 65, SMTP answers 554), so the
//     sender learns it at once; one queued before that rule is not sent,
//     and its sender gets a bounce that names the field.

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// foldWidth is the line length folding aims at (RFC 5322's SHOULD).
const foldWidth = 78

// maxLineOctets is the longest line SMTP carries, without its CRLF (RFC
// 5321 4.5.3.1.6).
const maxLineOctets = 998

// UnfoldableError: a structured header field with a line over 998 octets
// and no white space to fold at.
type UnfoldableError struct {
	Field  string
	Octets int
}

func (e *UnfoldableError) Error() string {
	return fmt.Sprintf("the header field %s has a line of %d octets without white space: it cannot be folded to SMTP's 998 octets without changing it", e.Field, e.Octets)
}

// HeaderNeedsFold reports whether a header line is over 998 octets.
func HeaderNeedsFold(header [][]byte) bool {
	for _, l := range header {
		if len(bytes.TrimRight(l, "\r\n")) > maxLineOctets {
			return true
		}
	}
	return false
}

// FoldHeader returns header (its physical lines) with every field that
// has a line over 998 octets folded or encoded, or an *UnfoldableError.
func FoldHeader(header [][]byte) ([][]byte, error) {
	var out [][]byte
	for i := 0; i < len(header); {
		j := i + 1
		for j < len(header) && len(header[j]) > 0 && (header[j][0] == ' ' || header[j][0] == '\t') {
			j++
		}
		field := header[i:j]
		i = j
		if !HeaderNeedsFold(field) {
			out = append(out, field...)
			continue
		}
		folded, err := foldField(field)
		if err != nil {
			return nil, err
		}
		out = append(out, folded...)
	}
	return out, nil
}

// foldField folds the long lines of one field, or encodes it.
func foldField(field [][]byte) ([][]byte, error) {
	var out [][]byte
	for _, l := range field {
		body := bytes.TrimRight(l, "\r\n")
		eol := l[len(body):]
		if len(body) <= maxLineOctets {
			out = append(out, l)
			continue
		}
		pieces, ok := foldLine(body)
		if !ok {
			return encodeField(field)
		}
		for k, p := range pieces {
			e := eol
			if k < len(pieces)-1 {
				e = lineEnd(eol)
			}
			out = append(out, append(append([]byte(nil), p...), e...))
		}
	}
	return out, nil
}

// lineEnd is the line end to put inside a folded line: the field's own,
// CRLF when the line had none (the last line of a message).
func lineEnd(eol []byte) []byte {
	if len(eol) == 0 {
		return []byte("\r\n")
	}
	return eol
}

// foldLine cuts a line before white space into pieces of at most 998
// octets, each near foldWidth where possible; ok is false when a run
// without white space makes that impossible. Only white space after the
// first non-white octet counts (a piece of white space alone would be an
// empty line).
func foldLine(line []byte) (pieces [][]byte, ok bool) {
	for len(line) > maxLineOctets {
		cut, best := -1, -1
		for k := 1; k < len(line) && k <= maxLineOctets; k++ {
			if (line[k] == ' ' || line[k] == '\t') && line[k-1] != ' ' && line[k-1] != '\t' {
				if k <= foldWidth || best < 0 {
					best = k
				}
				if k > foldWidth {
					break
				}
			}
		}
		cut = best
		if cut <= 0 || len(bytes.TrimLeft(line[:cut], " \t")) == 0 {
			return nil, false
		}
		pieces = append(pieces, line[:cut])
		line = line[cut:]
	}
	return append(pieces, line), true
}

// unstructured reports whether a field's value is free text (RFC 5322
// 3.6.5 and optional fields), which RFC 2047 encoded words may replace.
func unstructured(name string) bool {
	switch n := strings.ToLower(name); n {
	case "subject", "comments", "content-description", "thread-topic":
		return true
	default:
		return strings.HasPrefix(n, "x-")
	}
}

// encodeField writes an unstructured field as encoded words, folded
// between them: decoding gives back the value (unfolded, without the
// white space that follows the colon).
func encodeField(field [][]byte) ([][]byte, error) {
	first := field[0]
	colon := bytes.IndexByte(first, ':')
	name := string(bytes.TrimRight(first[:colon], " \t"))
	if !unstructured(name) {
		return nil, &UnfoldableError{Field: name, Octets: longest(field)}
	}
	eol := lineEnd(first[len(bytes.TrimRight(first, "\r\n")):])
	var value []byte
	for k, l := range field {
		if k == 0 {
			l = l[colon+1:]
		}
		value = append(value, bytes.TrimRight(l, "\r\n")...)
	}
	value = bytes.TrimLeft(value, " \t")
	charset := "utf-8"
	if !utf8.Valid(value) {
		charset = "unknown-8bit"
	}
	words := qWords(charset, value)
	var out [][]byte
	line := name + ":"
	for _, w := range words {
		if len(line)+1+len(w) > foldWidth && len(line) > len(name)+1 {
			out = append(out, []byte(line+string(eol)))
			line = ""
		}
		line += " " + w
	}
	out = append(out, []byte(line+string(eol)))
	return out, nil
}

func longest(field [][]byte) int {
	n := 0
	for _, l := range field {
		n = max(n, len(bytes.TrimRight(l, "\r\n")))
	}
	return n
}

// qWords writes value as Q-encoded words (RFC 2047 4.2) of at most 75
// octets, each a whole number of characters. mime.WordEncoder would leave
// printable ASCII as it is, however long its run.
func qWords(charset string, value []byte) []string {
	prefix := "=?" + charset + "?q?"
	limit := 75 - len(prefix) - 2
	var words []string
	var w strings.Builder
	for len(value) > 0 {
		n := 1
		if charset == "utf-8" {
			_, n = utf8.DecodeRune(value)
		}
		var enc strings.Builder
		for _, c := range value[:n] {
			switch {
			case c == ' ':
				enc.WriteByte('_')
			case c > ' ' && c < 0x7f && c != '=' && c != '?' && c != '_':
				enc.WriteByte(c)
			default:
				fmt.Fprintf(&enc, "=%02X", c)
			}
		}
		if w.Len()+enc.Len() > limit {
			words = append(words, prefix+w.String()+"?=")
			w.Reset()
		}
		w.WriteString(enc.String())
		value = value[n:]
	}
	return append(words, prefix+w.String()+"?=")
}
