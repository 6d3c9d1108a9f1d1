package packaging_test

// The provisioning suite: the Ansible role (contrib/ansible/roles/relay)
// and the Salt formula (contrib/salt/relay) applied with a local
// connection inside the throwaway Debian root of the packaging suite, as
// an administrator applies them to a server: the role installs the
// package, writes the secrets and relay.toml (checked by relay check
// --config-only before it replaces the working file), and a message
// submitted in the root reaches the end-to-end Postfix smarthost, which
// runs on the host's loopback (the root shares it).
//
// The tools come from Debian bookworm, installed in the root with apt and
// pinned (ansible-core 2.14.18; PyPI is not reachable from the machines
// this runs on, see contrib/ansible/README.md); Salt, which bookworm does
// not ship, only when RELAY_SALT_PIP=1 says pip can fetch it.
//
// Environment, besides the packaging suite's:
//
//	RELAY_PROVISION=1      run these tests (they need the smarthost)
//	RELAY_E2E_ENV=FILE     the smarthost's env file (default /tmp/relay-e2e/env)

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// ansibleCore is the pinned version of Debian bookworm's ansible-core.
const ansibleCore = "2.14.18-0+deb12u2"

// provisioning skips the test unless the provisioning suite was asked
// for, and returns the smarthost's environment.
func provisioning(t *testing.T) map[string]string {
	t.Helper()
	if os.Getenv("RELAY_PROVISION") == "" {
		t.Skip("set RELAY_PROVISION=1 with the packaging suite's variables and a running e2e smarthost (see .ci/run)")
	}
	enabled(t)
	path := os.Getenv("RELAY_E2E_ENV")
	if path == "" {
		path = "/tmp/relay-e2e/env"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		missing(t, "the e2e smarthost's environment: %v (bash e2e/smarthost.sh start)", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = strings.Trim(v, "'\"")
		}
	}
	for _, k := range []string{"SMARTHOST_HOST", "SMARTHOST_PORT_STARTTLS", "SMARTHOST_USER", "SMARTHOST_PASS", "SMARTHOST_CERT_SHA256", "SMARTHOST_MAILDIR"} {
		if env[k] == "" {
			missing(t, "%s: no %s", path, k)
		}
	}
	return env
}

// toolsLayer is a layer over the root with relay's dependencies that adds
// the provisioning tools, made once: the tests' systems are overlays on it.
var toolsLayer struct {
	once  sync.Once
	lower string
	err   error
	log   string
}

// newToolsSystem makes a fresh system with ansible-core (and with it
// python3-jinja2 and python3-yaml) installed, relay not.
func newToolsSystem(t *testing.T) *system {
	t.Helper()
	baseRoot(t)
	toolsLayer.once.Do(func() {
		start := time.Now()
		dir := filepath.Join(base.dir, "tools")
		if toolsLayer.err = os.MkdirAll(dir, 0o755); toolsLayer.err != nil {
			return
		}
		toolsLayer.log, toolsLayer.err = inRoot(base.lowerDeps, dir, filepath.Join(base.dir, "tools-work"),
			"apt-get install -y -qq --no-install-recommends ansible-core="+ansibleCore+" python3-apt python3-venv 2>&1", nil)
		toolsLayer.lower = dir + ":" + base.lowerDeps
		t.Logf("ansible-core %s installed in the root in %s", ansibleCore, time.Since(start).Round(time.Second))
	})
	if toolsLayer.err != nil {
		t.Fatalf("installing ansible-core %s in the Debian root: %v\n%s", ansibleCore, toolsLayer.err, toolsLayer.log)
	}
	return overlay(t, toolsLayer.lower)
}

// putTree copies the host directory src into the system as dst.
func (s *system) putTree(src, dst string) {
	s.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = rel, 0, 0, "root", "root"
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if out, err := inRoot(s.root, s.upper, s.work, "mkdir -p "+dst+" && tar -x --no-same-owner -C "+dst, buf.Bytes()); err != nil {
		s.t.Fatalf("copy %s to %s: %v\n%s", src, dst, err, out)
	}
}

// write puts text into a file of the system.
func (s *system) write(dst, text string) {
	s.t.Helper()
	if out, err := inRoot(s.root, s.upper, s.work, `mkdir -p "$(dirname `+dst+`)" && cat >`+dst, []byte(text)); err != nil {
		s.t.Fatalf("write %s: %v\n%s", dst, err, out)
	}
}

// delivered waits for a message whose header holds token in the
// smarthost's Maildir.
func delivered(t *testing.T, maildir, token string) bool {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, sub := range []string{"new", "cur"} {
			ents, _ := os.ReadDir(filepath.Join(maildir, sub))
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join(maildir, sub, e.Name()))
				if err == nil && bytes.Contains(b, []byte(token)) {
					return true
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// recap is the counts of the PLAY RECAP line of ansible-playbook.
var recapLine = regexp.MustCompile(`localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// token makes a string unique to this run of the test.
func token(t *testing.T, what string) string {
	return what + "-" + strings.ReplaceAll(time.Now().UTC().Format("150405.000000000"), ".", "")
}

// submitted sends a message with the sendmail of the provisioned system
// (tool names who provisioned it) and fails the test unless it reaches
// the e2e smarthost's Maildir.
func (s *system) submitted(t *testing.T, env map[string]string, tool string) {
	t.Helper()
	tok := token(t, tool)
	msg := "From: root\nTo: someone@example.test\nSubject: " + tok + "\nMessage-ID: <" + tok + "@relay-test.example.org>\n\nsent on a system provisioned by " + tool + "\n"
	if out, err := inRoot(s.root, s.upper, s.work, "sendmail --wait=60s -i someone@example.test 2>&1", []byte(msg)); err != nil {
		t.Fatalf("sendmail in the system %s provisioned: %v\n%s", tool, err, out)
	}
	if !delivered(t, env["SMARTHOST_MAILDIR"], tok) {
		t.Errorf("the message %s did not reach the smarthost's Maildir", tok)
	}
}
