package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// nullmailer's configuration is a directory of one-value files
// (nullmailer(7)); remotes has one server a line, "host protocol
// [--option[=value]]..." (nullmailer-send(8), nullmailer-smtp(8)), tried
// in order.

// nullmailerFiles: the control files nullmailer reads, and what they become.
var nullmailerFiles = []string{"remotes", "adminaddr", "allmailfrom", "defaultdomain", "defaulthost", "me", "helohost", "idhost",
	"pausetime", "maxpause", "queuelifetime", "sendtimeout"}

func importNullmailer(dir string) (*Result, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		_, _, err := readSource(dir)
		return nil, err
	}
	if !fi.IsDir() {
		// A remotes file named directly: its directory is the rest.
		dir = filepath.Dir(dir)
	}
	r := &Result{}
	read := func(name string) (string, int, bool, error) {
		p := filepath.Join(dir, name)
		b, _, err := readSource(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		// The first non-empty, non-comment line is the value.
		for i, l := range strings.Split(string(b), "\n") {
			if t := strings.TrimSpace(l); t != "" && t[0] != '#' {
				return t, i + 1, true, nil
			}
		}
		return "", 0, true, nil
	}
	if err := r.nullmailerRemotes(filepath.Join(dir, "remotes")); err != nil {
		return nil, err
	}
	vals := map[string]string{}
	for _, name := range nullmailerFiles[1:] {
		v, ln, ok, err := read(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		vals[name] = v
		p := filepath.Join(dir, name)
		label := name + " " + v
		seconds := func(key string, set *string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return srcErr(p, ln, "%s: not a number of seconds: %q", name, v)
			}
			*set = duration(n)
			r.note(p, ln, label, Mapped, fmt.Sprintf("[queue] %s = %q", key, *set), "")
			return nil
		}
		switch name {
		case "adminaddr":
			var addrs []string
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					addrs = append(addrs, a)
				}
			}
			r.addAlias("*", addrs...)
			r.note(p, ln, label, Mapped, "[rewrite] aliases: *: "+strings.Join(addrs, ", "), "every local recipient goes there, as with nullmailer")
		case "allmailfrom":
			r.addSender("*", v)
			r.note(p, ln, label, Mapped, "[rewrite] sender_map: *: "+v, "")
		case "defaulthost":
			r.Domain = v
			r.note(p, ln, label, Mapped, "domain", "bare local names are qualified with it")
		case "defaultdomain":
			r.note(p, ln, label, NotPossible, "", "relay does not complete host names without a dot; write full domains (domain qualifies bare local names)")
		case "me":
			r.note(p, ln, label, Mapped, "helo_name and domain where helohost and defaulthost are not set", "")
		case "helohost":
			r.HeloName = v
			r.note(p, ln, label, Mapped, "helo_name", "")
		case "idhost":
			r.note(p, ln, label, NotNeeded, "", "relay makes the Message-ID of a message without one from domain")
		case "pausetime":
			if err := seconds("retry_min", &r.RetryMin); err != nil {
				return nil, err
			}
		case "maxpause":
			if err := seconds("retry_max", &r.RetryMax); err != nil {
				return nil, err
			}
		case "queuelifetime":
			if err := seconds("lifetime", &r.Lifetime); err != nil {
				return nil, err
			}
		case "sendtimeout":
			r.note(p, ln, label, NotNeeded, "", "relay's SMTP timeouts are fixed (RFC 5321 section 4.5.3.2)")
		}
	}
	if r.Domain == "" && vals["me"] != "" {
		r.Domain = vals["me"]
	}
	if r.HeloName == "" && vals["me"] != "" {
		r.HeloName = vals["me"]
	}
	// nullmailer's defaults differ from relay's: carry them over.
	if _, ok := vals["pausetime"]; !ok {
		r.RetryMin = duration(60)
		r.note(filepath.Join(dir, "pausetime"), 0, "pausetime (not set: 60)", Mapped, `[queue] retry_min = "1m"`, "nullmailer's default")
	}
	if _, ok := vals["maxpause"]; !ok {
		r.RetryMax = duration(86400)
		r.note(filepath.Join(dir, "maxpause"), 0, "maxpause (not set: 86400)", Mapped, `[queue] retry_max = "1d"`, "nullmailer's default")
	}
	if _, ok := vals["queuelifetime"]; !ok {
		r.Lifetime = duration(604800)
		r.note(filepath.Join(dir, "queuelifetime"), 0, "queuelifetime (not set: 604800)", Mapped, `[queue] lifetime = "1w"`, "nullmailer's default")
	}
	// Other files in the directory: reported, never dropped.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || slices.Contains(nullmailerFiles, n) || strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") || strings.HasSuffix(n, ".dpkg-dist") || strings.HasSuffix(n, ".dpkg-old") {
			continue
		}
		r.note(filepath.Join(dir, n), 0, n, Unknown, "", "not a file nullmailer reads")
	}
	return r, nil
}

