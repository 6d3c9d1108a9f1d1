package migrate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
)

// Result is an imported configuration: what relay.toml will say, the
// secrets and generated files it names, and the notes of the report.
type Result struct {
	Format string // msmtp, ssmtp, nullmailer, dma, postfix
	Source string // the file or directory imported

	Domain             string
	HeloName           string
	MaxMessageSize     string
	HeaderSizeLimit    string
	EnvelopeFromHeader bool
	Smarthosts         []*Smarthost

	RetryMin, RetryMax, Lifetime, WarnAfter string // durations as relay writes them

	// Aliases is an existing alias file relay reads as it is; AliasEntries
	// a generated one (written as DIR/aliases), SenderEntries the
	// generated sender map (DIR/senders).
	Aliases       string
	AliasEntries  []Entry
	SenderEntries []Entry
	FromHeader    string // "" (relay's default, keep) or "rewrite"
	LogTo         string // [log] to

	Notes []Note
}

// Smarthost is one [[smarthost]] table being built.
type Smarthost struct {
	Name            string
	Preset          string
	Host            string
	Port            int
	TLS             string // implicit, starttls, none
	TLSCAFile       string
	TLSFingerprint  string
	TLSServerName   string
	TLSClientCert   string
	TLSClientKey    string
	Username        string
	Password        string   // goes to a secret file, never into relay.toml
	PasswordCommand []string // argv
	Auth            string
	EnvelopeFrom    string
	Senders         []string
	HeloName        string
	SourceAddress   string
	IPFamily        string
	Proxy           string
}

// Entry is one line of a generated alias file or sender map.
type Entry struct {
	Name   string
	Values []string
}

func (r *Result) note(file string, line int, key string, st Status, to, why string) {
	r.Notes = append(r.Notes, Note{File: file, Line: line, Key: key, Status: st, To: to, Why: why})
}

func (r *Result) mapped(file string, line int, key, to string) {
	r.note(file, line, key, Mapped, to, "")
}

// addAlias adds a generated alias entry (the first of a name counts, as in
// relay's alias files).
func (r *Result) addAlias(name string, values ...string) {
	for _, e := range r.AliasEntries {
		if strings.EqualFold(e.Name, name) {
			return
		}
	}
	r.AliasEntries = append(r.AliasEntries, Entry{Name: name, Values: values})
}

func (r *Result) addSender(name, value string) {
	for _, e := range r.SenderEntries {
		if strings.EqualFold(e.Name, name) {
			return
		}
	}
	r.SenderEntries = append(r.SenderEntries, Entry{Name: name, Values: []string{value}})
}

// secretName is the file name of a smarthost's secret.
func (sh *Smarthost) secretName() string {
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, sh.Name)
	return strings.TrimLeft(n, ".") + ".secret"
}

// finish gives every smarthost a unique name, a port and a preset where
// host, port and TLS are exactly a preset's.
func (r *Result) finish() {
	seen := map[string]int{}
	for _, sh := range r.Smarthosts {
		if sh.Port == 0 {
			switch sh.TLS {
			case "implicit":
				sh.Port = 465
			case "none":
				sh.Port = 25
			default:
				sh.Port = 587
			}
		}
		if sh.Name == "" {
			sh.Name = sh.Host
		}
		if n := seen[sh.Name]; n > 0 {
			seen[sh.Name]++
			sh.Name = fmt.Sprintf("%s-%d", sh.Name, n+1)
		} else {
			seen[sh.Name] = 1
		}
		for name, p := range config.Presets {
			if p.RegionHost || !strings.EqualFold(p.Host, sh.Host) {
				continue
			}
			if p.Port == sh.Port && p.TLS == sh.TLS && sh.TLSCAFile == "" && sh.TLSFingerprint == "" {
				sh.Preset = name
			}
		}
	}
}

// duration formats a number of seconds as relay writes durations.
func duration(sec int64) string {
	return config.Duration(time.Duration(sec) * time.Second).String()
}

// Files are the relative names of the files Write makes besides
// relay.toml, in order.
func (r *Result) files() []string {
	var out []string
	for _, sh := range r.Smarthosts {
		if sh.Password != "" {
			out = append(out, sh.secretName())
		}
	}
	if len(r.AliasEntries) > 0 {
		out = append(out, "aliases")
	}
	if len(r.SenderEntries) > 0 {
		out = append(out, "senders")
	}
	return out
}

