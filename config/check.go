package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// Check makes the slower checks of `relay check` beyond Load, and returns
// the problems found (errors and warnings), each with the file and line of
// the key concerned:
//
//   - the files the configuration names exist and can be read by this
//     process: tls_ca_file (and holds PEM certificates), tls_client_cert and
//     tls_client_key (and make a pair), password_file (not empty, and not
//     accessible by others); rewrite.aliases, sender_map and
//     sender_login_map only warn when missing;
//   - password_command's program is found (it is not run);
//   - warnings: no [[smarthost]]; AUTH configured with tls = "none" to a host
//     that is not a loopback address (it will be refused); auth = "xoauth2"
//     or "oauthbearer" without password_command (tokens expire); warn_after not
//     shorter than lifetime (no warning would ever be sent); a bare
//     username that a preset qualified (yandex: robot becomes
//     robot@yandex.ru) or that a preset's provider may refuse (gmail);
//     source_address or ip_family with a proxy (the proxy connects, so
//     both are ignored).
//
// It neither reads secrets into messages nor connects anywhere.
func (c *Config) Check() []Problem {
	k := &checker{c: c}
	if len(c.Smarthosts) == 0 {
		k.warnf("", "no [[smarthost]] configured: mail will wait in the queue")
	}
	for i := range c.Smarthosts {
		k.smarthost(indexKey("smarthost", i+1), &c.Smarthosts[i])
	}
	if first, ok := c.noCatchAllRecipients(); ok {
		k.warnf(first+".recipients", "every [[smarthost]] has recipients: mail to any other recipient has no smarthost and waits in the queue (add a [[smarthost]] without recipients)")
	}
	for _, f := range []struct{ key, path string }{
		{"rewrite.aliases", c.Rewrite.Aliases},
		{"rewrite.sender_map", c.Rewrite.SenderMap},
		{"rewrite.sender_login_map", c.Rewrite.SenderLoginMap},
	} {
		if f.path == "" {
			continue
		}
		if err := readable(f.path); errors.Is(err, fs.ErrNotExist) {
			k.warnf(f.key, "%s does not exist", f.path)
		} else if err != nil {
			k.errorf(f.key, "cannot read %s: %s", f.path, pathErr(err))
		}
	}
	k.listener()
	if q := c.Queue; q.WarnAfter > 0 && q.WarnAfter >= q.Lifetime {
		k.warnf("queue.warn_after", "is not shorter than lifetime (%s): no delay warning will ever be sent", q.Lifetime)
	}
	SortProblems(k.probs)
	return k.probs
}

// noCatchAllRecipients reports whether every smarthost is restricted to
// some recipients, and names the first.
func (c *Config) noCatchAllRecipients() (string, bool) {
	for _, sh := range c.Smarthosts {
		if len(sh.Recipients) == 0 {
			return "", false
		}
	}
	return indexKey("smarthost", 1), len(c.Smarthosts) > 0
}

type checker struct {
	c     *Config
	probs []Problem
}

func (k *checker) add(key string, warn bool, format string, args ...any) {
	k.probs = append(k.probs, Problem{File: k.c.Path, Line: k.c.lines.find(key), Key: key, Msg: fmt.Sprintf(format, args...), Warning: warn})
}
func (k *checker) errorf(key, format string, args ...any) { k.add(key, false, format, args...) }
func (k *checker) warnf(key, format string, args ...any)  { k.add(key, true, format, args...) }

// readable checks that path is a file this process can open for reading.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return &fs.PathError{Op: "open", Path: path, Err: errors.New("is a directory")}
	}
	return nil
}

func (k *checker) file(key, path string) bool {
	if path == "" {
		return false
	}
	if err := readable(path); err != nil {
		k.errorf(key, "cannot read %s: %s", path, pathErr(err))
		return false
	}
	return true
}

