package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/migrate"
)

func TestMsmtp_YandexHowTo(t *testing.T) {
	dir := sample(t, "msmtp", "yandex", nil)
	path := filepath.Join(dir, "msmtprc")
	m, r, out := imported(t, "msmtp", path)
	want(t, m, map[string]any{
		"domain":                       "yandex.ru", // auto_from on + maildomain
		"smarthost[1].name":            "yandex",
		"smarthost[1].preset":          "yandex", // smtp.yandex.ru:465 implicit is the preset
		"smarthost[1].host":            nil,
		"smarthost[1].username":        "robot",
		"smarthost[1].password_file":   out + "/yandex.secret",
		"smarthost[1].password":        nil,
		"smarthost[1].envelope_from":   nil, // auto_from: from is not used
		"smarthost[1].tls_fingerprint": nil,
		"smarthost[2]":                 nil,
	})
	if got := secret(t, out, "yandex.secret"); got != "s3cret pass" {
		t.Errorf("secret = %q", got)
	}
	toml, _ := os.ReadFile(filepath.Join(out, "relay.toml"))
	if strings.Contains(string(toml), "s3cret") {
		t.Errorf("the password is in relay.toml:\n%s", toml)
	}
	if n := noteOf(t, r, "msmtprc", 6); n.Status != migrate.Insecure || !strings.Contains(n.Why, "tls_fingerprint") || !strings.Contains(n.Why, "relay probe") {
		t.Errorf("tls_certcheck off: %s, want insecure with the tls_fingerprint pin proposed", n)
	}
	if n := noteOf(t, r, "msmtprc", 15); n.Status != migrate.Mapped || !strings.Contains(n.To, "domain") {
		t.Errorf("auto_from on: %s", n)
	}
	// The source is world-readable: the exposure is reported.
	found := false
	for _, n := range r.Notes {
		if n.Key == "(password)" && n.Status == migrate.Insecure && strings.Contains(n.Why, "exposed") {
			found = true
		}
	}
	if !found {
		t.Errorf("a password in a world-readable msmtprc is not reported:\n%s", notes(r))
	}
	everyLineAccounted(t, r, path, settingLine)
}