// nullmailerRemotes reads remotes: each line a [[smarthost]], in order.
func (r *Result) nullmailerRemotes(path string) error {
	data, perm, err := readSource(path)
	if err != nil {
		return err
	}
	for i, l := range strings.Split(string(data), "\n") {
		ln := i + 1
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		f := strings.Fields(t)
		if len(f) < 2 {
			return srcErr(path, ln, "a remote needs a host and a protocol (smtp or qmtp)")
		}
		host, proto := f[0], f[1]
		label := host + " " + proto
		if proto == "qmtp" {
			r.note(path, ln, label, NotPossible, "", "relay speaks SMTP only: name the server's SMTP submission port instead")
			continue
		}
		if proto != "smtp" {
			return srcErr(path, ln, "unknown protocol %q (smtp or qmtp)", proto)
		}
		sh := &Smarthost{Host: host}
		ssl, starttls, portSet := false, false, false
		var notes []Note
		add := func(opt string, st Status, to, why string) {
			notes = append(notes, Note{File: path, Line: ln, Key: host + " " + opt, Status: st, To: to, Why: why})
		}
		for j := 2; j < len(f); j++ {
			opt := f[j]
			name, val, hasVal := strings.Cut(opt, "=")
			if (name == "-p" || name == "--port" || name == "--user" || name == "--pass" || name == "--source" ||
				strings.HasPrefix(name, "--x509")) && !hasVal && name != "--x509fmtder" && j+1 < len(f) {
				j++
				val, hasVal = f[j], true
			}
			switch name {
			case "--port", "-p":
				p, err := strconv.Atoi(val)
				if err != nil || p <= 0 || p > 65535 {
					return srcErr(path, ln, "%s: bad port %q", name, val)
				}
				sh.Port, portSet = p, true
				add(opt, Mapped, "port", "")
			case "--user":
				sh.Username = val
				add(opt, Mapped, "username", "")
			case "--pass":
				sh.Password = val
				add("--pass", Mapped, "password_file", "the password went to a secret file")
			case "--auth-login":
				sh.Auth = "login"
				add(opt, Mapped, `auth = "login"`, "")
			case "--ssl":
				ssl = true
				add(opt, Mapped, `tls = "implicit"`, "")
			case "--starttls":
				starttls = true
				add(opt, Mapped, `tls = "starttls"`, "")
			case "--insecure":
				add(opt, Insecure, "", pinAdvice)
			case "--x509cafile":
				if systemBundle(val) {
					add(opt, NotNeeded, "", "the system's CA bundle, which relay uses by default")
				} else {
					sh.TLSCAFile = val
					add(opt, Mapped, "tls_ca_file", "")
				}
			case "--x509certfile":
				sh.TLSClientCert, sh.TLSClientKey = val, val
				add(opt, Mapped, "tls_client_cert and tls_client_key", "the file holds the certificate and its key")
			case "--x509crlfile":
				add(opt, NotPossible, "", "relay does not read CRLs; pin the certificate with tls_fingerprint or name a CA in tls_ca_file")
			case "--x509fmtder":
				add(opt, NotPossible, "", "relay reads PEM: convert the files with openssl x509 -inform der")
			case "--source":
				sh.SourceAddress = val
				add(opt, Mapped, "source_address", "")
			case "-d", "--daemon", "-s", "--syslog":
				add(opt, NotNeeded, "", "relay logs through [log] to")
			default:
				add(opt, Unknown, "", "")
			}
		}
		switch {
		case ssl:
			sh.TLS = "implicit"
			if !portSet {
				sh.Port = 465
			}
		case starttls:
			sh.TLS = "starttls"
		default:
			sh.TLS = "starttls"
			add("(no --ssl or --starttls)", Insecure, `tls = "starttls"`, "nullmailer sends in clear; "+starttlsAdvice)
		}
		if !portSet && !ssl {
			sh.Port = 25
		}
		r.note(path, ln, label, Mapped, fmt.Sprintf("[[smarthost]] %d, host = %q", len(r.Smarthosts)+1, host), "the order of remotes is the order of failover")
		r.Notes = append(r.Notes, notes...)
		if sh.Password != "" {
			r.exposedNote(path, perm)
		}
		r.Smarthosts = append(r.Smarthosts, sh)
	}
	return nil
}
