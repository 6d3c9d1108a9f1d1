package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/migrate"
)

func TestPostfix_NullClientSaslCanonical(t *testing.T) {
	dir := sample(t, "postfix", "nullclient", map[string]os.FileMode{"sasl_passwd": 0o600})
	path := filepath.Join(dir, "main.cf")
	m, r, out := imported(t, "postfix", path)
	want(t, m, map[string]any{
		"domain":                     nil, // myorigin = /etc/mailname
		"helo_name":                  "server1.example.com",
		"smarthost[1].host":          "smtp.example.com",
		"smarthost[1].port":          587,
		"smarthost[1].tls":           "starttls",
		"smarthost[1].username":      "robot@example.com",
		"smarthost[1].password_file": out + "/smtp.example.com.secret",
		"smarthost[2]":               nil,
		"queue.lifetime":             "2d",
		"rewrite.aliases":            dir + "/aliases",
		"rewrite.sender_map":         out + "/senders",
		"rewrite.from_header":        "rewrite",
	})
	if secret(t, out, "smtp.example.com.secret") != "r0b0t-s3cret" {
		t.Error("secret")
	}
	senders, _ := os.ReadFile(filepath.Join(out, "senders"))
	for _, l := range []string{"root: robot@example.com", "www-data: web@example.com", "@server1.example.com: @example.com"} {
		if !strings.Contains(string(senders), "\n"+l+"\n") {
			t.Errorf("senders lacks %q:\n%s", l, senders)
		}
	}
	if n := notesFor(r, "smtp_tls_security_level = may"); n.Status != migrate.Insecure || !strings.Contains(n.Why, "starttls") {
		t.Errorf("may: %s", n)
	}
	for k, st := range map[string]migrate.Status{
		"smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)": migrate.NotNeeded,
		"mydestination = ":                                   migrate.NotNeeded,
		"inet_interfaces = loopback-only":                    migrate.NotNeeded,
		"smtp_tls_CApath = /etc/ssl/certs":                   migrate.NotNeeded,
		"local_transport = error:local delivery is disabled": migrate.NotNeeded,
	} {
		if n := notesFor(r, k); n.Status != st {
			t.Errorf("%s: %s, want %s", k, n, st)
		}
	}
	everyLineAccounted(t, r, path, func(l string) bool { return settingLine(l) && !strings.HasPrefix(l, " ") })
	everyLineAccounted(t, r, filepath.Join(dir, "sasl_passwd"), settingLine)
	everyLineAccounted(t, r, filepath.Join(dir, "sender_canonical"), settingLine)
	for _, n := range r.Notes {
		if strings.Contains(n.String(), "r0b0t-s3cret") {
			t.Errorf("the password is in the report: %s", n)
		}
	}
}

func TestPostfix_PostconfSenderDependent(t *testing.T) {
	dir := sample(t, "postfix", "senderdep", map[string]os.FileMode{"sasl_passwd": 0o644})
	path := filepath.Join(dir, "postconf-n")
	m, r, out := imported(t, "postfix", path)
	want(t, m, map[string]any{
		"helo_name": "host2.example.org",
		// The sender's own relay host first, then relayhost's, then the
		// fallback: Postfix's order.
		"smarthost[1].host":          "smtp.billing.example",
		"smarthost[1].port":          465,
		"smarthost[1].senders":       []string{"billing@example.org"},
		"smarthost[1].username":      "billing@example.org",
		"smarthost[1].tls":           "implicit",
		"smarthost[1].tls_ca_file":   dir + "/ca.pem",
		"smarthost[1].ip_family":     "ipv4",
		"smarthost[2].host":          "mx1.example.org",
		"smarthost[2].username":      "relay@example.org",
		"smarthost[2].password_file": out + "/mx1.example.org.secret",
		"smarthost[3].host":          "mx2.example.org",
		"smarthost[3].password_file": out + "/mx2.example.org.secret",
		"smarthost[4].host":          "fallback.example.org",
		"smarthost[4].username":      nil,
		"smarthost[5]":               nil,
		"max_message_size":           "20480000",
		"queue.retry_min":            "5m",
		"queue.retry_max":            "1h6m40s",
		"queue.warn_after":           "4h",
		"rewrite.from_header":        "rewrite",
	})
	if secret(t, out, "mx2.example.org.secret") != "mx2-pass" || secret(t, out, "smtp.billing.example.secret") != "b1ll" {
		t.Error("secrets")
	}
	if n := notesFor(r, "smtp_tls_security_level = encrypt"); n.Status != migrate.Insecure || !strings.Contains(n.Why, "tls_fingerprint") {
		t.Errorf("encrypt: %s", n)
	}
	if n := notesFor(r, "some_future_parameter = 1"); n.Status != migrate.Unknown {
		t.Errorf("an unknown parameter: %s", n)
	}
	exposed := 0
	for _, n := range r.Notes {
		if n.Key == "(password)" {
			exposed++
		}
	}
	if exposed != 1 {
		t.Errorf("%d exposure notes for a world-readable sasl_passwd, want one:\n%s", exposed, notes(r))
	}
	everyLineAccounted(t, r, path, settingLine)
}

func TestPostfix_Malformed(t *testing.T) {
	dir := sample(t, "postfix", "nullclient", nil)
	p := filepath.Join(dir, "main.cf.bad")
	_, err := migrate.Import("postfix", p)
	if exitCode(err) != 65 || !strings.Contains(err.Error(), p+":2:") {
		t.Errorf("err = %v", err)
	}
	os.WriteFile(p, []byte("relayhost = [a.example\n"), 0o644)
	if _, err := migrate.Import("postfix", p); exitCode(err) != 65 || !strings.Contains(err.Error(), p+":1:") {
		t.Errorf("err = %v", err)
	}
	os.WriteFile(p, []byte("relayhost = [a.example]\nsmtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = hash:"+dir+"/nothere\n"), 0o644)
	if _, err := migrate.Import("postfix", p); exitCode(err) != 66 {
		t.Errorf("a missing table: %v (want 66)", err)
	}
}