func (k *checker) smarthost(p string, sh *Smarthost) {
	if k.file(p+".tls_ca_file", sh.TLSCAFile) {
		if b, err := os.ReadFile(sh.TLSCAFile); err == nil && !x509.NewCertPool().AppendCertsFromPEM(b) {
			k.errorf(p+".tls_ca_file", "%s holds no PEM certificate", sh.TLSCAFile)
		}
	}
	certOK := k.file(p+".tls_client_cert", sh.TLSClientCert)
	keyOK := k.file(p+".tls_client_key", sh.TLSClientKey)
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(sh.TLSClientCert, sh.TLSClientKey); err != nil {
			k.errorf(p+".tls_client_cert", "%s and %s are not a certificate and its key: %s",
				sh.TLSClientCert, sh.TLSClientKey, strings.TrimPrefix(err.Error(), "tls: "))
		}
	}
	if k.file(p+".password_file", sh.PasswordFile) {
		if fi, err := os.Stat(sh.PasswordFile); err == nil {
			if m := fi.Mode().Perm(); m&0o007 != 0 {
				k.errorf(p+".password_file", "%s is accessible by others (mode %04o): chmod o-rwx %s", sh.PasswordFile, m, sh.PasswordFile)
			}
			if fi.Size() == 0 {
				k.errorf(p+".password_file", "%s is empty", sh.PasswordFile)
			}
		}
	}
	if len(sh.PasswordCommand) > 0 && sh.PasswordCommand[0] != "" {
		if _, err := exec.LookPath(sh.PasswordCommand[0]); err != nil {
			k.errorf(p+".password_command", "cannot run %q: %s", sh.PasswordCommand[0], lookPathErr(err))
		}
	}
	if sh.TLS == "none" && sh.Username != "" && !isLoopback(sh.Host) {
		k.warnf(p+".tls", `AUTH is never sent without TLS except to a loopback address: delivery through %s will fail`, sh.Host)
	}
	if sh.Proxy != "" {
		if sh.SourceAddress != "" {
			k.warnf(p+".source_address", "ignored: the connection goes through the proxy %s, which chooses its own source address", MaskProxy(sh.Proxy))
		}
		if sh.IPFamily != "" && sh.IPFamily != "any" {
			k.warnf(p+".ip_family", "ignored: the connection goes through the proxy %s, which resolves %s and chooses the family itself", MaskProxy(sh.Proxy), sh.Host)
		}
	}
	if sh.loginNote != "" {
		k.warnf(p+".username", "%s", sh.loginNote)
	}
	if pr, ok := Presets[sh.Preset]; ok && pr.OAuthOnly && !sh.UsesOAuth() && sh.Username != "" {
		k.warnf(p+".preset", "%s: Microsoft has turned passwords (basic authentication) off for SMTP: personal accounts since September 2024, Exchange Online by the end of 2026 (535 5.7.3, 550 5.7.30); log in with OAuth instead: a [smarthost.oauth] table and relay oauth login %s", sh.Preset, sh.Name)
	}
	if sh.UsesOAuth() {
		k.oauthFiles(p, sh)
	}
	if (sh.Auth == "xoauth2" || sh.Auth == "oauthbearer") && len(sh.PasswordCommand) == 0 && !sh.UsesOAuth() {
		k.warnf(p+".auth", `%s takes an OAuth access token, which expires within the hour: use password_command to get a fresh one for each connection`, sh.Auth)
	}
}

func lookPathErr(err error) string {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err.Error()
	}
	return pathErr(err)
}

// isLoopback reports whether host is "localhost" or a loopback IP address
// (without asking DNS).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && a.IsLoopback()
}

// listener checks the files of the listener's TLS and AUTH keys: one
// that is missing or unreadable keeps the daemon from starting (an
// error); a users file others may read gives its hashes to every local
// user (a warning); the keys have no use without listen (a warning).
func (k *checker) listener() {
	d := k.c.Daemon
	files := []struct{ key, path string }{{"daemon.listen_users", d.ListenUsers}, {"daemon.listen_tls_key", d.ListenTLSKey}}
	if d.ListenTLS != "self-signed" {
		files = append(files, struct{ key, path string }{"daemon.listen_tls", d.ListenTLS})
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := readable(f.path); err != nil {
			hint := ""
			if f.key == "daemon.listen_users" && errors.Is(err, fs.ErrNotExist) {
				hint = " (relay listener passwd NAME makes it)"
			}
			k.errorf(f.key, "cannot read %s: %s: the daemon will not start%s", f.path, pathErr(err), hint)
			continue
		}
		if fi, err := os.Stat(f.path); err == nil && f.key != "daemon.listen_tls" && fi.Mode().Perm()&0o004 != 0 {
			k.warnf(f.key, "%s is readable by everyone (mode %04o): chmod o-r %s", f.path, fi.Mode().Perm(), f.path)
		}
	}
	if len(d.Listen) == 0 && (d.ListenTLS != "" || d.ListenUsers != "") {
		k.warnf("daemon.listen_tls", "has no use without [daemon] listen")
	}
}

// oauthFiles checks the files of a [smarthost.oauth] table: the client
// secret (no access for others) and the service account's key. The token
// file is relay's own: package check looks at it.
func (k *checker) oauthFiles(p string, sh *Smarthost) {
	o := &sh.OAuth
	key := p + ".oauth.client_secret_file"
	if k.file(key, o.ClientSecretFile) {
		if fi, err := os.Stat(o.ClientSecretFile); err == nil {
			if m := fi.Mode().Perm(); m&0o007 != 0 {
				k.errorf(key, "%s is accessible by others (mode %04o): chmod o-rwx %s", o.ClientSecretFile, m, o.ClientSecretFile)
			}
			if fi.Size() == 0 {
				k.errorf(key, "%s is empty", o.ClientSecretFile)
			}
		}
	}
	key = p + ".oauth.service_account_file"
	if k.file(key, o.ServiceAccountFile) {
		if fi, err := os.Stat(o.ServiceAccountFile); err == nil && fi.Mode().Perm()&0o007 != 0 {
			k.errorf(key, "%s is accessible by others (mode %04o): chmod o-rwx %s", o.ServiceAccountFile, fi.Mode().Perm(), o.ServiceAccountFile)
		}
	}
	if o.Provider == "google" && o.Flow == "device" {
		k.warnf(p+".oauth.flow", `Google grants no mail scope (https://mail.google.com/) to the device flow: use flow = "authcode"`)
	}
}
