package smtpd

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/relaymail/relay/mailaddr"
)

// esmtpParam is one KEY[=VALUE] parameter of MAIL or RCPT.
type esmtpParam struct {
	raw, key, val string
	hasVal        bool
}

// esmtpParams splits MAIL or RCPT parameters, keys in upper case; a key
// given twice is answered with 501 (ok false).
func (c *session) esmtpParams(params []string) ([]esmtpParam, bool) {
	out := make([]esmtpParam, 0, len(params))
	seen := map[string]bool{}
	for _, p := range params {
		key, val, hasVal := strings.Cut(p, "=")
		key = strings.ToUpper(key)
		if seen[key] {
			c.protocolError(501, "5.5.4", "Error: "+key+" given twice")
			return nil, false
		}
		seen[key] = true
		out = append(out, esmtpParam{p, key, val, hasVal})
	}
	return out, true
}

// cutPath parses "FROM:<path> params" (prefix is "FROM:" or "TO:",
// matched without regard to case): it returns the mailbox without <> and
// an obsolete source route, and the parameters. Postfix's leniency is kept:
// spaces after the colon, and a path without <> when it has no spaces.
func cutPath(arg, prefix string) (path string, params []string, ok bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, false
	}
	s := strings.TrimLeft(arg[len(prefix):], " ")
	var rest string
	if strings.HasPrefix(s, "<") {
		end := closingAngle(s)
		if end < 0 {
			return "", nil, false
		}
		path, rest = s[1:end], s[end+1:]
		if rest != "" && rest[0] != ' ' {
			return "", nil, false
		}
	} else {
		path, rest, _ = strings.Cut(s, " ")
		if path == "" {
			return "", nil, false
		}
	}
	if strings.HasPrefix(path, "@") { // <@a,@b:user@c>
		i := strings.IndexByte(path, ':')
		if i < 0 {
			return "", nil, false
		}
		path = path[i+1:]
	}
	return path, strings.Fields(rest), true
}

// closingAngle returns the index of the '>' that closes the '<' at s[0],
// skipping quoted strings, or -1.
func closingAngle(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == '>':
			return i
		}
	}
	return -1
}

// exactAddress reports whether a (a path from MAIL or RCPT) is one bare
// mailbox: no display name, comment or second address that the lenient
// header parser would have read around it.
func exactAddress(a string) bool {
	if a == "" || strings.ContainsAny(a, "\r\n\x00") {
		return false
	}
	list, err := mailaddr.ParseList(a)
	return err == nil && len(list) == 1 && list[0].Addr == a
}

// mergeNotify turns the NOTIFY of each recipient into the one NOTIFY the
// queue keeps per message: the common value when all recipients agree;
// otherwise the union of what they asked for (a recipient without NOTIFY
// counts as DELAY,FAILURE, the usual default), so nobody loses a
// notification they asked for.
func mergeNotify(per [][]string) []string {
	same := true
	for _, n := range per[1:] {
		if !slices.Equal(n, per[0]) {
			same = false
			break
		}
	}
	if same {
		return per[0]
	}
	want := map[string]bool{}
	for _, n := range per {
		if n == nil {
			n = []string{"DELAY", "FAILURE"}
		}
		for _, v := range n {
			want[v] = true
		}
	}
	var out []string
	for _, v := range []string{"SUCCESS", "DELAY", "FAILURE"} {
		if want[v] {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return []string{"NEVER"}
	}
	return out
}

// decodeXtext decodes RFC 3461 xtext ("+2B" is '+').
func decodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", errors.New("truncated xtext")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil || strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] {
				return "", errors.New("bad xtext")
			}
			b.WriteByte(byte(v))
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", errors.New("bad xtext")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
