package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/migrate"
)

func TestDma_Masquerade(t *testing.T) {
	dir := sample(t, "dma", "masquerade", map[string]os.FileMode{"auth.conf": 0o640})
	path := filepath.Join(dir, "dma.conf")
	m, r, out := imported(t, "dma", path)
	want(t, m, map[string]any{
		"domain":                     nil, // MAILNAME /etc/mailname: relay reads it itself
		"smarthost[1].host":          "mail.example.com",
		"smarthost[1].port":          587,
		"smarthost[1].tls":           "starttls", // SECURETRANSFER + STARTTLS
		"smarthost[1].username":      "robot@example.com",
		"smarthost[1].password_file": out + "/mail.example.com.secret",
		"rewrite.sender_map":         out + "/senders",
	})
	if got := secret(t, out, "mail.example.com.secret"); got != "r0b0t-pass" {
		t.Errorf("the last auth.conf line for the host counts in dma: secret %q", got)
	}
	senders, _ := os.ReadFile(filepath.Join(out, "senders"))
	if !strings.HasSuffix(string(senders), "\n*: robot@example.com\n") {
		t.Errorf("MASQUERADE: senders\n%s", senders)
	}
	if n := noteOf(t, r, "auth.conf", 3); n.Status != migrate.NotNeeded {
		t.Errorf("an earlier line for the host: %s", n)
	}
	if n := noteOf(t, r, "auth.conf", 5); n.Status != migrate.NotNeeded || !strings.Contains(n.Why, "mail.other.example") {
		t.Errorf("another host's line: %s", n)
	}
	everyLineAccounted(t, r, path, func(l string) bool { return settingLine(l) && !strings.HasPrefix(strings.TrimSpace(l), "#") })
	everyLineAccounted(t, r, filepath.Join(dir, "auth.conf"), settingLine)
}

func TestDma_OpportunisticInsecure(t *testing.T) {
	dir := sample(t, "dma", "opportunistic", nil)
	path := filepath.Join(dir, "dma.conf")
	m, r, out := imported(t, "dma", path)
	want(t, m, map[string]any{
		"smarthost[1].host":     "relay.example.org",
		"smarthost[1].port":     25,
		"smarthost[1].tls":      "starttls",
		"smarthost[1].username": nil, // no auth.conf
		"rewrite.aliases":       dir + "/aliases",
		"rewrite.sender_map":    out + "/senders",
	})
	senders, _ := os.ReadFile(filepath.Join(out, "senders"))
	if !strings.HasSuffix(string(senders), "\n*: @example.org\n") {
		t.Errorf("MASQUERADE host: senders\n%s", senders)
	}
	for line, st := range map[int]migrate.Status{4: migrate.Insecure, 5: migrate.Insecure, 7: migrate.NotNeeded, 8: migrate.NotNeeded, 9: migrate.NotPossible, 10: migrate.NotNeeded} {
		if n := noteOf(t, r, "dma.conf", line); n.Status != st {
			t.Errorf("line %d: %s, want %s", line, n, st)
		}
	}
	everyLineAccounted(t, r, path, settingLine)
}

func TestDma_Malformed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "dma.conf")
	for text, line := range map[string]string{
		"SMARTHOST a.example\nSTARTLTS\n":         ":2:", // dma refuses an unknown line: so does the import
		"SMARTHOST\n":                             ":1:",
		"SMARTHOST a.example\nPORT 99999\n":       ":2:",
		"SMARTHOST a.example\nSECURETRANSFER 1\n": ":2:",
	} {
		os.WriteFile(p, []byte(text), 0o644)
		_, err := migrate.Import("dma", p)
		if exitCode(err) != 65 || !strings.Contains(err.Error(), p+line) {
			t.Errorf("%q: %v", text, err)
		}
	}
}
