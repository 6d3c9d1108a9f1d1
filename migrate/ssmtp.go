package migrate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// ssmtp's configuration (ssmtp.conf(5)): "Key=Value" lines, keys without
// regard to case, "#" comments; revaliases beside it has
// "local:address[:mailhub[:port]]" lines.

func importSsmtp(path string) (*Result, error) {
	data, perm, err := readSource(path)
	if err != nil {
		return nil, err
	}
	r := &Result{}
	sh := &Smarthost{Host: "mailhub", Port: 25}
	var useTLS, startTLS, caFile, fromOverride bool
	fromOverrideSet := false
	type kv struct {
		key, val string
		line     int
	}
	var lines []kv
	sc := bufio.NewScanner(bytes.NewReader(data))
	for ln := 1; sc.Scan(); ln++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return nil, srcErr(path, ln, "not a Key=Value line")
		}
		lines = append(lines, kv{strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v), ln})
	}
	yes := func(v string) bool { return strings.EqualFold(v, "yes") }
	portSet := false
	for _, l := range lines {
		label := l.key + "=" + l.val
		switch l.key {
		case "root":
			r.addAlias("root", l.val)
			r.note(path, l.line, label, Mapped, "[rewrite] aliases: root: "+l.val, "ssmtp also sends the mail of other system users (uid < 1000) there: add them to the alias file if you want that")
		case "mailhub":
			host, port, hasPort := strings.Cut(l.val, ":")
			sh.Host = host
			if hasPort {
				p, err := strconv.Atoi(port)
				if err != nil {
					return nil, srcErr(path, l.line, "mailhub: bad port %q", port)
				}
				sh.Port, portSet = p, true
			}
			r.note(path, l.line, label, Mapped, "host, port", "")
		case "rewritedomain":
			r.Domain = l.val
			r.note(path, l.line, label, Mapped, "domain", "bare local names are qualified with it")
		case "hostname":
			r.HeloName = l.val
			if r.Domain == "" {
				r.Domain = l.val
			}
			r.note(path, l.line, label, Mapped, "helo_name (and domain without rewriteDomain)", "")
		case "fromlineoverride":
			fromOverride, fromOverrideSet = yes(l.val), true
		case "usetls":
			useTLS = yes(l.val)
		case "usestarttls":
			startTLS = yes(l.val)
		case "tls_ca_file":
			if systemBundle(l.val) {
				r.note(path, l.line, label, NotNeeded, "", "the system's CA bundle, which relay uses by default")
			} else {
				sh.TLSCAFile = l.val
				r.note(path, l.line, label, Mapped, "tls_ca_file", "")
			}
			caFile = true
		case "tls_ca_dir":
			caFile = true
			if systemBundle(l.val) {
				r.note(path, l.line, label, NotNeeded, "", "the system's CA certificates, which relay uses by default")
			} else {
				r.note(path, l.line, label, NotPossible, "", "relay reads one PEM file: concatenate the directory's certificates into one and name it in tls_ca_file")
			}
		case "tlscert":
			sh.TLSClientCert = l.val
			if sh.TLSClientKey == "" {
				sh.TLSClientKey = l.val
			}
			r.note(path, l.line, label, Mapped, "tls_client_cert (and tls_client_key unless TLSKey names another file)", "")
		case "tlskey":
			sh.TLSClientKey = l.val
			r.note(path, l.line, label, Mapped, "tls_client_key", "")
		case "authuser":
			sh.Username = l.val
			r.note(path, l.line, label, Mapped, "username", "")
		case "authpass":
			sh.Password = l.val
			r.note(path, l.line, "AuthPass", Mapped, "password_file", "the password went to a secret file")
		case "authmethod":
			if strings.EqualFold(l.val, "cram-md5") {
				sh.Auth = "cram-md5"
				r.note(path, l.line, label, Mapped, `auth = "cram-md5"`, "")
			} else {
				r.note(path, l.line, label, NotNeeded, "", "relay picks the strongest mechanism the server offers")
			}
		case "debug":
			r.note(path, l.line, label, NotNeeded, "", "relay sendmail -v and relay probe -v show the SMTP dialogue")
		default:
			r.note(path, l.line, label, Unknown, "", "")
		}
	}
	// TLS, decided once every key is known.
	for _, l := range lines {
		label := l.key + "=" + l.val
		switch l.key {
		case "usetls":
			if yes(l.val) {
				r.note(path, l.line, label, Mapped, map[bool]string{true: `tls = "starttls"`, false: `tls = "implicit"`}[startTLS], "")
			} else if startTLS {
				r.note(path, l.line, label, NotNeeded, "", "UseSTARTTLS=YES turns TLS on (ssmtp sets UseTLS with it)")
			} else {
				r.note(path, l.line, label, Insecure, `tls = "starttls"`, starttlsAdvice)
			}
		case "usestarttls":
			r.note(path, l.line, label, Mapped, `tls = "starttls"`, "")
		case "fromlineoverride":
			if fromOverride {
				r.note(path, l.line, label, NotNeeded, "", "relay keeps the From header (from_header = \"keep\", its default)")
			} else {
				r.note(path, l.line, label, Mapped, `[rewrite] from_header = "rewrite"`, "ssmtp writes the From header itself")
			}
		}
	}
	switch {
	case useTLS && !startTLS:
		sh.TLS = "implicit"
		if !portSet {
			sh.Port = 465
		}
	case useTLS || startTLS:
		sh.TLS = "starttls"
	default:
		sh.TLS = "starttls"
		r.note(path, 0, "(no UseTLS)", Insecure, `tls = "starttls"`, "ssmtp sends in clear without UseTLS; "+starttlsAdvice)
	}
	if (useTLS || startTLS) && !caFile {
		r.note(path, 0, "(no TLS_CA_File)", Insecure, "", "ssmtp does not verify the server's certificate without TLS_CA_File; "+pinAdvice)
	}
	if !fromOverrideSet || !fromOverride {
		r.FromHeader = "rewrite"
		if !fromOverrideSet {
			r.note(path, 0, "(FromLineOverride=NO, the default)", Mapped, `[rewrite] from_header = "rewrite"`, "ssmtp writes the From header itself")
		}
	}
	if sh.Password != "" {
		r.exposedNote(path, perm)
	}
	r.Smarthosts = append(r.Smarthosts, sh)
	if err := r.ssmtpRevaliases(filepath.Join(filepath.Dir(path), "revaliases"), sh); err != nil {
		return nil, err
	}
	return r, nil
}

