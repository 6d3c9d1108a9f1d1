package mailaddr

import (
	"fmt"
	"strings"
)

// Address is one mailbox of an address list.
type Address struct {
	// Name is the display name or, for "addr (comment)", the comment text;
	// quotes and the outer parentheses are removed, quoted-pairs unescaped,
	// folding line breaks dropped. RFC 2047 encoded words are left encoded
	// as written.
	Name string
	// Addr is the addr-spec exactly as written (quoted local parts keep
	// their quotes), e.g. "root", "a@b.example", `"x y"@z`; "" for the null
	// path "<>". An obsolete route (<@r1,@r2:a@b>) is not part of Addr.
	Addr string
	// Start and End are the byte offsets of Addr within the parsed string:
	// s[Start:End] == Addr. For "<>", Start == End is the offset of ">".
	Start int
	End   int
}

// ParseList parses an RFC 5322 address list leniently (see the package
// documentation): display names (quoted or bare words, 8-bit/UTF-8
// allowed), angle addresses, comments (nested parens, with quoted-pairs),
// groups ("undisclosed-recipients:;" gives no address, "Team: a@x, b@y;"
// gives two), obsolete route addresses <@r1,@r2:a@b> (Addr = "a@b"), domain
// literals a@[127.0.0.1], quoted local parts, folded header values (CR and LF
// are white space), empty elements (",a@b,,c@d,"), bare local parts without
// a domain ("root"). An empty or blank list gives no address and no error.
//
// It returns an error only when no sensible reading exists: an unterminated
// quoted string, comment, domain literal or angle address, or an element
// that is not an address at all, such as "a@b@c" or "<a@b> extra <c@d>".
// The error says which text is bad.
func ParseList(s string) ([]Address, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &parser{s: s, toks: toks}
	var out []Address
	for !p.eof() {
		// Empty elements, and ";" used as a separator (Outlook style)
		// outside a group.
		if p.isSpecial(',') || p.isSpecial(';') {
			p.i++
			continue
		}
		addrs, err := p.element(false)
		if err != nil {
			return nil, err
		}
		out = append(out, addrs...)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Scanner

type kind uint8

const (
	kAtom    kind = iota + 1 // run of anything that is not white space or one of ("[<>@,;:
	kQuoted                  // "quoted string", quotes included
	kLiteral                 // [domain literal], brackets included
	kComment                 // (comment), parentheses included
	kSpecial                 // one of < > @ , ; :
)

// token is a lexical token: s[start:end] is its text. White space is not a
// token; two tokens are adjacent when the first one's end is the second
// one's start.
type token struct {
	kind       kind
	start, end int
}

const specials = "<>@,;:"

func isSpace(c byte) bool {
	// CR and LF are white space: a folded value is CRLF (or LF) followed by
	// a space or tab, and a trailing line break is harmless.
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// isAtomByte reports whether c continues an atom. Atoms are lenient: dots,
// 8-bit bytes and stray ')', ']' or '\' are all part of the word.
func isAtomByte(c byte) bool {
	return !isSpace(c) && strings.IndexByte(`("[`+specials, c) < 0
}

// tokenize splits s into tokens. It fails only on an unterminated quoted
// string, comment or domain literal.
func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		var t token
		switch {
		case isSpace(c):
			i++
			continue
		case c == '"':
			end, ok := scanDelimited(s, i, '"')
			if !ok {
				return nil, syntaxError("unterminated quoted string", s[i:])
			}
			t = token{kQuoted, i, end}
		case c == '[':
			end, ok := scanDelimited(s, i, ']')
			if !ok {
				return nil, syntaxError("unterminated domain literal", s[i:])
			}
			t = token{kLiteral, i, end}
		case c == '(':
			end, ok := scanComment(s, i)
			if !ok {
				return nil, syntaxError("unterminated comment", s[i:])
			}
			t = token{kComment, i, end}
		case strings.IndexByte(specials, c) >= 0:
			t = token{kSpecial, i, i + 1}
		default:
			end := i + 1
			for end < len(s) && isAtomByte(s[end]) {
				end++
			}
			t = token{kAtom, i, end}
		}
		toks = append(toks, t)
		i = t.end
	}
	return toks, nil
}

// scanDelimited scans a quoted string or domain literal starting at s[i]
// up to the closing byte, honouring quoted-pairs. It returns the offset
// just past the closing byte.
func scanDelimited(s string, i int, closing byte) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case closing:
			return j + 1, true
		}
	}
	return 0, false
}

// scanComment scans a comment starting at s[i] == '(', with nested comments
// and quoted-pairs, and returns the offset just past its closing ')'.
func scanComment(s string, i int) (int, bool) {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

// ---------------------------------------------------------------------------
// Parser

type parser struct {
	s    string
	toks []token
	i    int // next token
}

func (p *parser) eof() bool { return p.i >= len(p.toks) }

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) text(t token) string { return p.s[t.start:t.end] }

