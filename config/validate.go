package config

import (
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Presets and presetNames: presets.go.

var (
	tlsModes       = []string{"implicit", "starttls", "none"}
	tlsVersions    = []string{"1.0", "1.1", "1.2", "1.3"}
	authMechs      = []string{"plain", "login", "cram-md5", "scram-sha-256", "xoauth2", "oauthbearer"}
	fromHeaders    = []string{"keep", "rewrite"}
	headerActions  = []string{"add", "replace", "append", "remove"}
	senderPatterns = `"*", "*@example.org", "@example.org", "@.example.org" (its subdomains) or "alice@example.org"`
	ipFamilies     = []string{"any", "ipv4", "ipv6"}
)

type validator struct {
	c     *Config
	file  string
	perm  fs.FileMode
	bad   map[string]bool // keys whose value could not be decoded
	probs []Problem
}

// errorf reports a problem, unless decoding already reported one for the key.
func (v *validator) errorf(key, format string, args ...any) {
	if v.bad[key] {
		return
	}
	v.probs = append(v.probs, Problem{File: v.file, Line: v.c.lines.find(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) has(key string) bool { return v.c.defined[key] }

// oneOf checks an enumerated value; it reports and returns false when the
// value is not one of those allowed.
func (v *validator) oneOf(key, val string, allowed []string) bool {
	for _, a := range allowed {
		if val == a {
			return true
		}
	}
	v.errorf(key, "must be %s, not %q", quoteList(allowed), val)
	return false
}

// quoteList gives `"a", "b" or "c"`.
func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func (v *validator) absPath(key, p string) {
	if p != "" && !filepath.IsAbs(p) {
		hint := ""
		if strings.HasPrefix(p, "~") {
			hint = " (~ is not expanded)"
		}
		v.errorf(key, "must be an absolute path, not %q%s", p, hint)
	}
}

func (v *validator) validate() {
	c := v.c
	if c.Domain != "" && !isHostname(c.Domain) {
		v.errorf("domain", "%q is not a host name", c.Domain)
	}
	if c.Spool == "" || !filepath.IsAbs(c.Spool) {
		v.errorf("spool", "must be an absolute path, not %q", c.Spool)
	}
	if c.Proxy != "" {
		if _, err := ParseProxy(c.Proxy); err != nil {
			v.errorf("proxy", "%s", err)
		}
	}
	if c.MaxMessageSize <= 0 {
		v.errorf("max_message_size", "must be more than 0")
	}
	if c.HeaderSizeLimit < 1*Kilobyte || c.HeaderSizeLimit > Megabyte {
		// Above 1MB the header rewriting at delivery could not hold it.
		v.errorf("header_size_limit", "must be from 1KB to 1MB, not %s", c.HeaderSizeLimit)
	}
	v.heloName("helo_name", c.HeloName)
	v.smarthosts()
	v.queue()
	v.rewrite()
	v.daemon()
	v.metrics()
	switch t := c.Log.To; {
	case t == "stderr", t == "syslog", filepath.IsAbs(t):
	default:
		v.errorf("log.to", `must be "stderr", "syslog" or an absolute file path, not %q`, t)
	}
}

func (v *validator) queue() {
	q := &v.c.Queue
	if q.RetryMin <= 0 {
		v.errorf("queue.retry_min", "must be more than 0")
	} else {
		if q.RetryMax < q.RetryMin {
			v.errorf("queue.retry_max", "must not be less than retry_min (%s)", q.RetryMin)
		}
		if q.Lifetime < q.RetryMin {
			v.errorf("queue.lifetime", "must not be less than retry_min (%s)", q.RetryMin)
		}
	}
	if q.MaxConnections < 1 {
		v.errorf("queue.max_connections", "must be at least 1")
	}
}

func (v *validator) rewrite() {
	r := &v.c.Rewrite
	v.absPath("rewrite.aliases", r.Aliases)
	v.absPath("rewrite.sender_map", r.SenderMap)
	v.absPath("rewrite.sender_login_map", r.SenderLoginMap)
	v.oneOf("rewrite.from_header", r.FromHeader, fromHeaders)
	for i := range r.Header {
		h := &r.Header[i]
		p := indexKey("rewrite.header", i+1)
		if !v.has(p + ".action") {
			v.errorf(p, "missing action: %s", quoteList(headerActions))
		} else {
			v.oneOf(p+".action", h.Action, headerActions)
		}
		switch {
		case !v.has(p + ".name"):
			v.errorf(p, "missing name: the header field to change")
		case !isFieldName(h.Name):
			v.errorf(p+".name", "%q is not a header field name", h.Name)
		}
		switch {
		case h.Action == "remove" && v.has(p+".value"):
			v.errorf(p+".value", "remove takes no value")
		case h.Action != "remove" && h.Value == "":
			if v.has(p + ".value") {
				v.errorf(p+".value", "must not be empty")
			} else {
				v.errorf(p, "missing value: add, replace and append need one")
			}
		case strings.ContainsAny(h.Value, "\r\n"):
			v.errorf(p+".value", "must not contain line breaks")
		case badPercent(h.Value) != "":
			v.errorf(p+".value", "unknown %s: use %%h (host), %%u (submitting user) or %%%% (a percent sign)", badPercent(h.Value))
		}
	}
}

// badPercent returns the first % escape of a header rule value that is
// not %h, %u or %%, "" when there is none.
func badPercent(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+1 == len(s) {
			return "% at the end"
		}
		switch s[i+1] {
		case 'h', 'u', '%':
			i++
		default:
			return "%" + string(s[i+1])
		}
	}
	return ""
}

func (v *validator) metrics() {
	if l := v.c.Metrics.Listen; l != "" && !validListen(l) {
		v.errorf("metrics.listen", `%q is not host:port, e.g. "127.0.0.1:9469" or "[::1]:9469"`, l)
	}
}

func (v *validator) daemon() {
	d := &v.c.Daemon
	for i, l := range d.Listen {
		_, port, err := net.SplitHostPort(l)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			v.errorf(indexKey("daemon.listen", i+1), `%q is not host:port, e.g. "127.0.0.1:25" or "[::1]:25"`, l)
		}
	}
	for i, n := range d.ListenNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			v.errorf(indexKey("daemon.listen_networks", i+1), `%q is not a network in CIDR form, e.g. "172.17.0.0/16" or "192.0.2.7/32"`, n)
		}
	}
	v.listenAuth()
	if d.User == "" {
		v.errorf("daemon.user", "must not be empty")
	}
	if d.Rescan < 0 {
		v.errorf("daemon.rescan", "must not be negative")
	}
}

