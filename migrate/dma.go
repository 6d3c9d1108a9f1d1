package migrate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// dma's configuration (dma(8), dma.conf): "KEY value" or a bare "FLAG" a
// line, "#" starts a comment anywhere; auth.conf has "user|host:password"
// lines. dma refuses any other line, and so does this import.

func importDma(path string) (*Result, error) {
	data, _, err := readSource(path)
	if err != nil {
		return nil, err
	}
	r := &Result{}
	sh := &Smarthost{Port: 25}
	var secure, starttls bool
	authPath := "/etc/dma/auth.conf"
	var flagLines = map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for ln := 1; sc.Scan(); ln++ {
		t := sc.Text()
		if i := strings.IndexByte(t, '#'); i >= 0 {
			t = t[:i]
		}
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		key, val := t, ""
		if i := strings.IndexAny(t, " \t"); i >= 0 {
			key, val = t[:i], strings.TrimSpace(t[i+1:])
		}
		label := strings.TrimSpace(key + " " + val)
		needVal := func() error {
			if val == "" {
				return srcErr(path, ln, "%s needs a value", key)
			}
			return nil
		}
		noVal := func() error {
			if val != "" {
				return srcErr(path, ln, "%s takes no value", key)
			}
			flagLines[key] = ln
			return nil
		}
		switch key {
		case "SMARTHOST", "PORT", "ALIASES", "SPOOLDIR", "AUTHPATH", "CERTFILE", "MAILNAME", "MASQUERADE", "DEBUGLOG", "FINGERPRINT":
			if err := needVal(); err != nil {
				return nil, err
			}
		case "STARTTLS", "OPPORTUNISTIC_TLS", "SECURETRANSFER", "DEFER", "INSECURE", "FULLBOUNCE", "NULLCLIENT":
			if err := noVal(); err != nil {
				return nil, err
			}
		default:
			// dma itself stops at such a line ("syntax error"): so do we.
			return nil, srcErr(path, ln, "unknown key %q (dma refuses it too)", key)
		}
		switch key {
		case "SMARTHOST":
			sh.Host = val
			r.note(path, ln, label, Mapped, "host", "")
		case "PORT":
			p, err := strconv.Atoi(val)
			if err != nil || p <= 0 || p > 65535 {
				return nil, srcErr(path, ln, "PORT: bad port %q", val)
			}
			sh.Port = p
			r.note(path, ln, label, Mapped, "port", "")
		case "ALIASES":
			r.Aliases = val
			r.note(path, ln, label, Mapped, "[rewrite] aliases", "")
		case "SPOOLDIR":
			r.note(path, ln, label, NotNeeded, "", "relay has its own spool; relay import dma --queue reads this one")
		case "AUTHPATH":
			authPath = val
			r.note(path, ln, label, Mapped, "username and password_file (from the file's entry for SMARTHOST)", "")
		case "CERTFILE":
			sh.TLSClientCert, sh.TLSClientKey = val, val
			r.note(path, ln, label, Mapped, "tls_client_cert and tls_client_key", "the file holds the certificate and its key")
		case "MAILNAME":
			if strings.HasPrefix(val, "/") {
				r.note(path, ln, label, NotNeeded, "", "relay reads /etc/mailname itself when domain is not set")
				if val != "/etc/mailname" {
					r.note(path, ln, label, NotPossible, "", "relay reads /etc/mailname only: set domain to the name in "+val)
				}
			} else {
				r.Domain = val
				r.note(path, ln, label, Mapped, "domain", "")
			}
		case "MASQUERADE":
			user, host, hasAt := strings.Cut(val, "@")
			if !hasAt {
				user, host = "", val
			}
			switch {
			case user != "" && host != "":
				r.addSender("*", user+"@"+host)
				r.note(path, ln, label, Mapped, "[rewrite] sender_map: *: "+user+"@"+host, "")
			case host != "":
				r.addSender("*", "@"+host)
				r.note(path, ln, label, Mapped, "[rewrite] sender_map: *: @"+host, "the local part is kept")
			default:
				r.note(path, ln, label, NotPossible, "", "a MASQUERADE of the user only (user@): name the domain as well in sender_map")
			}
		case "DEBUGLOG":
			r.note(path, ln, label, NotNeeded, "", "relay sendmail -v and relay probe -v show the SMTP dialogue")
		case "FINGERPRINT":
			fp := strings.ToLower(strings.ReplaceAll(val, ":", ""))
			if len(fp) != 64 {
				return nil, srcErr(path, ln, "FINGERPRINT: not a SHA-256 fingerprint")
			}
			sh.TLSFingerprint = fp
			r.note(path, ln, label, Mapped, "tls_fingerprint", "")
		case "STARTTLS":
			starttls = true
		case "SECURETRANSFER":
			secure = true
		case "OPPORTUNISTIC_TLS":
			r.note(path, ln, label, Insecure, `tls = "starttls"`, "opportunistic TLS falls back to clear text; "+starttlsAdvice)
		case "INSECURE":
			r.note(path, ln, label, Insecure, "", "dma would log in over a connection without TLS; relay refuses AUTH without TLS to any host but loopback")
		case "DEFER":
			r.note(path, ln, label, NotNeeded, "", "relay always queues; the daemon (or relay queue run) delivers")
		case "FULLBOUNCE":
			r.note(path, ln, label, NotPossible, "", "relay's bounces hold the original header only (DSN RET=HDRS); give sendmail -R full per message")
		case "NULLCLIENT":
			r.note(path, ln, label, NotNeeded, "", "relay sends every message, local recipients too, to the smarthost")
		}
	}
	switch {
	case secure && starttls:
		sh.TLS = "starttls"
		r.note(path, flagLines["SECURETRANSFER"], "SECURETRANSFER", Mapped, `tls = "starttls" (with STARTTLS)`, "")
		r.note(path, flagLines["STARTTLS"], "STARTTLS", Mapped, `tls = "starttls"`, "")
	case secure:
		sh.TLS = "implicit"
		r.note(path, flagLines["SECURETRANSFER"], "SECURETRANSFER", Mapped, `tls = "implicit"`, "")
	default:
		sh.TLS = "starttls"
		if starttls {
			r.note(path, flagLines["STARTTLS"], "STARTTLS", Insecure, `tls = "starttls"`, "without SECURETRANSFER dma ignores it and sends in clear; "+starttlsAdvice)
		} else {
			r.note(path, 0, "(no SECURETRANSFER)", Insecure, `tls = "starttls"`, "dma sends in clear; "+starttlsAdvice)
		}
	}
	if sh.Host == "" {
		r.note(path, 0, "(no SMARTHOST)", NotPossible, "", "dma delivers directly to each domain's MX; relay needs a smarthost: add a [[smarthost]] by hand")
		return r, nil
	}
	if err := r.dmaAuth(authPath, sh); err != nil {
		return nil, err
	}
	r.Smarthosts = append(r.Smarthosts, sh)
	return r, nil
}

