package migrate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/migrate"
	"github.com/relaymail/relay/sysexits"
)

// sample copies testdata/FORMAT/NAME into a temporary directory, with
// @DIR@ replaced by that directory, a CA certificate as ca.pem, and the
// given file modes (default 0644), and returns the directory.
func sample(t *testing.T, format, name string, modes map[string]os.FileMode) string {
	t.Helper()
	src := filepath.Join("testdata", format, name)
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), "@DIR@", dir))
		mode := os.FileMode(0o644)
		if m, ok := modes[e.Name()]; ok {
			mode = m
		}
		p := filepath.Join(dir, e.Name())
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	cert := testsmtp.LocalhostCert(t)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), cert.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// imported runs the import, writes the result into a new directory, loads
// it with the config package (Load, then Check: no error, only
// warnings allowed) and returns the decoded relay.toml, the result and the
// directory written.
func imported(t *testing.T, format, path string) (map[string]any, *migrate.Result, string) {
	t.Helper()
	r, err := migrate.Import(format, path)
	if err != nil {
		t.Fatalf("Import(%s, %s): %v", format, path, err)
	}
	out := t.TempDir()
	if _, err := r.Write(migrate.WriteOptions{Dir: out, GID: -1}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	cfgPath := filepath.Join(out, "relay.toml")
	cfg, err := config.Load(config.Location{Path: cfgPath, Required: true})
	if err != nil {
		b, _ := os.ReadFile(cfgPath)
		t.Fatalf("the imported configuration does not load: %v\n%s", err, b)
	}
	for _, p := range cfg.Check() {
		if !p.Warning {
			b, _ := os.ReadFile(cfgPath)
			t.Errorf("relay check: %s\n%s", p, b)
		}
	}
	var m map[string]any
	if _, err := toml.DecodeFile(cfgPath, &m); err != nil {
		t.Fatal(err)
	}
	return m, r, out
}

// key finds a value by a path such as "smarthost[2].host" or
// "queue.lifetime" (nil when absent).
func key(m map[string]any, path string) any {
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[name]
		if hasIdx {
			i, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			arr, ok := cur.([]map[string]any)
			if !ok || i < 1 || i > len(arr) {
				return nil
			}
			cur = arr[i-1]
		}
	}
	return cur
}

// want checks the keys of an imported relay.toml one by one; a nil value
// means the key must be absent.
func want(t *testing.T, m map[string]any, keys map[string]any) {
	t.Helper()
	for k, w := range keys {
		got := key(m, k)
		if w == nil {
			if got != nil {
				t.Errorf("%s = %v, want it absent", k, got)
			}
			continue
		}
		if ws, ok := w.([]string); ok {
			var gs []string
			if ga, ok := got.([]any); ok {
				for _, g := range ga {
					gs = append(gs, fmt.Sprint(g))
				}
			}
			if !reflect.DeepEqual(gs, ws) {
				t.Errorf("%s = %v, want %v", k, got, ws)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", k, got, w)
		}
	}
}

// noteOf finds the note of a source line (file base name and line).
func noteOf(t *testing.T, r *migrate.Result, file string, line int) migrate.Note {
	t.Helper()
	for _, n := range r.Notes {
		if filepath.Base(n.File) == file && n.Line == line {
			return n
		}
	}
	t.Fatalf("no note for %s:%d; notes:\n%s", file, line, notes(r))
	return migrate.Note{}
}

func notes(r *migrate.Result) string {
	var b strings.Builder
	migrate.WriteReport(&b, r.Notes)
	return b.String()
}

// secret reads a secret file written next to relay.toml.
func secret(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, name))
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("%s: mode %o, want 0640", name, fi.Mode().Perm())
	}
	return strings.TrimSuffix(string(b), "\n")
}

// everyLineAccounted checks that every setting line of a source file has a
// note.
func everyLineAccounted(t *testing.T, r *migrate.Result, path string, isSetting func(line string) bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if !isSetting(l) {
			continue
		}
		found := false
		for _, n := range r.Notes {
			if n.File == path && n.Line == i+1 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s:%d: %q has no note in the report", path, i+1, l)
		}
	}
}

func settingLine(l string) bool {
	t := strings.TrimSpace(l)
	return t != "" && t[0] != '#'
}

func exitCode(err error) int { return sysexits.Code(err, 70) }
