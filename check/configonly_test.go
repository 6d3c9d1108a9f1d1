package check_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/check"
	"github.com/relaymail/relay/sysexits"
)

// configOnly writes text (with DIR replaced by a fresh directory that
// also holds files) as relay.toml and runs ConfigOnly on it.
func configOnly(t *testing.T, text string, files map[string]string) (path, out, warn string, err error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	var o, w bytes.Buffer
	err = check.ConfigOnly(path, &o, &w)
	return path, o.String(), w.String(), err
}

const goodSmarthost = `[[smarthost]]
host = "smtp.example.com"
port = 587
username = "robot@example.com"
password_file = "DIR/password"
`

func TestConfigOnly_GoodFileExitsZeroWithOneLine(t *testing.T) {
	path, out, warn, err := configOnly(t, "domain = \"example.com\"\n[rewrite]\naliases = \"DIR/aliases\"\n\n"+goodSmarthost,
		map[string]string{"password": "secret\n", "aliases": "root: admin@example.com\n"})
	if err != nil || warn != "" {
		t.Fatalf("err %v, stderr %q", err, warn)
	}
	if out != "configuration "+path+": OK\n" {
		t.Errorf("stdout %q", out)
	}
}

// Every kind of error is one "file:line: key: message" line on stderr
// and makes the check exit 78.
func TestConfigOnly_EachKindOfErrorExits78WithFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		files      map[string]string
		want       string // FILE: the file that has the problem
	}{
		{"syntax", "[[smarthost]\nhost = \"x\"\n", nil, "relay.toml:1: "},
		{"unknown key", "domian = \"example.com\"\n" + goodSmarthost, map[string]string{"password": "s\n"}, "relay.toml:1: domian: unknown key"},
		{"misspelt TLS mode", goodSmarthost + "tls = \"startls\"\n", map[string]string{"password": "s\n"}, `relay.toml:6: smarthost[1].tls: must be "implicit", "starttls" or "none", not "startls"`},
		{"bad type", "[queue]\nlifetime = 5\n" + goodSmarthost, map[string]string{"password": "s\n"}, "relay.toml:2: queue.lifetime: "},
		{"missing password file", goodSmarthost, nil, "relay.toml:5: smarthost[1].password_file: cannot read "},
		{"password file others may read", goodSmarthost, map[string]string{"password": "s\n"}, "relay.toml:5: smarthost[1].password_file: "},
		{"CA file without certificate", goodSmarthost + "tls_ca_file = \"DIR/ca.pem\"\n", map[string]string{"password": "s\n", "ca.pem": "not a certificate\n"}, "relay.toml:6: smarthost[1].tls_ca_file: "},
		{"bad line in the aliases it names", "[rewrite]\naliases = \"DIR/aliases\"\n\n" + goodSmarthost, map[string]string{"password": "s\n", "aliases": "root: admin@example.com\nthis line has no colon\n"}, "aliases:2: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, out, warn, err := configOnlyWith(t, tc.text, tc.files, tc.name == "password file others may read")
			if sysexits.Code(err, 0) != sysexits.Config {
				t.Fatalf("exit %d (%v), want 78; stderr:\n%s", sysexits.Code(err, 0), err, warn)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			want := filepath.Join(filepath.Dir(path), tc.want)
			found := false
			for _, line := range strings.Split(strings.TrimSpace(warn), "\n") {
				if strings.HasPrefix(line, want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no line starting %q in stderr:\n%s", want, warn)
			}
			var se *sysexits.Error
			if !errors.As(err, &se) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}
}

// configOnlyWith is configOnly, with the password file made readable by
// everyone first when worldReadable.
func configOnlyWith(t *testing.T, text string, files map[string]string, worldReadable bool) (string, string, string, error) {
	t.Helper()
	if !worldReadable {
		return configOnly(t, text, files)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return configOnly(t, strings.ReplaceAll(text, "DIR/password", pw), nil)
}

// Warnings are lines too, but leave the exit 0.
func TestConfigOnly_WarningsAloneExitZero(t *testing.T) {
	_, out, warn, err := configOnly(t, "domain = \"example.com\"\n", nil)
	if err != nil {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(warn, "relay.toml: warning: no [[smarthost]] configured") || !strings.Contains(out, ": OK") {
		t.Errorf("stdout %q stderr %q", out, warn)
	}
}
