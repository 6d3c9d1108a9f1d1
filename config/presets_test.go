package config_test

import (
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

// TestPresets_BareLogin: a username without a domain under a preset.
// Yandex documents its login without @yandex.ru: relay qualifies it, and
// relay check says so. Mail.ru, Rambler and Outlook.com log in with the
// whole address on one of several domains (or any), which is also the
// envelope sender: a bare login is an error. Gmail logs in with the whole
// address but keeps the sender: a warning.
func TestPresets_BareLogin(t *testing.T) {
	tests := []struct {
		preset, username string
		wantLogin        string // after Load ("" when Load refuses)
		wantErr          string // Load's error
		wantWarning      string // Check's warning on the username key
	}{
		{"yandex", "robot", "robot@yandex.ru", "", `FILE:3: warning: smarthost[1].username: "robot" is a bare login: preset yandex logs in and sends as robot@yandex.ru`},
		{"yandex", "robot@yandex.ru", "robot@yandex.ru", "", ""},
		{"yandex", "robot@example.org", "robot@example.org", "", ""}, // Yandex 360 on a domain of one's own
		{"mailru", "robot", "", `FILE:3: smarthost[1].username: "robot" is not an address: preset mailru logs in with the whole mailbox address, e.g. robot@mail.ru`, ""},
		{"mailru", "robot@inbox.ru", "robot@inbox.ru", "", ""},
		{"rambler", "robot", "", `"robot" is not an address: preset rambler logs in with the whole mailbox address, e.g. robot@rambler.ru`, ""},
		{"outlook", "robot", "", `"robot" is not an address: preset outlook logs in with the whole address of the Microsoft account`, ""},
		{"outlook", "robot@example.org", "robot@example.org", "", ""},
		{"gmail", "robot", "robot", "", `FILE:3: warning: smarthost[1].username: "robot" is not an address: preset gmail logs in with the whole address, e.g. robot@gmail.com or an address of a Google Workspace domain; a bare login may be refused`},
		{"gmail", "robot@gmail.com", "robot@gmail.com", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.preset+"/"+tt.username, func(t *testing.T) {
			text := "[[smarthost]]\npreset = \"" + tt.preset + "\"\nusername = \"" + tt.username + "\"\npassword = \"hunter2\"\n"
			c, path, err := load(t, text, 0o600)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), path, "FILE"), tt.wantErr) {
					t.Fatalf("Load: %v, want an error containing %q", err, tt.wantErr)
				}
				if n := strings.Count(err.Error(), "\n"); n != 0 {
					t.Errorf("Load: %d lines, want the one problem: %v", n+1, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := c.Smarthosts[0].Username; got != tt.wantLogin {
				t.Errorf("username %q, want %q", got, tt.wantLogin)
			}
			var warnings []string
			for _, p := range c.Check() {
				if p.Key == "smarthost[1].username" {
					warnings = append(warnings, strings.ReplaceAll(p.String(), path, "FILE"))
				}
			}
			if strings.Join(warnings, "\n") != tt.wantWarning {
				t.Errorf("Check about the username: %q, want %q", warnings, tt.wantWarning)
			}
		})
	}
}

// TestPresets_LoginRules: every preset either qualifies a bare login with
// its one domain or says what its login is; none does both.
func TestPresets_LoginRules(t *testing.T) {
	for name, p := range config.Presets {
		if (p.LoginDomain == "") == (p.Login == "") {
			t.Errorf("preset %s: LoginDomain %q, Login %q: want exactly one", name, p.LoginDomain, p.Login)
		}
	}
}
