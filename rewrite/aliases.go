package rewrite

import (
	"fmt"
	"strings"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailaddr"
)

// maxAliasDepth bounds the nesting of aliases, as sendmail's MaxAliasRecursion.
const maxAliasDepth = 10

// Aliases is a parsed alias file (aliases(5)).
type Aliases struct {
	File    string
	entries map[string]*alias // by lower-case name; "*" is the catch-all
}

// alias is one entry of the alias file.
type alias struct {
	name    string
	line    int
	targets []target
}

// targetKind says what a value of an alias is.
type targetKind int

const (
	toAddress targetKind = iota // an address, or a local name to expand further
	toLocal                     // \name: the name itself, not expanded again
	toCommand                   // |command
	toFile                      // /file
	toInclude                   // :include:/file
)

type target struct {
	kind targetKind
	text string // the address, or the value as written
	line int
}

// unservable explains why relay cannot deliver to a target of this kind.
func (t target) unservable() string {
	switch t.kind {
	case toCommand:
		return "is a command; relay only hands mail to its smarthost and runs no commands"
	case toFile:
		return "is a file; relay only hands mail to its smarthost and writes no mailboxes"
	case toInclude:
		return "is an :include: list, which relay does not read; write the addresses into the entry"
	}
	return ""
}

// ParseAliases reads an alias file. Problems are every line that cannot
// be used (with file:line; the rest of the file still counts) and, as
// warnings, entries relay cannot serve (|command, /file, :include:) and
// names given twice (the first counts, as in postalias).
func ParseAliases(path string) (*Aliases, []config.Problem, error) {
	entries, probs, err := readTable(path)
	if err != nil {
		return nil, nil, err
	}
	a, more := buildAliases(path, entries)
	probs = append(probs, more...)
	config.SortProblems(probs)
	return a, probs, nil
}

func buildAliases(path string, entries []entry) (*Aliases, []config.Problem) {
	a := &Aliases{File: path, entries: map[string]*alias{}}
	var probs []config.Problem
	add := func(line int, warn bool, format string, args ...any) {
		probs = append(probs, config.Problem{File: path, Line: line, Msg: fmt.Sprintf(format, args...), Warning: warn})
	}
	for _, e := range entries {
		name := strings.ToLower(e.key)
		if strings.ContainsAny(name, "@ \t<>,") {
			add(e.line, false, "%s: an alias name is a local name (no @, no spaces)", e.key)
			continue
		}
		if prev, dup := a.entries[name]; dup {
			add(e.line, true, "%s: defined again (first at line %d, which counts)", e.key, prev.line)
			continue
		}
		al := &alias{name: e.key, line: e.line}
		bad := false
		for _, v := range e.values {
			t, msg := parseTarget(v)
			if msg != "" {
				add(v.line, false, "%s: %s", e.key, msg)
				bad = true
				continue
			}
			if why := t.unservable(); why != "" {
				add(v.line, true, "%s: %q %s; mail reaching it bounces", e.key, t.text, why)
			}
			al.targets = append(al.targets, t)
		}
		if bad && len(al.targets) == 0 {
			continue
		}
		a.entries[name] = al
	}
	return a, probs
}

