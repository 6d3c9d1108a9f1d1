package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/migrate"
)

func TestNullmailer_TwoRemotesWithOptions(t *testing.T) {
	dir := sample(t, "nullmailer", "two", map[string]os.FileMode{"remotes": 0o600})
	m, r, out := imported(t, "nullmailer", dir)
	want(t, m, map[string]any{
		"domain":                     "server1.example.com", // me, without defaulthost
		"helo_name":                  "server1.example.com",
		"smarthost[1].host":          "smtp.example.com",
		"smarthost[1].port":          587,
		"smarthost[1].tls":           "starttls",
		"smarthost[1].username":      "robot@example.com",
		"smarthost[1].password_file": out + "/smtp.example.com.secret",
		"smarthost[2].host":          "backup.example.net", // failover, in the order of remotes
		"smarthost[2].port":          465,
		"smarthost[2].tls":           "implicit",
		"smarthost[2].tls_ca_file":   nil,
		"smarthost[2].username":      "backup",
		"smarthost[2].password_file": out + "/backup.example.net.secret",
		"queue.retry_min":            "2m",
		"queue.retry_max":            "1h",
		"queue.lifetime":             "2d",
		"rewrite.aliases":            out + "/aliases",
		"rewrite.sender_map":         out + "/senders",
	})
	if secret(t, out, "smtp.example.com.secret") != "r0bot-secret" || secret(t, out, "backup.example.net.secret") != "b4ckup" {
		t.Error("secrets")
	}
	aliases, _ := os.ReadFile(filepath.Join(out, "aliases"))
	if !strings.HasSuffix(string(aliases), "\n*: ops@example.com, root@example.com\n") {
		t.Errorf("adminaddr: aliases\n%s", aliases)
	}
	senders, _ := os.ReadFile(filepath.Join(out, "senders"))
	if !strings.HasSuffix(string(senders), "\n*: robot@example.com\n") {
		t.Errorf("allmailfrom: senders\n%s", senders)
	}
	n := notesFor(r, "backup.example.net --insecure")
	if n.Status != migrate.Insecure || !strings.Contains(n.Why, "tls_fingerprint") {
		t.Errorf("--insecure: %s", n)
	}
	if n := notesFor(r, "defaultdomain example.com"); n.Status != migrate.NotPossible {
		t.Errorf("defaultdomain: %s", n)
	}
	everyLineAccounted(t, r, filepath.Join(dir, "remotes"), settingLine)
	for _, f := range []string{"adminaddr", "allmailfrom", "defaultdomain", "me", "helohost", "pausetime", "maxpause", "queuelifetime"} {
		everyLineAccounted(t, r, filepath.Join(dir, f), settingLine)
	}
}

func TestNullmailer_DebianDefaults(t *testing.T) {
	dir := sample(t, "nullmailer", "debian", nil)
	m, r, _ := imported(t, "nullmailer", dir)
	want(t, m, map[string]any{
		"domain":            "host1.example.org",
		"smarthost[1].host": "mail.example.org",
		"smarthost[1].port": 25,
		"smarthost[1].tls":  "starttls", // nullmailer would send in clear
		"queue.retry_min":   "1m",       // nullmailer's defaults carried over
		"queue.retry_max":   "1d",
		"queue.lifetime":    "1w",
	})
	if n := notesFor(r, "mail.example.org (no --ssl or --starttls)"); n.Status != migrate.Insecure {
		t.Errorf("no TLS: %s", n)
	}
	if n := notesFor(r, "notes.txt"); n.Status != migrate.Unknown {
		t.Errorf("a stranger in /etc/nullmailer: %s", n)
	}
}

func TestNullmailer_Malformed(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "remotes"), []byte("ok.example smtp\nbad.example\n"), 0o644)
	_, err := migrate.Import("nullmailer", dir)
	if exitCode(err) != 65 || !strings.Contains(err.Error(), filepath.Join(dir, "remotes")+":2:") {
		t.Errorf("err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "remotes"), []byte("ok.example smtp --port=x\n"), 0o644)
	if _, err := migrate.Import("nullmailer", dir); exitCode(err) != 65 {
		t.Errorf("bad port: %v", err)
	}
	os.Remove(filepath.Join(dir, "remotes"))
	if _, err := migrate.Import("nullmailer", dir); exitCode(err) != 66 {
		t.Errorf("no remotes: %v (want exit 66)", err)
	}
}

func notesFor(r *migrate.Result, key string) migrate.Note {
	for _, n := range r.Notes {
		if n.Key == key {
			return n
		}
	}
	return migrate.Note{Key: key + " (no note)"}
}
