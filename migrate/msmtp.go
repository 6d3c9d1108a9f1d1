package migrate

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// msmtp's configuration (msmtp(1), "Configuration files"): one command a
// line, "key value"; `defaults` starts settings every later account
// inherits, `account NAME [: PARENT, ...]` an account that inherits
// defaults, then each parent's settings in order, then its own;
// `account default : NAME` makes NAME the default. A value may be quoted.

type msmtpSetting struct {
	value string
	line  int
}

type msmtpAccount struct {
	name string
	line int
	set  map[string]msmtpSetting
}

func (a *msmtpAccount) get(k string) (string, bool) {
	s, ok := a.set[k]
	return s.value, ok
}

// msmtpKeys: what each key becomes; keys decided by value are handled in
// msmtpNote.
var msmtpKeys = sync.OnceValue(msmtpKeyTable)

type msmtpKey = struct {
	st     Status
	to     string
	why    string
	secret bool
}

func msmtpKeyTable() map[string]msmtpKey {
	return map[string]msmtpKey{
		"host":                    {Mapped, "host", "", false},
		"port":                    {Mapped, "port", "", false},
		"user":                    {Mapped, "username", "", false},
		"password":                {Mapped, "password_file", "the password went to a secret file", true},
		"passwordeval":            {Mapped, "password_command", `run as ["/bin/sh", "-c", COMMAND]`, false},
		"tls_key_file":            {Mapped, "tls_client_key", "", false},
		"tls_cert_file":           {Mapped, "tls_client_cert", "", false},
		"tls_host_override":       {Mapped, "tls_server_name", "", false},
		"source_ip":               {Mapped, "source_address", "", false},
		"proxy_host":              {Mapped, "proxy", `socks5://HOST:PORT`, false},
		"proxy_port":              {Mapped, "proxy", `socks5://HOST:PORT`, false},
		"domain":                  {Mapped, "helo_name", "", false},
		"maildomain":              {Mapped, "domain", "bare local names are qualified with it", false},
		"tls_crl_file":            {NotPossible, "", "relay does not read CRLs; pin the certificate with tls_fingerprint or name a CA in tls_ca_file", false},
		"tls_priorities":          {NotPossible, "", "relay uses Go's TLS cipher suites; tls_min_version sets the lowest version", false},
		"tls_min_dh_prime_bits":   {NotNeeded, "", "relay does not use finite-field Diffie-Hellman", false},
		"tls_force_sslv3":         {Insecure, "", "SSLv3 is broken; relay speaks TLS 1.2 or later (tls_min_version)", false},
		"allow_from_override":     {NotNeeded, "", "sendmail -f is honoured; sender_login_map restricts who may use it", false},
		"set_date_header":         {NotNeeded, "", "relay adds a missing Date header", false},
		"add_missing_date_header": {NotNeeded, "", "relay adds a missing Date header", false},
		"add_missing_from_header": {NotNeeded, "", "relay adds a missing From header", false},
		"undisclosed_recipients":  {NotPossible, "", "relay keeps the To and Cc headers; write the recipients as Bcc instead", false},
		"dsn_notify":              {NotPossible, "", "relay has no default DSN request; give sendmail -N per message", false},
		"dsn_return":              {NotPossible, "", "relay has no default DSN request; give sendmail -R per message", false},
		"timeout":                 {NotNeeded, "", "relay's SMTP timeouts are fixed (RFC 5321 section 4.5.3.2)", false},
		"logfile_time_format":     {NotNeeded, "", "relay's log lines carry their own time stamp", false},
		"ntlmdomain":              {NotPossible, "", "relay has no NTLM; use plain, login or scram-sha-256 over TLS", false},
		"socket":                  {NotPossible, "", "relay connects over TCP (or a SOCKS5 proxy, proxy = \"socks5://unix:/PATH\")", false},
		"eval":                    {NotPossible, "", "a configuration computed at run time: write the resulting settings by hand", false},
	}
}

