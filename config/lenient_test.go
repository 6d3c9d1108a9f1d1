package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

func lenient(t *testing.T, text string, mode os.FileMode) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "relay.toml")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return config.LoadLenient(config.Location{Path: p, Required: true, DefaultSpool: "/default/spool"})
}

func TestLoadLenient(t *testing.T) {
	tests := []struct {
		name, text string
		mode       os.FileMode
		spool      string
		listen     []string
		found      string // in HoldReason
	}{
		{"unknown key keeps the spool", "spool = \"/s\"\ndomian = \"x\"\n", 0o600, "/s", nil, "domian: unknown key"},
		{"bad spool takes the default", "spool = \"relative\"\n", 0o600, "/default/spool", nil, "absolute path"},
		{"inline password readable by others", "spool = \"/s\"\n[[smarthost]]\nhost = \"h.example\"\nusername = \"u\"\npassword = \"pw\"\n", 0o644, "/s", nil, "inline password"},
		{"syntax error: the text before it counts", "spool = \"/s\"\n[daemon]\nlisten = [\"127.0.0.1:25\", \"bad\"]\n[[smarthost]]\nhost = \n", 0o600, "/s", []string{"127.0.0.1:25"}, "line 5"},
		{"syntax error first: a spool line is found", "x = [\nspool = '/s2'\n", 0o600, "/s2", nil, "has errors"},
		{"syntax error, no spool line", "[[smarthost\n", 0o600, "/default/spool", nil, "has errors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := lenient(t, tt.text, tt.mode)
			if c.Broken() == nil || !strings.Contains(c.HoldReason(), tt.found) || !strings.HasPrefix(c.HoldReason(), "the configuration ") {
				t.Errorf("broken %v, reason %q, want it to say %q", c.Broken(), c.HoldReason(), tt.found)
			}
			if c.Spool != tt.spool {
				t.Errorf("spool %q, want %q", c.Spool, tt.spool)
			}
			if strings.Join(c.Daemon.Listen, ",") != strings.Join(tt.listen, ",") {
				t.Errorf("listen %q, want %q", c.Daemon.Listen, tt.listen)
			}
			if strings.Contains(c.HoldReason(), "pw\"") {
				t.Error("the reason quotes the password")
			}
		})
	}
	if c := lenient(t, "spool = \"/s\"\n", 0o600); c.Broken() != nil || c.HoldReason() != "" {
		t.Errorf("a good file: %v", c.Broken())
	}
	missing := config.LoadLenient(config.Location{Path: "/nonexistent/relay.toml", Required: true, DefaultSpool: "/d"})
	if missing.Broken() == nil || missing.Spool != "/d" {
		t.Errorf("a missing required file: broken %v, spool %q", missing.Broken(), missing.Spool)
	}
}

func TestLocate_RelativePathIsMadeAbsolute(t *testing.T) {
	wd, _ := os.Getwd()
	loc := config.Locate("relay.toml", func(string) string { return "" }, 1000)
	if loc.Path != filepath.Join(wd, "relay.toml") {
		t.Errorf("-C relay.toml: %q", loc.Path)
	}
	loc = config.Locate("", func(k string) string { return map[string]string{"RELAY_CONFIG": "x/r.toml"}[k] }, 1000)
	if loc.Path != filepath.Join(wd, "x/r.toml") {
		t.Errorf("RELAY_CONFIG=x/r.toml: %q", loc.Path)
	}
}
