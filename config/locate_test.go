package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/relaymail/relay/config"
)

func TestLocate(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(present, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(dir, "absent.toml")

	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	user := env("HOME", "/home/u")
	tests := []struct {
		name     string
		system   string
		explicit string
		getenv   func(string) string
		euid     int
		want     config.Location
	}{
		{"explicit wins", present, "/etc/other.toml", env("RELAY_CONFIG", "/env.toml", "HOME", "/home/u"), 1000,
			config.Location{Path: "/etc/other.toml", Required: true, DefaultSpool: config.SystemSpool}},
		{"RELAY_CONFIG", present, "", env("RELAY_CONFIG", "/env.toml"), 1000,
			config.Location{Path: "/env.toml", Required: true, DefaultSpool: config.SystemSpool}},
		{"system file exists, user", present, "", user, 1000,
			config.Location{Path: present, Required: true, DefaultSpool: config.SystemSpool}},
		{"system file exists, root", present, "", user, 0,
			config.Location{Path: present, Required: true, DefaultSpool: config.SystemSpool}},
		{"single user, XDG defaults", absent, "", user, 1000,
			config.Location{Path: "/home/u/.config/relay/relay.toml", DefaultSpool: "/home/u/.local/state/relay"}},
		{"single user, XDG set", absent, "", env("HOME", "/home/u", "XDG_CONFIG_HOME", "/cfg", "XDG_STATE_HOME", "/state"), 1000,
			config.Location{Path: "/cfg/relay/relay.toml", DefaultSpool: "/state/relay"}},
		{"single user, relative XDG ignored", absent, "", env("HOME", "/home/u", "XDG_CONFIG_HOME", "cfg", "XDG_STATE_HOME", "state"), 1000,
			config.Location{Path: "/home/u/.config/relay/relay.toml", DefaultSpool: "/home/u/.local/state/relay"}},
		{"single user without HOME", absent, "", env(), 1000,
			config.Location{Path: absent, DefaultSpool: config.SystemSpool}},
		{"root, no system file", absent, "", user, 0,
			config.Location{Path: absent, DefaultSpool: config.SystemSpool}},
	}
	old := config.SystemPath
	defer func() { config.SystemPath = old }()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config.SystemPath = tt.system
			if got := config.Locate(tt.explicit, tt.getenv, tt.euid); got != tt.want {
				t.Errorf("Locate = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A system file that cannot be looked at (a directory without search
// permission on the way) counts as present, so that Load says why it cannot
// be read instead of silently using a user's file.
func TestLocateUnreadableSystemDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can search any directory")
	}
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "relay.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	old := config.SystemPath
	defer func() { config.SystemPath = old }()
	config.SystemPath = filepath.Join(dir, "relay.toml")
	if got := config.Locate("", func(k string) string {
		if k == "HOME" {
			return "/home/u"
		}
		return ""
	}, 1000); got.Path != config.SystemPath || !got.Required {
		t.Errorf("Locate = %+v, want the system file, required", got)
	}
}
