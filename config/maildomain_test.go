package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaymail/relay/config"
)

func TestMailDomain(t *testing.T) {
	const hosts = `127.0.0.1	localhost
# 127.0.1.1 server1.commented.example server1
127.0.1.1	server1.example.com server1 # the host
::1		localhost ip6-localhost
10.0.0.5	other.example.com other
`
	tests := []struct {
		name     string
		domain   string
		mailname string // "-" for no file
		hosts    string
		host     string
		hostErr  bool
		want     string
	}{
		{"domain set wins", "set.example", "mail.example\n", hosts, "server1", false, "set.example"},
		{"mailname first line", "", "mail.example\nsecond.example\n", hosts, "server1", false, "mail.example"},
		{"mailname with spaces around", "", "  mail.example  \n", hosts, "server1", false, "mail.example"},
		{"empty mailname falls through", "", "\n", hosts, "server1", false, "server1.example.com"},
		{"garbage mailname falls through", "", "not a domain\n", hosts, "server1.example.org", false, "server1.example.org"},
		{"no mailname, hostname has a dot", "", "-", hosts, "box.example.net", false, "box.example.net"},
		{"no mailname, FQDN from hosts", "", "-", hosts, "server1", false, "server1.example.com"},
		{"hosts names the host second", "", "-", "10.1.1.1 other.example srv srv.corp.example\n", "srv", false, "srv.corp.example"},
		{"hosts line not naming the host", "", "-", "10.1.1.1 srv.corp.example\n", "srv", false, "srv"},
		{"prefix must end at a dot", "", "-", "10.1.1.1 srv srvx.corp.example\n", "srv", false, "srv"},
		{"no hosts entry: bare hostname", "", "-", hosts, "lonely", false, "lonely"},
		{"no hosts file", "", "-", "-", "lonely", false, "lonely"},
		{"no hostname", "", "-", hosts, "", true, "localhost"},
	}
	oldM, oldH := config.MailnamePath, config.HostsPath
	defer func() { config.MailnamePath, config.HostsPath = oldM, oldH }()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			config.MailnamePath = filepath.Join(dir, "mailname")
			config.HostsPath = filepath.Join(dir, "hosts")
			if tt.mailname != "-" {
				os.WriteFile(config.MailnamePath, []byte(tt.mailname), 0o644)
			}
			if tt.hosts != "-" {
				os.WriteFile(config.HostsPath, []byte(tt.hosts), 0o644)
			}
			defer config.SetHostname(func() (string, error) {
				if tt.hostErr {
					return "", errors.New("no hostname")
				}
				return tt.host, nil
			})()
			c := config.Default()
			c.Domain = tt.domain
			if got := c.MailDomain(); got != tt.want {
				t.Errorf("MailDomain() = %q, want %q", got, tt.want)
			}
		})
	}
}

// The answer is computed once: later changes to the files do not show.
func TestMailDomainCached(t *testing.T) {
	oldM, oldH := config.MailnamePath, config.HostsPath
	defer func() { config.MailnamePath, config.HostsPath = oldM, oldH }()
	defer config.SetHostname(func() (string, error) { return "h", nil })()
	dir := t.TempDir()
	config.MailnamePath = filepath.Join(dir, "mailname")
	config.HostsPath = filepath.Join(dir, "hosts")
	os.WriteFile(config.MailnamePath, []byte("first.example\n"), 0o644)
	c := config.Default()
	if got := c.MailDomain(); got != "first.example" {
		t.Fatalf("MailDomain() = %q", got)
	}
	os.WriteFile(config.MailnamePath, []byte("second.example\n"), 0o644)
	if got := config.Default().MailDomain(); got != "first.example" {
		t.Errorf("MailDomain() after a change = %q, want the cached first.example", got)
	}
}
