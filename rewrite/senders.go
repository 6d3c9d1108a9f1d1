package rewrite

import (
	"fmt"
	"strings"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailaddr"
)

// SenderMap rewrites envelope senders (sender_map). Keys: a local name
// ("root": root at any local domain), a full address, "@domain" (every
// address in that domain) and "*" (every other sender). The value is one
// address, or "@domain" to keep the local part and change the domain.
type SenderMap struct {
	File    string
	entries map[string]senderEntry // by lower-case key
}

type senderEntry struct {
	key, value string
	line       int
}

// ParseSenderMap reads a sender map; like ParseAliases it returns every
// unusable line as a problem and keeps the rest.
func ParseSenderMap(path string) (*SenderMap, []config.Problem, error) {
	entries, probs, err := readTable(path)
	if err != nil {
		return nil, nil, err
	}
	m := &SenderMap{File: path, entries: map[string]senderEntry{}}
	bad := func(line int, warn bool, format string, args ...any) {
		probs = append(probs, config.Problem{File: path, Line: line, Msg: fmt.Sprintf(format, args...), Warning: warn})
	}
	for _, e := range entries {
		key := strings.ToLower(e.key)
		switch {
		case key == "*":
		case strings.HasPrefix(key, "@"):
			if mailaddr.Valid("x"+key) != nil {
				bad(e.line, false, "%s: not a domain", e.key)
				continue
			}
		default:
			if err := mailaddr.Valid(mailaddr.Qualify(key, "example.invalid")); err != nil {
				bad(e.line, false, "%s: not a local name or address: %v", e.key, err)
				continue
			}
		}
		if len(e.values) != 1 {
			bad(e.line, false, "%s: one address, not %d: the envelope has one sender", e.key, len(e.values))
			continue
		}
		v := e.values[0].text
		if strings.HasPrefix(v, "@") {
			if mailaddr.Valid("x"+v) != nil {
				bad(e.line, false, "%s: %q is not a domain", e.key, v)
				continue
			}
		} else {
			list, err := mailaddr.ParseList(v)
			if err != nil || len(list) != 1 || mailaddr.Valid(list[0].Addr) != nil {
				bad(e.line, false, "%s: %q is not a complete address (local@domain)", e.key, v)
				continue
			}
			v = list[0].Addr
		}
		if prev, dup := m.entries[key]; dup {
			bad(e.line, true, "%s: defined again (first at line %d, which counts)", e.key, prev.line)
			continue
		}
		m.entries[key] = senderEntry{key: e.key, value: v, line: e.line}
	}
	config.SortProblems(probs)
	return m, probs, nil
}

// Lookup returns what the envelope sender addr becomes and the rule that
// did it ("" and "" when no key matches). The order, first match wins: the
// full address, the local name (for a local address), "@domain", "*".
// The null sender is never rewritten: it means "do not answer".
func (m *SenderMap) Lookup(addr string, local func(string) bool) (string, string) {
	if m == nil || addr == "" {
		return "", ""
	}
	keys := []string{strings.ToLower(addr)}
	if local(addr) {
		keys = append(keys, strings.ToLower(mailaddr.Local(addr)))
	}
	if d := mailaddr.Domain(addr); d != "" {
		keys = append(keys, "@"+strings.ToLower(d))
	}
	keys = append(keys, "*")
	for _, k := range keys {
		e, ok := m.entries[k]
		if !ok {
			continue
		}
		v := e.value
		if strings.HasPrefix(v, "@") {
			v = mailaddr.Local(addr) + v
		}
		return v, fmt.Sprintf("sender_map %s:%d %s", m.File, e.line, e.key)
	}
	return "", ""
}

// LoginMap says which envelope senders each local user may give with -f
// (sender_login_map, like Postfix's local_login_sender_maps). Keys: login
// names and "*" (every user without an entry). Values: "*" (any sender),
// "<>" (the null sender), "@domain", a full address, or a bare name (that
// name at the mail domain).
type LoginMap struct {
	File    string
	entries map[string]loginEntry
}

type loginEntry struct {
	patterns []string
	line     int
}

// ParseLoginMap reads a sender_login_map.
func ParseLoginMap(path string) (*LoginMap, []config.Problem, error) {
	entries, probs, err := readTable(path)
	if err != nil {
		return nil, nil, err
	}
	m := &LoginMap{File: path, entries: map[string]loginEntry{}}
	for _, e := range entries {
		le := loginEntry{line: e.line}
		for _, v := range e.values {
			p := v.text
			switch {
			case p == "*" || p == "<>":
			case strings.HasPrefix(p, "@") && mailaddr.Valid("x"+p) == nil:
			case mailaddr.Valid(mailaddr.Qualify(p, "example.invalid")) == nil:
			default:
				probs = append(probs, config.Problem{File: path, Line: v.line, Msg: fmt.Sprintf("%s: %q is not *, <>, @domain or an address", e.key, p)})
				continue
			}
			le.patterns = append(le.patterns, p)
		}
		if _, dup := m.entries[e.key]; dup {
			probs = append(probs, config.Problem{File: path, Line: e.line, Warning: true, Msg: fmt.Sprintf("%s: defined again (the first counts)", e.key)})
			continue
		}
		m.entries[e.key] = le
	}
	config.SortProblems(probs)
	return m, probs, nil
}

// Allowed reports whether user may submit with the envelope sender
// sender, and the entry that decided (file:line). A user's own address
// (login@domain) is always allowed: it is the default sender. The lookup
// is by login name, then "*"; without an entry only the own address is
// allowed.
func (m *LoginMap) Allowed(user, sender, domain string) (bool, string) {
	if m == nil || strings.EqualFold(sender, user+"@"+domain) {
		return true, ""
	}
	e, ok := m.entries[user]
	where := ""
	if !ok {
		e, ok = m.entries["*"]
	}
	if !ok {
		return false, fmt.Sprintf("%s has no entry for %s and no * entry", m.File, user)
	}
	where = fmt.Sprintf("%s:%d", m.File, e.line)
	for _, p := range e.patterns {
		switch {
		case p == "*":
			return true, where
		case p == "<>":
			if sender == "" {
				return true, where
			}
		case sender == "":
		case strings.HasPrefix(p, "@"):
			if strings.EqualFold(mailaddr.Domain(sender), p[1:]) {
				return true, where
			}
		case strings.EqualFold(mailaddr.Qualify(p, domain), sender):
			return true, where
		}
	}
	return false, where
}
