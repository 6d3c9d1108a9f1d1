package mailaddr

import (
	"errors"
	"fmt"
	"mime"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// ParseSender parses a sendmail -f / -r argument and returns the envelope
// sender: "a@b" → "a@b"; "Name <a@b>" → "a@b"; "<a@b>" → "a@b";
// "<>" and "" (or only white space) → "" (the null sender);
// "a@b (comment)" → "a@b"; "root" → "root" (the caller qualifies it).
//
// It fails when s contains CR, LF (header injection) or NUL, holds more
// than one address or none (an empty group), or does not parse.
func ParseSender(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("mailaddr: sender %q contains a line break", s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("mailaddr: sender %q contains a NUL byte", s)
	}
	if strings.Trim(s, " \t") == "" { // the parser's white space, not Unicode's
		return "", nil
	}
	list, err := ParseList(s)
	if err != nil {
		return "", err
	}
	switch len(list) {
	case 0:
		return "", fmt.Errorf("mailaddr: no address in sender %q", s)
	case 1:
		return list[0].Addr, nil
	default:
		return "", fmt.Errorf("mailaddr: more than one address in sender %q", s)
	}
}

// Qualify returns addr with "@"+domain appended when addr has no domain part
// (an "@" outside a quoted local part). "" (the null path) stays "", and an
// empty domain leaves addr unchanged.
func Qualify(addr, domain string) string {
	if addr == "" || domain == "" || HasDomain(addr) {
		return addr
	}
	return addr + "@" + domain
}

// HasDomain reports whether addr has a domain part: an "@" outside a quoted
// local part.
func HasDomain(addr string) bool {
	return atIndex(addr) >= 0
}

// Domain returns the domain part of addr (after the last "@" outside quotes
// and domain literals), "" when there is none.
func Domain(addr string) string {
	if at := atIndex(addr); at >= 0 {
		return addr[at+1:]
	}
	return ""
}

// Local returns the local part of addr (before the last "@" outside quotes
// and domain literals): all of addr when it has no domain.
func Local(addr string) string {
	if at := atIndex(addr); at >= 0 {
		return addr[:at]
	}
	return addr
}

// atIndex returns the offset of the "@" that separates the local part from
// the domain: the last "@" outside quoted strings and domain literals, or -1.
// It follows the scanner's rules: a quoted-pair is only recognised inside
// quotes or brackets.
func atIndex(addr string) int {
	at := -1
	var closing byte // '"' or ']' while inside a quoted string or literal
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		switch {
		case closing != 0 && c == '\\':
			i++
		case closing != 0:
			if c == closing {
				closing = 0
			}
		case c == '"':
			closing = '"'
		case c == '[':
			closing = ']'
		case c == '@':
			at = i
		}
	}
	return at
}

// QualifyHeader returns an address header's value (From, To, Cc, Bcc,
// Reply-To, Sender, Resent-*) with "@"+domain inserted right after every
// bare local part; every other byte (comments, display names, folding,
// spacing) is unchanged. changed reports whether anything was inserted.
//
// When the value does not parse, or domain is not a plausible domain (so
// that nothing like a line break can be injected), the value is returned
// unchanged with changed=false.
//
// Example: QualifyHeader("root (Cron Daemon)", "h.example") ==
// "root@h.example (Cron Daemon)".
func QualifyHeader(value, domain string) (string, bool) {
	if checkDomain(domain) != nil {
		return value, false
	}
	list, err := ParseList(value)
	if err != nil {
		return value, false
	}
	var b strings.Builder
	last, changed := 0, false
	for _, a := range list {
		if a.Addr == "" || HasDomain(a.Addr) {
			continue
		}
		b.WriteString(value[last:a.End])
		b.WriteByte('@')
		b.WriteString(domain)
		last, changed = a.End, true
	}
	if !changed {
		return value, false
	}
	b.WriteString(value[last:])
	return b.String(), true
}

// Valid checks that addr is a plausible complete mailbox local@domain, as
// needed in configuration and for recipients handed to the smarthost:
//
//   - valid UTF-8 without CR, LF or NUL anywhere (not even quoted);
//   - no white space, '<' or '>' outside a quoted local part;
//   - a non-empty local part: a dot-atom (atext, 8-bit UTF-8 allowed, no
//     leading, trailing or double dot) or one quoted string;
//   - a domain of dot-separated labels (letters, digits, '-', '_', UTF-8;
//     1 to 63 bytes each, 255 in all) or an address literal
//     ([192.0.2.1], [IPv6:2001:db8::1], [tag:text]).
func Valid(addr string) error {
	if addr == "" {
		return errors.New("mailaddr: empty address")
	}
	if !utf8.ValidString(addr) {
		return fmt.Errorf("mailaddr: %q is not valid UTF-8", addr)
	}
	if i := strings.IndexAny(addr, "\r\n\x00"); i >= 0 {
		return fmt.Errorf("mailaddr: %q contains a control character", addr)
	}
	at := atIndex(addr)
	if at < 0 {
		return fmt.Errorf("mailaddr: %q has no domain", addr)
	}
	local, domain := addr[:at], addr[at+1:]
	if err := checkLocal(local); err != nil {
		return fmt.Errorf("mailaddr: %q: %w", addr, err)
	}
	if err := checkDomain(domain); err != nil {
		return fmt.Errorf("mailaddr: %q: %w", addr, err)
	}
	return nil
}