// ssmtpRevaliases maps revaliases: the sender map, and a smarthost of its
// own for a line naming another mailhub.
func (r *Result) ssmtpRevaliases(path string, main *Smarthost) error {
	data, _, err := readSource(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for ln := 1; sc.Scan(); ln++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		parts := strings.Split(t, ":")
		if len(parts) < 2 || parts[0] == "" || !strings.Contains(parts[1], "@") {
			return srcErr(path, ln, "not a revaliases line (local:address[:mailhub[:port]])")
		}
		local, addr := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		r.addSender(local, addr)
		to := fmt.Sprintf("[rewrite] sender_map: %s: %s", local, addr)
		if len(parts) >= 3 && parts[2] != "" {
			host := strings.TrimSpace(parts[2])
			port := main.Port
			if len(parts) >= 4 {
				p, err := strconv.Atoi(strings.TrimSpace(parts[3]))
				if err != nil {
					return srcErr(path, ln, "bad port %q", parts[3])
				}
				port = p
			}
			if !strings.EqualFold(host, main.Host) || port != main.Port {
				if ex := r.smarthostByHost(host, port); ex != nil {
					ex.Senders = append(ex.Senders, addr)
				} else {
					o := *main
					o.Name, o.Host, o.Port, o.Senders = "", host, port, []string{addr}
					if o.TLS == "implicit" && port != 465 {
						o.TLS = "starttls"
					}
					r.Smarthosts = append(r.Smarthosts, &o)
				}
				to += fmt.Sprintf(`; [[smarthost]] host = %q, port = %d, senders = [%q] (ssmtp's one login)`, host, port, addr)
			}
		}
		r.note(path, ln, t, Mapped, to, "")
	}
	return nil
}
