// Package config loads and validates relay's TOML configuration.
//
// Where the file is: [Locate] picks -C/--config, else $RELAY_CONFIG, else
// /etc/relay/relay.toml, else (for a user other than root) the single-user
// $XDG_CONFIG_HOME/relay/relay.toml with its spool in $XDG_STATE_HOME/relay.
//
// The loader is strict, because a typo in a mail relay's configuration
// otherwise shows up days later as lost or misrouted mail:
//
//   - keys are case-sensitive and must be known: "hots" or "Host" is an
//     error (with a "did you mean" hint), not a silently ignored line;
//   - every value is checked (types, enums, ports, addresses, paths, units,
//     proxies, header rules) and every problem is reported at once, each as
//     "file:line: key: message";
//   - an inline password is refused when the file is readable by group or
//     others; secrets and proxy passwords never appear in a message.
//
// Paths must be absolute; an empty string leaves an optional key unset.
// Sizes are bytes or "50MB" (powers of 1024), durations "30s", "5m",
// "1h30m", "5d", "2w", rate limits "100/h". Load fills in every default, so
// that users of a Config need not know them (see [Smarthost]).
//
// Load reads only the configuration file (it runs on every sendmail call: no
// DNS, no exec); [Config.Check] makes the slower checks of `relay check`
// (files named by the configuration, permissions, commands).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// SystemPath is the system-wide configuration file; a variable so tests can
// point it elsewhere.
var SystemPath = "/etc/relay/relay.toml"

// SystemSpool is the spool of a system-wide installation.
const SystemSpool = "/var/spool/relay"

// Config is relay's configuration. After Load every default is filled in,
// including the per-smarthost ones (see [Smarthost]).
type Config struct {
	Path   string `toml:"-"` // file it came from
	Loaded bool   `toml:"-"` // false when built from defaults

	Domain         string `toml:"domain"`           // qualifies bare names; "" = MailDomain() decides
	Spool          string `toml:"spool"`            // spool directory
	Proxy          string `toml:"proxy"`            // default proxy of every smarthost
	MaxMessageSize Size   `toml:"max_message_size"` // default 50MB
	MinFreeSpace   Size   `toml:"min_free_space"`   // default 100MB
	// HeaderSizeLimit bounds a message's header section at intake
	// (Postfix's header_size_limit); default 100KB, at most 1MB.
	HeaderSizeLimit Size `toml:"header_size_limit"`
	// HeloName is the name relay gives in EHLO (every EHLO, the one
	// before STARTTLS too); "" = domain when set, else the host's fully
	// qualified name, else the mail domain. A smarthost's own helo_name
	// wins.
	HeloName string `toml:"helo_name"`
	// EnvelopeFromHeader: a -t submission without -f takes its envelope
	// sender from the From header (msmtp's --read-envelope-from).
	EnvelopeFromHeader bool        `toml:"envelope_from_header"`
	Smarthosts         []Smarthost `toml:"smarthost"` // tried in order

	Queue   Queue   `toml:"queue"`
	Rewrite Rewrite `toml:"rewrite"`
	Daemon  Daemon  `toml:"daemon"`
	Log     Log     `toml:"log"`
	Metrics Metrics `toml:"metrics"`

	// DefaultSpool is the spool used when the file names none (or cannot
	// be read): Location.DefaultSpool.
	DefaultSpool string `toml:"-"`
	// Problems are the errors of a configuration made by LoadLenient;
	// nil for one without errors. Such a configuration serves intake
	// only, never delivery (see LoadLenient and Broken).
	Problems Errors `toml:"-"`

	lines   lineIndex       // where each key is written
	defined map[string]bool // key paths written in the file
}

// Sets reports whether the file itself sets the key (a dotted path such
// as "rewrite.aliases"), as opposed to the key taking its default.
func (c *Config) Sets(key string) bool { return c.defined[key] }

