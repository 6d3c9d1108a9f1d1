package layout_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

// module is the module's path; the tables name packages relative to it.
const module = "github.com/relaymail/relay"

// listedPackage is what `go list -json` says of one package of the module.
// Deps is the transitive closure of its imports, the set `go list -deps`
// prints, so one call gives both the direct and the transitive graph.
type listedPackage struct {
	ImportPath   string
	Name         string
	Dir          string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
	Imports      []string
	Deps         []string
}

// rel is path relative to the module: "" for the root, "spool" for
// github.com/relaymail/relay/spool; paths outside the module are kept.
func rel(path string) string {
	if path == module {
		return ""
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r
	}
	return path
}

var (
	listOnce sync.Once
	listed   []listedPackage
	listErr  error
)

// modulePackages lists every package of the module once per test binary.
// go test puts its own go first in PATH, so this is the toolchain that
// builds the tests.
func modulePackages(t *testing.T) []listedPackage {
	t.Helper()
	listOnce.Do(func() {
		cmd := exec.Command("go", "list", "-json=ImportPath,Name,Dir,GoFiles,TestGoFiles,XTestGoFiles,Imports,Deps", module+"/...")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			listErr = errors.New("go list: " + err.Error() + "\n" + stderr.String())
			return
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var p listedPackage
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				listErr = err
				return
			}
			listed = append(listed, p)
		}
	})
	if listErr != nil {
		t.Fatal(listErr)
	}
	if len(listed) == 0 {
		t.Fatal("go list found no package in the module")
	}
	return listed
}

// reportViolations fails the test once for each violation, in a stable
// order.
func reportViolations(t *testing.T, violations map[string]string) {
	t.Helper()
	for _, key := range slices.Sorted(maps.Keys(violations)) {
		t.Errorf("%s", violations[key])
	}
}
