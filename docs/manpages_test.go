package docs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// pages lists the manual pages: docs/NAME.SECTION.md.
func pages(t *testing.T) []string {
	t.Helper()
	p, err := filepath.Glob("*.[1-8].md")
	if err != nil || len(p) == 0 {
		t.Fatalf("no manual pages in docs/: %v", err)
	}
	return p
}

var pageNameRE = regexp.MustCompile(`^(.+)\.([1-8])\.md$`)

// TestPages_Structure: each page opens as packaging/man.sh and the man
// conventions want: the title "# NAME(SECTION)", a NAME section that
// whatis(1) can read ("name - what"), a SYNOPSIS for commands (sections
// 1 and 8) and SEE ALSO last.
func TestPages_Structure(t *testing.T) {
	for _, p := range pages(t) {
		m := pageNameRE.FindStringSubmatch(p)
		name, section := m[1], m[2]
		text := readFile(t, p)
		lines := strings.Split(text, "\n")
		if want := "# " + name + "(" + section + ")"; lines[0] != want {
			t.Errorf("%s: first line %q, want the title %q", p, lines[0], want)
		}
		var sections []string
		for _, l := range lines {
			if s, ok := strings.CutPrefix(l, "## "); ok {
				sections = append(sections, s)
			}
		}
		if len(sections) == 0 || sections[0] != "NAME" {
			t.Errorf("%s: the first section is %q, want NAME", p, sections)
		} else if nameLine := strings.SplitN(strings.SplitN(text, "## NAME\n\n", 2)[1], "\n", 2)[0]; !strings.HasPrefix(nameLine, name+" - ") && !strings.HasPrefix(nameLine, name+", ") {
			t.Errorf("%s: NAME says %q, want %q", p, nameLine, name+" - …")
		}
		if (section == "1" || section == "8") && !slices.Contains(sections, "SYNOPSIS") {
			t.Errorf("%s: no SYNOPSIS section", p)
		}
		if len(sections) > 0 && sections[len(sections)-1] != "SEE ALSO" {
			t.Errorf("%s: the last section is %q, want SEE ALSO", p, sections[len(sections)-1])
		}
		for _, s := range sections {
			if strings.ToUpper(s) != s && !strings.HasPrefix(s, "-") {
				t.Errorf("%s: section %q: a man page's sections are in capitals (### for subsections)", p, s)
			}
		}
	}
}

// TestPages_Lint builds the pages with packaging/man.sh, as the packages
// do, and lints each with mandoc -T lint, which must say nothing (every
// level, style included). Without mandoc the test is skipped, except in
// CI (RELAY_CI=1), where .ci/run installs it and it fails.
func TestPages_Lint(t *testing.T) {
	mandoc, err := exec.LookPath("mandoc")
	if err != nil {
		if os.Getenv("RELAY_CI") != "" {
			t.Fatal("mandoc is missing (apt-get install mandoc)")
		}
		t.Skip("mandoc is missing (apt-get install mandoc)")
	}
	out := buildPages(t)
	for _, p := range pages(t) {
		m := pageNameRE.FindStringSubmatch(p)
		name, section := m[1], m[2]
		roff := filepath.Join(out, "man"+section, name+"."+section)
		b, err := os.ReadFile(roff)
		if err != nil {
			t.Errorf("packaging/man.sh did not build %s: %v", p, err)
			continue
		}
		text := string(b)
		if want := ".TH " + strings.ToUpper(name) + " " + section + " "; !strings.Contains(text, "\n"+want) && !strings.HasPrefix(text, want) {
			t.Errorf("%s: no title line %q…", roff, want)
		}
		if strings.Contains(text, `\[la]`) {
			t.Errorf("%s: a link went through as <…>: %s", roff, lineWith(text, `\[la]`))
		}
		if lint, err := exec.Command(mandoc, "-T", "lint", "-W", "all", roff).CombinedOutput(); err != nil || len(lint) > 0 {
			t.Errorf("mandoc -T lint %s (%v):\n%s", p, err, lint)
		}
		// lintian's groff-message: man(1) formats the page 120 columns
		// wide and must not warn (a wide table "cannot adjust line").
		if manCmd, err := exec.LookPath("man"); err == nil {
			cmd := exec.Command(manCmd, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", roff)
			cmd.Env = append(os.Environ(), "MANWIDTH=120", "LC_ALL=C.UTF-8", "MANROFFSEQ=")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("man --warnings %s at 120 columns, as lintian runs it (%v):\n%s", p, err, stderr.String())
			}
		}
	}
	// Nothing else is built: every file comes from a page.
	built, _ := filepath.Glob(filepath.Join(out, "man*", "*"))
	if len(built) != len(pages(t)) {
		t.Errorf("packaging/man.sh built %d files for %d pages: %q", len(built), len(pages(t)), built)
	}
}

