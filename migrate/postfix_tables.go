package migrate

import (
	"fmt"
	"io/fs"
	"strings"
)

// Postfix's lookup tables, read from their text source as postmap reads
// them: "key value" lines, "#" comments, a line starting with white space
// continues the one before.

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// validSenderMapKey: an address, a local name, @domain or *.
func validSenderMapKey(k string) bool {
	return k != "" && !strings.ContainsAny(k, " \t,:")
}

// textTable reports whether a table type is read from a text file.
func textTable(typ string) bool {
	switch typ {
	case "hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash":
		return true
	}
	return false
}

type pfEntry struct {
	key, value string
	file       string
	line       int
}

// table reads the first table a parameter names from its text source.
func (p *postfix) table(param, v string) ([]pfEntry, error) {
	maps := splitList(v)
	if len(maps) == 0 {
		return nil, nil
	}
	if len(maps) > 1 {
		p.note(param, NotPossible, "", "only the first table is read: merge the others into it")
	}
	spec := maps[0]
	typ, f, ok := strings.Cut(spec, ":")
	if !ok {
		return nil, srcErr(p.path, p.params[param].line, "%s: %q is not type:name", param, spec)
	}
	if typ == "inline" {
		body := strings.TrimSuffix(strings.TrimPrefix(f, "{"), "}")
		var out []pfEntry
		for _, kv := range strings.Split(body, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				continue
			}
			out = append(out, pfEntry{strings.TrimSpace(k), strings.TrimSpace(val), p.path, p.params[param].line})
		}
		return out, nil
	}
	if !textTable(typ) {
		p.note(param, NotPossible, "", typ+" tables cannot be read: write the entries by hand")
		return nil, nil
	}
	data, _, err := readSource(f)
	if err != nil {
		return nil, err
	}
	var out []pfEntry
	for i, l := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if len(out) == 0 {
				return nil, srcErr(f, i+1, "a continuation line without an entry before it")
			}
			out[len(out)-1].value += " " + t
			continue
		}
		k, val := t, ""
		if j := strings.IndexAny(t, " \t"); j >= 0 {
			k, val = t[:j], strings.TrimSpace(t[j+1:])
		}
		if val == "" {
			return nil, srcErr(f, i+1, "%q has no value", k)
		}
		out = append(out, pfEntry{k, val, f, i + 1})
	}
	return out, nil
}

// passwords reads smtp_sasl_password_maps: by sender (with
// smtp_sender_dependent_authentication), else by next hop.
func (p *postfix) passwords(v string, bySender bool) error {
	t, err := p.table("smtp_sasl_password_maps", v)
	if err != nil {
		return err
	}
	maps := splitList(v)
	var perm fs.FileMode
	if len(maps) > 0 {
		if _, f, ok := strings.Cut(maps[0], ":"); ok {
			_, perm, _ = readSource(f)
		}
	}
	used := map[int]bool{}
	find := func(keys ...string) (int, bool) {
		for _, k := range keys {
			for i, e := range t {
				if strings.EqualFold(e.key, k) {
					return i, true
				}
			}
		}
		return 0, false
	}
	for _, sh := range p.r.Smarthosts {
		var keys []string
		if bySender {
			keys = append(keys, sh.Senders...)
		}
		keys = append(keys, fmt.Sprintf("[%s]:%d", sh.Host, sh.Port), "["+sh.Host+"]", fmt.Sprintf("%s:%d", sh.Host, sh.Port), sh.Host)
		i, ok := find(keys...)
		if !ok {
			continue
		}
		user, pass, _ := strings.Cut(t[i].value, ":")
		sh.Username, sh.Password = user, pass
		used[i] = true
		p.r.exposedNote(t[i].file, perm)
	}
	for i, e := range t {
		if used[i] {
			user, _, _ := strings.Cut(e.value, ":")
			p.r.note(e.file, e.line, e.key+" "+user+":…", Mapped, "username and password_file", "the password went to a secret file")
		} else {
			p.r.note(e.file, e.line, e.key, NotNeeded, "", "no smarthost or sender it applies to")
		}
	}
	p.note("smtp_sasl_password_maps", Mapped, "username and password_file of each smarthost", "")
	return nil
}