func importMsmtp(path string) (*Result, error) {
	data, perm, err := readSource(path)
	if err != nil {
		return nil, err
	}
	r := &Result{}
	var (
		accounts  []*msmtpAccount
		byName    = map[string]*msmtpAccount{}
		defaults  = map[string]msmtpSetting{}
		cur       map[string]msmtpSetting // where the next setting goes
		section   string                  // whose settings they are, for the report
		defaultOf string                  // the account "account default : NAME" names
		aliasLine int                     // its line
		aliasOwn  bool                    // lines of its own follow it
		curAcc    *msmtpAccount
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var key, val string
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, val = line[:i], strings.TrimSpace(line[i+1:])
		} else {
			key, val = line, ""
		}
		val = unquote(val)
		switch key {
		case "defaults":
			cur, curAcc, section = defaults, nil, "every [[smarthost]]"
			r.note(path, ln, "defaults", Mapped, "every [[smarthost]] it applies to", "")
			continue
		case "account":
			name, parents, hasParents := strings.Cut(val, ":")
			name = strings.TrimSpace(name)
			if name == "" {
				return nil, srcErr(path, ln, "account without a name")
			}
			if byName[name] != nil {
				return nil, srcErr(path, ln, "account %q defined twice", name)
			}
			acc := &msmtpAccount{name: name, line: ln, set: map[string]msmtpSetting{}}
			for k, v := range defaults {
				acc.set[k] = v
			}
			if hasParents {
				for _, p := range strings.Split(parents, ",") {
					p = strings.TrimSpace(p)
					pa := byName[p]
					if pa == nil {
						return nil, srcErr(path, ln, "account %q inherits from %q, which is not defined before it", name, p)
					}
					for k, v := range pa.set {
						acc.set[k] = v
					}
				}
			}
			accounts = append(accounts, acc)
			byName[name] = acc
			cur, curAcc, section = acc.set, acc, fmt.Sprintf("smarthost %q", name)
			if p := strings.TrimSpace(parents); name == "default" && p != "" && !strings.Contains(p, ",") {
				// "account default : NAME": NAME is the default. Unless
				// lines of its own follow, it is only that choice.
				defaultOf, aliasLine = p, ln
				section = fmt.Sprintf("smarthost %q", "default")
				r.note(path, ln, "account default : "+p, Mapped, fmt.Sprintf("smarthost %q first, without senders (it takes every sender no other account claims)", p), "")
				continue
			}
			r.note(path, ln, "account "+name, Mapped, fmt.Sprintf("[[smarthost]] name = %q", name), "")
			continue
		}
		if cur == nil {
			return nil, srcErr(path, ln, "%q before the first account or defaults line", key)
		}
		n := len(r.Notes)
		if err := r.msmtpNote(path, ln, key, val); err != nil {
			return nil, err
		}
		if perSmarthost()[key] {
			for i := n; i < len(r.Notes); i++ {
				if r.Notes[i].To != "" {
					r.Notes[i].To = section + ": " + r.Notes[i].To
				}
			}
		}
		cur[key] = msmtpSetting{value: val, line: ln}
		if curAcc != nil && curAcc.line == aliasLine {
			aliasOwn = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, srcErr(path, 0, "%v", err)
	}

	// The default account first: it serves every sender no other claims.
	def := byName["default"]
	if defaultOf != "" && !aliasOwn {
		// Only the choice: NAME itself is the default, not a copy of it.
		i := slices.Index(accounts, def)
		accounts = slices.Delete(accounts, i, i+1)
		def = byName[defaultOf]
	} else if defaultOf != "" {
		for i := range r.Notes {
			if n := &r.Notes[i]; n.File == path && n.Line == aliasLine {
				n.To = fmt.Sprintf("[[smarthost]] name = \"default\", first, without senders: %s's settings and its own", defaultOf)
			}
		}
	}
	if def != nil {
		i := slices.Index(accounts, def)
		accounts = append([]*msmtpAccount{def}, slices.Delete(accounts, i, i+1)...)
	}
	for _, acc := range accounts {
		if _, ok := acc.get("host"); !ok {
			r.note(path, acc.line, "account "+acc.name, NotNeeded, "", "it has no host (a template other accounts inherit from)")
			continue
		}
		sh, err := r.msmtpSmarthost(path, perm, acc, acc == def)
		if err != nil {
			return nil, err
		}
		r.Smarthosts = append(r.Smarthosts, sh)
	}
	if def == nil && len(r.Smarthosts) > 0 {
		r.note(path, 0, "(default account)", NotNeeded, "", "no account is the default: msmtp needs -a or a matching -f; relay routes by senders and tries the tables in order")
	}
	return r, nil
}

