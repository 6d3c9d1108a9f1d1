package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// help runs relay help [COMMAND] and returns its standard output.
func help(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testbin.Binary(t), append([]string{"help"}, args...)...).Output()
	if err != nil {
		t.Fatalf("relay help %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

var (
	usageLineRE = regexp.MustCompile(`^  ([a-z]+(?: [a-z]+)?)((?: [^ ]+)*?)(?:  +\S.*)?$`)
	flagRE      = regexp.MustCompile(`(?:^|[\s\[(,|/])(--?[a-zA-Z][a-zA-Z-]*)`)
)

// flags lists the flags (-v, --json, …) named in s.
func flags(s string) []string {
	var f []string
	for _, m := range flagRE.FindAllStringSubmatch(s, -1) {
		if !slices.Contains(f, m[1]) {
			f = append(f, m[1])
		}
	}
	return f
}

// mentions reports whether text names flag as a word of its own (-v is
// not found in -vv or in --verbose).
func mentions(text, flag string) bool {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9-])` + regexp.QuoteMeta(flag) + `($|[^A-Za-z0-9-])`)
	return re.MatchString(text)
}

// subsections returns the "### " subsections of a page's "## " section,
// by heading.
func subsections(text, section string) map[string]string {
	_, body, _ := strings.Cut(text, "\n## "+section+"\n")
	body, _, _ = strings.Cut(body, "\n## ")
	subs := map[string]string{}
	for _, part := range strings.Split(body, "\n### ")[1:] {
		heading, rest, _ := strings.Cut(part, "\n")
		subs[heading] = rest
	}
	return subs
}

// TestRelay8_HasEveryCommandAndFlagOfTheHelp: each command `relay help`
// lists has its subsection "### relay COMMAND" under COMMANDS in
// relay(8), which names each of its flags; each COMMANDS subsection is a
// command the help lists; the flags of the help's other lines are in
// relay(8) too. The flags of `relay help sendmail`, `mailq` and
// `newaliases` are in their own pages. So the help and the manual
// cannot drift apart.
func TestRelay8_HasEveryCommandAndFlagOfTheHelp(t *testing.T) {
	page := readFile(t, "relay.8.md")
	subs := subsections(page, "COMMANDS")
	if len(subs) == 0 {
		t.Fatal("relay.8.md: no ### subsections under ## COMMANDS")
	}
	listed := map[string]bool{}
	for _, l := range strings.Split(help(t), "\n") {
		m := usageLineRE.FindStringSubmatch(l)
		if m == nil {
			for _, f := range flags(l) {
				if !mentions(page, f) {
					t.Errorf("relay help: %q: relay.8.md does not name %s", l, f)
				}
			}
			continue
		}
		cmd := m[1]
		listed["relay "+cmd] = true
		sub, ok := subs["relay "+cmd]
		if !ok {
			t.Errorf("relay help lists %q; relay.8.md has no \"### relay %s\" under COMMANDS", strings.TrimSpace(l), cmd)
			continue
		}
		for _, f := range flags(m[2]) {
			if !mentions(sub, f) {
				t.Errorf("relay help: %q: relay.8.md, \"### relay %s\", does not name %s", strings.TrimSpace(l), cmd, f)
			}
		}
	}
	for heading := range subs {
		if !listed[heading] {
			t.Errorf("relay.8.md documents %q under COMMANDS; relay help does not list it", heading)
		}
	}

	// Each command's own usage: its flags are in its page, or in its
	// relay(8) subsections.
	for cmd, pageName := range map[string]string{"sendmail": "sendmail.8.md", "mailq": "mailq.1.md", "newaliases": "newaliases.8.md"} {
		own := readFile(t, pageName)
		for _, f := range flags(help(t, cmd)) {
			if !mentions(own, f) {
				t.Errorf("relay help %s names %s; %s does not", cmd, f, pageName)
			}
		}
	}
	for _, cmd := range []string{"queue", "daemon", "check", "probe", "install", "rewrite", "version", "help"} {
		var text string
		for heading, sub := range subs {
			if heading == "relay "+cmd || strings.HasPrefix(heading, "relay "+cmd+" ") {
				text += sub
			}
		}
		if text == "" {
			t.Errorf("relay.8.md has no \"### relay %s\" under COMMANDS", cmd)
			continue
		}
		for _, f := range flags(help(t, cmd)) {
			if f == "-h" || f == "--help" {
				continue // COMMANDS says it once for all
			}
			if !mentions(text, f) {
				t.Errorf("relay help %s names %s; relay.8.md, \"### relay %s…\", does not", cmd, f, cmd)
			}
		}
	}
}

// TestRelay8_HasEveryExitCode: every sysexits code the program uses
// (outside tests) is a row of relay(8)'s EXIT STATUS table, with its
// sysexits.h name, and every row is a sysexits code.
func TestRelay8_HasEveryExitCode(t *testing.T) {
	// The codes: the constants of package sysexits.
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, "../sysexits", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{} // name → value
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
								v, _ := strconv.Atoi(lit.Value)
								codes[n.Name] = v
							}
						}
					}
				}
			}
		}
	}
	if len(codes) < 5 {
		t.Fatalf("found only %v in ../sysexits", codes)
	}

	// The codes in use: sysexits.Name in the module's non-test files.
	used := map[string]bool{"OK": true}
	useRE := regexp.MustCompile(`\bsysexits\.([A-Z][A-Za-z]*)\b`)
	filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		for _, m := range useRE.FindAllStringSubmatch(readFile(t, path), -1) {
			if _, ok := codes[m[1]]; ok {
				used[m[1]] = true
			}
		}
		return nil
	})

	page := readFile(t, "relay.8.md")
	_, table, _ := strings.Cut(page, "\n## EXIT STATUS\n")
	table, _, _ = strings.Cut(table, "\n## ")
	rows := map[int]string{} // code → name column
	rowRE := regexp.MustCompile(`(?m)^\| (\d+) \| (\S*) *\|`)
	for _, m := range rowRE.FindAllStringSubmatch(table, -1) {
		v, _ := strconv.Atoi(m[1])
		rows[v] = m[2]
	}
	for name, v := range codes {
		want := "EX_" + strings.ToUpper(name)
		if v == 0 {
			want = ""
		}
		row, ok := rows[v]
		switch {
		case !ok && used[name]:
			t.Errorf("relay(8) EXIT STATUS has no row for %d (%s, used by the program)", v, want)
		case ok && row != want:
			t.Errorf("relay(8) EXIT STATUS names %d %q, want %q", v, row, want)
		}
	}
	for v := range rows {
		found := false
		for _, c := range codes {
			found = found || c == v
		}
		if !found {
			t.Errorf("relay(8) EXIT STATUS has %d, which is no code of package sysexits", v)
		}
	}
}
