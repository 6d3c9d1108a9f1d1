package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The listener's TLS and AUTH keys: each needs the one before it.
func TestLoad_ListenerAuthKeys(t *testing.T) {
	c, path, err := load(t, `[daemon]
listen = ["127.0.0.1:25", "0.0.0.0:587"]
listen_tls = "self-signed"
listen_users = "/etc/relay/listener-users"
listen_auth_networks = ["0.0.0.0/0", "2001:db8::/32"]
`, 0o600)
	if err != nil {
		t.Fatalf("Load: %v", problems(t, err, path))
	}
	d := c.Daemon
	if d.ListenTLS != "self-signed" || d.ListenUsers != "/etc/relay/listener-users" || !slices.Equal(d.ListenAuthNetworks, []string{"0.0.0.0/0", "2001:db8::/32"}) {
		t.Errorf("daemon %+v", d)
	}
	if c, _, err := load(t, "[daemon]\nlisten_tls = \"/etc/ssl/certs/mail.pem\"\nlisten_tls_key = \"/etc/ssl/private/mail.key\"\n", 0o600); err != nil || c.Daemon.ListenTLSKey != "/etc/ssl/private/mail.key" {
		t.Errorf("certificate files: %v", err)
	}

	for text, want := range map[string]string{
		"listen_users = \"/etc/relay/u\"\n":                                                            `FILE:2: daemon.listen_users: needs listen_tls: AUTH is offered only after STARTTLS`,
		"listen_tls = \"self-signed\"\nlisten_auth_networks = [\"0.0.0.0/0\"]\n":                       `FILE:3: daemon.listen_auth_networks: needs listen_users`,
		"listen_tls = \"cert.pem\"\nlisten_tls_key = \"/k\"\n":                                         `FILE:2: daemon.listen_tls: must be "self-signed" or the absolute path of a certificate (PEM), not "cert.pem"`,
		"listen_tls = \"/c.pem\"\n":                                                                    `FILE:2: daemon.listen_tls: names a certificate: its key goes in listen_tls_key`,
		"listen_tls = \"self-signed\"\nlisten_tls_key = \"/k\"\n":                                      `FILE:3: daemon.listen_tls_key: has no use without a certificate file in listen_tls`,
		"listen_tls = \"self-signed\"\nlisten_users = \"/u\"\nlisten_auth_networks = [\"10.0.0.1\"]\n": `FILE:4: daemon.listen_auth_networks[1]: "10.0.0.1" is not a network in CIDR form`,
		"listen_tls = \"self-signed\"\nlisten_users = \"users\"\n":                                     `FILE:3: daemon.listen_users: must be an absolute path, not "users"`,
	} {
		_, path, err := load(t, "[daemon]\n"+text, 0o600)
		got := strings.Join(problems(t, err, path), "\n")
		if !strings.HasPrefix(got, want) {
			t.Errorf("%q:\n%s\nwant it to start %s", text, got, want)
		}
	}
}

// relay check about the listener's files.
func TestCheck_ListenerFiles(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	c, path, err := load(t, "[daemon]\nlisten = [\"127.0.0.1:25\"]\nlisten_tls = \"self-signed\"\nlisten_users = \""+users+"\"\n", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.Check() {
		got = append(got, strings.ReplaceAll(p.String(), path, "FILE"))
	}
	if want := "FILE:4: daemon.listen_users: cannot read " + users + ": no such file or directory: the daemon will not start (relay listener passwd NAME makes it)"; !slices.Contains(got, want) {
		t.Errorf("Check: %q, want %q", got, want)
	}
	if err := os.WriteFile(users, []byte("a:$2a$10$x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, p := range c.Check() {
		got = append(got, strings.ReplaceAll(p.String(), path, "FILE"))
	}
	if want := "FILE:4: warning: daemon.listen_users: " + users + " is readable by everyone (mode 0644): chmod o-r " + users; !slices.Contains(got, want) {
		t.Errorf("Check: %q, want %q", got, want)
	}
}
