package config_test

// [smarthost.oauth]: the presets that use it, the defaults per provider,
// and the problems reported with file:line.

import (
	"reflect"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

func TestOAuth_Presets(t *testing.T) {
	text := `spool = "/srv/spool"
[[smarthost]]
name = "m365"
preset = "office365"
username = "robot@example.com"
[smarthost.oauth]
client_id = "11111111-2222-3333-4444-555555555555"
tenant = "example.onmicrosoft.com"

[[smarthost]]
name = "outlook"
preset = "outlook"
username = "robot@outlook.com"
[smarthost.oauth]
client_id = "abc"

[[smarthost]]
name = "gmail"
preset = "gmail"
username = "robot@gmail.com"
[smarthost.oauth]
client_id = "g.apps.googleusercontent.com"
client_secret_file = "/etc/relay/gmail-client.secret"

[[smarthost]]
name = "gmail-app"
preset = "gmail"
username = "robot@gmail.com"
password_file = "/etc/relay/gmail.secret"

[[smarthost]]
name = "app-only"
preset = "office365"
username = "robot@example.com"
[smarthost.oauth]
flow = "client_credentials"
client_id = "abc"
client_secret_file = "/etc/relay/m365.secret"
tenant = "0fa1b2c3-0000-0000-0000-000000000000"
`
	c, path, err := load(t, text, 0o644)
	if err != nil {
		t.Fatalf("%v", problems(t, err, path))
	}
	m, o, g, ga, app := c.Smarthosts[0], c.Smarthosts[1], c.Smarthosts[2], c.Smarthosts[3], c.Smarthosts[4]
	if m.Host != "smtp.office365.com" || m.Port != 587 || m.TLS != "starttls" || !m.UsesOAuth() {
		t.Errorf("office365: %+v", m)
	}
	want := config.OAuth{Provider: "microsoft", Flow: "device", ClientID: "11111111-2222-3333-4444-555555555555", Tenant: "example.onmicrosoft.com",
		Scopes:                 []string{"https://outlook.office.com/SMTP.Send", "offline_access"},
		DeviceAuthorizationURL: "https://login.microsoftonline.com/example.onmicrosoft.com/oauth2/v2.0/devicecode",
		AuthorizationURL:       "https://login.microsoftonline.com/example.onmicrosoft.com/oauth2/v2.0/authorize",
		TokenURL:               "https://login.microsoftonline.com/example.onmicrosoft.com/oauth2/v2.0/token",
		TokenFile:              "/srv/spool/oauth/m365.json"}
	if !reflect.DeepEqual(m.OAuth, want) {
		t.Errorf("office365 oauth:\n got %+v\nwant %+v", m.OAuth, want)
	}
	if o.Host != "smtp-mail.outlook.com" || o.OAuth.Tenant != "consumers" || o.OAuth.Flow != "device" {
		t.Errorf("outlook: %+v", o)
	}
	if g.OAuth.Provider != "google" || g.OAuth.Flow != "authcode" || g.OAuth.TokenURL != "https://oauth2.googleapis.com/token" ||
		!reflect.DeepEqual(g.OAuth.Scopes, []string{"https://mail.google.com/"}) {
		t.Errorf("gmail oauth: %+v", g.OAuth)
	}
	if ga.UsesOAuth() || ga.PasswordFile == "" {
		t.Errorf("gmail with an app password uses OAuth: %+v", ga)
	}
	if app.OAuth.Flow != "client_credentials" || !reflect.DeepEqual(app.OAuth.Scopes, []string{"https://outlook.office365.com/.default"}) {
		t.Errorf("app-only: %+v", app.OAuth)
	}
}

func TestOAuth_Problems(t *testing.T) {
	text := `[[smarthost]]
name = "a"
preset = "office365"
username = "robot@example.com"

[[smarthost]]
name = "b"
host = "smtp.example.org"
username = "robot@example.org"
password_file = "/etc/relay/b.secret"
auth = "plain"
[smarthost.oauth]
provider = "generic"
client_id = "x"
token_url = "http://auth.example.org/token"

[[smarthost]]
name = "c"
preset = "office365"
username = "robot@example.com"
[smarthost.oauth]
flow = "client_credentials"
client_id = "x"
tenant = "common"
scope = ["x"]

[[smarthost]]
name = "d"
preset = "gmail"
username = "robot@gmail.com"
`
	_, path, err := load(t, text, 0o644)
	got := strings.Join(problems(t, err, path), "\n")
	for _, want := range []string{
		`FILE:1: smarthost[1].oauth: missing client_id: preset office365 logs in with OAuth: add a [smarthost.oauth] table with client_id (README: quick start)`,
		`FILE:10: smarthost[2].password_file: has no use with [smarthost.oauth]: relay obtains the access token itself`,
		`FILE:11: smarthost[2].auth: must be "xoauth2" or "oauthbearer" (or left out) with [smarthost.oauth], not "plain"`,
		`FILE:12: smarthost[2].oauth: missing device_authorization_url: the device flow starts there`,
		`FILE:15: smarthost[2].oauth.token_url: must be an https URL (http only on a loopback address), not "http://auth.example.org/token"`,
		`smarthost[3].oauth: missing client_secret_file`,
		`smarthost[3].oauth.tenant: "common" cannot issue an app-only token (client_credentials)`,
		`smarthost[3].oauth.scope: unknown key; did you mean "scopes"?`,
		`smarthost[4].username: needs password_file (an app password) or a [smarthost.oauth] table`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing problem %q in:\n%s", want, got)
		}
	}
}

// TestOAuth_CheckWarnsPasswordForOAuthPreset: a preset whose provider
// turned passwords off, given a password, loads (a tenant may still
// allow it) but relay check warns.
func TestOAuth_CheckWarnsPasswordForOAuthPreset(t *testing.T) {
	text := "[rewrite]\naliases = \"\"\n[[smarthost]]\nname = \"o\"\npreset = \"outlook\"\nusername = \"robot@outlook.com\"\npassword_command = [\"/bin/true\"]\n"
	c, path, err := load(t, text, 0o644)
	if err != nil {
		t.Fatalf("%v", problems(t, err, path))
	}
	var got []string
	for _, p := range c.Check() {
		if strings.HasPrefix(p.Key, "smarthost") { // not the host's /etc/aliases
			got = append(got, strings.ReplaceAll(p.String(), path, "FILE"))
		}
	}
	want := "FILE:5: warning: smarthost[1].preset: outlook: Microsoft has turned passwords (basic authentication) off for SMTP"
	if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.Contains(got[0], "relay oauth login o") {
		t.Errorf("check: %q, want %q…", got, want)
	}
}