// perSmarthost are the keys of one account's [[smarthost]] table.
var perSmarthost = sync.OnceValue(perSmarthostTable)

func perSmarthostTable() map[string]bool {
	return map[string]bool{"host": true, "port": true, "user": true, "password": true, "passwordeval": true,
		"tls": true, "tls_starttls": true, "tls_trust_file": true, "tls_fingerprint": true, "tls_key_file": true,
		"tls_cert_file": true, "tls_host_override": true, "source_ip": true, "proxy_host": true, "proxy_port": true,
		"domain": true, "auth": true, "from": true}
}

// msmtpNote accounts for one setting line.
func (r *Result) msmtpNote(path string, ln int, key, val string) error {
	bad := func() error { return srcErr(path, ln, "%s: invalid value %q", key, val) }
	if _, err := strconv.Atoi(val); key == "port" && err != nil {
		return bad()
	}
	if k, ok := msmtpKeys()[key]; ok {
		label := key
		if !k.secret {
			label = key + " " + val
		}
		r.note(path, ln, strings.TrimSpace(label), k.st, k.to, k.why)
		return nil
	}
	switch key {
	case "tls", "tls_starttls", "tls_certcheck", "auto_from", "remove_bcc_headers", "keepbcc":
		on, ok := onOff(val)
		if !ok {
			return bad()
		}
		label := key + " " + val
		switch {
		case key == "tls" && on:
			r.note(path, ln, label, Mapped, `tls = "implicit" or "starttls" (with tls_starttls)`, "")
		case key == "tls":
			r.note(path, ln, label, Insecure, `tls = "starttls"`, starttlsAdvice)
		case key == "tls_starttls":
			r.note(path, ln, label, Mapped, map[bool]string{true: `tls = "starttls"`, false: `tls = "implicit"`}[on], "")
		case key == "tls_certcheck" && on:
			r.note(path, ln, label, NotNeeded, "", "relay always verifies the certificate")
		case key == "tls_certcheck":
			r.note(path, ln, label, Insecure, "", pinAdvice)
		case key == "auto_from" && on:
			r.note(path, ln, label, Mapped, "domain (from maildomain)", "the envelope sender becomes USER@maildomain, as relay qualifies a local user's address with domain")
		case key == "auto_from":
			r.note(path, ln, label, NotNeeded, "", "off is msmtp's default")
		case key == "remove_bcc_headers" && on, key == "keepbcc" && !on:
			r.note(path, ln, label, NotNeeded, "", "relay always removes Bcc")
		default:
			r.note(path, ln, label, NotPossible, "", "relay always removes the Bcc header (the recipients stay in the envelope)")
		}
	case "tls_trust_file":
		if systemBundle(val) {
			r.note(path, ln, key+" "+val, NotNeeded, "", "the system's CA bundle, which relay uses by default")
		} else {
			r.note(path, ln, key+" "+val, Mapped, "tls_ca_file", "")
		}
	case "tls_fingerprint":
		if len(strings.ReplaceAll(val, ":", "")) != 64 {
			r.note(path, ln, key+" "+val, NotPossible, "", "relay pins SHA-256 fingerprints only: tls_fingerprint as relay probe prints it")
		} else {
			r.note(path, ln, key+" "+val, Mapped, "tls_fingerprint", "")
		}
	case "auth":
		switch a := strings.ToLower(val); a {
		case "", "on":
			r.note(path, ln, key+" "+val, Mapped, "username and password (relay picks the strongest mechanism offered)", "")
		case "off":
			r.note(path, ln, key+" "+val, NotNeeded, "", "relay authenticates only when username is set")
		case "plain", "login", "cram-md5", "scram-sha-256", "xoauth2", "oauthbearer":
			r.note(path, ln, key+" "+val, Mapped, "auth = "+quote(a), "")
		default:
			r.note(path, ln, key+" "+val, NotPossible, "", "relay does not speak "+val+": leave auth unset (plain, login, cram-md5, scram-sha-256 over TLS)")
		}
	case "from":
		r.note(path, ln, key+" "+val, Mapped, "envelope_from of the default account, senders of the others", "")
	case "set_from_header":
		switch strings.ToLower(val) {
		case "auto", "":
			r.note(path, ln, key+" "+val, NotNeeded, "", "relay adds a missing From header")
		case "on":
			r.FromHeader = "rewrite"
			r.note(path, ln, key+" "+val, Mapped, `[rewrite] from_header = "rewrite"`, "")
		default:
			r.note(path, ln, key+" "+val, NotPossible, "", "relay always adds a missing From header")
		}
	case "protocol":
		if strings.ToLower(val) == "smtp" {
			r.note(path, ln, key+" "+val, NotNeeded, "", "relay speaks SMTP")
		} else {
			r.note(path, ln, key+" "+val, NotPossible, "", "relay speaks SMTP only; submit to an SMTP port of the server")
		}
	case "logfile":
		if strings.HasPrefix(val, "/") {
			r.LogTo = val
			r.note(path, ln, key+" "+val, Mapped, "[log] to = "+quote(val), "relay's log lines differ from msmtp's")
		} else {
			r.note(path, ln, key+" "+val, NotNeeded, "", `relay logs to standard error by default; [log] to = "syslog" or a file`)
		}
	case "syslog":
		if on, ok := onOff(val); ok && !on {
			r.note(path, ln, key+" "+val, NotNeeded, "", "off is msmtp's default")
		} else {
			r.LogTo = "syslog"
			r.note(path, ln, key+" "+val, Mapped, `[log] to = "syslog"`, "facility mail")
		}
	case "aliases":
		if err := r.msmtpAliases(path, ln, val); err != nil {
			return err
		}
	default:
		r.note(path, ln, key+" "+val, Unknown, "", "")
	}
	return nil
}