func (v *validator) smarthosts() {
	c := v.c
	names := map[string]int{} // name → index+1
	for i := range c.Smarthosts {
		sh := &c.Smarthosts[i]
		p := indexKey("smarthost", i+1)
		k := func(name string) string { return p + "." + name }

		// Where to connect: preset, then the port/TLS rules.
		var preset *Preset
		if sh.Preset != "" {
			if pr, ok := Presets[sh.Preset]; ok {
				preset = &pr
				if pr.RegionHost {
					switch {
					case sh.Host != "": // written in the table (a VPC endpoint)
					case sh.Region == "":
						v.errorf(k("preset"), "preset %s needs region, e.g. region = \"eu-west-1\" (the region of your SES account)", sh.Preset)
						v.bad[p] = true // not "no host" as well
					case !isAWSRegion(sh.Region):
						v.errorf(k("region"), "%q is not a region, e.g. \"us-east-1\" or \"eu-central-1\"", sh.Region)
						v.bad[p] = true
					default:
						sh.Host = fmt.Sprintf(pr.Host, sh.Region)
					}
				} else if sh.Region != "" {
					v.errorf(k("region"), "has no use with preset %s", sh.Preset)
				}
				if sh.Host == "" && !pr.RegionHost {
					sh.Host = pr.Host
				}
				if sh.Username == "" && pr.Username != "" && !v.has(k("username")) {
					sh.Username = pr.Username
				}
				if !v.has(k("rate_limit")) {
					sh.RateLimit = pr.RateLimit
				}
			} else {
				v.errorf(k("preset"), "unknown preset %q: use %s", sh.Preset, strings.Join(presetNames, ", "))
			}
		} else if sh.Region != "" {
			v.errorf(k("region"), "has no use without a preset that has regions (ses)")
		}
		tlsOK := sh.TLS == "" || v.oneOf(k("tls"), sh.TLS, tlsModes)
		portSet := v.has(k("port"))
		if portSet && (sh.Port < 1 || sh.Port > 65535) {
			v.errorf(k("port"), "must be between 1 and 65535, not %d", sh.Port)
		}
		switch {
		case !tlsOK:
		case !portSet && sh.TLS == "" && preset != nil:
			sh.Port, sh.TLS = preset.Port, preset.TLS
		case !portSet && sh.TLS == "":
			sh.Port, sh.TLS = 587, "starttls"
		case sh.TLS == "" && sh.Port == 465:
			sh.TLS = "implicit"
		case sh.TLS == "":
			sh.TLS = "starttls"
		case !portSet:
			sh.Port = map[string]int{"implicit": 465, "starttls": 587, "none": 25}[sh.TLS]
		}
		switch {
		case sh.Host == "":
			v.errorf(p, "no host: set host, or a preset")
		case !isHost(sh.Host):
			if h, port, err := net.SplitHostPort(sh.Host); err == nil && isHost(h) && port != "" {
				v.errorf(k("host"), "%q includes a port: write it as port = %s", sh.Host, port)
			} else {
				v.errorf(k("host"), "%q is not a host name or IP address", sh.Host)
			}
		}
		if sh.Name == "" {
			sh.Name = sh.Host
		}
		if sh.Name != "" {
			if j, dup := names[sh.Name]; dup {
				key := p
				if v.has(k("name")) {
					key = k("name")
				}
				first := indexKey("smarthost", j)
				v.errorf(key, "name %q is already used by %s (line %d): give each smarthost a distinct name", sh.Name, first, c.lines.find(first))
			} else {
				names[sh.Name] = i + 1
			}
		}

		// TLS details.
		if sh.TLSMinVersion == "" {
			sh.TLSMinVersion = "1.2"
		} else {
			v.oneOf(k("tls_min_version"), sh.TLSMinVersion, tlsVersions)
		}
		if sh.TLSFingerprint != "" {
			if fp, ok := normalizeFingerprint(sh.TLSFingerprint); ok {
				sh.TLSFingerprint = fp
			} else {
				v.errorf(k("tls_fingerprint"), `must be the SHA-256 of the server's certificate: 64 hex digits, colons and "sha256:" optional`)
			}
			if sh.TLSCAFile != "" {
				v.errorf(k("tls_ca_file"), "cannot be used with tls_fingerprint, which replaces certificate chain verification")
			}
		}
		if sh.TLSServerName != "" && !isHostname(sh.TLSServerName) {
			v.errorf(k("tls_server_name"), "%q is not a host name", sh.TLSServerName)
		}
		v.absPath(k("tls_ca_file"), sh.TLSCAFile)
		v.absPath(k("tls_client_cert"), sh.TLSClientCert)
		v.absPath(k("tls_client_key"), sh.TLSClientKey)
		switch {
		case sh.TLSClientCert != "" && sh.TLSClientKey == "":
			v.errorf(k("tls_client_cert"), "needs tls_client_key as well")
		case sh.TLSClientKey != "" && sh.TLSClientCert == "":
			v.errorf(k("tls_client_key"), "needs tls_client_cert as well")
		}
		if sh.TLS == "none" {
			for _, key := range []string{"tls_ca_file", "tls_fingerprint", "tls_server_name", "tls_client_cert", "tls_client_key", "tls_min_version"} {
				if v.has(k(key)) {
					v.errorf(k(key), `has no use with tls = "none"`)
				}
			}
		}

		// Authentication. The password itself never goes into a message.
		var sources []string
		for _, key := range []string{"password", "password_file", "password_command"} {
			if v.has(k(key)) {
				sources = append(sources, key)
			}
		}
		if len(sources) > 1 {
			v.errorf(k(sources[len(sources)-1]), "only one of password, password_file and password_command may be set")
		}
		if v.has(k("password")) {
			if sh.Password == "" {
				v.errorf(k("password"), "must not be empty")
			} else if v.perm&0o077 != 0 {
				v.errorf(k("password"), "inline password in a file readable by group or others: chmod 600 %s, or use password_file", v.file)
			}
		}
		v.absPath(k("password_file"), sh.PasswordFile)
		if v.has(k("password_file")) && sh.PasswordFile == "" {
			v.errorf(k("password_file"), "must not be empty")
		}
		if v.has(k("password_command")) && (len(sh.PasswordCommand) == 0 || sh.PasswordCommand[0] == "") {
			v.errorf(k("password_command"), `must name a command and its arguments: ["program", "arg", …]`)
		}
		// OAuth: a [smarthost.oauth] table, or a preset whose provider
		// takes nothing else, when no password is given (oauth.go).
		useOAuth := v.has(k("oauth")) || preset != nil && preset.OAuthOnly && len(sources) == 0 && sh.Username != ""
		switch {
		case useOAuth && len(sources) > 0:
			v.errorf(k(sources[0]), "has no use with [smarthost.oauth]: relay obtains the access token itself")
		case useOAuth:
		case sh.Username != "" && len(sources) == 0 && preset != nil && preset.OAuth != "":
			v.errorf(k("username"), "needs password_file (an app password) or a [smarthost.oauth] table")
		case sh.Username != "" && len(sources) == 0:
			v.errorf(k("username"), "needs password_file, password_command or password")
		case sh.Username == "" && len(sources) > 0 && !v.bad[k("username")]:
			v.errorf(k(sources[0]), "needs username")
		}
		if preset != nil && !v.bad[k("username")] {
			// A bare login: qualified, refused or warned about (presets.go).
			login, problem, isError := preset.qualifyLogin(sh.Preset, sh.Username)
			if isError {
				v.errorf(k("username"), "%s", problem)
			} else {
				sh.Username, sh.loginNote = login, problem
			}
		}
		if sh.Auth != "" {
			sh.Auth = strings.ToLower(sh.Auth)
			if v.oneOf(k("auth"), sh.Auth, authMechs) && sh.Username == "" && !v.bad[k("username")] && !useOAuth {
				v.errorf(k("auth"), "needs username")
			}
		}
		v.oauth(p, sh, preset, useOAuth)

		// Senders and routing.
		for _, key := range []struct {
			name string
			val  string
		}{{"envelope_from", sh.EnvelopeFrom}, {"bounce_from", sh.BounceFrom}} {
			if key.val != "" && !isAddress(key.val) {
				v.errorf(k(key.name), "%q is not an address (local@domain)", key.val)
			}
		}
		for j, s := range sh.Senders {
			if !isSenderPattern(s) {
				v.errorf(indexKey(k("senders"), j+1), "%q is not a sender pattern: use %s", s, senderPatterns)
			}
		}
		for j, s := range sh.Recipients {
			if !isSenderPattern(s) {
				v.errorf(indexKey(k("recipients"), j+1), "%q is not a recipient pattern: use %s", s, senderPatterns)
			}
		}

		// The connection's own side: EHLO name, source address, family.
		v.heloName(k("helo_name"), sh.HeloName)
		familyOK := sh.IPFamily == "" || v.oneOf(k("ip_family"), sh.IPFamily, ipFamilies)
		if sh.SourceAddress != "" {
			a, err := netip.ParseAddr(sh.SourceAddress)
			switch {
			case err != nil || a.Zone() != "":
				v.errorf(k("source_address"), "%q is not an IP address of this host (such as 192.0.2.10 or 2001:db8::10)", sh.SourceAddress)
			case familyOK && sh.IPFamily == "ipv4" && !a.Unmap().Is4(), familyOK && sh.IPFamily == "ipv6" && a.Is4():
				v.errorf(k("source_address"), "%s is not an address of ip_family %q", sh.SourceAddress, sh.IPFamily)
			}
		}
		if sh.Proxy != "" {
			if _, err := ParseProxy(sh.Proxy); err != nil {
				v.errorf(k("proxy"), "%s", err)
			}
		} else {
			sh.Proxy = c.Proxy
		}
	}
}