// buildPages runs packaging/man.sh into a temporary directory.
func buildPages(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("bash", "../packaging/man.sh", out)
	cmd.Env = os.Environ()
	if _, err := exec.LookPath("go"); err != nil {
		cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH")+":"+filepath.Join(runtime.GOROOT(), "bin"))
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("packaging/man.sh: %v\n%s", err, b)
	}
	return out
}

// TestManSh_RefusesAPageWithoutItsTitle: a page whose first line is not
// "# NAME(SECTION)" stops the build with one line naming it; so does a
// missing go-md2man, with how to get it.
func TestManSh_RefusesAPageWithoutItsTitle(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"docs", "packaging"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := readFile(t, "../packaging/man.sh")
	os.WriteFile(filepath.Join(root, "packaging", "man.sh"), []byte(script), 0o755)
	os.WriteFile(filepath.Join(root, "docs", "foo.8.md"), []byte("# foo(8): what foo does\n\n## NAME\n\nfoo - bar\n"), 0o644)
	cmd := exec.Command("bash", filepath.Join(root, "packaging", "man.sh"), filepath.Join(root, "out"))
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), `docs/foo.8.md: the first line must be the title "# foo(8)"`) || strings.Count(string(b), "\n") != 1 {
		t.Errorf("man.sh with a bad title: %v, output %q; want a failure and one line naming the page", err, b)
	}

	// Outside the module go-md2man is missing: one line says how to get it.
	os.WriteFile(filepath.Join(root, "docs", "foo.8.md"), []byte("# foo(8)\n\n## NAME\n\nfoo - bar\n"), 0o644)
	b, err = exec.Command("bash", filepath.Join(root, "packaging", "man.sh"), filepath.Join(root, "out")).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "go-md2man is missing") || !strings.Contains(string(b), "go mod download") || strings.Count(string(b), "\n") != 1 {
		t.Errorf("man.sh without go-md2man: %v, output %q; want a failure and one line saying how to get it", err, b)
	}
}

func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	slugDrop  = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	// codeSpanRE is an inline code span: a link written in one is an
	// example, not a link.
	codeSpanRE = regexp.MustCompile("`[^`\n]*`")
)

// slug is GitHub's anchor for a heading: lower case, punctuation other
// than - and _ dropped, spaces as -.
func slug(heading string) string {
	s := strings.ToLower(strings.ReplaceAll(heading, "`", ""))
	return strings.ReplaceAll(slugDrop.ReplaceAllString(s, ""), " ", "-")
}

// prose is a Markdown text without its code blocks.
func prose(text string) string {
	var b strings.Builder
	code := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "```") {
			code = !code
			continue
		}
		if !code {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// anchors are the headings of a Markdown file as GitHub links to them.
func anchors(text string) map[string]bool {
	a := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(prose(text), -1) {
		a[slug(m[1])] = true
	}
	return a
}

// TestPages_LinksLeadSomewhere: every relative link of the pages, of
// docs/README.md and of the README names a file that exists and, with
// #anchor, a heading of that file, so that the pages read on GitHub as
// well as in man.
func TestPages_LinksLeadSomewhere(t *testing.T) {
	files, _ := filepath.Glob("*.md")
	files = append(files, "../README.md")
	for _, f := range files {
		text := codeSpanRE.ReplaceAllString(prose(readFile(t, f)), "")
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := f
			if file != "" {
				path = filepath.Join(filepath.Dir(f), file)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				if _, serr := os.Stat(path); serr != nil {
					t.Errorf("%s: link %s: %v", f, target, serr)
				}
				continue // a directory
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchors(string(b))[anchor] {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", f, target, path, anchor)
			}
		}
	}
}