func (p *parser) isSpecial(c byte) bool {
	return !p.eof() && p.toks[p.i].kind == kSpecial && p.s[p.toks[p.i].start] == c
}

func (p *parser) isSpecialTok(t token, c byte) bool {
	return t.kind == kSpecial && p.s[t.start] == c
}

// skipComments skips comment tokens (comments inside angle brackets and
// routes carry no name).
func (p *parser) skipComments() {
	for !p.eof() && p.peek().kind == kComment {
		p.i++
	}
}

// element parses one element of a list (a mailbox or a group) up to, but
// not including, the next ',' or ';' at this level. An element made only of
// comments gives no address.
func (p *parser) element(inGroup bool) ([]Address, error) {
	elem := p.peek().start
	var phrase, comments []token
	for !p.eof() {
		t := p.peek()
		switch {
		case t.kind == kComment:
			comments = append(comments, t)
			p.i++
		case p.isSpecialTok(t, ',') || p.isSpecialTok(t, ';'):
			return p.bareMailbox(elem, phrase, comments)
		case p.isSpecialTok(t, ':'):
			if inGroup {
				return nil, p.errorf(elem, t, "nested group")
			}
			for _, w := range phrase {
				if p.isSpecialTok(w, '@') {
					return nil, p.errorf(elem, t, `unexpected ":" after an address`)
				}
			}
			p.i++
			return p.group()
		case p.isSpecialTok(t, '<'):
			return p.angleMailbox(elem, phrase, comments)
		case p.isSpecialTok(t, '>'):
			return nil, p.errorf(elem, t, `unexpected ">"`)
		default: // atom, quoted string, literal, '@'
			phrase = append(phrase, t)
			p.i++
		}
	}
	return p.bareMailbox(elem, phrase, comments)
}

// group parses the members of a group after its ':' up to and including
// the closing ';' (or the end of the input, leniently).
func (p *parser) group() ([]Address, error) {
	var out []Address
	for !p.eof() {
		switch {
		case p.isSpecial(';'):
			p.i++
			return out, nil
		case p.isSpecial(','):
			p.i++
		default:
			addrs, err := p.element(true)
			if err != nil {
				return nil, err
			}
			out = append(out, addrs...)
		}
	}
	return out, nil
}

// bareMailbox makes an addr-spec without angle brackets ("a@b", "root",
// "a@b (comment)") out of the words of an element.
func (p *parser) bareMailbox(elem int, words, comments []token) ([]Address, error) {
	if len(words) == 0 {
		return nil, nil // empty element, or comments only
	}
	a, err := p.addrSpec(elem, words)
	if err != nil {
		return nil, err
	}
	a.Name = p.commentText(comments)
	return []Address{a}, nil
}

// angleMailbox parses [phrase] "<" [route ":"] [addr-spec] ">" [comments];
// the phrase has been read and the next token is '<'.
func (p *parser) angleMailbox(elem int, phrase, comments []token) ([]Address, error) {
	open := p.peek()
	p.i++
	p.skipComments()
	if p.isSpecial('@') {
		if err := p.route(elem); err != nil {
			return nil, err
		}
	}
	var a Address
	if p.isSpecial('>') {
		a.Start, a.End = p.peek().start, p.peek().start // null path <>
	} else if !p.eof() {
		run := p.adjacentWords()
		if len(run) == 0 {
			t := p.peek()
			return nil, p.errorf(elem, t, "unexpected %q in angle address", p.text(t))
		}
		var err error
		if a, err = p.addrSpec(elem, run); err != nil {
			return nil, err
		}
	}
	p.skipComments()
	if p.eof() {
		return nil, syntaxError("unterminated angle address", p.s[elem:])
	}
	if t := p.peek(); !p.isSpecialTok(t, '>') {
		return nil, p.errorf(elem, t, "unexpected %q in angle address", p.text(t))
	}
	p.i++
	// Only comments may follow, up to the end of the element.
	for !p.eof() && !p.isSpecial(',') && !p.isSpecial(';') {
		t := p.peek()
		if t.kind != kComment {
			return nil, p.errorf(elem, t, "unexpected %q after %s", p.text(t), p.s[open.start:p.toks[p.i-1].end])
		}
		comments = append(comments, t)
		p.i++
	}
	if len(phrase) > 0 {
		a.Name = p.phraseText(phrase)
	} else {
		a.Name = p.commentText(comments)
	}
	return []Address{a}, nil
}