// dmaAuth takes the login for sh.Host from auth.conf; the other lines
// are reported (dma uses them for no other host).
func (r *Result) dmaAuth(path string, sh *Smarthost) error {
	data, perm, err := readSource(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i, l := range strings.Split(string(data), "\n") {
		ln := i + 1
		if l == "" || l[0] == '#' {
			continue
		}
		login, rest, ok1 := strings.Cut(l, "|")
		host, pass, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || login == "" || host == "" {
			return srcErr(path, ln, "not an auth.conf line (user|host:password)")
		}
		if !strings.EqualFold(host, sh.Host) {
			r.note(path, ln, login+"|"+host, NotNeeded, "", "dma uses it only for "+host+", which is not the SMARTHOST")
			continue
		}
		// dma searches its list newest first: the last entry counts.
		for j := range r.Notes {
			if n := &r.Notes[j]; n.File == path && n.Status == Mapped && strings.HasSuffix(n.Key, "|"+host) {
				n.Status, n.To, n.Why = NotNeeded, "", "a later line for the same host wins in dma"
			}
		}
		sh.Username, sh.Password = login, pass
		r.note(path, ln, login+"|"+host, Mapped, fmt.Sprintf("username = %q, password_file", login), "the password went to a secret file")
		r.exposedNote(path, perm)
	}
	return nil
}
