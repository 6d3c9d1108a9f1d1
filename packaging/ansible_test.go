package packaging_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ansibleVars is the role's variables for a system that delivers to the
// e2e smarthost, with tls (the TLS mode) and [queue] retry_min as given.
func ansibleVars(env map[string]string, tls, retryMin string) string {
	return fmt.Sprintf(`relay_package_source: path
relay_package_path: %s
relay_domain: example.org
relay_smarthosts:
  - name: e2e
    host: %q
    port: %s
    tls: %q
    tls_fingerprint: %q
    username: %q
    password: %q
relay_aliases:
  root: admin@example.test
relay_sender_map:
  root: robot@example.test
relay_from_header: rewrite
relay_header_rules:
  - {action: append, name: Subject, value: " [%%h]"}
relay_queue:
  retry_min: %s
relay_mode: daemon
relay_probe: true
`, debInRoot, env["SMARTHOST_HOST"], env["SMARTHOST_PORT_STARTTLS"], tls, "sha256:"+env["SMARTHOST_CERT_SHA256"], env["SMARTHOST_USER"], env["SMARTHOST_PASS"], retryMin)
}

const ansiblePlaybook = `- name: Relay
  hosts: localhost
  connection: local
  roles:
    - relay
`

// playbook applies the role with the variables in /srv/vars.yml, with
// --diff and -v (the most an administrator would show in a CI log), and
// returns ansible-playbook's output and the counts of its recap.
func (s *system) playbook() (out string, changed, failed string, err error) {
	out, err = s.run(`cd /srv && ANSIBLE_ROLES_PATH=/srv/ansible/roles ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false \
		ansible-playbook -i localhost, -c local --diff -v -e @/srv/vars.yml /srv/site.yml 2>&1`)
	if m := recapLine.FindStringSubmatch(out); m != nil {
		changed, failed = m[2], m[4]
	}
	s.t.Logf("ansible-playbook (%v):\n%s", err, out)
	return out, changed, failed, err
}

