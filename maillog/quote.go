package maillog

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quote is the value quoting used in log lines. A value made only of
// printable characters other than space, '"', '\' and '=' is written as
// it is (non-ASCII letters included: a Cyrillic display name stays
// readable). Anything else is put in double quotes, with '"' and '\'
// escaped by a backslash; the empty value is written "".
//
// A value never breaks its line: each line break (CRLF, LF or CR) becomes
// "; " and the blanks around it are dropped, trailing breaks are dropped
// (a multi-line SMTP reply reads "250-a; 250 b"). Other characters that
// would corrupt a terminal or make journald store the line as binary are
// escaped: tab as \t, other control characters as \xNN (C0, DEL) or
// \uNNNN (C1, U+2028, U+2029), and bytes that are not UTF-8 as \xNN.
// An escaped value is always quoted, so a backslash outside quotes never
// appears and the line can be parsed back.
func Quote(v string) string {
	if plain(v) {
		return v
	}
	v = oneLine(v)
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); {
		r, n := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(v[i]))
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			b.WriteString(`\u`)
			b.WriteString(hex2(byte(r >> 8)))
			b.WriteString(hex2(byte(r)))
		default:
			b.WriteString(v[i : i+n])
		}
		i += n
	}
	b.WriteByte('"')
	return b.String()
}

// plain reports whether v can be written without quotes.
func plain(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f || c == '"' || c == '\\' || c == '=' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && n == 1 || unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += n
	}
	return true
}

// oneLine joins the lines of s with "; ", trimming the blanks around each
// break and dropping trailing breaks.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	for i := range lines {
		if i > 0 {
			lines[i] = strings.TrimLeft(lines[i], " \t")
		}
		if i < len(lines)-1 {
			lines[i] = strings.TrimRight(lines[i], " \t")
		}
	}
	return strings.Join(lines, "; ")
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}

// key makes k usable as a key: characters other than letters, digits,
// '_', '-' and '.' become '_' (keys are the caller's constants; this only
// keeps a mistaken one from breaking the line), and an empty key is "_".
func key(k string) string {
	if k == "" {
		return "_"
	}
	ok := true
	for i := 0; i < len(k); i++ {
		if !keyByte(k[i]) {
			ok = false
			break
		}
	}
	if ok {
		return k
	}
	b := []byte(k)
	for i, c := range b {
		if !keyByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func keyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// Masked is what Mask puts in place of a secret.
const Masked = "****"

// Mask replaces every occurrence of each secret in s with "****". Callers
// pass the passwords they know of, as a last line of defence before a
// line is written; empty secrets are ignored, and a longer secret is
// replaced before a shorter one it contains.
func Mask(s string, secrets ...string) string {
	if len(secrets) == 0 || s == "" {
		return s
	}
	for _, sec := range byLength(secrets) {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Masked)
		}
	}
	return s
}

// byLength returns the non-empty secrets, longest first, without
// duplicates.
func byLength(secrets []string) []string {
	out := make([]string, 0, len(secrets))
	seen := make(map[string]bool, len(secrets))
	for _, s := range secrets {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	// Insertion sort: a handful of passwords.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
