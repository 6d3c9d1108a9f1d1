package packaging_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// saltVersion is the Salt the real formula test installs with pip (the
// 3006 LTS line); Debian bookworm has no Salt package.
const saltVersion = "3006.9"

// rendered is the output of testdata/salt_render.py.
type rendered struct {
	Text map[string]string
	YAML map[string]map[string]any // file -> state ID (or include) -> ...
}

// state is the arguments of state id's function fn in the rendered file,
// nil when there is no such state.
func (r rendered) state(file, id, fn string) []any {
	m, _ := r.YAML[file][id].(map[string]any)
	args, _ := m[fn].([]any)
	return args
}

// renderFormula renders the formula's states and files in the system with
// the pillar file given (a path in the system) and grains init.
func (s *system) renderFormula(pillar, init string) rendered {
	s.t.Helper()
	names := "relay/init.sls relay/install.sls relay/config.sls relay/service.sls relay/probe.sls " +
		"relay/files/relay.toml.jinja relay/files/restart-keys.jinja relay/files/aliases.jinja relay/files/sender_map.jinja"
	out := s.must("python3 /srv/salt_render.py /srv/salt " + pillar + " " + init + " " + names)
	var r rendered
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		s.t.Fatalf("salt_render.py: %v\n%s", err, out)
	}
	return r
}

// arg finds the argument key of a state's function (a list of one-key
// maps, as Salt writes them).
func arg(state []any, key string) any {
	for _, a := range state {
		if m, ok := a.(map[string]any); ok {
			if v, ok := m[key]; ok {
				return v
			}
		}
	}
	return nil
}

// TestSalt_FormulaRendersWhatRelayAccepts is what can be proven of the
// Salt formula without Salt (which neither Debian bookworm nor an
// unreachable PyPI provides here): its states and templates rendered
// with Debian's python3-jinja2 against pillar.example, as Salt's
// jinja|yaml renderer would, are YAML with the check_cmd, the secrets'
// modes and the reload wiring; the relay.toml it renders passes relay
// check --config-only, and the same pillar with a misspelt TLS mode is
// refused, which is what check_cmd relies on.
func TestSalt_FormulaRendersWhatRelayAccepts(t *testing.T) {
	provisioning(t)
	s := newToolsSystem(t)
	s.installRelay()
	s.putTree(filepath.Join("..", "contrib", "salt"), "/srv/salt")
	s.put(filepath.Join("testdata", "salt_render.py"), "/srv/salt_render.py")

	r := s.renderFormula("/srv/salt/relay/pillar.example", "systemd")
	conf := r.state("relay/config.sls", "relay-config", "file.managed")
	if arg(conf, "check_cmd") != "relay check --config-only -C" || arg(conf, "mode") != "0644" {
		t.Errorf("relay-config: %v", conf)
	}
	secret := r.state("relay/config.sls", "relay-secret-corp", "file.managed")
	if arg(secret, "mode") != "0640" || arg(secret, "user") != "root" || arg(secret, "group") != "relay" ||
		arg(secret, "show_changes") != false || arg(secret, "contents_pillar") != "relay:smarthosts:0:password" {
		t.Errorf("relay-secret-corp: %v", secret)
	}
	if fmt.Sprint(arg(conf, "watch_in")) != "[relay-service]" || fmt.Sprint(arg(r.state("relay/config.sls", "relay-restart-keys", "file.managed"), "watch_in")) != "[relay-restart]" {
		t.Errorf("with systemd, relay.toml and the restart keys want watch_in relay-service and relay-restart:\n%s", r.Text["relay/config.sls"])
	}
	svc := r.state("relay/service.sls", "relay-service", "service.running")
	if arg(svc, "reload") != true || arg(svc, "enable") != true {
		t.Errorf("relay-service: %v", svc)
	}
	for name, text := range r.Text {
		if strings.Contains(text, "correct-horse-battery-staple") {
			t.Errorf("%s holds the pillar's password:\n%s", name, text)
		}
	}

	// Without systemd (this chroot, a container): onchanges_in on the
	// SIGHUP commands, which run only when a file changed.
	r2 := s.renderFormula("/srv/salt/relay/pillar.example", "unknown")
	if got := fmt.Sprint(arg(r2.state("relay/config.sls", "relay-config", "file.managed"), "onchanges_in")); got != "[relay-service]" {
		t.Errorf("without systemd: relay-config onchanges_in %s", got)
	}
	if r2.state("relay/service.sls", "relay-service", "cmd.run") == nil {
		t.Errorf("without systemd: relay-service is not a cmd.run:\n%s", r2.Text["relay/service.sls"])
	}

	// The files as the states would write them, then relay's own check.
	s.write("/etc/relay/corp.secret", "correct-horse-battery-staple\n")
	s.write("/etc/relay/aliases", r.Text["relay/files/aliases.jinja"])
	s.write("/etc/relay/sender_map", r.Text["relay/files/sender_map.jinja"])
	s.write("/tmp/relay.toml.new", r.Text["relay/files/relay.toml.jinja"])
	s.must("chown root:relay /etc/relay/corp.secret && chmod 0640 /etc/relay/corp.secret && mkdir -p /run/secrets && touch /run/secrets/yandex")
	if out, err := s.run("relay check --config-only -C /tmp/relay.toml.new 2>&1"); err != nil || !strings.Contains(out, "/tmp/relay.toml.new: OK") {
		t.Errorf("the rendered relay.toml: %v\n%s\n%s", err, out, r.Text["relay/files/relay.toml.jinja"])
	}

	bad := strings.Replace(s.must("cat /srv/salt/relay/pillar.example"), "tls: starttls", "tls: startls", 1)
	s.write("/srv/bad-pillar.yaml", bad)
	rb := s.renderFormula("/srv/bad-pillar.yaml", "systemd")
	s.write("/tmp/relay.toml.bad", rb.Text["relay/files/relay.toml.jinja"])
	out, err := s.run("relay check --config-only -C /tmp/relay.toml.bad 2>&1; echo exit=$?")
	if err != nil || !strings.Contains(out, "exit=78") || !regexp.MustCompile(`/tmp/relay.toml.bad:\d+: smarthost\[1\].tls: must be`).MatchString(out) {
		t.Errorf("a misspelt TLS mode: %v\n%s", err, out)
	}
}

