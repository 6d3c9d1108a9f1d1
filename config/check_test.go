package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
)

// certAndKey makes a self-signed certificate and its key, PEM-encoded.
func certAndKey(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	c, err := testsmtp.MakeCert()
	if err != nil {
		t.Fatal(err)
	}
	return c.PEM, c.KeyPEM
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := certAndKey(t)
	_, otherKey := certAndKey(t)
	write("ca.pem", cert, 0o644)
	write("notpem.pem", []byte("hello\n"), 0o644)
	write("client.pem", cert, 0o644)
	write("client.key", key, 0o600)
	write("other.key", otherKey, 0o600)
	write("secret", []byte("hunter2\n"), 0o640)
	write("secret-644", []byte("hunter2\n"), 0o644)
	write("secret-empty", nil, 0o600)
	write("secret-600", []byte("hunter2\n"), 0o600)
	write("aliases", []byte("root: admin@example.org\n"), 0o644)
	write("senders", nil, 0o644)
	write("logins", nil, 0o644)
	write("getpw", []byte("#!/bin/sh\necho x\n"), 0o755)
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)

	tests := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "all good",
			text: `[[smarthost]]
host = "a.example"
tls_ca_file = "DIR/ca.pem"
tls_client_cert = "DIR/client.pem"
tls_client_key = "DIR/client.key"
username = "u"
password_file = "DIR/secret"
[[smarthost]]
host = "127.0.0.1"
tls = "none"
username = "u"
password_command = ["sh", "-c", "echo x"]
[[smarthost]]
host = "c.example"
tls_fingerprint = "0000000000000000000000000000000000000000000000000000000000000000"
username = "u"
password_command = ["DIR/getpw"]
[queue]
warn_after = "4h"
[rewrite]
aliases = "DIR/aliases"
sender_map = "DIR/senders"
sender_login_map = "DIR/logins"
`,
		},
		{
			name: "problems",
			text: `[[smarthost]]
host = "a.example"
tls_ca_file = "DIR/missing.pem"
tls_client_cert = "DIR/client.pem"
tls_client_key = "DIR/other.key"
username = "u"
password_file = "DIR/secret-644"
[[smarthost]]
host = "b.example"
tls_ca_file = "DIR/notpem.pem"
tls_client_cert = "DIR/adir"
tls_client_key = "DIR/missing.key"
username = "u"
password_file = "DIR/secret-empty"
[[smarthost]]
host = "c.example"
tls = "none"
username = "u"
password_command = ["relay-no-such-command-xyz", "arg"]
[[smarthost]]
host = "d.example"
username = "u"
password_file = "DIR/missing"
[queue]
warn_after = "5d"
[rewrite]
aliases = "DIR/no-aliases"
sender_map = "DIR/no-senders"
sender_login_map = "DIR/no-logins"
[[smarthost]]
host = "e.example"
username = "u"
password_command = ["DIR/secret"]
`,
			want: []string{
				`FILE:3: smarthost[1].tls_ca_file: cannot read DIR/missing.pem: no such file or directory`,
				`FILE:4: smarthost[1].tls_client_cert: DIR/client.pem and DIR/other.key are not a certificate and its key: private key does not match public key`,
				`FILE:7: smarthost[1].password_file: DIR/secret-644 is accessible by others (mode 0644): chmod o-rwx DIR/secret-644`,
				`FILE:10: smarthost[2].tls_ca_file: DIR/notpem.pem holds no PEM certificate`,
				`FILE:11: smarthost[2].tls_client_cert: cannot read DIR/adir: is a directory`,
				`FILE:12: smarthost[2].tls_client_key: cannot read DIR/missing.key: no such file or directory`,
				`FILE:14: smarthost[2].password_file: DIR/secret-empty is empty`,
				`FILE:17: warning: smarthost[3].tls: AUTH is never sent without TLS except to a loopback address: delivery through c.example will fail`,
				`FILE:19: smarthost[3].password_command: cannot run "relay-no-such-command-xyz": executable file not found in $PATH`,
				`FILE:23: smarthost[4].password_file: cannot read DIR/missing: no such file or directory`,
				`FILE:25: warning: queue.warn_after: is not shorter than lifetime (5d): no delay warning will ever be sent`,
				`FILE:27: warning: rewrite.aliases: DIR/no-aliases does not exist`,
				`FILE:28: warning: rewrite.sender_map: DIR/no-senders does not exist`,
				`FILE:29: warning: rewrite.sender_login_map: DIR/no-logins does not exist`,
				`FILE:33: smarthost[5].password_command: cannot run "DIR/secret": permission denied`,
			},
		},
		{
			name: "oauth token without password_command",
			text: "[[smarthost]]\nhost = \"smtp.gmail.com\"\nusername = \"a@gmail.com\"\npassword_file = \"DIR/secret-600\"\nauth = \"xoauth2\"\n" +
				"[[smarthost]]\nhost = \"smtp.office365.com\"\nusername = \"a@gmail.com\"\npassword_command = [\"DIR/getpw\"]\nauth = \"oauthbearer\"\n" +
				"[rewrite]\naliases = \"DIR/aliases\"\n", // its own, not the host's /etc/aliases
			want: []string{`FILE:5: warning: smarthost[1].auth: xoauth2 takes an OAuth access token, which expires within the hour: use password_command to get a fresh one for each connection`},
		},
		{
			name: "no smarthost",
			text: "[rewrite]\naliases = \"DIR/aliases\"\n",
			want: []string{`FILE: warning: no [[smarthost]] configured: mail will wait in the queue`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, path, err := load(t, strings.ReplaceAll(tt.text, "DIR", dir), 0o600)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var got []string
			for _, p := range c.Check() {
				s := strings.ReplaceAll(p.String(), path, "FILE")
				got = append(got, strings.ReplaceAll(s, dir, "DIR"))
				if strings.Contains(s, "hunter2") {
					t.Errorf("a secret shows: %s", s)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Check:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCheckDefaults(t *testing.T) {
	c := config.Default()
	c.Path = "/nonexistent/relay.toml"
	c.Rewrite.Aliases = filepath.Join(t.TempDir(), "aliases")
	got := c.Check()
	want := []config.Problem{
		{File: c.Path, Msg: "no [[smarthost]] configured: mail will wait in the queue", Warning: true},
		{File: c.Path, Key: "rewrite.aliases", Msg: c.Rewrite.Aliases + " does not exist", Warning: true},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Check() = %+v, want %+v", got, want)
	}
}

func TestCheckUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "aliases")
	os.WriteFile(p, nil, 0)
	os.Chmod(p, 0)
	c := config.Default()
	c.Rewrite.Aliases = p
	got := c.Check()
	if len(got) != 2 || got[1].Warning || got[1].Msg != "cannot read "+p+": permission denied" {
		t.Errorf("Check() = %+v, want an error for the unreadable aliases", got)
	}
}
