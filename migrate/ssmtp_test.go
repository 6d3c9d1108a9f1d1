package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/migrate"
)

func TestSsmtp_Gmail(t *testing.T) {
	dir := sample(t, "ssmtp", "gmail", map[string]os.FileMode{"ssmtp.conf": 0o640})
	path := filepath.Join(dir, "ssmtp.conf")
	m, r, out := imported(t, "ssmtp", path)
	want(t, m, map[string]any{
		"domain":                     "gmail.com",
		"helo_name":                  "server1.example.com",
		"smarthost[1].name":          "smtp.gmail.com",
		"smarthost[1].preset":        "gmail", // smtp.gmail.com:587 STARTTLS
		"smarthost[1].username":      "me@gmail.com",
		"smarthost[1].password_file": out + "/smtp.gmail.com.secret",
		"smarthost[1].tls_ca_file":   nil, // the system bundle
		"smarthost[2]":               nil, // revaliases name the same mailhub
		"rewrite.aliases":            out + "/aliases",
		"rewrite.sender_map":         out + "/senders",
		"rewrite.from_header":        nil, // FromLineOverride=YES
	})
	if got := secret(t, out, "smtp.gmail.com.secret"); got != "app-password-16ch" {
		t.Errorf("secret %q", got)
	}
	senders, _ := os.ReadFile(filepath.Join(out, "senders"))
	if string(senders) != "# sender map imported from "+path+" by relay import (relay-rewrite(7), SENDER MAP)\nroot: me@gmail.com\nwww-data: web@gmail.com\n" {
		t.Errorf("senders:\n%s", senders)
	}
	aliases, _ := os.ReadFile(filepath.Join(out, "aliases"))
	if !strings.Contains(string(aliases), "\nroot: me@gmail.com\n") {
		t.Errorf("aliases:\n%s", aliases)
	}
	for _, n := range r.Notes {
		if n.Key == "(password)" {
			t.Errorf("a 0640 ssmtp.conf reported as world-readable: %s", n)
		}
	}
	everyLineAccounted(t, r, path, settingLine)
	everyLineAccounted(t, r, filepath.Join(dir, "revaliases"), settingLine)
}

func TestSsmtp_ImplicitTLSOtherMailhub(t *testing.T) {
	dir := sample(t, "ssmtp", "implicit", nil)
	path := filepath.Join(dir, "ssmtp.conf")
	m, r, out := imported(t, "ssmtp", path)
	want(t, m, map[string]any{
		"domain":                     "server1.example.net", // hostname, without rewriteDomain
		"smarthost[1].host":          "mail.example.net",
		"smarthost[1].port":          465,
		"smarthost[1].tls":           "implicit",
		"smarthost[1].tls_ca_file":   dir + "/ca.pem",
		"smarthost[1].auth":          "cram-md5",
		"smarthost[1].senders":       nil,
		"smarthost[2].host":          "smtp.example.org", // backup's own mailhub
		"smarthost[2].port":          587,
		"smarthost[2].tls":           "starttls",
		"smarthost[2].username":      "server1", // ssmtp has one login
		"smarthost[2].password_file": out + "/smtp.example.org.secret",
		"smarthost[2].senders":       []string{"backup@example.org"},
		"rewrite.from_header":        "rewrite", // FromLineOverride=NO by default
	})
	if n := noteOf(t, r, "ssmtp.conf", 1); n.Status != migrate.Mapped || !strings.Contains(n.To, "root: postmaster@example.net") {
		t.Errorf("root=: %s", n)
	}
	everyLineAccounted(t, r, path, settingLine)
}

func TestSsmtp_NoTLSIsInsecure(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ssmtp.conf")
	os.WriteFile(p, []byte("mailhub=mail.example.com\nUnknownKey=1\n"), 0o644)
	m, r, _ := imported(t, "ssmtp", p)
	want(t, m, map[string]any{"smarthost[1].tls": "starttls", "smarthost[1].port": 25})
	insecure, unknown := false, false
	for _, n := range r.Notes {
		insecure = insecure || n.Status == migrate.Insecure && strings.Contains(n.Why, "clear")
		unknown = unknown || n.Status == migrate.Unknown && n.Line == 2
	}
	if !insecure || !unknown {
		t.Errorf("no TLS reported %v, unknown key reported %v:\n%s", insecure, unknown, notes(r))
	}
	os.WriteFile(p, []byte("mailhub=mail.example.com\nno equals sign\n"), 0o644)
	if _, err := migrate.Import("ssmtp", p); exitCode(err) != 65 || !strings.Contains(err.Error(), p+":2:") {
		t.Errorf("malformed: %v", err)
	}
}
