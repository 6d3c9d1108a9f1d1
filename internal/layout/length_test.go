package layout_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

const (
	// maxRootLines bounds each file of the root package, its tests too:
	// it parses the command line and dispatches, so a long file there is
	// command logic, or tests of it, that belong in a package of its own.
	maxRootLines = 300
	// maxTestLines bounds every _test.go file of the module: tests are
	// grouped by behaviour, one file per behaviour.
	maxTestLines = 800
)

func TestFileLengths(t *testing.T) {
	pkgs := modulePackages(t)
	var root string
	for _, p := range pkgs {
		if p.ImportPath == module {
			root = p.Dir
		}
	}
	if root == "" {
		t.Fatal("go list did not list the module's root package")
	}
	violations := map[string]string{} // file → its line count
	check := func(dir, file string, limit int) {
		path := filepath.Join(dir, file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			n++
		}
		if n > limit {
			r, _ := filepath.Rel(root, path)
			r = filepath.ToSlash(r)
			violations[r] = fmt.Sprintf("%s has %d lines, over %d", r, n, limit)
		}
	}
	for _, p := range pkgs {
		tests := append(p.TestGoFiles, p.XTestGoFiles...)
		if p.ImportPath == module {
			for _, f := range append(p.GoFiles, tests...) {
				check(p.Dir, f, maxRootLines)
			}
			continue
		}
		for _, f := range tests {
			check(p.Dir, f, maxTestLines)
		}
	}
	reportViolations(t, violations)
}
