package config_test

// What Load reports about a configuration it refuses: every problem with
// its file and line, and the configuration it could read all the same.

import (
	"os"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

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
preset = "hotmail"
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
				`FILE:2: smarthost[1].preset: unknown preset "hotmail": use yandex, mailru, gmail, outlook, office365, rambler, icloud, zoho, fastmail, yahoo, gmx, web.de, sendgrid, mailgun, ses, mailjet, brevo`,
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
				`FILE:6: smarthost[1].senders[2]: "" is not a sender pattern: use "*", "*@example.org", "@example.org", "@.example.org" (its subdomains) or "alice@example.org"`,
				`FILE:6: smarthost[1].senders[3]: "a*b@example.org" is not a sender pattern: use "*", "*@example.org", "@example.org", "@.example.org" (its subdomains) or "alice@example.org"`,
				`FILE:6: smarthost[1].senders[4]: "example.org" is not a sender pattern: use "*", "*@example.org", "@example.org", "@.example.org" (its subdomains) or "alice@example.org"`,
				`FILE:6: smarthost[1].senders[5]: "x@*.example.org" is not a sender pattern: use "*", "*@example.org", "@example.org", "@.example.org" (its subdomains) or "alice@example.org"`,
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
			want: []string{`FILE:5: smarthost[1].senders[2]: "nope" is not a sender pattern: use "*", "*@example.org", "@example.org", "@.example.org" (its subdomains) or "alice@example.org"`},
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