// msmtpAliases reads msmtp's alias file: sendmail's format, where the
// name "default" catches the names without an entry (relay's "*").
func (r *Result) msmtpAliases(path string, ln int, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		r.note(path, ln, "aliases "+file, Mapped, "[rewrite] aliases = "+quote(file), "it cannot be read now ("+pathErr(err).Error()+"): relay check will say")
		r.Aliases = file
		return nil
	}
	var es []Entry
	hasDefault := false
	for i, l := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		name, vals, ok := strings.Cut(t, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return srcErr(file, i+1, "not an alias line (name: address, ...)")
		}
		name = strings.TrimSpace(name)
		if name == "default" {
			name, hasDefault = "*", true
		}
		var vs []string
		for _, v := range strings.Split(vals, ",") {
			if v = strings.TrimSpace(v); v != "" {
				vs = append(vs, v)
			}
		}
		es = append(es, Entry{Name: name, Values: vs})
	}
	if !hasDefault {
		r.Aliases = file
		r.note(path, ln, "aliases "+file, Mapped, "[rewrite] aliases = "+quote(file), "the same format")
		return nil
	}
	for _, e := range es {
		r.addAlias(e.Name, e.Values...)
	}
	r.note(path, ln, "aliases "+file, Mapped, "[rewrite] aliases (a converted copy)", `msmtp's "default" entry is relay's "*"`)
	return nil
}

