package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

// BurntSushi/toml decodes into a struct leniently: keys match
// case-insensitively, unknown keys are only listed by MetaData.Undecoded()
// (without the index of the [[table]] they are in), and the first type
// mismatch stops decoding. So Load lets the library parse the text into a
// map and walks it here against the struct tags itself: exact key names, an
// error for every unknown key and every wrong type, each with its full
// path ("smarthost[2].port") and line. Fields of a type implementing
// toml.Unmarshaler (Size, Duration, RateLimit) are given the raw value, as
// the library would.

type decoder struct {
	file    string
	lines   lineIndex
	defined map[string]bool // canonical key paths written in the file
	bad     map[string]bool // canonical key paths whose value could not be decoded
	probs   []Problem
}

func (d *decoder) errorf(key, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: d.lines.find(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// fail reports a value that cannot be decoded (at wpath, as written) and
// marks its key (cpath, canonical) so that validation says nothing more
// about it.
func (d *decoder) fail(wpath, cpath, format string, args ...any) {
	d.errorf(wpath, format, args...)
	d.bad[cpath] = true
}

type field struct {
	name  string
	index int
}

// fieldsOf lists the fields of a struct type that have a TOML key.
func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			fs = append(fs, field{name, i})
		}
	}
	return fs
}

// table decodes the TOML table m into the struct dst points to.
func (d *decoder) table(path string, m map[string]any, dst any) {
	d.tableValue(path, path, m, reflect.ValueOf(dst).Elem())
}

// tableValue decodes m into the struct rv. wpath is the path as written in
// the file (for lines and messages), cpath the canonical one.
func (d *decoder) tableValue(wpath, cpath string, m map[string]any, rv reflect.Value) {
	fields := fieldsOf(rv.Type())
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := joinKey(wpath, k)
		f, ok := findField(fields, k, false)
		if !ok {
			if f, ok = findField(fields, k, true); ok {
				d.errorf(p, "key %q must be written %q", k, f.name)
			} else {
				d.errorf(p, "unknown key%s", unknownHint(k, fields))
				continue
			}
		}
		cp := joinKey(cpath, f.name)
		d.defined[cp] = true
		d.value(p, cp, m[k], rv.Field(f.index))
	}
}

func findField(fs []field, k string, fold bool) (field, bool) {
	for _, f := range fs {
		if f.name == k || fold && strings.EqualFold(f.name, k) {
			return f, true
		}
	}
	return field{}, false
}

var unmarshalerType = reflect.TypeFor[toml.Unmarshaler]()

// value decodes the TOML value v into fv.
func (d *decoder) value(wpath, cpath string, v any, fv reflect.Value) {
	if pv := fv.Addr(); pv.Type().Implements(unmarshalerType) {
		if err := pv.Interface().(toml.Unmarshaler).UnmarshalTOML(v); err != nil {
			d.fail(wpath, cpath, "%s", err)
		}
		return
	}
	switch fv.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			d.mismatch(wpath, cpath, "a string", v)
			return
		}
		fv.SetString(s)
	case reflect.Int:
		n, ok := v.(int64)
		if !ok {
			d.mismatch(wpath, cpath, "an integer", v)
			return
		}
		if fv.OverflowInt(n) {
			d.fail(wpath, cpath, "%d is out of range", n)
			return
		}
		fv.SetInt(n)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.mismatch(wpath, cpath, "true or false", v)
			return
		}
		fv.SetBool(b)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.mismatch(wpath, cpath, fmt.Sprintf("a table ([%s])", wpath), v)
			return
		}
		d.tableValue(wpath, cpath, m, fv)
	case reflect.Slice:
		if fv.Type().Elem().Kind() == reflect.Struct {
			d.tables(wpath, cpath, v, fv)
			return
		}
		arr, ok := v.([]any)
		if !ok {
			d.mismatch(wpath, cpath, "an array of strings", v)
			return
		}
		out := make([]string, 0, len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				d.mismatch(indexKey(wpath, i+1), cpath, "a string", e)
				continue
			}
			out = append(out, s)
		}
		fv.Set(reflect.ValueOf(out))
	default:
		panic("config: no decoder for " + fv.Type().String())
	}
}

// tables decodes an array of tables, written [[name]] or name = [{…}, …].
func (d *decoder) tables(wpath, cpath string, v any, fv reflect.Value) {
	var ts []map[string]any
	switch v := v.(type) {
	case []map[string]any:
		ts = v
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				d.mismatch(indexKey(wpath, i+1), cpath, "a table", e)
				return
			}
			ts = append(ts, m)
		}
	case map[string]any:
		d.fail(wpath, cpath, "must be an array of tables: write [[%s]], not [%s]", wpath, wpath)
		return
	default:
		d.mismatch(wpath, cpath, fmt.Sprintf("an array of tables ([[%s]])", wpath), v)
		return
	}
	sl := reflect.MakeSlice(fv.Type(), len(ts), len(ts))
	for i, m := range ts {
		d.tableValue(indexKey(wpath, i+1), indexKey(cpath, i+1), m, sl.Index(i))
	}
	fv.Set(sl)
}

func (d *decoder) mismatch(wpath, cpath, want string, v any) {
	d.fail(wpath, cpath, "must be %s, not %s", want, tomlType(v))
}

// keyHomes says where each key of the configuration belongs ("" for the
// top level, "[queue]", "a [[smarthost]] table"), for hints about keys
// written in the wrong table. Made on first use: only a file with an
// unknown key needs it, and every sendmail loads the configuration.
var keyHomes = sync.OnceValue(func() map[string][]string {
	h := map[string][]string{}
	var walk func(t reflect.Type, table string, array bool)
	walk = func(t reflect.Type, table string, array bool) {
		where := ""
		switch {
		case array:
			where = fmt.Sprintf("a [[%s]] table", table)
		case table != "":
			where = fmt.Sprintf("[%s]", table)
		}
		for _, f := range fieldsOf(t) {
			h[f.name] = append(h[f.name], where)
			sub := joinKey(table, f.name)
			switch ft := t.Field(f.index).Type; {
			case ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalerType):
				walk(ft, sub, false)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), sub, true)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", false)
	return h
})

// unknownHint suggests what an unknown key k, found in a table with the
// given fields, was meant to be: a near miss of a known key, or a key that
// belongs in another table.
func unknownHint(k string, fields []field) string {
	lk := strings.ToLower(k)
	best, bestDist := "", 0
	for _, f := range fields {
		dist := editDistance(lk, f.name)
		limit := 2
		if len(f.name) <= 4 || len(lk) <= 4 {
			limit = 1
		}
		if dist <= limit && (best == "" || dist < bestDist) {
			best, bestDist = f.name, dist
		}
	}
	if best == "" && len(lk) >= 3 {
		for _, f := range fields {
			if strings.HasPrefix(f.name, lk) && (best == "" || len(f.name) < len(best)) {
				best = f.name
			}
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	homes := keyHomes()[lk]
	switch {
	case len(homes) == 0:
		return ""
	case len(homes) == 1 && homes[0] == "":
		return fmt.Sprintf("; %q is a top-level key: write it before the first [table] or [[table]]", lk)
	}
	places := make([]string, len(homes))
	for i, h := range homes {
		if h == "" {
			places[i] = "at the top level"
		} else {
			places[i] = "in " + h
		}
	}
	return fmt.Sprintf("; %q belongs %s", lk, strings.Join(places, " or "))
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours ("hots" is one
// step from "host").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