// TestAnsible_Role applies contrib/ansible/roles/relay to a fresh Debian
// system four times over: install and configure (mail then reaches the
// smarthost), again (nothing changes), with a misspelt TLS mode (the play
// fails at validation, the working file stays), and never shows the
// password.
func TestAnsible_Role(t *testing.T) {
	env := provisioning(t)
	s := newToolsSystem(t)
	s.putTree(filepath.Join("..", "contrib", "ansible"), "/srv/ansible")
	s.write("/srv/site.yml", ansiblePlaybook)
	s.write("/srv/vars.yml", ansibleVars(env, "starttls", "1m"))
	var outputs []string

	t.Run("first run installs, configures and delivers", func(t *testing.T) {
		out, changed, failed, err := s.playbook()
		outputs = append(outputs, out)
		if err != nil || failed != "0" || changed == "0" || changed == "" {
			t.Fatalf("ansible-playbook: %v, changed=%s failed=%s\n%s", err, changed, failed, out)
		}
		if !strings.Contains(out, "TASK [relay : Run relay probe]") {
			t.Errorf("the probe did not run:\n%s", out)
		}
		st := s.must("stat -c '%a %U:%G' /etc/relay/e2e.secret; stat -c '%a %U:%G' /etc/relay/relay.toml; dpkg-query -W -f '${Status}' relay")
		if want := "640 root:relay\n644 root:root\ninstall ok installed"; st != want {
			t.Errorf("secret, relay.toml, package: %q, want %q", st, want)
		}
		if conf := s.must("cat /etc/relay/relay.toml"); strings.Contains(conf, env["SMARTHOST_PASS"]) || !strings.Contains(conf, `password_file = "/etc/relay/e2e.secret"`) {
			t.Errorf("relay.toml:\n%s", conf)
		}
		s.submitted(t, env, "Ansible")
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		out, changed, failed, err := s.playbook()
		outputs = append(outputs, out)
		if err != nil || failed != "0" || changed != "0" {
			t.Errorf("second run: %v, changed=%q failed=%q (want changed=0)\n%s", err, changed, failed, out)
		}
	})

	t.Run("misspelt TLS mode fails at validation and keeps the working file", func(t *testing.T) {
		before := s.must("sha256sum /etc/relay/relay.toml /etc/relay/e2e.secret")
		s.write("/srv/vars.yml", ansibleVars(env, "startls", "1m"))
		out, _, failed, err := s.playbook()
		outputs = append(outputs, out)
		if err == nil || failed != "1" {
			t.Fatalf("a misspelt TLS mode: %v, failed=%q, want the play to fail\n%s", err, failed, out)
		}
		if !strings.Contains(out, `smarthost[1].tls: must be \"implicit\", \"starttls\" or \"none\", not \"startls\"`) &&
			!strings.Contains(out, `smarthost[1].tls: must be "implicit", "starttls" or "none", not "startls"`) {
			t.Errorf("the failure does not show relay's line:\n%s", out)
		}
		if !strings.Contains(out, "TASK [relay : Write relay.toml]") || strings.Contains(out, "TASK [relay : Note the keys that need a restart]") {
			t.Errorf("the play did not stop at Write relay.toml:\n%s", out)
		}
		if after := s.must("sha256sum /etc/relay/relay.toml /etc/relay/e2e.secret"); after != before {
			t.Errorf("the working files changed:\n%s\n%s", before, after)
		}
		if out := s.must("relay check --config-only -C /etc/relay/relay.toml 2>&1"); !strings.Contains(out, ": OK") {
			t.Errorf("the file in place: %s", out)
		}
		s.write("/srv/vars.yml", ansibleVars(env, "starttls", "1m"))
	})

	t.Run("a change reloads a running daemon", func(t *testing.T) {
		// No systemd in the chroot: the role's handler sends SIGHUP to the
		// daemon of the spool's pid file, which logs that it reloaded.
		s.write("/srv/vars.yml", ansibleVars(env, "starttls", "2m"))
		out, err := s.run(`relay daemon >/tmp/daemon.log 2>&1 &
			for i in $(seq 100); do [ -s /var/spool/relay/daemon.pid ] && break; sleep 0.1; done
			cd /srv && ANSIBLE_ROLES_PATH=/srv/ansible/roles ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false \
				ansible-playbook -i localhost, -c local --diff -v -e @/srv/vars.yml /srv/site.yml 2>&1
			for i in $(seq 50); do grep -q reloaded /tmp/daemon.log && break; sleep 0.1; done
			echo '--- daemon log'; cat /tmp/daemon.log`)
		outputs = append(outputs, out)
		t.Logf("a daemon, then ansible-playbook (%v):\n%s", err, out)
		if err != nil || !regexp.MustCompile(`RUNNING HANDLER \[relay : Reload a relay daemon without systemd\] \**\n\s*changed: \[localhost\]`).MatchString(out) {
			t.Fatalf("the reload handler: %v\n%s", err, out)
		}
		_, log, _ := strings.Cut(out, "--- daemon log")
		if !strings.Contains(log, "status=reloaded") && !strings.Contains(log, `"status":"reloaded"`) {
			t.Errorf("the daemon did not reload:\n%s", log)
		}
		if !strings.Contains(out, "retry_min = \"2m\"") {
			t.Errorf("the diff does not show the change:\n%s", out)
		}
	})

	t.Run("the password never appears in the output", func(t *testing.T) {
		if len(outputs) != 4 {
			t.Fatalf("%d runs to look at, want 4", len(outputs))
		}
		for i, out := range outputs {
			if strings.Contains(out, env["SMARTHOST_PASS"]) {
				t.Errorf("run %d shows the password:\n%s", i+1, out)
			}
			if i == 0 && !strings.Contains(out, "the output has been hidden due to the fact that 'no_log: true'") {
				t.Errorf("run 1 does not show the secret task hidden:\n%s", out)
			}
		}
	})
}
