package config_test

// Load on valid configurations: the defaults, every key decoded to its
// field, and a missing file.

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
)

// writeConfig writes text to a relay.toml in a new temporary directory with
// the given mode and returns its path.
func writeConfig(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.toml")
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, text string, mode os.FileMode) (*config.Config, string, error) {
	t.Helper()
	path := writeConfig(t, text, mode)
	c, err := config.Load(config.Location{Path: path, Required: true, DefaultSpool: "/srv/spool"})
	return c, path, err
}

// problems gives the problems of a Load error as strings, with the file's
// path replaced by FILE.
func problems(t *testing.T, err error, path string) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *config.Errors
	if !errors.As(err, &e) {
		t.Fatalf("Load error is a %T, not *config.Errors: %v", err, err)
	}
	var out []string
	for _, p := range *e {
		out = append(out, strings.ReplaceAll(p.String(), path, "FILE"))
	}
	if got, want := err.Error(), strings.ReplaceAll(strings.Join(out, "\n"), "FILE", path); got != want {
		t.Errorf("Error() = %q, want the problems one per line: %q", got, want)
	}
	return out
}

// exported copies the exported fields of a Config, for comparisons.
func exported(c *config.Config) config.Config {
	return config.Config{
		Path: c.Path, Loaded: c.Loaded, Domain: c.Domain, Spool: c.Spool, Proxy: c.Proxy,
		MaxMessageSize: c.MaxMessageSize, MinFreeSpace: c.MinFreeSpace, Smarthosts: c.Smarthosts,
		Queue: c.Queue, Rewrite: c.Rewrite, Daemon: c.Daemon, Log: c.Log,
	}
}

