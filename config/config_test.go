package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
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

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		text string
		mode os.FileMode
		want []string
	}{
		{
			name: "unknown key with a near miss",
			text: "[[smarthost]]\nhost = \"a.example\"\n[[smarthost]]\nhots = \"b.example\"\n",
			want: []string{
				`FILE:3: smarthost[2]: no host: set host, or a preset`,
				`FILE:4: smarthost[2].hots: unknown key; did you mean "host"?`,
			},
		},
		{
			name: "unknown key, prefix of a known one",
			text: "[[smarthost]]\nhost = \"a.example\"\nuser = \"robot\"\n",
			want: []string{`FILE:3: smarthost[1].user: unknown key; did you mean "username"?`},
		},
		{
			name: "unknown key without a hint",
			text: "colour = \"blue\"\n",
			want: []string{`FILE:1: colour: unknown key`},
		},
		{
			name: "top-level key written after a table",
			text: "[[smarthost]]\nhost = \"a.example\"\ndomain = \"example.org\"\n",
			want: []string{`FILE:3: smarthost[1].domain: unknown key; "domain" is a top-level key: write it before the first [table] or [[table]]`},
		},
		{
			name: "key of another table",
			text: "retry_min = \"1m\"\n[queue]\nhost = \"x\"\nproxy = \"\"\n[rewrite]\nname = \"X\"\n",
			want: []string{
				`FILE:1: retry_min: unknown key; "retry_min" belongs in [queue]`,
				`FILE:3: queue.host: unknown key; "host" belongs in a [[smarthost]] table`,
				`FILE:4: queue.proxy: unknown key; "proxy" belongs at the top level or in a [[smarthost]] table`,
				`FILE:6: rewrite.name: unknown key; "name" belongs in a [[smarthost]] table or in a [[rewrite.header]] table`,
			},
		},
		{
			name: "unknown table",
			text: "[smarthosts]\nhost = \"a\"\n[[rewrite.headers]]\naction = \"add\"\n",
			want: []string{
				`FILE:1: smarthosts: unknown key; did you mean "smarthost"?`,
				`FILE:3: rewrite.headers: unknown key; did you mean "header"?`,
			},
		},
		{
			name: "wrongly cased keys are errors but still apply",
			text: "[[smarthost]]\nHost = \"a.example\"\n[Queue]\nRetry_Min = \"1m\"\n",
			want: []string{
				`FILE:2: smarthost[1].Host: key "Host" must be written "host"`,
				`FILE:3: Queue: key "Queue" must be written "queue"`,
				`FILE:4: Queue.Retry_Min: key "Retry_Min" must be written "retry_min"`,
			},
		},
		{
			name: "wrong types",
			text: `max_message_size = true
[[smarthost]]
host = "a.example"
port = "587"
senders = "*@example.org"
password_command = "pass show x"
username = 42
[queue]
soft_bounce = "yes"
retry_min = 300
[daemon]
listen = ["127.0.0.1:25", 25]
[log]
to = ["stderr"]
`,
			want: []string{
				`FILE:1: max_message_size: must be a number of bytes or a number with B, KB, MB or GB (powers of 1024), e.g. "50MB", not a boolean`,
				`FILE:4: smarthost[1].port: must be an integer, not a string`,
				`FILE:5: smarthost[1].senders: must be an array of strings, not a string`,
				`FILE:6: smarthost[1].password_command: must be an array of strings, not a string`,
				`FILE:7: smarthost[1].username: must be a string, not an integer`,
				`FILE:9: queue.soft_bounce: must be true or false, not a string`,
				`FILE:10: queue.retry_min: must be a string with a number with a unit s, m, h, d or w, or several of them: "30s", "5m", "1h30m", "5d", "2w", not an integer`,
				`FILE:12: daemon.listen[2]: must be a string, not an integer`,
				`FILE:14: log.to: must be a string, not an array`,
			},
		},
		{
			name: "table where an array of tables is expected, and the reverse",
			text: "queue = 5\n[smarthost]\nhost = \"a.example\"\n",
			want: []string{
				`FILE:1: queue: must be a table ([queue]), not an integer`,
				`FILE:2: smarthost: must be an array of tables: write [[smarthost]], not [smarthost]`,
			},
		},
		{
			name: "bad units",
			text: `max_message_size = "50XB"
min_free_space = -1
[[smarthost]]
host = "a.example"
rate_limit = "100 per hour"
[queue]
retry_max = "5 minutes"
lifetime = "-1d"
`,
			want: []string{
				`FILE:1: max_message_size: invalid size "50XB": use a number of bytes or a number with B, KB, MB or GB (powers of 1024), e.g. "50MB"`,
				`FILE:2: min_free_space: invalid size -1: must not be negative`,
				`FILE:5: smarthost[1].rate_limit: invalid rate limit "100 per hour": use messages per period such as "100/h", "20/m", "1000/d" or "5/30m"`,
				`FILE:7: queue.retry_max: invalid duration "5 minutes": use a number with a unit s, m, h, d or w, or several of them: "30s", "5m", "1h30m", "5d", "2w"`,
				`FILE:8: queue.lifetime: invalid duration "-1d": use a number with a unit s, m, h, d or w, or several of them: "30s", "5m", "1h30m", "5d", "2w"`,
			},
		},
		{
			name: "syntax error",
			text: "domain = \"example.org\"\n[[smarthost]]\nhost = \n",
			want: []string{`FILE:3: expected value but found '\n' instead`},
		},
		{
			name: "duplicate key",
			text: "domain = \"a.example\"\ndomain = \"b.example\"\n",
			want: []string{`FILE:2: Key 'domain' has already been defined.`},
		},
		{
			name: "inline password in a file readable by others",
			mode: 0o644,
			text: "[[smarthost]]\nhost = \"a.example\"\nusername = \"u\"\npassword = \"hunter2\"\n",
			want: []string{`FILE:4: smarthost[1].password: inline password in a file readable by group or others: chmod 600 FILE, or use password_file`},
		},
		{
			name: "inline password in a file readable by group",
			mode: 0o640,
			text: "[[smarthost]]\nhost = \"a.example\"\nusername = \"u\"\npassword = \"hunter2\"\n",
			want: []string{`FILE:4: smarthost[1].password: inline password in a file readable by group or others: chmod 600 FILE, or use password_file`},
		},
		{
			name: "password sources",
			mode: 0o600,
			text: `[[smarthost]]
host = "a.example"
username = "u"
password = "hunter2"
password_file = "/etc/relay/secret"
[[smarthost]]
host = "b.example"
username = "u"
password_command = []
[[smarthost]]
host = "c.example"
username = "u"
[[smarthost]]
host = "d.example"
password_file = "/etc/relay/secret"
[[smarthost]]
host = "e.example"
username = "u"
password = ""
[[smarthost]]
host = "f.example"
password_file = "relay/secret"
auth = "plain"
`,
			want: []string{
				`FILE:5: smarthost[1].password_file: only one of password, password_file and password_command may be set`,
				`FILE:9: smarthost[2].password_command: must name a command and its arguments: ["program", "arg", …]`,
				`FILE:12: smarthost[3].username: needs password_file, password_command or password`,
				`FILE:15: smarthost[4].password_file: needs username`,
				`FILE:19: smarthost[5].password: must not be empty`,
				`FILE:22: smarthost[6].password_file: must be an absolute path, not "relay/secret"`,
				`FILE:22: smarthost[6].password_file: needs username`,
				`FILE:23: smarthost[6].auth: needs username`,
			},
		},
		{
			name: "smarthost values",
			text: `[[smarthost]]
preset = "gmx"
[[smarthost]]
host = "smtp.example.org:587"
port = 0
tls = "ssl"
[[smarthost]]
host = "b.example"
port = 70000
tls_min_version = "1.4"
auth = "digest-md5"
tls_fingerprint = "sha256:abcd"
tls_ca_file = "ca.pem"
tls_client_cert = "/etc/relay/c.pem"
[[smarthost]]
host = "bad host"
tls = "none"
tls_client_key = "/etc/relay/c.key"
tls_server_name = "x y"
`,
			want: []string{
				`FILE:1: smarthost[1]: no host: set host, or a preset`,
				`FILE:2: smarthost[1].preset: unknown preset "gmx": use yandex, mailru, gmail, outlook, rambler`,
				`FILE:4: smarthost[2].host: "smtp.example.org:587" includes a port: write it as port = 587`,
				`FILE:5: smarthost[2].port: must be between 1 and 65535, not 0`,
				`FILE:6: smarthost[2].tls: must be "implicit", "starttls" or "none", not "ssl"`,
				`FILE:9: smarthost[3].port: must be between 1 and 65535, not 70000`,
				`FILE:10: smarthost[3].tls_min_version: must be "1.0", "1.1", "1.2" or "1.3", not "1.4"`,
				`FILE:11: smarthost[3].auth: must be "plain", "login", "cram-md5", "scram-sha-256", "xoauth2" or "oauthbearer", not "digest-md5"`,
				`FILE:12: smarthost[3].tls_fingerprint: must be the SHA-256 of the server's certificate: 64 hex digits, colons and "sha256:" optional`,
				`FILE:13: smarthost[3].tls_ca_file: cannot be used with tls_fingerprint, which replaces certificate chain verification`,
				`FILE:13: smarthost[3].tls_ca_file: must be an absolute path, not "ca.pem"`,
				`FILE:14: smarthost[3].tls_client_cert: needs tls_client_key as well`,
				`FILE:16: smarthost[4].host: "bad host" is not a host name or IP address`,
				`FILE:18: smarthost[4].tls_client_key: needs tls_client_cert as well`,
				`FILE:18: smarthost[4].tls_client_key: has no use with tls = "none"`,
				`FILE:19: smarthost[4].tls_server_name: "x y" is not a host name`,
				`FILE:19: smarthost[4].tls_server_name: has no use with tls = "none"`,
			},
		},
		{
			name: "addresses, senders, proxies",
			text: `proxy = "http://user:s3cret@proxy.example:3128"
[[smarthost]]
host = "a.example"
envelope_from = "robot"
bounce_from = "<robot@example.org>"
senders = ["*@example.org", "", "a*b@example.org", "example.org", "x@*.example.org"]
proxy = "socks5://tor:s3cret@127.0.0.1"
[[smarthost]]
host = "b.example"
envelope_from = "a b@example.org"
proxy = "socks5://unix:run/tor.sock"
`,
			want: []string{
				`FILE:1: proxy: "http://user:xxx@proxy.example:3128" is not a proxy (only socks5:// is supported): use "socks5://[user:password@]host:port" or "socks5://unix:/path/to/socket"`,
				`FILE:4: smarthost[1].envelope_from: "robot" is not an address (local@domain)`,
				`FILE:5: smarthost[1].bounce_from: "<robot@example.org>" is not an address (local@domain)`,
				`FILE:6: smarthost[1].senders[2]: "" is not a sender pattern: use "*", "*@example.org", "@example.org" or "alice@example.org"`,
				`FILE:6: smarthost[1].senders[3]: "a*b@example.org" is not a sender pattern: use "*", "*@example.org", "@example.org" or "alice@example.org"`,
				`FILE:6: smarthost[1].senders[4]: "example.org" is not a sender pattern: use "*", "*@example.org", "@example.org" or "alice@example.org"`,
				`FILE:6: smarthost[1].senders[5]: "x@*.example.org" is not a sender pattern: use "*", "*@example.org", "@example.org" or "alice@example.org"`,
				`FILE:7: smarthost[1].proxy: "socks5://tor:xxx@127.0.0.1" is not a proxy (expected host:port): use "socks5://[user:password@]host:port" or "socks5://unix:/path/to/socket"`,
				`FILE:10: smarthost[2].envelope_from: "a b@example.org" is not an address (local@domain)`,
				`FILE:11: smarthost[2].proxy: "socks5://unix:run/tor.sock" is not a proxy (the socket path must be absolute): use "socks5://[user:password@]host:port" or "socks5://unix:/path/to/socket"`,
			},
		},
		{
			name: "duplicate smarthost names",
			text: `[[smarthost]]
preset = "yandex"
[[smarthost]]
preset = "yandex"
[[smarthost]]
name = "smtp.yandex.ru"
host = "a.example"
`,
			want: []string{
				`FILE:3: smarthost[2]: name "smtp.yandex.ru" is already used by smarthost[1] (line 1): give each smarthost a distinct name`,
				`FILE:6: smarthost[3].name: name "smtp.yandex.ru" is already used by smarthost[1] (line 1): give each smarthost a distinct name`,
			},
		},
		{
			name: "top level, queue, rewrite, daemon, log",
			text: `domain = "bad domain"
spool = "spool"
max_message_size = 0
[queue]
retry_min = "10m"
retry_max = "5m"
lifetime = "1m"
max_connections = 0
[rewrite]
aliases = "~/aliases"
sender_map = "senders"
from_header = "replace"
[[rewrite.header]]
action = "prepend"
name = "X Bad:"
[[rewrite.header]]
action = "remove"
name = "X-Mailer"
value = "x"
[[rewrite.header]]
action = "add"
name = "X-Relay"
value = "a\nb"
[[rewrite.header]]
value = ""
[daemon]
listen = ["127.0.0.1", "localhost:smtp", "[::1]:0"]
listen_networks = ["172.17.0.1", "10.0.0.0/8"]
user = ""
[log]
to = "relay.log"
`,
			want: []string{
				`FILE:1: domain: "bad domain" is not a host name`,
				`FILE:2: spool: must be an absolute path, not "spool"`,
				`FILE:3: max_message_size: must be more than 0`,
				`FILE:6: queue.retry_max: must not be less than retry_min (10m)`,
				`FILE:7: queue.lifetime: must not be less than retry_min (10m)`,
				`FILE:8: queue.max_connections: must be at least 1`,
				`FILE:10: rewrite.aliases: must be an absolute path, not "~/aliases" (~ is not expanded)`,
				`FILE:11: rewrite.sender_map: must be an absolute path, not "senders"`,
				`FILE:12: rewrite.from_header: must be "keep" or "rewrite", not "replace"`,
				`FILE:13: rewrite.header[1]: missing value: add, replace and append need one`,
				`FILE:14: rewrite.header[1].action: must be "add", "replace", "append" or "remove", not "prepend"`,
				`FILE:15: rewrite.header[1].name: "X Bad:" is not a header field name`,
				`FILE:19: rewrite.header[2].value: remove takes no value`,
				`FILE:23: rewrite.header[3].value: must not contain line breaks`,
				`FILE:24: rewrite.header[4]: missing action: "add", "replace", "append" or "remove"`,
				`FILE:24: rewrite.header[4]: missing name: the header field to change`,
				`FILE:25: rewrite.header[4].value: must not be empty`,
				`FILE:27: daemon.listen[1]: "127.0.0.1" is not host:port, e.g. "127.0.0.1:25" or "[::1]:25"`,
				`FILE:27: daemon.listen[2]: "localhost:smtp" is not host:port, e.g. "127.0.0.1:25" or "[::1]:25"`,
				`FILE:27: daemon.listen[3]: "[::1]:0" is not host:port, e.g. "127.0.0.1:25" or "[::1]:25"`,
				`FILE:28: daemon.listen_networks[1]: "172.17.0.1" is not a network in CIDR form, e.g. "172.17.0.0/16" or "192.0.2.7/32"`,
				`FILE:29: daemon.user: must not be empty`,
				`FILE:31: log.to: must be "stderr", "syslog" or an absolute file path, not "relay.log"`,
			},
		},
		{
			name: "array elements on their own lines",
			text: `[[smarthost]]
host = "a.example"
senders = [
  "*@example.org",   # fine
  "nope",
]
`,
			want: []string{`FILE:5: smarthost[1].senders[2]: "nope" is not a sender pattern: use "*", "*@example.org", "@example.org" or "alice@example.org"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode := tt.mode
			if mode == 0 {
				mode = 0o600
			}
			_, path, err := load(t, tt.text, mode)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			got := problems(t, err, path)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, secret := range []string{"hunter2", "s3cret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("a secret shows in the error: %v", err)
				}
			}
		})
	}
}

func TestLoadReturnsConfigWithValidationErrors(t *testing.T) {
	c, _, err := load(t, "[[smarthost]]\nhost = \"a.example\"\nport = 0\n", 0o600)
	if err == nil || c == nil || len(c.Smarthosts) != 1 || c.Smarthosts[0].Host != "a.example" {
		t.Fatalf("Load = %v, %v; want the best-effort config and an error", c, err)
	}
	c, _, err = load(t, "[[smarthost]\n", 0o600)
	if err == nil || c != nil {
		t.Fatalf("Load of a syntax error = %v, %v; want nil and an error", c, err)
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

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    config.Problem
		want string
	}{
		{config.Problem{File: "r.toml", Line: 3, Key: "smarthost[1].port", Msg: "bad"}, "r.toml:3: smarthost[1].port: bad"},
		{config.Problem{File: "r.toml", Key: "domain", Msg: "bad"}, "r.toml: domain: bad"},
		{config.Problem{File: "r.toml", Line: 7, Msg: "syntax"}, "r.toml:7: syntax"},
		{config.Problem{File: "r.toml", Line: 3, Key: "rewrite.aliases", Msg: "missing", Warning: true}, "r.toml:3: warning: rewrite.aliases: missing"},
		{config.Problem{File: "r.toml", Msg: "no smarthost", Warning: true}, "r.toml: warning: no smarthost"},
		{config.Problem{Msg: "bare"}, "bare"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
	e := config.Errors{tests[0].p, tests[1].p}
	if got, want := e.Error(), "r.toml:3: smarthost[1].port: bad\nr.toml: domain: bad"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestProxy(t *testing.T) {
	tests := []struct {
		in   string
		want config.Proxy
		str  string
	}{
		{"socks5://127.0.0.1:9050", config.Proxy{Network: "tcp", Address: "127.0.0.1:9050"}, "socks5://127.0.0.1:9050"},
		{"socks5://u:p%40ss@[::1]:1080", config.Proxy{Network: "tcp", Address: "[::1]:1080", Username: "u", Password: "p@ss"}, "socks5://u:xxx@[::1]:1080"},
		{"socks5://iso@tor.local:9050", config.Proxy{Network: "tcp", Address: "tor.local:9050", Username: "iso"}, "socks5://iso@tor.local:9050"},
		{"socks5://unix:/run/tor/socks", config.Proxy{Network: "unix", Address: "/run/tor/socks"}, "socks5://unix:/run/tor/socks"},
		{"socks5://a:b@unix:/run/tor/socks", config.Proxy{Network: "unix", Address: "/run/tor/socks", Username: "a", Password: "b"}, "socks5://a:xxx@unix:/run/tor/socks"},
	}
	for _, tt := range tests {
		p, err := config.ParseProxy(tt.in)
		if err != nil {
			t.Errorf("ParseProxy(%q): %v", tt.in, err)
			continue
		}
		if *p != tt.want || p.String() != tt.str {
			t.Errorf("ParseProxy(%q) = %+v (%s), want %+v (%s)", tt.in, *p, p, tt.want, tt.str)
		}
	}
	for _, bad := range []string{"", "socks5://", "socks5://host", "socks5://:1080", "socks5://h:0", "socks5://h:x", "socks4://h:1", "socks5://:pw@h:1", "socks5://u:%zz@h:1", "socks5://unix:"} {
		if _, err := config.ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q) succeeded", bad)
		}
	}
	for in, want := range map[string]string{
		"socks5://u:pw@h:1":        "socks5://u:xxx@h:1",
		"socks5://u:p/w@h:1":       "socks5://u:xxx@h:1",
		"socks5://u@h:1":           "socks5://u@h:1",
		"socks5://h:1":             "socks5://h:1",
		"u:pw@h:1":                 "xxx",
		"socks5://u:p@w@unix:/x/y": "socks5://u:xxx@unix:/x/y",
	} {
		if got := config.MaskProxy(in); got != want {
			t.Errorf("MaskProxy(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExample loads relay.toml.example and checks that it documents every key.
func TestExample(t *testing.T) {
	text, err := os.ReadFile("../relay.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	c, path, err := load(t, string(text), 0o600)
	if err != nil {
		t.Fatalf("the example does not load:\n%s", strings.Join(problems(t, err, path), "\n"))
	}
	if len(c.Smarthosts) != 1 || c.Smarthosts[0].Host != "smtp.yandex.ru" || c.Smarthosts[0].Port != 465 {
		t.Errorf("example smarthost = %+v", c.Smarthosts)
	}
	// Also as a 0644 file: the example must not carry an active inline password.
	if _, path, err := load(t, string(text), 0o644); err != nil {
		t.Errorf("the example does not load from a 0644 file:\n%s", strings.Join(problems(t, err, path), "\n"))
	}

	var keys []string
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name := f.Tag.Get("toml")
			if name == "" || name == "-" {
				continue
			}
			switch ft := f.Type; {
			case ft.Kind() == reflect.Struct && ft.PkgPath() == rt.PkgPath() && ft.Name() != "RateLimit":
				walk(ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem())
			}
			keys = append(keys, name)
		}
	}
	walk(reflect.TypeFor[config.Config]())
	for _, k := range keys {
		var re *regexp.Regexp
		switch k {
		case "smarthost", "header":
			re = regexp.MustCompile(`(?m)^#? *\[\[(rewrite\.)?` + k + `\]\]`)
		case "queue", "rewrite", "daemon", "log":
			re = regexp.MustCompile(`(?m)^\[` + k + `\]`)
		default:
			// An active or commented-out key with a comment on its line.
			re = regexp.MustCompile(`(?m)^#? *` + k + ` *=.*# \S`)
		}
		if !re.Match(text) {
			t.Errorf("relay.toml.example does not document %q", k)
		}
	}
}

func TestProblemLineUnderWronglyCasedTable(t *testing.T) {
	_, path, err := load(t, "[Queue]\nretry_min = \"10m\"\nretry_max = \"1m\"\n", 0o600)
	got := problems(t, err, path)
	want := []string{
		`FILE:1: Queue: key "Queue" must be written "queue"`,
		`FILE:3: queue.retry_max: must not be less than retry_min (10m)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems %q, want %q", got, want)
	}
}

func BenchmarkLoadExample(b *testing.B) {
	text, err := os.ReadFile("../relay.toml.example")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "relay.toml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		b.Fatal(err)
	}
	loc := config.Location{Path: path, Required: true, DefaultSpool: config.SystemSpool}
	for b.Loop() {
		if _, err := config.Load(loc); err != nil {
			b.Fatal(err)
		}
	}
}
