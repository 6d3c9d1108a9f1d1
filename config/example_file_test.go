package config_test

// relay.toml.example: it loads, and it documents every key.

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

// TestExample loads relay.toml.example and checks that it documents every key.
func TestExample(t *testing.T) {
	text, err := os.ReadFile("../relay.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	c, path, err := load(t, string(text), 0o600)
	if err != nil {
		t.Fatalf("the example does not load:\n%s", strings.Join(problems(t, err, path), "\n"))
	}
	if len(c.Smarthosts) != 1 || c.Smarthosts[0].Host != "smtp.yandex.ru" || c.Smarthosts[0].Port != 465 {
		t.Errorf("example smarthost = %+v", c.Smarthosts)
	}
	// Also as a 0644 file: the example must not carry an active inline password.
	if _, path, err := load(t, string(text), 0o644); err != nil {
		t.Errorf("the example does not load from a 0644 file:\n%s", strings.Join(problems(t, err, path), "\n"))
	}

	var keys []string
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name := f.Tag.Get("toml")
			if name == "" || name == "-" {
				continue
			}
			switch ft := f.Type; {
			case ft.Kind() == reflect.Struct && ft.PkgPath() == rt.PkgPath() && ft.Name() != "RateLimit":
				walk(ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem())
			}
			keys = append(keys, name)
		}
	}
	walk(reflect.TypeFor[config.Config]())
	for _, k := range keys {
		var re *regexp.Regexp
		switch k {
		case "smarthost", "header":
			re = regexp.MustCompile(`(?m)^#? *\[\[(rewrite\.)?` + k + `\]\]`)
		case "queue", "rewrite", "daemon", "log", "metrics":
			re = regexp.MustCompile(`(?m)^\[` + k + `\]`)
		case "oauth":
			re = regexp.MustCompile(`(?m)^#? *\[smarthost\.oauth\]`)
		default:
			// An active or commented-out key with a comment on its line.
			re = regexp.MustCompile(`(?m)^#? *` + k + ` *=.*# \S`)
		}
		if !re.Match(text) {
			t.Errorf("relay.toml.example does not document %q", k)
		}
	}
}

func BenchmarkLoadExample(b *testing.B) {
	text, err := os.ReadFile("../relay.toml.example")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "relay.toml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		b.Fatal(err)
	}
	loc := config.Location{Path: path, Required: true, DefaultSpool: config.SystemSpool}
	for b.Loop() {
		if _, err := config.Load(loc); err != nil {
			b.Fatal(err)
		}
	}
}