// TOML renders relay.toml, naming secrets and generated files in dir.
func (r *Result) TOML(dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# relay.toml imported by `relay import %s %s`.\n", r.Format, r.Source)
	b.WriteString("# The import's report (standard error) says what became of every setting; see relay-import(8).\n\n")
	kv := func(indent, k string, v any) {
		switch v := v.(type) {
		case string:
			if v == "" {
				return
			}
			fmt.Fprintf(&b, "%s%s = %s\n", indent, k, quote(v))
		case int:
			if v == 0 {
				return
			}
			fmt.Fprintf(&b, "%s%s = %d\n", indent, k, v)
		case bool:
			if !v {
				return
			}
			fmt.Fprintf(&b, "%s%s = true\n", indent, k)
		case []string:
			if len(v) == 0 {
				return
			}
			q := make([]string, len(v))
			for i, s := range v {
				q[i] = quote(s)
			}
			fmt.Fprintf(&b, "%s%s = [%s]\n", indent, k, strings.Join(q, ", "))
		}
	}
	kv("", "domain", r.Domain)
	kv("", "helo_name", r.HeloName)
	kv("", "max_message_size", r.MaxMessageSize)
	kv("", "header_size_limit", r.HeaderSizeLimit)
	kv("", "envelope_from_header", r.EnvelopeFromHeader)
	for _, sh := range r.Smarthosts {
		b.WriteString("\n[[smarthost]]\n")
		kv("", "name", sh.Name)
		if sh.Preset != "" {
			kv("", "preset", sh.Preset)
		} else {
			kv("", "host", sh.Host)
			kv("", "port", sh.Port)
			kv("", "tls", sh.TLS)
		}
		kv("", "tls_ca_file", sh.TLSCAFile)
		kv("", "tls_fingerprint", sh.TLSFingerprint)
		kv("", "tls_server_name", sh.TLSServerName)
		kv("", "tls_client_cert", sh.TLSClientCert)
		kv("", "tls_client_key", sh.TLSClientKey)
		kv("", "username", sh.Username)
		if sh.Password != "" {
			kv("", "password_file", dir+"/"+sh.secretName())
		}
		kv("", "password_command", sh.PasswordCommand)
		kv("", "auth", sh.Auth)
		kv("", "envelope_from", sh.EnvelopeFrom)
		kv("", "senders", sh.Senders)
		kv("", "helo_name", sh.HeloName)
		kv("", "source_address", sh.SourceAddress)
		kv("", "ip_family", sh.IPFamily)
		kv("", "proxy", sh.Proxy)
	}
	if r.RetryMin+r.RetryMax+r.Lifetime+r.WarnAfter != "" {
		b.WriteString("\n[queue]\n")
		kv("", "retry_min", r.RetryMin)
		kv("", "retry_max", r.RetryMax)
		kv("", "lifetime", r.Lifetime)
		kv("", "warn_after", r.WarnAfter)
	}
	aliases := r.Aliases
	if len(r.AliasEntries) > 0 {
		aliases = dir + "/aliases"
	}
	var senders string
	if len(r.SenderEntries) > 0 {
		senders = dir + "/senders"
	}
	if aliases+senders+r.FromHeader != "" {
		b.WriteString("\n[rewrite]\n")
		kv("", "aliases", aliases)
		kv("", "sender_map", senders)
		kv("", "from_header", r.FromHeader)
	}
	if r.LogTo != "" {
		b.WriteString("\n[log]\n")
		kv("", "to", r.LogTo)
	}
	return b.String()
}

// entries renders a generated alias file or sender map.
func entries(title string, es []Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", title)
	for _, e := range es {
		fmt.Fprintf(&b, "%s: %s\n", e.Name, strings.Join(e.Values, ", "))
	}
	return b.String()
}

// quote is a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// smarthostByHost finds a smarthost by host and port (0: any port).
func (r *Result) smarthostByHost(host string, port int) *Smarthost {
	i := slices.IndexFunc(r.Smarthosts, func(sh *Smarthost) bool {
		return strings.EqualFold(sh.Host, host) && (port == 0 || sh.Port == port)
	})
	if i < 0 {
		return nil
	}
	return r.Smarthosts[i]
}

// FilesNotWritten names the files a printed relay.toml refers to that
// only --write makes.
func (r *Result) FilesNotWritten() []string {
	return r.files()
}
