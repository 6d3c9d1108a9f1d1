package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
)

// The providers' presets: what each fills in (docs/relay.toml.5.md,
// "Presets", gives the source of every value).
func TestPresets_Providers(t *testing.T) {
	tests := []struct {
		preset, username, region string
		host                     string
		port                     int
		tls                      string
		login                    string // the username after Load
		senderIsLogin            bool
		rate                     string
	}{
		{"icloud", "robot@icloud.com", "", "smtp.mail.me.com", 587, "starttls", "robot@icloud.com", true, "1000/d"},
		{"zoho", "robot@example.org", "", "smtp.zoho.com", 465, "implicit", "robot@example.org", true, "50/h"},
		{"fastmail", "robot@fastmail.com", "", "smtp.fastmail.com", 465, "implicit", "robot@fastmail.com", false, ""},
		{"yahoo", "robot@yahoo.com", "", "smtp.mail.yahoo.com", 465, "implicit", "robot@yahoo.com", true, "500/d"},
		{"gmx", "robot@gmx.net", "", "mail.gmx.net", 587, "starttls", "robot@gmx.net", true, "100/h"},
		{"web.de", "robot", "", "smtp.web.de", 587, "starttls", "robot@web.de", true, "100/h"},
		{"sendgrid", "", "", "smtp.sendgrid.net", 587, "starttls", "apikey", false, ""},
		{"mailgun", "postmaster@mg.example.com", "", "smtp.mailgun.org", 587, "starttls", "postmaster@mg.example.com", false, ""},
		{"ses", "AKIAEXAMPLE", "eu-west-1", "email-smtp.eu-west-1.amazonaws.com", 587, "starttls", "AKIAEXAMPLE", false, ""},
		{"mailjet", "0123456789abcdef", "", "in-v3.mailjet.com", 587, "starttls", "0123456789abcdef", false, ""},
		{"brevo", "8a1b2c001@smtp-brevo.com", "", "smtp-relay.brevo.com", 587, "starttls", "8a1b2c001@smtp-brevo.com", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			text := "[[smarthost]]\npreset = \"" + tt.preset + "\"\n"
			if tt.username != "" {
				text += "username = \"" + tt.username + "\"\n"
			}
			if tt.region != "" {
				text += "region = \"" + tt.region + "\"\n"
			}
			text += "password = \"hunter2\"\n"
			c, path, err := load(t, text, 0o600)
			if err != nil {
				t.Fatalf("Load: %v", problems(t, err, path))
			}
			sh := c.Smarthosts[0]
			if sh.Host != tt.host || sh.Port != tt.port || sh.TLS != tt.tls || sh.Username != tt.login || sh.RateLimit.String() != tt.rate {
				t.Errorf("got %s:%d %s login %q rate %q; want %s:%d %s login %q rate %q",
					sh.Host, sh.Port, sh.TLS, sh.Username, sh.RateLimit, tt.host, tt.port, tt.tls, tt.login, tt.rate)
			}
			if p := config.Presets[tt.preset]; p.SenderIsLogin != tt.senderIsLogin {
				t.Errorf("SenderIsLogin %v, want %v", p.SenderIsLogin, tt.senderIsLogin)
			}
			for _, p := range c.Check() {
				if p.Key == "smarthost[1].username" && tt.preset != "web.de" {
					t.Errorf("Check warns about the login: %s", p)
				}
			}
		})
	}
	if r := config.Presets["icloud"].RateLimit; r.N != 1000 || r.Per != 24*time.Hour {
		t.Errorf("icloud rate %v", r)
	}
}

// SES: the region makes the host; without one, or with a bad one, Load
// says what to write. region belongs to ses only.
func TestPresets_SESRegion(t *testing.T) {
	for text, want := range map[string]string{
		"preset = \"ses\"\n":                             `FILE:2: smarthost[1].preset: preset ses needs region, e.g. region = "eu-west-1"`,
		"preset = \"ses\"\nregion = \"Frankfurt\"\n":     `FILE:3: smarthost[1].region: "Frankfurt" is not a region, e.g. "us-east-1" or "eu-central-1"`,
		"preset = \"gmail\"\nregion = \"eu-west-1\"\n":   `FILE:3: smarthost[1].region: has no use with preset gmail`,
		"host = \"a.example\"\nregion = \"eu-west-1\"\n": `FILE:3: smarthost[1].region: has no use without a preset that has regions (ses)`,
	} {
		_, path, err := load(t, "[[smarthost]]\n"+text, 0o600)
		if got := strings.Join(problems(t, err, path), "\n"); !strings.HasPrefix(got, want) {
			t.Errorf("%q:\n%s\nwant it to start %s", text, got, want)
		}
	}
	c, _, err := load(t, "[[smarthost]]\npreset = \"ses\"\nregion = \"us-gov-west-1\"\n", 0o600)
	if err != nil || c.Smarthosts[0].Host != "email-smtp.us-gov-west-1.amazonaws.com" {
		t.Errorf("GovCloud region: %v", err)
	}
	// A host written in the table wins, region or not (a VPC endpoint).
	c, _, err = load(t, "[[smarthost]]\npreset = \"ses\"\nhost = \"vpce-1.email-smtp.eu-west-1.vpce.amazonaws.com\"\n", 0o600)
	if err != nil || c.Smarthosts[0].Host != "vpce-1.email-smtp.eu-west-1.vpce.amazonaws.com" {
		t.Errorf("host with preset ses: %v", err)
	}
}

// SendGrid's login is the word apikey: filled in, and a password alone
// suffices; a username written in the table wins.
func TestPresets_SendGridUsername(t *testing.T) {
	c, path, err := load(t, "[[smarthost]]\npreset = \"sendgrid\"\npassword_file = \"/etc/relay/sendgrid.key\"\n", 0o600)
	if err != nil {
		t.Fatal(problems(t, err, path))
	}
	if c.Smarthosts[0].Username != "apikey" {
		t.Errorf("username %q, want apikey", c.Smarthosts[0].Username)
	}
}
