package config_test

// A fuzz target of the configuration parser. Seeds: testdata/fuzz/ and
// relay.toml.example; bench/fuzz.sh runs it longer.

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

// FuzzLoad checks config.Load on any file text: it accepts the file, or
// refuses it with an *Errors whose every problem names the file, a line
// of it or a key, in one line of text (what relay check and sendmail
// print); loading the same text again gives the same result.
func FuzzLoad(f *testing.F) {
	if b, err := os.ReadFile("../relay.toml.example"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"[[smarthost]]\nhost = \"smtp.example.com\"\nport = 587\nusername = \"robot@example.com\"\npassword_file = \"/etc/relay/password\"\n",
		"domian = \"example.org\"\n[[smarthost]]\npreset = \"yandex\"\nusername = \"robot\"\n",
		"[[smarthost]]\nhost = \"a\"\npassword = \"inline\"\n",
		"[queue]\nretry_min = \"1m\"\nlifetime = \"5d\"\nmax_message_size = \"10MB\"\n",
		"[rewrite]\nfrom_header = \"rewrite\"\n[[rewrite.header]]\naction = \"remove\"\nname = \"X-Secret\"\n",
		"[[smarthost]]\nhost = \"a\"\nsenders = [\"*@example.org\"]\nproxy = \"socks5://u:p@127.0.0.1:1080\"\nrate_limit = \"100/h\"\n",
		"= broken\n", "[[smarthost]\n", "a = \"\\u0000\"\n", "x = 1\nx = 2\n", "[daemon]\nlisten = [\"127.0.0.1:25\"]\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text []byte) {
		path := filepath.Join(dir, "relay.toml")
		if err := os.WriteFile(path, text, 0o600); err != nil {
			t.Fatal(err)
		}
		loc := config.Location{Path: path, Required: true, DefaultSpool: filepath.Join(dir, "spool")}
		c, err := config.Load(loc)
		if err == nil {
			if c == nil || !c.Loaded || c.Path != path {
				t.Fatalf("Load accepted %q but gave %+v", text, c)
			}
		} else {
			var e *config.Errors
			if !errors.As(err, &e) || len(*e) == 0 {
				t.Fatalf("Load(%q): error %T %v, want *config.Errors", text, err, err)
			}
			lines := strings.Count(string(text), "\n") + 1
			for _, p := range *e {
				if p.File != path || (p.Line == 0 && p.Key == "") || p.Line < 0 || p.Line > lines {
					t.Fatalf("Load(%q): problem %+v has no file:line or key", text, p)
				}
				if p.Msg == "" || strings.ContainsAny(p.String(), "\r\n") {
					t.Fatalf("Load(%q): problem %q is not one line", text, p.String())
				}
			}
		}
		c2, err2 := config.Load(loc)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || !reflect.DeepEqual(c, c2) {
			t.Fatalf("Load(%q) twice: %v, then %v", text, err, err2)
		}
	})
}