// badOutside names the bytes Valid reports by name outside quotes.
func badOutside(c byte) error {
	switch c {
	case ' ', '\t':
		return errors.New("white space outside quotes")
	case '<', '>':
		return fmt.Errorf("%q outside quotes", c)
	}
	return nil
}

func checkLocal(local string) error {
	if local == "" {
		return errors.New("empty local part")
	}
	if local[0] == '"' {
		return checkQuotedLocal(local)
	}
	for i := 0; i < len(local); i++ {
		if err := badOutside(local[i]); err != nil {
			return err
		}
	}
	for label := range strings.SplitSeq(local, ".") {
		if label == "" {
			return fmt.Errorf("local part %q has an empty dot-separated part", local)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAtext(c) {
				return fmt.Errorf("local part %q contains %q", local, c)
			}
		}
	}
	return nil
}

// checkQuotedLocal accepts exactly one quoted string with quoted-pairs;
// inside it anything but control characters (tab allowed) is fine.
func checkQuotedLocal(local string) error {
	for i := 1; i < len(local); i++ {
		switch c := local[i]; {
		case c == '\\':
			i++
			if i == len(local) {
				return fmt.Errorf("unterminated quoted local part %s", local)
			}
		case c == '"':
			if i != len(local)-1 {
				return fmt.Errorf("text after quoted local part %s", local)
			}
			if i == 1 {
				return errors.New(`empty quoted local part ""`)
			}
			return nil
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return fmt.Errorf("quoted local part %s contains a control character", local)
		}
	}
	return fmt.Errorf("unterminated quoted local part %s", local)
}

// isAtext reports whether c may appear in a dot-atom (RFC 5322 atext, plus
// the bytes of UTF-8 sequences as RFC 6531 allows).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func checkDomain(domain string) error {
	if domain == "" {
		return errors.New("empty domain")
	}
	if domain[0] == '[' {
		return checkLiteral(domain)
	}
	if len(domain) > 255 {
		return fmt.Errorf("domain longer than 255 bytes")
	}
	for i := 0; i < len(domain); i++ {
		if err := badOutside(domain[i]); err != nil {
			return err
		}
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" {
			return fmt.Errorf("domain %q has an empty label", domain)
		}
		if len(label) > 63 {
			return fmt.Errorf("domain label %q longer than 63 bytes", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
				c == '-' || c == '_' || c >= 0x80
			if !ok {
				return fmt.Errorf("domain %q contains %q", domain, c)
			}
		}
	}
	return nil
}

// checkLiteral accepts the address literals of RFC 5321 4.1.3: an IPv4
// address, "IPv6:" and an IPv6 address, or a "tag:" and printable text.
func checkLiteral(lit string) error {
	if len(lit) < 2 || lit[len(lit)-1] != ']' {
		return fmt.Errorf("unterminated domain literal %s", lit)
	}
	in := lit[1 : len(lit)-1]
	for i := 0; i < len(in); i++ {
		if c := in[i]; c <= ' ' || c >= 0x7f || c == '[' || c == ']' || c == '\\' {
			return fmt.Errorf("domain literal %s contains %q", lit, c)
		}
	}
	tag, rest, tagged := strings.Cut(in, ":")
	switch {
	case strings.EqualFold(tag, "IPv6") && tagged:
		if ip, err := netip.ParseAddr(rest); err != nil || !ip.Is6() || ip.Zone() != "" {
			return fmt.Errorf("bad IPv6 address literal %s", lit)
		}
	case tagged:
		if tag == "" || rest == "" {
			return fmt.Errorf("bad address literal %s", lit)
		}
	default:
		if ip, err := netip.ParseAddr(in); err != nil || !ip.Is4() {
			return fmt.Errorf("bad IPv4 address literal %s", lit)
		}
	}
	return nil
}

// FormatMailbox writes a mailbox for a header: "addr" without a name, else
// "Name <addr>" with the name bare when it is a phrase of atoms, quoted
// when it has specials, spaces at its ends, runs of spaces or "=?" (which
// a reader would take for an encoded word), and RFC 2047-encoded when it
// is not printable ASCII.
func FormatMailbox(name, addr string) string {
	if name == "" {
		return addr
	}
	plain, ascii := true, true
	for _, r := range name {
		switch {
		case r >= 0x80 || r < ' ' && r != '\t':
			// A tab is white space, quoted as it is; mime leaves it
			// unencoded, so an encoded word could not carry it.
			ascii = false
		case !(r == ' ' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)):
			plain = false
		}
	}
	switch {
	case !ascii && strings.ContainsAny(name, `()<>[]:;@\,."`):
		// An encoded word in a phrase may not hold these unencoded (RFC
		// 2047 section 5(3)), and mime's Q encoding leaves them as they
		// are: B encodes everything into letters, digits, + / =.
		name = mime.BEncoding.Encode("utf-8", name)
	case !ascii:
		// Q keeps a Latin name readable; B when Q would need more than
		// one encoded word (a Cyrillic name): readers that do not drop
		// the space between adjacent encoded words (Python 3.11's
		// email.headerregistry) would show one inside the name.
		q := mime.QEncoding.Encode("utf-8", name)
		if strings.Contains(q, "?= =?") {
			q = mime.BEncoding.Encode("utf-8", name)
		}
		name = q
	case !plain || strings.TrimSpace(name) != name || strings.Contains(name, "  ") || strings.Contains(name, "=?"):
		name = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return name + " <" + addr + ">"
}