// msmtpSmarthost builds the table of one account.
func (r *Result) msmtpSmarthost(path string, perm fs.FileMode, acc *msmtpAccount, isDefault bool) (*Smarthost, error) {
	sh := &Smarthost{Name: acc.name}
	sh.Host, _ = acc.get("host")
	tls := false
	if v, ok := acc.get("tls"); ok {
		tls, _ = onOff(v)
	}
	starttls := true
	if v, ok := acc.get("tls_starttls"); ok {
		starttls, _ = onOff(v)
	}
	switch {
	case tls && !starttls:
		sh.TLS, sh.Port = "implicit", 465
	default:
		sh.TLS, sh.Port = "starttls", 25 // without tls: made mandatory (noted)
	}
	if v, ok := acc.get("port"); ok {
		sh.Port, _ = strconv.Atoi(v)
	}
	if v, ok := acc.get("tls_trust_file"); ok && !systemBundle(v) {
		sh.TLSCAFile = v
	}
	if v, ok := acc.get("tls_fingerprint"); ok && len(strings.ReplaceAll(v, ":", "")) == 64 {
		// msmtp: a fingerprint replaces the trust file; so in relay.
		sh.TLSFingerprint = strings.ToLower(strings.ReplaceAll(v, ":", ""))
		sh.TLSCAFile = ""
	}
	sh.TLSServerName, _ = acc.get("tls_host_override")
	sh.TLSClientCert, _ = acc.get("tls_cert_file")
	sh.TLSClientKey, _ = acc.get("tls_key_file")
	sh.SourceAddress, _ = acc.get("source_ip")
	sh.HeloName, _ = acc.get("domain")
	if ph, ok := acc.get("proxy_host"); ok {
		pp, _ := acc.get("proxy_port")
		if pp == "" {
			pp = "1080"
		}
		sh.Proxy = "socks5://" + ph + ":" + pp
	}
	auth := ""
	if v, ok := acc.get("auth"); ok {
		auth = strings.ToLower(v)
	}
	if auth != "off" {
		sh.Username, _ = acc.get("user")
		// Of an inherited and an own way to the password, the one
		// written later counts.
		pw, hasPw := acc.set["password"]
		ev, hasEv := acc.set["passwordeval"]
		switch {
		case hasEv && (!hasPw || ev.line > pw.line):
			sh.PasswordCommand = []string{"/bin/sh", "-c", ev.value}
		case hasPw:
			sh.Password = pw.value
			r.exposedNote(path, perm)
		}
		switch auth {
		case "plain", "login", "cram-md5", "scram-sha-256", "xoauth2", "oauthbearer":
			sh.Auth = auth
		}
	}
	autoFrom := false
	if v, ok := acc.get("auto_from"); ok {
		autoFrom, _ = onOff(v)
	}
	if md, ok := acc.get("maildomain"); ok && autoFrom && isDefault {
		r.Domain = md
	}
	if autoFrom {
		if f, ok := acc.set["from"]; ok {
			for i := range r.Notes {
				if n := &r.Notes[i]; n.File == path && n.Line == f.line {
					n.Status, n.To, n.Why = NotNeeded, "", "auto_from on: msmtp makes the envelope sender from the user and maildomain instead"
				}
			}
		}
	}
	if from, ok := acc.get("from"); ok && !autoFrom {
		switch {
		case isDefault && !strings.Contains(from, "*"):
			sh.EnvelopeFrom = from
		case !isDefault:
			p := from
			if strings.HasPrefix(p, "*@") {
				p = p[1:]
			}
			sh.Senders = []string{p}
		}
	}
	return sh, nil
}