// parseTarget classifies one value of an alias.
func parseTarget(v item) (target, string) {
	s := v.text
	if u, ok := unquote(s); ok {
		s = u
	}
	t := target{text: s, line: v.line}
	switch {
	case strings.HasPrefix(s, "|"):
		t.kind = toCommand
	case strings.HasPrefix(s, "/"):
		t.kind = toFile
	case len(s) >= 9 && strings.EqualFold(s[:9], ":include:"):
		t.kind = toInclude
	case strings.HasPrefix(s, `\`):
		t.kind, t.text = toLocal, s[1:]
		if err := mailaddr.Valid(mailaddr.Qualify(t.text, "example.invalid")); err != nil || t.text == "" {
			return t, fmt.Sprintf("%q is not a local name: %v", v.text, err)
		}
	default:
		list, err := mailaddr.ParseList(v.text)
		switch {
		case err != nil:
			return t, fmt.Sprintf("%q is not an address: %v", v.text, err)
		case len(list) != 1 || list[0].Addr == "":
			return t, fmt.Sprintf("%q is not one address", v.text)
		}
		t.text = list[0].Addr
		if err := mailaddr.Valid(mailaddr.Qualify(t.text, "example.invalid")); err != nil {
			return t, fmt.Sprintf("%q is not an address: %v", v.text, err)
		}
	}
	return t, ""
}

// Expansion is one address an envelope recipient becomes.
type Expansion struct {
	// Address is where the mail goes (qualified); for an undeliverable
	// expansion, the local address that could not be served.
	Address string
	// Undeliverable, when set, is why mail to Address bounces: the alias
	// leads only to a command, a file, an :include: or a loop.
	Undeliverable string
	// Rule names the alias entries that decided, in order ("alias
	// /etc/aliases: root (line 3) -> admin (line 7)"), "" when none
	// applied.
	Rule string
}

// expander expands local names through the alias file.
type expander struct {
	a     *Aliases
	local func(addr string) bool
	qual  func(addr string) string
}

// expand returns what addr becomes. Rules, in the manner of sendmail:
//
//   - only local names are looked up (no domain, or a local domain), by
//     their local part, ignoring case;
//   - values are expanded again, to any depth up to maxAliasDepth;
//   - a name that lists itself ("root: root, alice") means the name
//     itself: it is not expanded again; "\name" is never expanded;
//   - a name met again deeper down is a loop: that branch ends, and if no
//     branch gives an address the recipient is undeliverable;
//   - "*" catches the local names without an entry of their own; what it
//     gives is expanded by the entries, never by "*" again;
//   - |command, /file and :include: cannot be served: they are left out
//     when the name has other addresses, else the recipient is
//     undeliverable with that reason (one Expansion).
func (x *expander) expand(addr string) []Expansion {
	var out []Expansion
	var failed []Expansion
	seen := map[string]bool{}
	var walk func(addr string, path []string, viaStar bool, rule string)
	walk = func(addr string, path []string, viaStar bool, rule string) {
		deliver := func() {
			q := strings.ToLower(x.qual(addr))
			if !seen[q] {
				seen[q] = true
				out = append(out, Expansion{Address: x.qual(addr), Rule: rule})
			}
		}
		if x.a == nil || !x.local(addr) {
			deliver()
			return
		}
		name := strings.ToLower(mailaddr.Local(addr))
		al := x.a.entries[name]
		if al == nil && !viaStar {
			if al = x.a.entries["*"]; al != nil {
				viaStar = true
			}
		}
		if al == nil {
			deliver()
			return
		}
		for i, p := range path {
			if p != name {
				continue
			}
			if i == len(path)-1 {
				deliver() // "root: root, …": root itself
			} else {
				failed = append(failed, Expansion{Address: x.qual(addr), Rule: rule,
					Undeliverable: "alias loop: " + strings.Join(append(path[i:], name), " -> ")})
			}
			return
		}
		if len(path) >= maxAliasDepth {
			failed = append(failed, Expansion{Address: x.qual(addr), Rule: rule,
				Undeliverable: fmt.Sprintf("aliases nested deeper than %d: %s", maxAliasDepth, strings.Join(path, " -> "))})
			return
		}
		if rule == "" {
			rule = "alias " + x.a.File + ": " + x.a.ruleName(al, name)
		} else {
			rule += " -> " + x.a.ruleName(al, name)
		}
		path = append(path[:len(path):len(path)], name)
		for _, t := range al.targets {
			switch t.kind {
			case toAddress:
				walk(t.text, path, viaStar, rule)
			case toLocal:
				q := strings.ToLower(x.qual(t.text))
				if !seen[q] {
					seen[q] = true
					out = append(out, Expansion{Address: x.qual(t.text), Rule: rule})
				}
			default:
				failed = append(failed, Expansion{Address: x.qual(addr), Rule: rule,
					Undeliverable: fmt.Sprintf("%s:%d: %s: %q %s", x.a.File, t.line, al.name, t.text, t.unservable())})
			}
		}
	}
	walk(addr, nil, false, "")
	if len(out) > 0 {
		// Some branch leads somewhere: the others are left out (relay
		// check and newaliases warn about them) rather than bounced on
		// every message.
		return out
	}
	if len(failed) > 1 {
		failed = failed[:1]
	}
	return failed
}

// ruleName is one step of a Rule: "root (line 3)", "* (line 9, for
// www-data)". A Rule reads "alias /etc/aliases: root (line 3) -> admin
// (line 7)".
func (a *Aliases) ruleName(al *alias, name string) string {
	if name != strings.ToLower(al.name) {
		return fmt.Sprintf("%s (line %d, for %s)", al.name, al.line, name)
	}
	return fmt.Sprintf("%s (line %d)", al.name, al.line)
}