// Smarthost is one [[smarthost]] table. After Load: Host, Port and TLS are
// set (from the preset, else by the rules port 465 ↔ implicit, starttls ↔
// 587, none ↔ 25, neither → 587 starttls); Name defaults to Host;
// TLSMinVersion to "1.2"; Proxy to the top-level proxy; Auth is lowercase
// and TLSFingerprint lowercase hex without colons or "sha256:".
type Smarthost struct {
	Name            string   `toml:"name"`
	Preset          string   `toml:"preset"` // see Presets
	Region          string   `toml:"region"` // the provider's region, for preset = "ses"
	Host            string   `toml:"host"`
	Port            int      `toml:"port"`
	TLS             string   `toml:"tls"` // "implicit", "starttls" or "none"
	TLSCAFile       string   `toml:"tls_ca_file"`
	TLSFingerprint  string   `toml:"tls_fingerprint"`
	TLSServerName   string   `toml:"tls_server_name"`
	TLSClientCert   string   `toml:"tls_client_cert"`
	TLSClientKey    string   `toml:"tls_client_key"`
	TLSMinVersion   string   `toml:"tls_min_version"` // "1.0" … "1.3"
	Username        string   `toml:"username"`
	PasswordFile    string   `toml:"password_file"`
	PasswordCommand []string `toml:"password_command"`
	Password        string   `toml:"password"`
	Auth            string   `toml:"auth"` // "" = choose; else plain, login, cram-md5, scram-sha-256, xoauth2, oauthbearer
	EnvelopeFrom    string   `toml:"envelope_from"`
	Senders         []string `toml:"senders"`
	// Recipients: this smarthost carries only the recipients these
	// patterns name (the syntax of senders, plus "@.domain" for
	// subdomains); see package route.
	Recipients []string `toml:"recipients"`
	// HeloName is this smarthost's name in EHLO; "" = the top-level one.
	HeloName string `toml:"helo_name"`
	// SourceAddress is the local IP address the connection comes from;
	// IPFamily "any" ("" too, the default), "ipv4" or "ipv6". Both are ignored through
	// a proxy (relay check warns).
	SourceAddress string    `toml:"source_address"`
	IPFamily      string    `toml:"ip_family"`
	Proxy         string    `toml:"proxy"`
	RateLimit     RateLimit `toml:"rate_limit"`
	BounceFrom    string    `toml:"bounce_from"`
	// OAuth is the [smarthost.oauth] table: log in with an OAuth 2.0
	// access token that relay obtains and refreshes itself (oauth.go).
	// After Load, OAuth.Provider is set exactly when OAuth is in use.
	OAuth OAuth `toml:"oauth"`

	Line int `toml:"-"` // line of its [[smarthost]] header

	// loginNote is what a preset's rule did with a bare username (see
	// Preset.LoginDomain), for relay check's warning.
	loginNote string
}

// Queue holds the retry and expiry settings ([queue]).
type Queue struct {
	RetryMin       Duration `toml:"retry_min"`       // default 5m
	RetryMax       Duration `toml:"retry_max"`       // default 1h
	Lifetime       Duration `toml:"lifetime"`        // default 5d
	WarnAfter      Duration `toml:"warn_after"`      // 0 = no delay warnings
	SoftBounce     bool     `toml:"soft_bounce"`     // default false
	MaxConnections int      `toml:"max_connections"` // per smarthost, default 4
}

// Rewrite holds the address and header rewriting settings ([rewrite]).
type Rewrite struct {
	Aliases        string       `toml:"aliases"`          // default /etc/aliases
	SenderMap      string       `toml:"sender_map"`       // "" = none
	SenderLoginMap string       `toml:"sender_login_map"` // "" = none
	FromHeader     string       `toml:"from_header"`      // "keep" (default) or "rewrite"
	Header         []HeaderRule `toml:"header"`           // [[rewrite.header]]
}

// HeaderRule is one [[rewrite.header]] table.
type HeaderRule struct {
	Action string `toml:"action"` // add, replace, append, remove
	Name   string `toml:"name"`
	Value  string `toml:"value"` // %h host, %u submitting user
}

// Daemon holds the settings of `relay daemon` ([daemon]).
type Daemon struct {
	Listen         []string `toml:"listen"`          // host:port to accept SMTP on
	ListenNetworks []string `toml:"listen_networks"` // extra client networks (CIDR)
	// ListenTLS offers STARTTLS: "self-signed" (made and kept in the
	// spool) or the path of a certificate file, whose key is
	// ListenTLSKey; "" offers none.
	ListenTLS    string `toml:"listen_tls"`
	ListenTLSKey string `toml:"listen_tls_key"`
	// ListenUsers is the file of users who may AUTH (after STARTTLS).
	ListenUsers string `toml:"listen_users"`
	// ListenAuthNetworks are client networks served only once they have
	// authenticated (CIDR).
	ListenAuthNetworks []string `toml:"listen_auth_networks"`
	User               string   `toml:"user"` // default "relay"
	// DetachedDelivery: without a running daemon, sendmail starts a
	// delivery pass in a detached process (default true).
	DetachedDelivery bool `toml:"detached_delivery"`
	// Rescan is how often the daemon looks at the whole queue besides its
	// file-system watch (0: the daemon's default, 5m).
	Rescan Duration `toml:"rescan"`
}

// Metrics holds the daemon's metrics endpoint ([metrics]).
type Metrics struct {
	// Listen is the address ("127.0.0.1:9469") where the daemon serves
	// Prometheus metrics on /metrics; "" (default): no endpoint. Clients
	// other than loopback and [daemon] listen_networks are refused at
	// connect.
	Listen string `toml:"listen"`
}