func dur(s string) config.Duration {
	d, err := config.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestDefault(t *testing.T) {
	c := config.Default()
	want := config.Config{
		Spool:          "/var/spool/relay",
		MaxMessageSize: 50 << 20,
		MinFreeSpace:   100 << 20,
		Queue: config.Queue{
			RetryMin: config.Duration(5 * time.Minute), RetryMax: config.Duration(time.Hour),
			Lifetime: config.Duration(5 * 24 * time.Hour), MaxConnections: 4,
		},
		Rewrite: config.Rewrite{Aliases: "/etc/aliases", FromHeader: "keep"},
		Daemon:  config.Daemon{User: "relay", DetachedDelivery: true},
		Log:     config.Log{To: "stderr"},
	}
	if got := exported(c); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadValid(t *testing.T) {
	// sh is a smarthost as Load completes it.
	sh := func(line int, name, host string, port int, tls string) config.Smarthost {
		return config.Smarthost{Name: name, Host: host, Port: port, TLS: tls, TLSMinVersion: "1.2", Line: line}
	}
	tests := []struct {
		name string
		text string
		mode os.FileMode
		want func(c *config.Config) // changes from Default() (with Path, Loaded and Spool set)
	}{
		{
			name: "empty file gives the defaults",
			text: "# nothing\n",
			want: func(c *config.Config) {},
		},
		{
			name: "host only: 587 starttls, name = host",
			text: "[[smarthost]]\nhost = \"mx.example.org\"\n",
			want: func(c *config.Config) {
				c.Smarthosts = []config.Smarthost{sh(1, "mx.example.org", "mx.example.org", 587, "starttls")}
			},
		},
		{
			name: "port/tls rules",
			text: `
[[smarthost]]
host = "a.example"
port = 465
[[smarthost]]
host = "b.example"
port = 25
[[smarthost]]
host = "c.example"
tls = "implicit"
[[smarthost]]
host = "d.example"
tls = "starttls"
[[smarthost]]
host = "e.example"
tls = "none"
[[smarthost]]
host = "f.example"
port = 2525
tls = "implicit"
`,
			want: func(c *config.Config) {
				c.Smarthosts = []config.Smarthost{
					sh(2, "a.example", "a.example", 465, "implicit"),
					sh(5, "b.example", "b.example", 25, "starttls"),
					sh(8, "c.example", "c.example", 465, "implicit"),
					sh(11, "d.example", "d.example", 587, "starttls"),
					sh(14, "e.example", "e.example", 25, "none"),
					sh(17, "f.example", "f.example", 2525, "implicit"),
				}
			},
		},
		{
			name: "presets, and explicit keys override them",
			text: `
[[smarthost]]
preset = "yandex"
[[smarthost]]
preset = "mailru"
[[smarthost]]
preset = "gmail"
[[smarthost]]
preset = "outlook"
[[smarthost]]
preset = "rambler"
[[smarthost]]
name = "gmail465"
preset = "gmail"
port = 465
[[smarthost]]
name = "yandex587"
preset = "yandex"
port = 587
[[smarthost]]
name = "yandex-com"
preset = "yandex"
host = "smtp.yandex.com"
[[smarthost]]
name = "mailru-starttls"
preset = "mailru"
tls = "starttls"
rate_limit = "20/m"
[[smarthost]]
name = "rambler-unlimited"
preset = "rambler"
rate_limit = ""
`,
			want: func(c *config.Config) {
				p := func(s config.Smarthost, preset string) config.Smarthost {
					s.Preset, s.RateLimit = preset, config.Presets[preset].RateLimit
					return s
				}
				c.Smarthosts = []config.Smarthost{
					p(sh(2, "smtp.yandex.ru", "smtp.yandex.ru", 465, "implicit"), "yandex"),
					p(sh(4, "smtp.mail.ru", "smtp.mail.ru", 465, "implicit"), "mailru"),
					p(sh(6, "smtp.gmail.com", "smtp.gmail.com", 587, "starttls"), "gmail"),
					p(sh(8, "smtp-mail.outlook.com", "smtp-mail.outlook.com", 587, "starttls"), "outlook"),
					p(sh(10, "smtp.rambler.ru", "smtp.rambler.ru", 465, "implicit"), "rambler"),
					p(sh(12, "gmail465", "smtp.gmail.com", 465, "implicit"), "gmail"),
					p(sh(16, "yandex587", "smtp.yandex.ru", 587, "starttls"), "yandex"),
					p(sh(20, "yandex-com", "smtp.yandex.com", 465, "implicit"), "yandex"),
					func() config.Smarthost {
						s := p(sh(24, "mailru-starttls", "smtp.mail.ru", 587, "starttls"), "mailru")
						s.RateLimit = config.RateLimit{N: 20, Per: time.Minute}
						return s
					}(),
					func() config.Smarthost {
						s := p(sh(29, "rambler-unlimited", "smtp.rambler.ru", 465, "implicit"), "rambler")
						s.RateLimit = config.RateLimit{}
						return s
					}(),
				}
			},
		},
		{
			name: "every key, units and normalisation",
			mode: 0o600,
			text: `
domain = "server1.example.com"
spool = "/var/spool/relay-test"
proxy = "socks5://tor:secret@127.0.0.1:9050"
max_message_size = 1048576
min_free_space = "1GiB"

[[smarthost]]
name = "corp"
host = "10.0.0.1"
port = 2525
tls = "starttls"
tls_ca_file = "/etc/relay/ca.pem"
tls_server_name = "relay.corp.example"
tls_client_cert = "/etc/relay/client.pem"
tls_client_key = "/etc/relay/client.key"
tls_min_version = "1.3"
username = "robot@example.com"
password = "hunter2"
auth = "CRAM-MD5"
envelope_from = "robot@example.com"
senders = ["*@example.com", "@example.net", "alice@example.org", "*"]
rate_limit = "5/30m"
bounce_from = "postmaster@example.com"

[[smarthost]]
host = "backup.example.com"
tls_fingerprint = "SHA256:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
username = "robot"
password_command = ["pass", "show", "mail"]
proxy = "socks5://unix:/run/tor/socks"
rate_limit = "100/h"

[queue]
retry_min = "30s"
retry_max = "1h30m"
lifetime = "2w"
warn_after = "4h"
soft_bounce = true
max_connections = 2

[rewrite]
aliases = "/etc/relay/aliases"
sender_map = "/etc/relay/senders"
sender_login_map = "/etc/relay/logins"
from_header = "rewrite"

[[rewrite.header]]
action = "append"
name = "Subject"
value = " [%h]"

[[rewrite.header]]
action = "remove"
name = "X-Mailer"

[daemon]
listen = ["127.0.0.1:25", "[::1]:25", ":2525"]
listen_networks = ["172.17.0.0/16", "2001:db8::/32"]
user = "mail"
detached_delivery = false

[log]
to = "/var/log/relay.log"
`,
			want: func(c *config.Config) {
				c.Domain = "server1.example.com"
				c.Spool = "/var/spool/relay-test"
				c.Proxy = "socks5://tor:secret@127.0.0.1:9050"
				c.MaxMessageSize = 1 << 20
				c.MinFreeSpace = 1 << 30
				c.Smarthosts = []config.Smarthost{{
					Name: "corp", Host: "10.0.0.1", Port: 2525, TLS: "starttls",
					TLSCAFile: "/etc/relay/ca.pem", TLSServerName: "relay.corp.example",
					TLSClientCert: "/etc/relay/client.pem", TLSClientKey: "/etc/relay/client.key",
					TLSMinVersion: "1.3", Username: "robot@example.com", Password: "hunter2",
					Auth: "cram-md5", EnvelopeFrom: "robot@example.com",
					Senders:    []string{"*@example.com", "@example.net", "alice@example.org", "*"},
					Proxy:      "socks5://tor:secret@127.0.0.1:9050", // inherited
					RateLimit:  config.RateLimit{N: 5, Per: 30 * time.Minute},
					BounceFrom: "postmaster@example.com", Line: 8,
				}, {
					Name: "backup.example.com", Host: "backup.example.com", Port: 587, TLS: "starttls",
					TLSFingerprint: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
					TLSMinVersion:  "1.2", Username: "robot",
					PasswordCommand: []string{"pass", "show", "mail"},
					Proxy:           "socks5://unix:/run/tor/socks",
					RateLimit:       config.RateLimit{N: 100, Per: time.Hour}, Line: 26,
				}}
				c.Queue = config.Queue{RetryMin: dur("30s"), RetryMax: dur("90m"), Lifetime: dur("14d"),
					WarnAfter: dur("4h"), SoftBounce: true, MaxConnections: 2}
				c.Rewrite = config.Rewrite{
					Aliases: "/etc/relay/aliases", SenderMap: "/etc/relay/senders", SenderLoginMap: "/etc/relay/logins",
					FromHeader: "rewrite",
					Header: []config.HeaderRule{
						{Action: "append", Name: "Subject", Value: " [%h]"},
						{Action: "remove", Name: "X-Mailer"},
					},
				}
				c.Daemon = config.Daemon{
					Listen:         []string{"127.0.0.1:25", "[::1]:25", ":2525"},
					ListenNetworks: []string{"172.17.0.0/16", "2001:db8::/32"},
					User:           "mail",
				}
				c.Daemon.DetachedDelivery = false
				c.Log.To = "/var/log/relay.log"
			},
		},
		{
			name: "inline tables and arrays of inline tables",
			text: `smarthost = [{host = "a.example"}, {host = "b.example", port = 465}]
queue = {retry_min = "1m", max_connections = 1}
`,
			want: func(c *config.Config) {
				c.Smarthosts = []config.Smarthost{
					sh(1, "a.example", "a.example", 587, "starttls"),
					sh(1, "b.example", "b.example", 465, "implicit"),
				}
				c.Queue.RetryMin = dur("1m")
				c.Queue.MaxConnections = 1
			},
		},
		{
			name: "empty strings mean unset",
			text: `proxy = ""
[[smarthost]]
host = "a.example"
tls = ""
envelope_from = ""
rate_limit = ""
[queue]
warn_after = ""
[rewrite]
aliases = ""
`,
			want: func(c *config.Config) {
				c.Smarthosts = []config.Smarthost{sh(2, "a.example", "a.example", 587, "starttls")}
				c.Rewrite.Aliases = ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode := tt.mode
			if mode == 0 {
				mode = 0o644
			}
			c, path, err := load(t, tt.text, mode)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := config.Default()
			want.Path, want.Loaded, want.Spool = path, true, "/srv/spool"
			tt.want(want)
			if got, w := exported(c), exported(want); !reflect.DeepEqual(got, w) {
				t.Errorf("Load =\n%+v\nwant\n%+v", got, w)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.toml")
	c, err := config.Load(config.Location{Path: path, DefaultSpool: "/home/u/.local/state/relay"})
	if err != nil {
		t.Fatalf("Load of a missing optional file: %v", err)
	}
	want := config.Default()
	want.Path, want.Spool = path, "/home/u/.local/state/relay"
	if !reflect.DeepEqual(exported(c), exported(want)) || c.Loaded {
		t.Errorf("Load = %+v, want %+v", exported(c), exported(want))
	}

	_, err = config.Load(config.Location{Path: path, Required: true, DefaultSpool: "/x"})
	if got := problems(t, err, path); len(got) != 1 || got[0] != "FILE: cannot read: no such file or directory" {
		t.Errorf("Load of a missing required file: %q", got)
	}

	_, err = config.Load(config.Location{Path: filepath.Dir(path), Required: true})
	if got := problems(t, err, filepath.Dir(path)); len(got) != 1 || got[0] != "FILE: cannot read: is a directory" {
		t.Errorf("Load of a directory: %q", got)
	}
}
