package migrate_test

// A fuzz target of the importers. Seeds: the samples in testdata/ and
// testdata/fuzz/; bench/fuzz.sh runs it longer.

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/relaymail/relay/migrate"
	"github.com/relaymail/relay/sysexits"
)

// fuzzFormats: each importer and the file its main text goes to
// (nullmailer reads a directory: the text is its remotes file).
var fuzzFormats = []struct{ format, file string }{
	{"msmtp", "msmtprc"}, {"ssmtp", "ssmtp.conf"}, {"nullmailer", "remotes"},
	{"dma", "dma.conf"}, {"postfix", "main.cf"},
}

// FuzzImport checks every importer on any text: it refuses the file with
// one line and an exit code of its own (65 malformed, 66 missing, 77
// permission), or it gives a report of one line per setting and a
// relay.toml that is valid TOML, with one [[smarthost]] table per
// smarthost it found: no value of the source can break out of its string
// into keys or tables of its own.
func FuzzImport(f *testing.F) {
	for i, ff := range fuzzFormats {
		dirs, _ := filepath.Glob(filepath.Join("testdata", ff.format, "*"))
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, ff.file)); err == nil {
				f.Add(uint8(i), b)
			}
		}
	}
	for _, s := range []string{
		"host smtp.example.com\npassword \"a\\\"b\nfrom x@y\n",
		"relayhost = [smtp.example.com]:587\nmyorigin = \"x\ny\"\n",
		"mailhub=smtp.example.com:465\nAuthPass=a\"\\\n",
		"smtp.example.com smtp --port=587 --user=a\"b --pass=x --starttls\n",
		"SMARTHOST smtp.example.com\nMASQUERADE a\"]\n[x]@b\n",
	} {
		for i := range fuzzFormats {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, text []byte) {
		ff := fuzzFormats[int(which)%len(fuzzFormats)]
		dir := t.TempDir()
		main := filepath.Join(dir, ff.file)
		if err := os.WriteFile(main, text, 0o600); err != nil {
			t.Fatal(err)
		}
		path := main
		if ff.format == "nullmailer" {
			path = dir
		}
		r, err := migrate.Import(ff.format, path)
		if err != nil {
			var se *sysexits.Error
			if !errors.As(err, &se) || (se.Code != sysexits.DataErr && se.Code != sysexits.NoInput && se.Code != sysexits.NoPerm) {
				t.Fatalf("%s %q: error %T %v, want exit 65, 66 or 77", ff.format, text, err, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") || err.Error() == "" {
				t.Fatalf("%s %q: error %q is not one line", ff.format, text, err)
			}
			return
		}
		var report strings.Builder
		migrate.WriteReport(&report, r.Notes)
		if got := strings.Count(report.String(), "\n"); got != len(r.Notes)+1 {
			t.Fatalf("%s %q: report of %d lines for %d settings:\n%s", ff.format, text, got, len(r.Notes), report.String())
		}
		out := r.TOML(filepath.Join(dir, "out"))
		var m map[string]any
		if _, err := toml.Decode(out, &m); err != nil {
			t.Fatalf("%s %q: relay.toml is no TOML: %v\n%s", ff.format, text, err, out)
		}
		shs, _ := m["smarthost"].([]map[string]any)
		if len(shs) != len(r.Smarthosts) {
			t.Fatalf("%s %q: %d [[smarthost]] tables for %d smarthosts\n%s", ff.format, text, len(shs), len(r.Smarthosts), out)
		}
	})
}
