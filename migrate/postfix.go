package migrate

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Postfix's main.cf (postconf(5)), or the output of postconf -n, which has
// the same form: "name = value", a line starting with white space
// continues the one before, "#" lines are comments, $name and ${name}
// expand. Lookup tables are read from their text source (hash:/etc/postfix/
// sasl_passwd reads /etc/postfix/sasl_passwd, as postmap does).

type pfParam struct {
	val  string
	line int
}

type postfix struct {
	r       *Result
	path    string
	params  map[string]pfParam
	order   []string
	handled map[string]bool // parameters a step of build took care of
}

// pfVarRE is compiled on first use: the package is linked into every
// sendmail run.
var pfVarRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\$(\{([a-z0-9_]+)\}|\(([a-z0-9_]+)\)|([a-z0-9_]+))`)
})

// expand replaces $name with the parameter's value (up to 10 deep);
// parameters the file does not set stay as they are.
func (p *postfix) expand(s string) string {
	for range 10 {
		re := pfVarRE()
		n := re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatch(m)
			name := sub[2] + sub[3] + sub[4]
			if v, ok := p.params[name]; ok {
				return v.val
			}
			return m
		})
		if n == s {
			break
		}
		s = n
	}
	return s
}

func (p *postfix) get(name string) (string, int, bool) {
	v, ok := p.params[name]
	return p.expand(v.val), v.line, ok
}

// pfNotNeeded: parameters relay has no use for, and why.
var pfNotNeeded = sync.OnceValue(pfNotNeededTable)

func pfNotNeededTable() map[string]string {
	return map[string]string{
		"biff":                                  "no local delivery (comsat)",
		"append_dot_mydomain":                   "relay qualifies bare names with domain only",
		"readme_directory":                      "Postfix's own files",
		"html_directory":                        "Postfix's own files",
		"manpage_directory":                     "Postfix's own files",
		"sample_directory":                      "Postfix's own files",
		"command_directory":                     "Postfix's own files",
		"daemon_directory":                      "Postfix's own files",
		"data_directory":                        "Postfix's own files",
		"meta_directory":                        "Postfix's own files",
		"shlib_directory":                       "Postfix's own files",
		"queue_directory":                       "relay has its own spool; Postfix's queue: postqueue -f before switching",
		"mail_owner":                            "relay's daemon runs as [daemon] user (relay)",
		"setgid_group":                          "relay's group is relay",
		"sendmail_path":                         "relay install links sendmail to relay",
		"newaliases_path":                       "relay install links newaliases to relay",
		"mailq_path":                            "relay install links mailq to relay",
		"compatibility_level":                   "Postfix's defaults between versions",
		"alias_database":                        "relay reads the alias file itself: no database to build",
		"mailbox_size_limit":                    "no local delivery",
		"mailbox_command":                       "no local delivery",
		"home_mailbox":                          "no local delivery",
		"recipient_delimiter":                   "no local delivery",
		"local_transport":                       "relay sends every message to the smarthost: nothing is delivered locally",
		"local_recipient_maps":                  "no local delivery",
		"relay_domains":                         "relay relays for its own host (and [daemon] listen_networks) only",
		"mynetworks":                            "relay takes mail by the sendmail command; SMTP clients only with [daemon] listen and listen_networks",
		"mynetworks_style":                      "see mynetworks",
		"mydomain":                              "used only where another parameter names $mydomain",
		"default_transport":                     "relay sends everything to its smarthosts",
		"relay_transport":                       "relay sends everything to its smarthosts",
		"bounce_queue_lifetime":                 "relay's bounces follow [queue] lifetime",
		"queue_run_delay":                       "relay's daemon retries each message on its own schedule (retry_min, retry_max)",
		"smtp_tls_session_cache_database":       "relay keeps no TLS session cache",
		"smtp_tls_session_cache_timeout":        "relay keeps no TLS session cache",
		"smtp_tls_loglevel":                     "relay probe -v and sendmail -v show the TLS handshake",
		"smtp_tls_note_starttls_offer":          "relay always requires TLS",
		"smtp_tls_protocols":                    "relay speaks TLS 1.2 or later (tls_min_version)",
		"smtp_tls_mandatory_protocols":          "relay speaks TLS 1.2 or later (tls_min_version)",
		"smtp_sasl_security_options":            "relay never logs in anonymously and sends a password only over TLS",
		"smtp_sasl_tls_security_options":        "relay never logs in anonymously and sends a password only over TLS",
		"smtputf8_enable":                       "relay passes SMTPUTF8 mail through when the smarthost offers it",
		"maillog_file":                          "relay logs through [log] to",
		"notify_classes":                        "relay reports failures to the sender (bounces)",
		"disable_vrfy_command":                  "Postfix's SMTP server",
		"inet_interfaces":                       "relay takes mail by the sendmail command; [daemon] listen opens an SMTP port",
		"tls_random_source":                     "Go's crypto/rand",
		"smtp_tls_fingerprint_digest":           "relay pins SHA-256 (tls_fingerprint)",
		"default_destination_concurrency_limit": "relay keeps [queue] max_connections per smarthost",
		"smtp_destination_concurrency_limit":    "relay keeps [queue] max_connections per smarthost",
	}
}

func importPostfix(path string) (*Result, error) {
	data, _, err := readSource(path)
	if err != nil {
		return nil, err
	}
	p := &postfix{r: &Result{}, path: path, params: map[string]pfParam{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	last := ""
	for ln := 1; sc.Scan(); ln++ {
		l := sc.Text()
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if last == "" {
				return nil, srcErr(path, ln, "a continuation line without a parameter before it")
			}
			v := p.params[last]
			v.val = strings.TrimSpace(v.val + " " + t)
			p.params[last] = v
			continue
		}
		name, val, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, srcErr(path, ln, "not a \"name = value\" line")
		}
		if _, dup := p.params[name]; !dup {
			p.order = append(p.order, name)
		}
		p.params[name] = pfParam{strings.TrimSpace(val), ln}
		last = name
	}
	if err := p.build(); err != nil {
		return nil, err
	}
	return p.r, nil
}

func (p *postfix) note(name string, st Status, to, why string) {
	v := p.params[name]
	label := name + " = " + v.val
	p.r.note(p.path, v.line, label, st, to, why)
}

// pfDuration reads a Postfix time value whose bare number is in unit.
func pfDuration(v string, unit byte) (int64, bool) {
	if v == "" {
		return 0, false
	}
	u := v[len(v)-1]
	num := v
	if u >= '0' && u <= '9' {
		u = unit
	} else {
		num = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	mult := map[byte]int64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}[u]
	if mult == 0 {
		return 0, false
	}
	return n * mult, true
}

// destination parses a relayhost entry: [host]:port, host:port, host.
func pfDestination(d string) (host string, port int, mx bool, err error) {
	port = 25
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return "", 0, false, fmt.Errorf("%q: no closing ]", d)
		}
		host, d = d[1:end], d[end+1:]
	} else {
		mx = true
		host, d, _ = strings.Cut(d, ":")
		if d != "" {
			d = ":" + d
		}
	}
	if d != "" {
		ps, ok := strings.CutPrefix(d, ":")
		n, e := strconv.Atoi(ps)
		if !ok || e != nil || n <= 0 || n > 65535 {
			return "", 0, false, fmt.Errorf("bad port in %q", d)
		}
		port = n
	}
	return host, port, mx, nil
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// build maps the parameters into p.r, one step per area in the order the
// report reads best; each step marks what it handled (done), and rest
// reports everything else, so that no parameter goes unmentioned.
func (p *postfix) build() error {
	p.handled = map[string]bool{}
	for _, step := range []func() error{p.smarthosts, p.tls, p.tlsFiles, p.sasl, p.names, p.rewriting, p.queue} {
		if err := step(); err != nil {
			return err
		}
	}
	p.rest()
	return nil
}

// done marks parameters as handled by a step of build.
func (p *postfix) done(names ...string) {
	for _, n := range names {
		p.handled[n] = true
	}
}

// smarthosts: relayhost, then smtp_fallback_relay, in order, after a
// smarthost per sender of sender_dependent_relayhost_maps.
func (p *postfix) smarthosts() error {
	r := p.r
	for _, param := range []string{"relayhost", "smtp_fallback_relay"} {
		v, _, ok := p.get(param)
		if !ok {
			continue
		}
		p.done(param)
		if v == "" {
			p.note(param, NotPossible, "", "no relayhost: Postfix delivers to each domain's MX itself; relay needs a smarthost (add a [[smarthost]])")
			continue
		}
		var tos, mx []string
		for _, d := range splitList(v) {
			host, port, isMX, err := pfDestination(d)
			if err != nil {
				return srcErr(p.path, p.params[param].line, "%s: %v", param, err)
			}
			r.Smarthosts = append(r.Smarthosts, &Smarthost{Host: host, Port: port})
			tos = append(tos, fmt.Sprintf("[[smarthost]] %d host = %q, port = %d", len(r.Smarthosts), host, port))
			if isMX {
				mx = append(mx, fmt.Sprintf("%s without brackets: Postfix looks up its MX records, relay connects to the host %s itself", d, host))
			}
		}
		p.note(param, Mapped, strings.Join(tos, "; "), strings.Join(append([]string{"tried in this order"}, mx...), "; "))
	}
	// Sender-dependent relay hosts: a smarthost per sender, first.
	var bySender []*Smarthost
	if v, _, ok := p.get("sender_dependent_relayhost_maps"); ok {
		p.done("sender_dependent_relayhost_maps")
		t, err := p.table("sender_dependent_relayhost_maps", v)
		if err != nil {
			return err
		}
		for _, e := range t {
			host, port, _, err := pfDestination(e.value)
			if err != nil {
				return srcErr(e.file, e.line, "%v", err)
			}
			sender := e.key
			if !strings.Contains(sender, "@") {
				r.note(e.file, e.line, e.key, NotPossible, "", "a bare local name: write the sender's full address in senders by hand")
				continue
			}
			sh := &Smarthost{Host: host, Port: port, Senders: []string{sender}}
			bySender = append(bySender, sh)
			r.note(e.file, e.line, e.key+" "+e.value, Mapped, fmt.Sprintf("[[smarthost]] host = %q, port = %d, senders = [%q]", host, port, sender), "")
		}
		p.note("sender_dependent_relayhost_maps", Mapped, "a [[smarthost]] with senders per entry, before the others", "")
	}
	r.Smarthosts = append(bySender, r.Smarthosts...)
	return nil
}

// tls: one TLS policy (smtp_tls_security_level and its legacy forms,
// smtp_tls_wrappermode) for every smarthost.
func (p *postfix) tls() error {
	r := p.r
	level := "none"
	if v, _, ok := p.get("smtp_tls_security_level"); ok {
		level = strings.ToLower(v)
		p.done("smtp_tls_security_level")
	} else if v, _, ok := p.get("smtp_enforce_tls"); ok && v == "yes" {
		level = "encrypt"
	} else if v, _, ok := p.get("smtp_use_tls"); ok && v == "yes" {
		level = "may"
	}
	for _, legacy := range []string{"smtp_use_tls", "smtp_enforce_tls"} {
		if _, _, ok := p.get(legacy); ok {
			p.done(legacy)
			if p.handled["smtp_tls_security_level"] {
				p.note(legacy, NotNeeded, "", "smtp_tls_security_level wins over it in Postfix")
			} else {
				p.note(legacy, Insecure, `tls = "starttls"`, "the obsolete form of smtp_tls_security_level = may/encrypt; see that")
			}
		}
	}
	wrapper := false
	if v, _, ok := p.get("smtp_tls_wrappermode"); ok {
		p.done("smtp_tls_wrappermode")
		wrapper = v == "yes"
		if wrapper {
			p.note("smtp_tls_wrappermode", Mapped, `tls = "implicit"`, "")
		} else {
			p.note("smtp_tls_wrappermode", NotNeeded, "", "no is Postfix's default")
		}
	}
	tlsMode := "starttls"
	if wrapper {
		tlsMode = "implicit"
	}
	switch level {
	case "verify", "secure":
		if p.handled["smtp_tls_security_level"] {
			p.note("smtp_tls_security_level", Mapped, fmt.Sprintf("tls = %q", tlsMode), "relay verifies the certificate and the host name")
		}
	case "dane", "dane-only":
		p.note("smtp_tls_security_level", NotPossible, fmt.Sprintf("tls = %q", tlsMode), "relay does not do DANE; it verifies the certificate against the CAs (or pin it with tls_fingerprint)")
	case "encrypt":
		if p.handled["smtp_tls_security_level"] {
			p.note("smtp_tls_security_level", Insecure, fmt.Sprintf("tls = %q", tlsMode), "encrypt does not verify the certificate; "+pinAdvice)
		}
	case "fingerprint":
		fp, _, _ := p.get("smtp_tls_fingerprint_cert_match")
		p.done("smtp_tls_fingerprint_cert_match")
		first := strings.ToLower(strings.ReplaceAll(firstOf(splitList(fp)), ":", ""))
		if len(first) == 64 {
			for _, sh := range r.Smarthosts {
				sh.TLSFingerprint = first
			}
			p.note("smtp_tls_security_level", Mapped, "tls_fingerprint", "")
			p.note("smtp_tls_fingerprint_cert_match", Mapped, "tls_fingerprint", "")
		} else {
			p.note("smtp_tls_security_level", NotPossible, "", "relay pins the SHA-256 fingerprint of the certificate: tls_fingerprint as relay probe prints it")
		}
	case "may", "none", "":
		if p.handled["smtp_tls_security_level"] {
			p.note("smtp_tls_security_level", Insecure, fmt.Sprintf("tls = %q", tlsMode), "Postfix would send in clear when TLS fails; "+starttlsAdvice)
		} else {
			r.note(p.path, 0, "smtp_tls_security_level (not set: none)", Insecure, fmt.Sprintf("tls = %q", tlsMode), "Postfix sends in clear by default; "+starttlsAdvice)
		}
	default:
		return srcErr(p.path, p.params["smtp_tls_security_level"].line, "smtp_tls_security_level: unknown level %q", level)
	}
	for _, sh := range r.Smarthosts {
		sh.TLS = tlsMode
	}
	return nil
}

// tlsFiles: the CA and client certificate files of every smarthost.
func (p *postfix) tlsFiles() error {
	r := p.r
	if v, _, ok := p.get("smtp_tls_CAfile"); ok {
		p.done("smtp_tls_CAfile")
		if v == "" || systemBundle(v) {
			p.note("smtp_tls_CAfile", NotNeeded, "", "the system's CA bundle, which relay uses by default")
		} else {
			for _, sh := range r.Smarthosts {
				sh.TLSCAFile = v
			}
			p.note("smtp_tls_CAfile", Mapped, "tls_ca_file", "")
		}
	}
	if v, _, ok := p.get("smtp_tls_CApath"); ok {
		p.done("smtp_tls_CApath")
		if v == "" || systemBundle(v) {
			p.note("smtp_tls_CApath", NotNeeded, "", "the system's CA certificates, which relay uses by default")
		} else {
			p.note("smtp_tls_CApath", NotPossible, "", "relay reads one PEM file: concatenate the certificates and name it in tls_ca_file")
		}
	}
	for _, c := range []struct{ name, to string }{{"smtp_tls_cert_file", "tls_client_cert"}, {"smtp_tls_key_file", "tls_client_key"}, {"smtp_tls_chain_files", "tls_client_cert and tls_client_key"}} {
		v, _, ok := p.get(c.name)
		if !ok {
			continue
		}
		p.done(c.name)
		if v == "" {
			p.note(c.name, NotNeeded, "", "empty: no client certificate")
			continue
		}
		for _, sh := range r.Smarthosts {
			switch c.name {
			case "smtp_tls_cert_file":
				sh.TLSClientCert = v
			case "smtp_tls_key_file":
				sh.TLSClientKey = v
			default:
				sh.TLSClientCert, sh.TLSClientKey = firstOf(splitList(v)), firstOf(splitList(v))
			}
		}
		p.note(c.name, Mapped, c.to, "")
	}
	for _, sh := range r.Smarthosts {
		if sh.TLSClientCert != "" && sh.TLSClientKey == "" {
			sh.TLSClientKey = sh.TLSClientCert // Postfix: the key may be in the certificate's file
		}
	}
	return nil
}

// sasl: the logins (smtp_sasl_*), per sender when Postfix's are.
func (p *postfix) sasl() error {
	r := p.r
	sasl := false
	if v, _, ok := p.get("smtp_sasl_auth_enable"); ok {
		p.done("smtp_sasl_auth_enable")
		sasl = v == "yes"
		if sasl {
			p.note("smtp_sasl_auth_enable", Mapped, "username and password_file of each smarthost", "")
		} else {
			p.note("smtp_sasl_auth_enable", NotNeeded, "", "no login: relay logs in only when username is set")
		}
	}
	senderAuth := false
	if v, _, ok := p.get("smtp_sender_dependent_authentication"); ok {
		p.done("smtp_sender_dependent_authentication")
		senderAuth = v == "yes"
		p.note("smtp_sender_dependent_authentication", Mapped, "the login of each sender's [[smarthost]]", "")
	}
	if v, _, ok := p.get("smtp_sasl_password_maps"); ok {
		p.done("smtp_sasl_password_maps")
		if !sasl {
			p.note("smtp_sasl_password_maps", NotNeeded, "", "smtp_sasl_auth_enable is not yes: Postfix does not log in")
		} else if err := p.passwords(v, senderAuth); err != nil {
			return err
		}
	}
	if v, _, ok := p.get("smtp_sasl_mechanism_filter"); ok {
		p.done("smtp_sasl_mechanism_filter")
		mechs := splitList(strings.ToLower(v))
		if len(mechs) == 1 && strings.Contains(" plain login cram-md5 scram-sha-256 ", " "+mechs[0]+" ") {
			for _, sh := range r.Smarthosts {
				sh.Auth = mechs[0]
			}
			p.note("smtp_sasl_mechanism_filter", Mapped, "auth = "+quote(mechs[0]), "")
		} else {
			p.note("smtp_sasl_mechanism_filter", NotNeeded, "", "relay picks the strongest mechanism offered (auth forces one)")
		}
	}
	return nil
}

// names: the HELO name, the domain, the address family and source address.
func (p *postfix) names() error {
	r := p.r
	if v, _, ok := p.get("smtp_helo_name"); ok {
		p.done("smtp_helo_name")
		r.HeloName = v
		p.note("smtp_helo_name", Mapped, "helo_name", "")
	}
	if v, _, ok := p.get("myhostname"); ok {
		p.done("myhostname")
		if r.HeloName == "" && !strings.Contains(v, "$") {
			r.HeloName = v
			p.note("myhostname", Mapped, "helo_name", "Postfix's smtp_helo_name is $myhostname")
		} else {
			p.note("myhostname", NotNeeded, "", "smtp_helo_name is set")
		}
	}
	if v, _, ok := p.get("myorigin"); ok {
		p.done("myorigin")
		switch {
		case v == "/etc/mailname":
			p.note("myorigin", NotNeeded, "", "relay reads /etc/mailname itself when domain is not set")
		case strings.HasPrefix(v, "/"):
			p.note("myorigin", NotPossible, "", "relay reads /etc/mailname only: set domain to the name in "+v)
		case strings.Contains(v, "$"):
			p.note("myorigin", NotPossible, "", "it names a parameter this file does not set: set domain by hand")
		default:
			r.Domain = v
			p.note("myorigin", Mapped, "domain", "")
		}
	}
	if v, _, ok := p.get("mydestination"); ok {
		p.done("mydestination")
		if strings.TrimSpace(v) == "" {
			p.note("mydestination", NotNeeded, "", "a null client delivers nothing locally, nor does relay")
		} else {
			p.note("mydestination", NotPossible, "", "relay delivers nothing locally: local names go through the aliases to the smarthost")
		}
	}
	if v, _, ok := p.get("inet_protocols"); ok {
		p.done("inet_protocols")
		switch v {
		case "ipv4", "ipv6":
			for _, sh := range r.Smarthosts {
				sh.IPFamily = v
			}
			p.note("inet_protocols", Mapped, "ip_family = "+quote(v), "")
		default:
			p.note("inet_protocols", NotNeeded, "", "relay connects over IPv4 or IPv6 (ip_family = \"any\")")
		}
	}
	if v, _, ok := p.get("smtp_bind_address"); ok && v != "" {
		p.done("smtp_bind_address")
		for _, sh := range r.Smarthosts {
			sh.SourceAddress = v
		}
		p.note("smtp_bind_address", Mapped, "source_address", "")
	}
	return nil
}

// rewriting: the alias file and the sender maps.
func (p *postfix) rewriting() error {
	r := p.r
	if v, _, ok := p.get("alias_maps"); ok {
		p.done("alias_maps")
		maps := splitList(v)
		if len(maps) == 0 {
			p.note("alias_maps", NotNeeded, "", "empty")
		} else if typ, f, _ := strings.Cut(maps[0], ":"); textTable(typ) {
			r.Aliases = f
			why := ""
			if len(maps) > 1 {
				why = "relay reads one alias file: merge the others into it"
			}
			p.note("alias_maps", Mapped, "[rewrite] aliases = "+quote(f), why)
		} else {
			p.note("alias_maps", NotPossible, "", typ+" tables cannot be read: give relay a text alias file")
		}
	}
	for _, m := range []string{"sender_canonical_maps", "canonical_maps", "smtp_generic_maps"} {
		v, _, ok := p.get(m)
		if !ok {
			continue
		}
		p.done(m)
		t, err := p.table(m, v)
		if err != nil {
			return err
		}
		for _, e := range t {
			key := e.key
			if !validSenderMapKey(key) || strings.ContainsAny(e.value, " \t,") {
				r.note(e.file, e.line, e.key+" "+e.value, NotPossible, "", "not a key or value a relay sender map takes (address, name, @domain)")
				continue
			}
			r.addSender(key, e.value)
			r.note(e.file, e.line, e.key+" "+e.value, Mapped, "[rewrite] sender_map: "+key+": "+e.value, "")
		}
		r.FromHeader = "rewrite"
		why := "the header From follows the mapped envelope sender"
		if m != "sender_canonical_maps" {
			why += "; relay rewrites senders only: recipients and other headers stay as they are"
		}
		p.note(m, Mapped, `[rewrite] sender_map and from_header = "rewrite"`, why)
	}
	if _, _, ok := p.get("recipient_canonical_maps"); ok {
		p.done("recipient_canonical_maps")
		p.note("recipient_canonical_maps", NotPossible, "", "relay rewrites local recipients with its alias file only: write the entries there")
	}
	return nil
}

// queue: retry times, lifetime, delay warnings and size limits.
func (p *postfix) queue() error {
	r := p.r
	for _, q := range []struct {
		name string
		unit byte
		set  *string
		to   string
	}{
		{"maximal_queue_lifetime", 'd', &r.Lifetime, "lifetime"},
		{"minimal_backoff_time", 's', &r.RetryMin, "retry_min"},
		{"maximal_backoff_time", 's', &r.RetryMax, "retry_max"},
		{"delay_warning_time", 'h', &r.WarnAfter, "warn_after"},
	} {
		v, _, ok := p.get(q.name)
		if !ok {
			continue
		}
		p.done(q.name)
		n, good := pfDuration(v, q.unit)
		if !good {
			return srcErr(p.path, p.params[q.name].line, "%s: not a time %q", q.name, v)
		}
		if n == 0 && q.name == "delay_warning_time" {
			p.note(q.name, NotNeeded, "", "0: no delay warnings, relay's default")
			continue
		}
		*q.set = duration(n)
		p.note(q.name, Mapped, fmt.Sprintf("[queue] %s = %q", q.to, *q.set), "")
	}
	for _, s := range []struct{ name, to string }{{"message_size_limit", "max_message_size"}, {"header_size_limit", "header_size_limit"}} {
		v, _, ok := p.get(s.name)
		if !ok {
			continue
		}
		p.done(s.name)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return srcErr(p.path, p.params[s.name].line, "%s: not a number of bytes %q", s.name, v)
		}
		if n == 0 {
			p.note(s.name, NotPossible, "", "no limit: relay always has one; set max_message_size large")
			continue
		}
		val := strconv.FormatInt(n, 10)
		if s.name == "message_size_limit" {
			r.MaxMessageSize = val
		} else {
			r.HeaderSizeLimit = val
		}
		p.note(s.name, Mapped, s.to+" = "+val, "")
	}
	return nil
}

// rest: every parameter no step handled, accounted for, never dropped.
func (p *postfix) rest() {
	for _, name := range p.order {
		if p.handled[name] {
			continue
		}
		switch {
		case pfNotNeeded()[name] != "":
			p.note(name, NotNeeded, "", pfNotNeeded()[name])
		case strings.HasPrefix(name, "smtpd_") || strings.HasPrefix(name, "postscreen_"):
			p.note(name, NotNeeded, "", "Postfix's SMTP server: relay takes mail by the sendmail command ([daemon] listen opens an SMTP port)")
		case strings.HasPrefix(name, "virtual_") || strings.HasPrefix(name, "local_") || strings.HasPrefix(name, "mailbox_"):
			p.note(name, NotNeeded, "", "no local or virtual delivery")
		case strings.HasPrefix(name, "lmtp_"):
			p.note(name, NotNeeded, "", "relay speaks SMTP to its smarthosts only")
		case strings.HasPrefix(name, "smtp_tls_") || strings.HasPrefix(name, "tls_"):
			p.note(name, NotPossible, "", "relay's TLS settings are tls, tls_ca_file, tls_fingerprint, tls_min_version per [[smarthost]]: set the equivalent by hand")
		default:
			p.note(name, Unknown, "", "")
		}
	}
}
