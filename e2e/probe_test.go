package e2e_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// relay probe against the real smarthost: every step shown, every failure
// explained, exit 0 only when all smarthosts work, and never a secret in
// what it prints (the -v dialogue included; TestZZ_NoPasswordInOutput
// greps all of it again, since it runs through run()).

var probeMessageID = regexp.MustCompile(`test message: sent to \S+ as <([^>]+)>: 250 `)

// probeRun runs relay probe with args for c's configuration.
func (c *tc) probeRun(args ...string) result {
	c.t.Helper()
	r := run(c.t, nil, relayBin, append([]string{"-C", c.conf, "probe"}, args...)...)
	c.t.Logf("relay probe %s: exit %d\n%s", strings.Join(args, " "), r.Code, r.Stdout)
	if r.Stderr != "" {
		c.t.Logf("stderr:\n%s", r.Stderr)
	}
	return r
}

// editSmarthost inserts lines into the [[smarthost]] table of c's
// configuration (which writeConfig may follow with other tables).
func (c *tc) editSmarthost(lines string) {
	c.t.Helper()
	b, err := os.ReadFile(c.conf)
	if err != nil {
		c.t.Fatal(err)
	}
	s := strings.Replace(string(b), "[[smarthost]]\n", "[[smarthost]]\n"+lines, 1)
	if err := os.WriteFile(c.conf, []byte(s), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// noSecrets fails when out shows a test password, plain or as the base64
// of AUTH PLAIN or AUTH LOGIN.
func noSecrets(t *testing.T, what, out string) {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	for _, pair := range [][2]string{{"SMARTHOST_USER", "SMARTHOST_PASS"}, {"SMARTHOST_USER", "SMARTHOST_PASS2"}, {"SMARTHOST_USER2", "SMARTHOST_PASS2"}} {
		user, pw := env[pair[0]], env[pair[1]]
		for _, s := range []string{pw, b64([]byte(pw)), b64([]byte("\x00" + user + "\x00" + pw))} {
			if strings.Contains(out, s) {
				t.Errorf("%s contains the secret %q (a form of %s)", what, s, pair[1])
			}
		}
	}
}

// explained checks that the report has a plain-words explanation that
// mentions each of words.
func explained(t *testing.T, out string, words ...string) {
	t.Helper()
	_, e, ok := strings.Cut(out, "  explanation:  ")
	if !ok || strings.TrimSpace(e) == "" {
		t.Errorf("the report has no explanation")
		return
	}
	e = strings.Join(strings.Fields(e), " ")
	for _, w := range words {
		if !strings.Contains(e, w) {
			t.Errorf("the explanation %q does not mention %q", e, w)
		}
	}
}

func TestProbe(t *testing.T) {
	needHarness(t)
	port := env["SMARTHOST_PORT_STARTTLS"]
	service := "starttls-" + port
	user := env["SMARTHOST_USER"]

	t.Run("success", func(t *testing.T) {
		c := newCase(t, okSmarthost(t, dirFor(t)), "")
		mark := logMark(t)
		r := c.probeRun("-v")
		if r.Code != 0 {
			t.Fatalf("exit %d, want 0:\n%v", r.Code, r)
		}
		out := r.Stdout
		contains(t, "report", out,
			fmt.Sprintf(`smarthost %q %s:%s (starttls)`, env["SMARTHOST_HOST"], env["SMARTHOST_HOST"], port),
			"  route:        direct\n",
			"  connected:    "+env["SMARTHOST_HOST"]+":"+port+" in ",
			"  certificate:  subject CN="+env["SMARTHOST_NAME"]+",", "; issuer CN=", "; expires ",
			"verified for "+env["SMARTHOST_NAME"]+" against tls_ca_file "+env["SMARTHOST_CA"],
			"  fingerprint:  sha256:"+env["SMARTHOST_CERT_SHA256"]+"\n",
			"AUTH PLAIN LOGIN",
			"  AUTH:         PLAIN as "+user+": ok\n",
			"  result:       OK\n")
		if !regexp.MustCompile(`(?m)^  TLS:          TLSv1\.[23], TLS_\w+$`).MatchString(out) {
			t.Errorf("no TLS line with TLSv1.3 (or 1.2) and a cipher suite")
		}
		if strings.Contains(out, "test message") {
			t.Errorf("a test message without --send-to")
		}
		// -v: the dialogue on stderr, AUTH redacted.
		contains(t, "-v dialogue", r.Stderr, "STARTTLS\r\n220 ", "EHLO ", "AUTH PLAIN ****\r\n235 ", "QUIT")
		noSecrets(t, "stdout", out)
		noSecrets(t, "stderr", r.Stderr)
		// Postfix saw one authenticated session and no mail.
		ss := sessions(t, mark, service)
		if len(ss) != 1 {
			t.Fatalf("%d sessions in Postfix's log, want 1", len(ss))
		}
		if cmds := ss[0].commands(); cmds["auth"] != "1" || cmds["mail"] != "" || cmds["starttls"] != "1" {
			t.Errorf("Postfix's counters %v, want starttls=1 auth=1 and no mail", cmds)
		}
	})

	t.Run("send-to", func(t *testing.T) {
		c := newCase(t, okSmarthost(t, dirFor(t)), "")
		r := c.probeRun("--send-to", "bob@example.org")
		if r.Code != 0 {
			t.Fatalf("exit %d, want 0:\n%v", r.Code, r)
		}
		m := probeMessageID.FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("no \"test message: sent to … as <ID>: 250\" line")
		}
		if !strings.Contains(r.Stdout, "test message: sent to bob@example.org as <") || !strings.Contains(r.Stdout, "queued as ") {
			t.Errorf("the test message line should name the recipient and the smarthost's reply")
		}
		copies := waitCopies(t, 30*time.Second, m[1])[m[1]]
		if len(copies) != 1 {
			t.Fatalf("test message <%s> in the Maildir %d time(s), want once", m[1], len(copies))
		}
		body, err := os.ReadFile(copies[0].path)
		if err != nil {
			t.Fatal(err)
		}
		host, _ := os.Hostname()
		contains(t, "delivered test message", string(body),
			"Subject: relay probe from "+host+"\n", "From: "+user+"\n", "To: bob@example.org\n", "\nDate: ",
			"Authenticated sender: "+user)
		// Never queued.
		if q := c.queueList(); len(q) != 0 {
			t.Errorf("probe queued %d message(s)", len(q))
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		sh := okSmarthost(t, dirFor(t))
		// Alice's real password for robot: a secret that must stay secret
		// in the error path, in the report and the dialogue alike.
		sh.PasswordFile = secretFile(t, dirFor(t), env["SMARTHOST_PASS2"])
		c := newCase(t, sh, "")
		c.editSmarthost("auth = \"login\"\n") // 334 challenges in the -v dialogue
		mark := logMark(t)
		r := c.probeRun("-v", "--send-to", "bob@example.org")
		if r.Code != 69 {
			t.Errorf("exit %d, want 69 (EX_UNAVAILABLE)", r.Code)
		}
		contains(t, "report", r.Stdout,
			"  TLS:          TLSv1.",
			"  AUTH:         LOGIN as "+user+": failed: 535 5.7.8 ",
			"  result:       FAILED at AUTH\n")
		explained(t, r.Stdout, "password")
		if strings.Contains(r.Stdout, "test message") {
			t.Errorf("a test message was tried after AUTH failed")
		}
		contains(t, "-v dialogue", r.Stderr, "AUTH LOGIN\r\n334 ", "\r\n****\r\n334 ", "\r\n****\r\n535 ")
		noSecrets(t, "stdout", r.Stdout)
		noSecrets(t, "stderr", r.Stderr)
		ss := sessions(t, mark, service)
		expectNoMail(t, ss)
		for _, s := range ss {
			if a := s.commands()["auth"]; a != "0/1" {
				t.Errorf("Postfix's auth counter %q, want one refused AUTH: %s", a, s.disconnect)
			}
		}
	})

	t.Run("untrusted CA", func(t *testing.T) {
		sh := okSmarthost(t, dirFor(t))
		sh.CAFile = env["SMARTHOST_OTHER_CA"]
		c := newCase(t, sh, "")
		mark := logMark(t)
		r := c.probeRun()
		if r.Code != 69 {
			t.Errorf("exit %d, want 69", r.Code)
		}
		contains(t, "report", r.Stdout,
			"  TLS:          failed: ", "certificate signed by unknown authority",
			// The certificate is described although it failed.
			"  certificate:  subject CN="+env["SMARTHOST_NAME"]+",", "; issuer CN=",
			"NOT verified: for "+env["SMARTHOST_NAME"]+" against tls_ca_file "+env["SMARTHOST_OTHER_CA"],
			"  fingerprint:  sha256:"+env["SMARTHOST_CERT_SHA256"]+"\n",
			"  result:       FAILED at TLS\n")
		explained(t, r.Stdout, "tls_ca_file")
		if strings.Contains(r.Stdout, "AUTH:") {
			t.Errorf("AUTH reported after the certificate failed")
		}
		expectNoMailOrAuth(t, sessions(t, mark, service), service)
	})

	t.Run("plain port", func(t *testing.T) {
		sh := okSmarthost(t, dirFor(t))
		sh.Port = envInt(t, "SMARTHOST_PORT_PLAIN") // AUTH in clear, no STARTTLS
		c := newCase(t, sh, "")
		mark := logMark(t)
		r := c.probeRun("-v")
		if r.Code != 69 {
			t.Errorf("exit %d, want 69", r.Code)
		}
		contains(t, "report", r.Stdout,
			"  TLS:          failed: the server does not offer STARTTLS",
			"AUTH PLAIN LOGIN", "   (before TLS)\n",
			"  result:       FAILED at TLS\n")
		explained(t, r.Stdout, "STARTTLS")
		if strings.Contains(r.Stdout, "AUTH:") || regexp.MustCompile(`(?mi)^AUTH `).MatchString(r.Stderr) {
			t.Errorf("AUTH tried without TLS")
		}
		expectNoMailOrAuth(t, sessions(t, mark, "plain-"+env["SMARTHOST_PORT_PLAIN"]), "plain port")
	})

	t.Run("one of two fails", func(t *testing.T) {
		c := newCase(t, okSmarthost(t, dirFor(t)), "")
		b, err := os.ReadFile(c.conf)
		if err != nil {
			t.Fatal(err)
		}
		// A second smarthost, first in order: the wrong-name port.
		extra := fmt.Sprintf("[[smarthost]]\nname = \"wrongname\"\nhost = %q\nport = %s\ntls = \"starttls\"\ntls_server_name = %q\ntls_ca_file = %q\n\n",
			env["SMARTHOST_HOST"], env["SMARTHOST_PORT_WRONGNAME"], env["SMARTHOST_NAME"], env["SMARTHOST_CA"])
		s := strings.Replace(string(b), "[[smarthost]]\n", extra+"[[smarthost]]\n", 1)
		if err := os.WriteFile(c.conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		r := c.probeRun()
		if r.Code != 69 {
			t.Errorf("exit %d, want 69 when one smarthost fails", r.Code)
		}
		first, second, ok := strings.Cut(r.Stdout, "\n\n")
		if !ok {
			t.Fatalf("want two reports")
		}
		contains(t, "first report", first, `smarthost "wrongname"`, "certificate is valid for "+env["SMARTHOST_WRONG_NAME"], "FAILED at TLS")
		explained(t, first, "tls_server_name")
		contains(t, "second report", second, "  result:       OK\n")
		contains(t, "stderr", r.Stderr, "1 of 2")
	})

	t.Run("configuration error", func(t *testing.T) {
		c := newCase(t, okSmarthost(t, dirFor(t)), "")
		b, err := os.ReadFile(c.conf)
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(b), `tls = "starttls"`, `tls = "sometimes"`, 1)
		if err := os.WriteFile(c.conf, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := c.probeRun(); r.Code != 78 {
			t.Errorf("exit %d, want 78 (EX_CONFIG)", r.Code)
		}
	})
}
