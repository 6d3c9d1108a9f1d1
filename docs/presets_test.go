package docs_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

// presetRows returns the rows of the first table after the heading in
// the Markdown file path, by their first cell ("yandex" for
// "| `yandex` | …").
func presetRows(t *testing.T, path, heading string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s: no heading %q", path, heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	rows := map[string]string{}
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		rows[name] = line
	}
	return rows
}

// Every preset the loader knows has its row, with its host and port, in
// relay.toml(5)'s table and in the README's, which names the source of
// each value (relay.toml(5) sends the reader there); no row names a
// preset that does not exist. Presets came from several branches at
// once: a row left out of one table is what this catches.
func TestPresets_EveryPresetInBothTables(t *testing.T) {
	for _, tbl := range []struct{ path, heading string }{
		{"relay.toml.5.md", "## PRESETS"},
		{"../README.md", "## Presets"},
	} {
		rows := presetRows(t, tbl.path, tbl.heading)
		for name, p := range config.Presets {
			row, ok := rows[name]
			if !ok {
				t.Errorf("%s: preset %s has no row in the table under %q", tbl.path, name, tbl.heading)
				continue
			}
			host := strings.ReplaceAll(p.Host, "%s", "`region`")
			if !strings.Contains(row, host) || !strings.Contains(row, fmt.Sprint(p.Port)) {
				t.Errorf("%s: the row of %s does not say %s and port %d: %s", tbl.path, name, host, p.Port, row)
			}
		}
		for name := range rows {
			if _, ok := config.Presets[name]; !ok {
				t.Errorf("%s: a row for %q, which is no preset", tbl.path, name)
			}
		}
	}
}
