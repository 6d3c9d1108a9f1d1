package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/migrate"
)

func TestWrite_NeverOverwritesWithoutForce(t *testing.T) {
	dir := sample(t, "nullmailer", "two", nil)
	r, err := migrate.Import("nullmailer", dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	// An existing secret file alone stops everything.
	secret := filepath.Join(out, "backup.example.net.secret")
	os.WriteFile(secret, []byte("keep me\n"), 0o600)
	_, err = r.Write(migrate.WriteOptions{Dir: out, GID: -1})
	if exitCode(err) != 73 || !strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err = %v, want exit 73 naming %s", err, secret)
	}
	if _, err := os.Stat(filepath.Join(out, "relay.toml")); err == nil {
		t.Error("relay.toml was written although a file existed")
	}
	if b, _ := os.ReadFile(secret); string(b) != "keep me\n" {
		t.Errorf("the existing file changed: %q", b)
	}
	written, err := r.Write(migrate.WriteOptions{Dir: out, Force: true, GID: os.Getgid()})
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 5 { // relay.toml, two secrets, aliases, senders
		t.Errorf("written %v", written)
	}
	for _, p := range written {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %v mode %v, want 0640", p, err, fi.Mode().Perm())
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "b4ckup\n" {
		t.Errorf("--force did not replace the secret: %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(out, ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if _, err := r.Write(migrate.WriteOptions{Dir: "relative", GID: -1}); exitCode(err) != 64 {
		t.Errorf("a relative directory: %v", err)
	}
}

// The printed relay.toml names no password, only the secret files --write
// would make.
func TestTOML_NoPasswordPrinted(t *testing.T) {
	for _, s := range []struct{ format, name, file string }{
		{"msmtp", "yandex", "msmtprc"}, {"ssmtp", "gmail", "ssmtp.conf"}, {"nullmailer", "two", ""},
		{"dma", "masquerade", "dma.conf"}, {"postfix", "nullclient", "main.cf"},
	} {
		dir := sample(t, s.format, s.name, nil)
		r, err := migrate.Import(s.format, filepath.Join(dir, s.file))
		if err != nil {
			t.Fatal(err)
		}
		out := r.TOML("/etc/relay")
		for _, pw := range []string{"s3cret", "app-password", "r0bot-secret", "b4ckup", "r0b0t-pass", "r0b0t-s3cret"} {
			if strings.Contains(out, pw) {
				t.Errorf("%s/%s: the password %q is in the relay.toml:\n%s", s.format, s.name, pw, out)
			}
		}
		if !strings.Contains(out, `password_file = "/etc/relay/`) || len(r.FilesNotWritten()) == 0 {
			t.Errorf("%s/%s: no secret file named:\n%s", s.format, s.name, out)
		}
	}
}
