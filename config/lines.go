package config

import (
	"sort"
	"strconv"
	"strings"
)

// BurntSushi/toml does not say where a key was written, so this file scans
// the text itself: a small, forgiving scanner that follows [table] and
// [[array]] headers (counting the entries of each array of tables) and
// `key = value` lines (bare, quoted and dotted keys, inline tables, arrays,
// multi-line strings) and remembers the line of every key path.
//
// Key paths are written the way Problem.Key shows them: components joined by
// dots, quoted when they are not bare keys, and a 1-based index for each entry
// of an array: "smarthost[2].port", "rewrite.header[1].action",
// "daemon.listen[3]".

// lineIndex maps key paths to the 1-based line where they are defined.
type lineIndex map[string]int

// find returns the line of path, or of its closest enclosing table or array
// that has one (keys inside an inline table or array share its line); 0 when
// nothing is known.
func (l lineIndex) find(path string) int {
	for path != "" {
		if n, ok := l[path]; ok {
			return n
		}
		// A key under a wrongly cased table ("[Queue]"): already an error,
		// but its line is still worth giving.
		for k, n := range l {
			if strings.EqualFold(k, path) {
				return n
			}
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath strips the last component ("x", `"x.y"` or "[n]") of a path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
		return ""
	}
	if strings.HasSuffix(p, `"`) {
		// Find the opening quote of the last component, skipping escaped quotes.
		for i := len(p) - 2; i >= 0; i-- {
			if p[i] == '"' && (i == 0 || p[i-1] != '\\') {
				return strings.TrimSuffix(p[:i], ".")
			}
		}
		return ""
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// joinKey appends a key component to a path, quoting it when it is not a
// bare key.
func joinKey(prefix, name string) string {
	if prefix == "" {
		return quoteKey(name)
	}
	return prefix + "." + quoteKey(name)
}

// indexKey appends a 1-based array index to a path.
func indexKey(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

func quoteKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		if !isBareKeyChar(k[i]) {
			return strconv.Quote(k)
		}
	}
	return k
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// keyLines scans a TOML document and returns the line of every table header,
// key and array element in it. It never fails: on text that is not valid
// TOML it records what it can.
func keyLines(src string) lineIndex {
	s := &lineScanner{src: src, out: lineIndex{}, arrays: map[string]int{}}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			s.nl = append(s.nl, i)
		}
	}
	s.run()
	return s.out
}

type lineScanner struct {
	src    string
	i      int
	nl     []int // offsets of the newlines
	out    lineIndex
	arrays map[string]int // arrays of tables: resolved path → entries so far
}

func (s *lineScanner) lineAt(off int) int {
	return sort.SearchInts(s.nl, off) + 1
}

// record remembers the first definition of path at the offset.
func (s *lineScanner) record(path string, off int) {
	if _, ok := s.out[path]; !ok {
		s.out[path] = s.lineAt(off)
	}
}

func (s *lineScanner) eof() bool { return s.i >= len(s.src) }
func (s *lineScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

// skipBlank skips spaces and tabs, and newlines and comments too when
// multiline is set.
func (s *lineScanner) skipBlank(multiline bool) {
	for !s.eof() {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case multiline && c == '\n':
			s.i++
		case multiline && c == '#':
			s.skipLine()
		default:
			return
		}
	}
}

// skipLine moves to the start of the next line.
func (s *lineScanner) skipLine() {
	if j := strings.IndexByte(s.src[s.i:], '\n'); j >= 0 {
		s.i += j + 1
	} else {
		s.i = len(s.src)
	}
}

func (s *lineScanner) run() {
	prefix := ""
	for {
		s.skipBlank(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			prefix = s.header()
		} else {
			s.keyValue(prefix)
		}
		if s.i == start {
			s.i++ // never loop on text the scanner does not understand
		}
		s.skipBlank(false)
		if !s.eof() && s.peek() != '\n' {
			s.skipLine() // a comment, or something that is not TOML
		}
	}
}

// header reads a [table] or [[array]] header and returns the resolved path
// of the table it opens.
func (s *lineScanner) header() string {
	start := s.i
	array := strings.HasPrefix(s.src[s.i:], "[[")
	if array {
		s.i += 2
	} else {
		s.i++
	}
	comps, ok := s.key()
	if !ok {
		return ""
	}
	s.skipBlank(false)
	if array {
		if !strings.HasPrefix(s.src[s.i:], "]]") {
			return ""
		}
		s.i += 2
	} else {
		if s.peek() != ']' {
			return ""
		}
		s.i++
	}
	path := ""
	for n, c := range comps {
		path = joinKey(path, c)
		if array && n == len(comps)-1 {
			s.arrays[path]++
			s.record(path, start)
			path = indexKey(path, s.arrays[path])
		} else if k := s.arrays[path]; k > 0 {
			path = indexKey(path, k)
		}
		s.record(path, start)
	}
	return path
}

// keyValue reads `key = value` and records the key (and the tables its
// dotted form defines).
func (s *lineScanner) keyValue(prefix string) {
	start := s.i
	comps, ok := s.key()
	if !ok {
		return
	}
	s.skipBlank(false)
	if s.peek() != '=' {
		return
	}
	s.i++
	path := prefix
	for _, c := range comps {
		path = joinKey(path, c)
		s.record(path, start)
	}
	s.value(path)
}

// key reads a bare, quoted or dotted key.
func (s *lineScanner) key() ([]string, bool) {
	var comps []string
	for {
		s.skipBlank(false)
		var c string
		switch s.peek() {
		case '"':
			j := s.i + 1
			for j < len(s.src) && s.src[j] != '"' && s.src[j] != '\n' {
				if s.src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s.src) || s.src[j] != '"' {
				return nil, false
			}
			raw := s.src[s.i : j+1]
			if u, err := strconv.Unquote(raw); err == nil {
				c = u
			} else {
				c = raw[1 : len(raw)-1]
			}
			s.i = j + 1
		case '\'':
			j := strings.IndexAny(s.src[s.i+1:], "'\n")
			if j < 0 || s.src[s.i+1+j] != '\'' {
				return nil, false
			}
			c = s.src[s.i+1 : s.i+1+j]
			s.i += j + 2
		default:
			j := s.i
			for j < len(s.src) && isBareKeyChar(s.src[j]) {
				j++
			}
			if j == s.i {
				return nil, false
			}
			c = s.src[s.i:j]
			s.i = j
		}
		comps = append(comps, c)
		s.skipBlank(false)
		if s.peek() != '.' {
			return comps, true
		}
		s.i++
	}
}

// value skips a value, recording the elements of arrays and the keys of
// inline tables under path.
func (s *lineScanner) value(path string) {
	s.skipBlank(false)
	rest := s.src[s.i:]
	switch {
	case strings.HasPrefix(rest, `"""`), strings.HasPrefix(rest, `'''`):
		q := rest[:3]
		j := 3
		for j < len(rest) && !strings.HasPrefix(rest[j:], q) {
			if q[0] == '"' && rest[j] == '\\' {
				j++
			}
			j++
		}
		j += 3
		for n := 0; n < 2 && j < len(rest) && rest[j] == q[0]; n++ {
			j++ // up to two quotes may end the content
		}
		s.i += min(j, len(rest))
	case rest != "" && rest[0] == '"':
		j := 1
		for j < len(rest) && rest[j] != '"' && rest[j] != '\n' {
			if rest[j] == '\\' {
				j++
			}
			j++
		}
		s.i += min(j+1, len(rest))
	case rest != "" && rest[0] == '\'':
		j := strings.IndexAny(rest[1:], "'\n")
		if j < 0 {
			s.i = len(s.src)
		} else {
			s.i += j + 2
		}
	case rest != "" && rest[0] == '[':
		s.i++
		for n := 1; ; {
			s.skipBlank(true)
			if s.eof() {
				return
			}
			switch s.peek() {
			case ']':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			start := s.i
			el := indexKey(path, n)
			s.record(el, start)
			s.value(el)
			n++
			if s.i == start {
				return // not TOML
			}
		}
	case rest != "" && rest[0] == '{':
		s.i++
		for {
			s.skipBlank(true)
			if s.eof() {
				return
			}
			switch s.peek() {
			case '}':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			start := s.i
			s.keyValue(path)
			if s.i == start {
				return // not TOML
			}
		}
	default:
		// Numbers, booleans, dates (which may contain a space).
		j := strings.IndexAny(rest, ",]}#\n")
		if j < 0 {
			j = len(rest)
		}
		s.i += j
	}
}
