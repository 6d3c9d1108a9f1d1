package rewrite

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/relaymail/relay/config"
)

// entry is one logical line "key: value, value…" of a file in the
// aliases(5) format (the alias file, sender_map, sender_login_map).
type entry struct {
	key    string // as written, quotes removed
	line   int    // where the entry starts
	values []item
}

// item is one comma-separated value of an entry, trimmed, with the line
// it is written on (an entry may be continued over several lines).
type item struct {
	text string
	line int
}

// segment is one physical line of a logical line: where it starts in the
// joined text, and its line number.
type segment struct{ off, line int }

// readTable reads a file in the aliases(5) format:
//
//   - "key: value, value, …"; the key ends at the first colon;
//   - a line that begins with white space continues the one before;
//   - empty lines and lines whose first non-blank character is "#" are
//     ignored (also between continuation lines);
//   - values are separated by commas outside double quotes and <…>;
//     empty values (a trailing comma) are ignored.
//
// Lines that do not fit are returned as problems with file:line; the
// other entries are still read.
func readTable(path string) ([]entry, []config.Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	entries, probs, err := parseTable(path, f)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return entries, probs, nil
}

func parseTable(file string, r io.Reader) ([]entry, []config.Problem, error) {
	var (
		entries []entry
		probs   []config.Problem
		text    strings.Builder
		segs    []segment
	)
	problem := func(line int, format string, args ...any) {
		probs = append(probs, config.Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	flush := func() {
		if len(segs) == 0 {
			return
		}
		if e, msg := parseEntry(text.String(), segs); msg != "" {
			problem(segs[0].line, "%s", msg)
		} else {
			entries = append(entries, e)
		}
		text.Reset()
		segs = nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		case line[0] == ' ' || line[0] == '\t':
			if len(segs) == 0 {
				problem(n, "continuation line (it begins with white space) without an entry before it")
				continue
			}
			text.WriteByte(' ')
		default:
			flush()
		}
		segs = append(segs, segment{text.Len(), n})
		text.WriteString(trimmed)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	flush()
	return entries, probs, nil
}

// parseEntry splits a logical line into key and values; msg says what is
// wrong with it.
func parseEntry(s string, segs []segment) (entry, string) {
	e := entry{line: segs[0].line}
	colon := keyEnd(s)
	if colon < 0 {
		return e, fmt.Sprintf("%q: no colon: an entry is \"name: address, address…\"", excerpt(s))
	}
	e.key = strings.TrimSpace(s[:colon])
	if k, ok := unquote(e.key); ok {
		e.key = k
	}
	if e.key == "" {
		return e, fmt.Sprintf("%q: empty name before the colon", excerpt(s))
	}
	if strings.IndexFunc(e.key, unicode.IsControl) >= 0 {
		// A bare CR or a NUL: no name anyone meant, and printed as it is
		// it would garble the problem's line on a terminal.
		return e, fmt.Sprintf("%q: a control character in the name", excerpt(e.key))
	}
	start := colon + 1
	inQuote, inAngle := false, false
	for i := start; i <= len(s); i++ {
		if i < len(s) {
			switch c := s[i]; {
			case c == '\\' && inQuote && i+1 < len(s):
				i++
				continue
			case c == '"':
				inQuote = !inQuote
				continue
			case c == '<' && !inQuote:
				inAngle = true
				continue
			case c == '>' && !inQuote:
				inAngle = false
				continue
			case c != ',' || inQuote || inAngle:
				continue
			}
		}
		if inQuote && i == len(s) {
			return e, fmt.Sprintf("%s: unterminated quoted string", e.key)
		}
		v := s[start:i]
		lead := len(v) - len(strings.TrimLeft(v, " \t"))
		if v = strings.TrimSpace(v); v != "" {
			e.values = append(e.values, item{text: v, line: lineAt(segs, start+lead)})
		}
		start = i + 1
	}
	if len(e.values) == 0 {
		return e, fmt.Sprintf("%s: nothing after the colon", e.key)
	}
	return e, ""
}

// keyEnd is the colon that ends the key: the first one outside a quoted
// key.
func keyEnd(s string) int {
	if strings.HasPrefix(s, `"`) {
		if end := strings.IndexByte(s[1:], '"'); end >= 0 {
			if c := strings.IndexByte(s[end+2:], ':'); c >= 0 {
				return end + 2 + c
			}
			return -1
		}
	}
	return strings.IndexByte(s, ':')
}

func lineAt(segs []segment, off int) int {
	line := segs[0].line
	for _, s := range segs {
		if s.off <= off {
			line = s.line
		}
	}
	return line
}

// unquote removes the double quotes around s and its backslash escapes.
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s, false
	}
	var b strings.Builder
	in := s[1 : len(s)-1]
	for i := 0; i < len(in); i++ {
		if in[i] == '\\' && i+1 < len(in) {
			i++
		}
		b.WriteByte(in[i])
	}
	return b.String(), true
}

func excerpt(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