// normalizeFingerprint accepts a SHA-256 in hex with optional colons and an
// optional "sha256:" prefix and gives it as lowercase hex.
func normalizeFingerprint(s string) (string, bool) {
	t := strings.TrimSpace(s)
	if len(t) >= 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	}
	t = strings.ToLower(strings.ReplaceAll(t, ":", ""))
	if b, err := hex.DecodeString(t); err != nil || len(b) != 32 {
		return "", false
	}
	return t, true
}

// isHostname reports whether s is a plausible DNS host name: labels of
// letters, digits and hyphens separated by dots.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// isHost reports whether s is a host name or an IP address (an IPv6 address
// possibly in brackets).
func isHost(s string) bool {
	if isHostname(s) {
		return true
	}
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return err == nil
}

// badAddrChar reports characters that never belong in a configured address.
func badAddrChar(r rune) bool {
	return r <= ' ' || r == 0x7f || r == '<' || r == '>'
}

// isAddress reports whether s looks like local@domain.
func isAddress(s string) bool {
	if strings.ContainsFunc(s, badAddrChar) {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	dom := s[at+1:]
	return !strings.Contains(dom, "..") && !strings.HasPrefix(dom, ".") && !strings.HasSuffix(dom, ".")
}

// isSenderPattern reports whether s is "*", "*@domain", "@domain" or
// "local@domain".
// heloName checks a name for EHLO: a host name, or an address literal
// such as [192.0.2.1] (RFC 5321 4.1.3).
func (v *validator) heloName(key, name string) {
	if name == "" {
		return
	}
	if lit, ok := strings.CutPrefix(name, "["); ok && strings.HasSuffix(lit, "]") {
		lit = strings.TrimPrefix(strings.TrimSuffix(lit, "]"), "IPv6:")
		if _, err := netip.ParseAddr(lit); err == nil {
			return
		}
	}
	if !isHostname(name) {
		v.errorf(key, "%q is not a host name or an address literal such as [192.0.2.1]", name)
	}
}

func isSenderPattern(s string) bool {
	if s == "*" {
		return true
	}
	if strings.ContainsFunc(s, badAddrChar) {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return false
	}
	local, dom := s[:at], s[at+1:]
	if local != "*" && strings.Contains(local, "*") || strings.Contains(dom, "*") {
		return false
	}
	if sub, ok := strings.CutPrefix(dom, "."); ok && (local == "" || local == "*") {
		dom = sub // "@.example.org": its subdomains
	}
	return dom != "" && !strings.Contains(dom, "@") && isAddress("x@"+dom)
}

// isFieldName reports whether s is a header field name: printable ASCII
// other than the colon (RFC 5322 section 3.6.8).
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// Proxy is a parsed proxy setting.
type Proxy struct {
	Network  string // "tcp" or "unix"
	Address  string // host:port, or the socket's path
	Username string // "" when none
	Password string
}

// String gives the proxy as written, with the password masked.
func (p *Proxy) String() string {
	var b strings.Builder
	b.WriteString("socks5://")
	if p.Username != "" || p.Password != "" {
		b.WriteString(url.PathEscape(p.Username))
		if p.Password != "" {
			b.WriteString(":xxx")
		}
		b.WriteByte('@')
	}
	if p.Network == "unix" {
		b.WriteString("unix:")
	}
	b.WriteString(p.Address)
	return b.String()
}

// ParseProxy parses "socks5://[user:password@]host:port" or
// "socks5://[user:password@]unix:/path/to/socket". User and password may be
// percent-encoded. Its errors show the value with the password masked.
func ParseProxy(s string) (*Proxy, error) {
	bad := func(why string) error {
		return fmt.Errorf("%q is not a proxy (%s): use \"socks5://[user:password@]host:port\" or \"socks5://unix:/path/to/socket\"", MaskProxy(s), why)
	}
	rest, ok := strings.CutPrefix(s, "socks5://")
	if !ok {
		return nil, bad(`only socks5:// is supported`)
	}
	p := &Proxy{Network: "tcp"}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, pass, _ := strings.Cut(rest[:at], ":")
		var err1, err2 error
		p.Username, err1 = url.PathUnescape(user)
		p.Password, err2 = url.PathUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, bad("bad %-escape in the credentials")
		}
		if p.Username == "" || len(p.Username) > 255 || len(p.Password) > 255 {
			return nil, bad("user name must have 1 to 255 bytes, password at most 255")
		}
		rest = rest[at+1:]
	}
	if path, ok := strings.CutPrefix(rest, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return nil, bad("the socket path must be absolute")
		}
		p.Network, p.Address = "unix", path
		return p, nil
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || host == "" {
		return nil, bad("expected host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, bad("bad port")
	}
	if !isHost(host) {
		return nil, bad("bad host")
	}
	p.Address = rest
	return p, nil
}

