package migrate

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/relaymail/relay/sysexits"
)

// Formats are the sources `relay import` reads.
var Formats = []string{"msmtp", "ssmtp", "nullmailer", "dma", "postfix"}

// DefaultPath is where FORMAT's configuration lives when no PATH is given;
// msmtp is the user's ~/.msmtprc for a user other than root who has one
// (exists reports that), else /etc/msmtprc.
func DefaultPath(format, home string, euid int, exists func(string) bool) string {
	switch format {
	case "msmtp":
		if euid != 0 && home != "" && exists(filepath.Join(home, ".msmtprc")) {
			return filepath.Join(home, ".msmtprc")
		}
		return "/etc/msmtprc"
	case "ssmtp":
		return "/etc/ssmtp/ssmtp.conf"
	case "nullmailer":
		return "/etc/nullmailer"
	case "dma":
		return "/etc/dma/dma.conf"
	case "postfix":
		return "/etc/postfix/main.cf"
	}
	return ""
}

// Import reads FORMAT's configuration at path.
func Import(format, path string) (*Result, error) {
	var r *Result
	var err error
	switch format {
	case "msmtp":
		r, err = importMsmtp(path)
	case "ssmtp":
		r, err = importSsmtp(path)
	case "nullmailer":
		r, err = importNullmailer(path)
	case "dma":
		r, err = importDma(path)
	case "postfix":
		r, err = importPostfix(path)
	default:
		return nil, sysexits.New(sysexits.Usage, "import: unknown format %q (use %s)", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, err
	}
	r.Format, r.Source = format, path
	r.finish()
	if len(r.Smarthosts) == 0 {
		r.note(path, 0, "(smarthost)", NotPossible, "", "the source names no server to relay to: add a [[smarthost]] by hand")
	}
	return r, nil
}

// The proposals made for insecure settings.
const (
	pinAdvice      = `relay verifies the server's certificate; if it cannot be verified (self-signed, private CA), pin it instead: tls_fingerprint = "sha256:…" as printed by relay probe, or name its CA in tls_ca_file`
	starttlsAdvice = `relay requires TLS: tls = "starttls" (mandatory); relay probe shows whether the server offers it`
)

// exposedNote notes, once per file, that passwords were read from a
// file others may read.
func (r *Result) exposedNote(file string, perm fs.FileMode) {
	if perm&0o004 == 0 {
		return
	}
	for _, n := range r.Notes {
		if n.File == file && n.Key == "(password)" {
			return
		}
	}
	r.note(file, 0, "(password)", Insecure, "password_file",
		fmt.Sprintf("%s is readable by every local user (mode %04o): its passwords went to secret files (mode 0640), never into relay.toml; consider them exposed and change them", file, perm))
}

// unquote removes one pair of double quotes around a value.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`)
	}
	return s
}

// onOff reads msmtp's on/off (an empty value is on).
func onOff(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "", "on":
		return true, true
	case "off":
		return false, true
	}
	return false, false
}

// systemBundle reports whether a CA file is the system's, which relay
// uses anyway.
func systemBundle(p string) bool {
	switch p {
	case "system", "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem", "/etc/ssl/certs":
		return true
	}
	return false
}