// saltCall runs salt-call with the formula and the pillar in /srv, and
// returns its output and the changed count of its summary ("" when none).
func (s *system) saltCall() (out, changed, failed string, err error) {
	out, err = s.run(`/opt/salt/bin/salt-call --local --retcode-passthrough --no-color \
		--file-root=/srv/salt --pillar-root=/srv/pillar state.apply relay 2>&1`)
	if m := regexp.MustCompile(`Succeeded:\s*\d+(?:\s*\(changed=(\d+)\))?`).FindStringSubmatch(out); m != nil {
		changed = m[1]
	}
	if m := regexp.MustCompile(`Failed:\s*(\d+)`).FindStringSubmatch(out); m != nil {
		failed = m[1]
	}
	return out, changed, failed, err
}

// saltPillar is the pillar for a system that delivers to the e2e
// smarthost.
func saltPillar(env map[string]string, tls string) string {
	return fmt.Sprintf(`relay:
  package:
    source: path
    path: %s
  domain: example.org
  smarthosts:
    - name: e2e
      host: %q
      port: %s
      tls: %q
      tls_fingerprint: %q
      username: %q
      password: %q
  aliases:
    root: admin@example.test
  mode: daemon
  probe: true
`, debInRoot, env["SMARTHOST_HOST"], env["SMARTHOST_PORT_STARTTLS"], tls, "sha256:"+env["SMARTHOST_CERT_SHA256"], env["SMARTHOST_USER"], env["SMARTHOST_PASS"])
}

// TestSalt_Formula applies contrib/salt/relay with salt-call --local, as
// TestAnsible_Role applies the role. It needs Salt from PyPI
// (RELAY_SALT_PIP=1, set by .ci/run when pip reaches PyPI): without it,
// it skips and says so loudly.
func TestSalt_Formula(t *testing.T) {
	env := provisioning(t)
	if os.Getenv("RELAY_SALT_PIP") == "" {
		t.Skip("SALT NOT RUN: the real Salt suite needs salt " + saltVersion + " from PyPI (not in Debian bookworm) and .ci/run found PyPI unreachable (RELAY_SALT_PIP unset); only TestSalt_FormulaRendersWhatRelayAccepts ran")
	}
	s := newToolsSystem(t)
	if out, err := s.run("python3 -m venv /opt/salt && timeout 600 /opt/salt/bin/pip install -q salt==" + saltVersion + " 2>&1"); err != nil {
		t.Fatalf("pip install salt==%s in the Debian root: %v\n%s", saltVersion, err, out)
	}
	s.putTree(filepath.Join("..", "contrib", "salt"), "/srv/salt")
	s.write("/srv/pillar/top.sls", "base:\n  '*':\n    - relay\n")
	s.write("/srv/pillar/relay.sls", saltPillar(env, "starttls"))
	var outputs []string

	t.Run("first run installs, configures and delivers", func(t *testing.T) {
		out, changed, failed, err := s.saltCall()
		outputs = append(outputs, out)
		if err != nil || failed != "0" || changed == "" {
			t.Fatalf("salt-call: %v, changed=%q failed=%q\n%s", err, changed, failed, out)
		}
		if st := s.must("stat -c '%a %U:%G' /etc/relay/e2e.secret"); st != "640 root:relay\n" {
			t.Errorf("the secret: %q", st)
		}
		s.submitted(t, env, "Salt")
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		out, changed, failed, err := s.saltCall()
		outputs = append(outputs, out)
		if err != nil || failed != "0" || changed != "" {
			t.Errorf("second run: %v, changed=%q failed=%q\n%s", err, changed, failed, out)
		}
	})

	t.Run("misspelt TLS mode fails at check_cmd and keeps the working file", func(t *testing.T) {
		before := s.must("sha256sum /etc/relay/relay.toml")
		s.write("/srv/pillar/relay.sls", saltPillar(env, "startls"))
		out, _, failed, err := s.saltCall()
		outputs = append(outputs, out)
		if err == nil || failed == "0" || !strings.Contains(out, "smarthost[1].tls: must be") {
			t.Errorf("a misspelt TLS mode: %v, failed=%q\n%s", err, failed, out)
		}
		if after := s.must("sha256sum /etc/relay/relay.toml"); after != before {
			t.Errorf("relay.toml changed")
		}
		s.write("/srv/pillar/relay.sls", saltPillar(env, "starttls"))
	})

	t.Run("the password never appears in the output", func(t *testing.T) {
		for i, out := range outputs {
			if strings.Contains(out, env["SMARTHOST_PASS"]) {
				t.Errorf("run %d shows the password:\n%s", i+1, out)
			}
		}
	})
}