// route skips an obsolete source route "@r1,@r2:" inside angle brackets.
func (p *parser) route(elem int) error {
	for !p.eof() {
		t := p.peek()
		switch {
		case p.isSpecialTok(t, '@'):
			p.i++
			p.skipComments()
			if p.eof() || (p.peek().kind != kAtom && p.peek().kind != kLiteral) {
				return p.errorf(elem, t, `bad route: "@" without a domain`)
			}
			p.i++
		case p.isSpecialTok(t, ','):
			p.i++
		case p.isSpecialTok(t, ':'):
			p.i++
			p.skipComments()
			return nil
		case t.kind == kComment:
			p.i++
		default:
			return p.errorf(elem, t, "bad route: unexpected %q", p.text(t))
		}
	}
	return syntaxError("unterminated angle address", p.s[elem:])
}

// adjacentWords consumes and returns the longest run of adjacent atoms,
// quoted strings, domain literals and '@' (an addr-spec has no white space).
func (p *parser) adjacentWords() []token {
	var run []token
	for !p.eof() {
		t := p.peek()
		if t.kind == kComment || (t.kind == kSpecial && !p.isSpecialTok(t, '@')) {
			break
		}
		if len(run) > 0 && run[len(run)-1].end != t.start {
			break
		}
		run = append(run, t)
		p.i++
	}
	return run
}

// addrSpec checks that words form local-part ["@" domain] and returns the
// Address for it (without Name). The local part is one or more adjacent
// atoms and quoted strings (`"x y".z`), the domain one atom or literal.
func (p *parser) addrSpec(elem int, words []token) (Address, error) {
	first, last := words[0], words[len(words)-1]
	all := token{start: first.start, end: last.end} // for error messages
	for k := 1; k < len(words); k++ {
		if words[k].start != words[k-1].end {
			return Address{}, p.errorf(elem, all, "not an address")
		}
	}
	at := -1
	for k, w := range words {
		if p.isSpecialTok(w, '@') {
			if at >= 0 {
				return Address{}, p.errorf(elem, all, `more than one "@"`)
			}
			at = k
		}
	}
	local := words
	if at >= 0 {
		local = words[:at]
		domain := words[at+1:]
		switch {
		case len(domain) == 0:
			return Address{}, p.errorf(elem, all, "missing domain")
		case len(domain) > 1 || (domain[0].kind != kAtom && domain[0].kind != kLiteral):
			return Address{}, p.errorf(elem, all, "bad domain %q", p.s[domain[0].start:last.end])
		}
	}
	if len(local) == 0 {
		return Address{}, p.errorf(elem, all, "missing local part")
	}
	for _, w := range local {
		if w.kind != kAtom && w.kind != kQuoted {
			return Address{}, p.errorf(elem, all, "bad local part %q", p.s[first.start:local[len(local)-1].end])
		}
	}
	return Address{Addr: p.s[first.start:last.end], Start: first.start, End: last.end}, nil
}

// phraseText returns a display name: words separated by white space or
// comments are joined by one space, quoted strings are unquoted.
func (p *parser) phraseText(words []token) string {
	var b strings.Builder
	for k, w := range words {
		if k > 0 && w.start != words[k-1].end {
			b.WriteByte(' ')
		}
		if w.kind == kQuoted {
			b.WriteString(unescape(p.s[w.start+1 : w.end-1]))
		} else {
			b.WriteString(p.text(w))
		}
	}
	return b.String()
}

// commentText returns the text of comments without their outer parentheses,
// trimmed, empty ones skipped, joined by one space.
func (p *parser) commentText(comments []token) string {
	var parts []string
	for _, c := range comments {
		if t := strings.Trim(unescape(p.s[c.start+1:c.end-1]), " \t"); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, " ")
}

// unescape removes quoted-pair backslashes and folding line breaks.
func unescape(s string) string {
	if !strings.ContainsAny(s, "\\\r\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r', '\n':
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// Errors

// errorf reports bad text in the element starting at offset elem; bad is
// the token where parsing stopped. The message ends with the element's text
// up to the end of its bad token and the offset of that token:
//
//	mailaddr: more than one "@": "a@b@c" (offset 0)
func (p *parser) errorf(elem int, bad token, format string, args ...any) error {
	return fmt.Errorf("mailaddr: %s: %s (offset %d)",
		fmt.Sprintf(format, args...), quoteExcerpt(p.s[elem:bad.end]), bad.start)
}

func syntaxError(msg, rest string) error {
	return fmt.Errorf("mailaddr: %s: %s", msg, quoteExcerpt(rest))
}

// quoteExcerpt quotes s, trimmed of white space and shortened to keep error
// messages on one short line.
func quoteExcerpt(s string) string {
	const max = 60
	s = strings.TrimSpace(s)
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