func TestMsmtp_AccountsInheritanceAliases(t *testing.T) {
	dir := sample(t, "msmtp", "accounts", nil)
	path := filepath.Join(dir, "msmtprc")
	m, r, out := imported(t, "msmtp", path)
	want(t, m, map[string]any{
		// The default first, catching every sender.
		"smarthost[1].name":             "corp",
		"smarthost[1].host":             "mail.corp.example",
		"smarthost[1].port":             587,
		"smarthost[1].tls":              "starttls", // tls on, tls_starttls on (msmtp's default)
		"smarthost[1].tls_ca_file":      nil,        // the system bundle
		"smarthost[1].username":         "robot@corp.example",
		"smarthost[1].password_command": []string{"/bin/sh", "-c", "pass show mail/robot"},
		"smarthost[1].password_file":    nil,
		"smarthost[1].envelope_from":    "robot@corp.example",
		"smarthost[1].senders":          nil,
		"smarthost[1].helo_name":        "server1.corp.example",
		// billing inherits corp's port, tls, auth, domain and passwordeval,
		// and has its own host, login, CA and pin.
		"smarthost[2].name":             "billing",
		"smarthost[2].host":             "smtp.billing.example",
		"smarthost[2].port":             587,
		"smarthost[2].tls":              "starttls",
		"smarthost[2].username":         "billing@billing.example",
		"smarthost[2].password_file":    out + "/billing.secret",
		"smarthost[2].password_command": nil, // its own password, written after corp's passwordeval
		"smarthost[2].senders":          []string{"billing@billing.example"},
		"smarthost[2].envelope_from":    nil,
		"smarthost[2].tls_ca_file":      nil, // the fingerprint replaces it, as in msmtp
		"smarthost[2].tls_fingerprint":  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"smarthost[2].helo_name":        "server1.corp.example",
		"smarthost[3]":                  nil,
		"rewrite.aliases":               out + "/aliases",
		"log.to":                        "syslog",
	})
	aliases, err := os.ReadFile(filepath.Join(out, "aliases"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"root: ops@corp.example", "cron: ops@corp.example, dev@corp.example", "*: admin@corp.example"} {
		if !strings.Contains(string(aliases), line+"\n") {
			t.Errorf("aliases lacks %q:\n%s", line, aliases)
		}
	}
	if n := noteOf(t, r, "msmtprc", 24); n.Status != migrate.NotPossible || !strings.Contains(n.Why, "-N") {
		t.Errorf("dsn_notify: %s", n)
	}
	everyLineAccounted(t, r, path, settingLine)
}

func TestMsmtp_PlainAndUnknownKeys(t *testing.T) {
	dir := sample(t, "msmtp", "plain", nil)
	path := filepath.Join(dir, "msmtprc")
	m, r, _ := imported(t, "msmtp", path)
	want(t, m, map[string]any{
		"smarthost[1].host":          "192.0.2.25",
		"smarthost[1].port":          25,
		"smarthost[1].tls":           "starttls", // never carried over as "none"
		"smarthost[1].username":      nil,        // auth off
		"smarthost[1].envelope_from": "cron@example.org",
	})
	if n := noteOf(t, r, "msmtprc", 3); n.Status != migrate.Insecure || !strings.Contains(n.Why, "starttls") {
		t.Errorf("tls off: %s", n)
	}
	if n := noteOf(t, r, "msmtprc", 8); n.Status != migrate.Unknown || n.Key != "frobnicate yes" {
		t.Errorf("an unknown key: %s", n)
	}
	everyLineAccounted(t, r, path, settingLine)
}

func TestMsmtp_Malformed(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ text, want string }{
		{"host x\n", ":1: "},
		{"account a\nport many\n", ":2: port"},
		{"account a : missing\n", ":1: "},
		{"account a\ntls maybe\n", ":2: tls"},
	} {
		p := filepath.Join(dir, "msmtprc")
		os.WriteFile(p, []byte(c.text), 0o600)
		_, err := migrate.Import("msmtp", p)
		if err == nil || !strings.Contains(err.Error(), p+c.want) {
			t.Errorf("%q: err = %v, want %s%s", c.text, err, p, c.want)
		}
		if code := exitCode(err); code != 65 {
			t.Errorf("%q: exit %d, want 65", c.text, code)
		}
	}
	_, err := migrate.Import("msmtp", filepath.Join(dir, "missing"))
	if code := exitCode(err); code != 66 {
		t.Errorf("a missing msmtprc: exit %d (%v), want 66", code, err)
	}
}

// "account default : NAME" with lines of its own is an account of its own
// (NAME's settings and its own), first; without, NAME is the default.
func TestMsmtp_DefaultWithItsOwnLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "msmtprc")
	os.WriteFile(p, []byte("account a\nhost a.example\nfrom a@example.org\n\naccount b\nhost b.example\nfrom b@example.org\n\naccount default : b\nport 2525\n"), 0o600)
	m, _, _ := imported(t, "msmtp", p)
	want(t, m, map[string]any{
		"smarthost[1].name": "default", "smarthost[1].host": "b.example", "smarthost[1].port": 2525,
		"smarthost[1].envelope_from": "b@example.org", "smarthost[1].senders": nil,
		"smarthost[2].name": "a", "smarthost[2].senders": []string{"a@example.org"},
		"smarthost[3].name": "b", "smarthost[3].port": 25, "smarthost[3].senders": []string{"b@example.org"},
	})
	os.WriteFile(p, []byte("account a\nhost a.example\nfrom a@example.org\n\naccount b\nhost b.example\nfrom b@example.org\n\naccount default : b\n"), 0o600)
	m, _, _ = imported(t, "msmtp", p)
	want(t, m, map[string]any{
		"smarthost[1].name": "b", "smarthost[1].envelope_from": "b@example.org", "smarthost[1].senders": nil,
		"smarthost[2].name": "a", "smarthost[2].senders": []string{"a@example.org"},
		"smarthost[3]": nil,
	})
}
