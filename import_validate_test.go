package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
)

// Every sample configuration of migrate/testdata, imported with --write,
// passes the validator the provisioning tools run (relay check
// --config-only): what relay import writes is what Ansible's validate and
// Salt's check_cmd accept. The samples are copied with @DIR@ replaced and
// a CA certificate beside them, as the migrate package's own tests do.
func TestImport_WrittenConfigPassesConfigOnly(t *testing.T) {
	e := testbin.NewEnv(t, "")
	cert := testsmtp.LocalhostCert(t)
	source := map[string]string{ // the file relay import reads, in the sample's directory
		"msmtp": "msmtprc", "ssmtp": "ssmtp.conf", "nullmailer": "", "dma": "dma.conf", "postfix": "main.cf",
	}
	n := 0
	for format, file := range source {
		samples, err := os.ReadDir(filepath.Join("migrate", "testdata", format))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range samples {
			name := format + "-" + s.Name()
			dir := filepath.Join(e.Dir, name)
			os.Mkdir(dir, 0o755)
			files, _ := os.ReadDir(filepath.Join("migrate", "testdata", format, s.Name()))
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join("migrate", "testdata", format, s.Name(), f.Name()))
				if err != nil {
					t.Fatal(err)
				}
				b = []byte(strings.ReplaceAll(string(b), "@DIR@", dir))
				if err := os.WriteFile(filepath.Join(dir, f.Name()), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			os.WriteFile(filepath.Join(dir, "ca.pem"), cert.PEM, 0o644)
			path := dir
			if file != "" {
				path = filepath.Join(dir, file)
			}
			if _, err := os.Stat(path); err != nil && format == "postfix" {
				path = filepath.Join(dir, "postconf-n") // postconf -n output
			}
			out := filepath.Join(e.Dir, "out-"+name)
			r := testbin.Run(e.Cmd("relay", "import", format, path, "--write", out), "")
			if r.Code != 0 {
				t.Errorf("%s: relay import: exit %d\n%s", name, r.Code, r.Stderr)
				continue
			}
			r = testbin.Run(e.Cmd("relay", "check", "--config-only", "-C", filepath.Join(out, "relay.toml")), "")
			if r.Code != 0 || !strings.Contains(r.Stdout, "OK") {
				t.Errorf("%s: relay check --config-only on the imported relay.toml: exit %d\n%s%s", name, r.Code, r.Stdout, r.Stderr)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d samples imported: the test data moved?", n)
	}
}