// MaskProxy replaces the password of a proxy URL (valid or not) with "xxx".
func MaskProxy(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if strings.Contains(s, "@") {
			return "xxx" // unparseable: show nothing that may be a secret
		}
		return s
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return s
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return s
	}
	return scheme + "://" + user + ":xxx" + rest[at:]
}

// listenAuth checks the listener's TLS and AUTH keys: each needs the one
// before it (listen_auth_networks needs listen_users, which needs
// listen_tls: a password never crosses the network in clear).
func (v *validator) listenAuth() {
	d := &v.c.Daemon
	switch {
	case d.ListenTLS == "" || d.ListenTLS == "self-signed":
		if d.ListenTLSKey != "" {
			v.errorf("daemon.listen_tls_key", `has no use without a certificate file in listen_tls`)
		}
	case !filepath.IsAbs(d.ListenTLS):
		v.errorf("daemon.listen_tls", `must be "self-signed" or the absolute path of a certificate (PEM), not %q`, d.ListenTLS)
	case d.ListenTLSKey == "":
		v.errorf("daemon.listen_tls", "names a certificate: its key goes in listen_tls_key")
	default:
		v.absPath("daemon.listen_tls_key", d.ListenTLSKey)
	}
	v.absPath("daemon.listen_users", d.ListenUsers)
	if d.ListenUsers != "" && d.ListenTLS == "" {
		v.errorf("daemon.listen_users", `needs listen_tls: AUTH is offered only after STARTTLS (listen_tls = "self-signed" will do)`)
	}
	for i, n := range d.ListenAuthNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			v.errorf(indexKey("daemon.listen_auth_networks", i+1), `%q is not a network in CIDR form, e.g. "203.0.113.0/24" or "0.0.0.0/0"`, n)
		}
	}
	if len(d.ListenAuthNetworks) > 0 && d.ListenUsers == "" {
		v.errorf("daemon.listen_auth_networks", "needs listen_users: its clients are served only once they have authenticated")
	}
}

// isAWSRegion accepts an AWS region name: us-east-1, eu-central-2,
// us-gov-west-1, ap-southeast-4.
func isAWSRegion(r string) bool {
	parts := strings.Split(r, "-")
	if len(parts) < 3 || len(parts) > 4 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for _, c := range p {
			last := i == len(parts)-1
			if last && (c < '0' || c > '9') || !last && (c < 'a' || c > 'z') {
				return false
			}
		}
	}
	return true
}