// Log holds the logging settings ([log]).
type Log struct {
	To string `toml:"to"` // "stderr" (default), "syslog" or an absolute file path
}

// Default returns the configuration used when there is no file.
func Default() *Config {
	return &Config{
		Spool:           SystemSpool,
		MaxMessageSize:  50 * Megabyte,
		MinFreeSpace:    100 * Megabyte,
		HeaderSizeLimit: 100 * Kilobyte,
		Queue: Queue{
			RetryMin:       Duration(5 * time.Minute),
			RetryMax:       Duration(time.Hour),
			Lifetime:       Duration(5 * day),
			MaxConnections: 4,
		},
		Rewrite: Rewrite{Aliases: "/etc/aliases", FromHeader: "keep"},
		Daemon:  Daemon{User: "relay", DetachedDelivery: true},
		Log:     Log{To: "stderr"},
	}
}

// Problem is one thing wrong (or, with Warning, suspicious) in a
// configuration.
type Problem struct {
	File    string
	Line    int    // 0 when unknown
	Key     string // dotted key path, e.g. "smarthost[2].port" (1-based); "" when not about a key
	Msg     string
	Warning bool
}

// String formats the problem as "file:line: key: msg", leaving out what is
// unknown; a warning reads "file:line: warning: key: msg".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is the error Load returns: every problem found.
type Errors []Problem

// Error gives the problems, one per line.
func (e *Errors) Error() string {
	s := make([]string, len(*e))
	for i, p := range *e {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// Load reads and validates the configuration file loc.Path.
//
// A missing file that is not loc.Required gives Default() with Spool set to
// loc.DefaultSpool (SystemSpool when empty), Path to loc.Path and Loaded
// false. Otherwise the error,
// if any, is an *Errors holding every problem found. When the file could be
// parsed but has problems, Load returns the (best-effort) configuration
// along with the error, so that `relay check` can go on checking; never
// deliver mail with it.
func Load(loc Location) (*Config, error) {
	if loc.DefaultSpool == "" {
		loc.DefaultSpool = SystemSpool
	}
	f, err := os.Open(loc.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !loc.Required {
			c := Default()
			c.Path = loc.Path
			c.Spool = loc.DefaultSpool
			c.DefaultSpool = loc.DefaultSpool
			return c, nil
		}
		return nil, &Errors{{File: loc.Path, Msg: "cannot read: " + pathErr(err)}}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Errors{{File: loc.Path, Msg: "cannot read: " + pathErr(err)}}
	}
	if fi.IsDir() {
		return nil, &Errors{{File: loc.Path, Msg: "cannot read: is a directory"}}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, &Errors{{File: loc.Path, Msg: "cannot read: " + pathErr(err)}}
	}
	return parse(loc, data, fi.Mode().Perm())
}

func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// parse decodes and validates the text of a configuration file whose
// permission bits are perm.
func parse(loc Location, data []byte, perm fs.FileMode) (*Config, error) {
	file := loc.Path
	var raw map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Errors{{File: file, Line: errorLine(data, pe.Position), Msg: oneLine(pe.Message)}}
		}
		return nil, &Errors{{File: file, Msg: oneLine(err.Error())}}
	}

	c := Default()
	c.Path = loc.Path
	c.Loaded = true
	c.Spool = loc.DefaultSpool
	c.DefaultSpool = loc.DefaultSpool
	c.lines = keyLines(string(data))
	d := &decoder{file: file, lines: c.lines, defined: map[string]bool{}, bad: map[string]bool{}}
	d.table("", raw, c)
	c.defined = d.defined
	for i := range c.Smarthosts {
		c.Smarthosts[i].Line = c.lines.find(indexKey("smarthost", i+1))
	}

	v := &validator{c: c, file: file, perm: perm, bad: d.bad}
	v.validate()

	probs := append(d.probs, v.probs...)
	if len(probs) == 0 {
		return c, nil
	}
	SortProblems(probs)
	e := Errors(probs)
	return c, &e
}

// errorLine is the line of a TOML syntax error, counted from its byte
// offset: the decoder's own line number is one short for some errors at
// the end of the file (0 for a bad escape on the first line).
func errorLine(data []byte, pos toml.Position) int {
	line := pos.Line
	if pos.Start > 0 && pos.Start <= len(data) {
		line = 1 + bytes.Count(data[:pos.Start], []byte("\n"))
	}
	return max(line, 1)
}

// SortProblems orders problems by line, keeping the order of those on one
// line (a file's problems read top to bottom).
func SortProblems(p []Problem) {
	sort.SliceStable(p, func(i, j int) bool { return p[i].Line < p[j].Line })
}

func oneLine(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "toml: ")
	return strings.Join(strings.Fields(s), " ")
}
