package e2e_test

// AUTH mechanisms against the real Postfix + Dovecot: the AUTH ports of
// smarthost.sh offer one mechanism each (CRAM-MD5, SCRAM-SHA-256, PLAIN,
// LOGIN) or all four. Postfix logs the mechanism of each accepted message
// (sasl_method=…), which is the proof of what relay used.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// saslMethods returns the sasl_method of each message Postfix accepted on
// the AUTH port after mark.
func saslMethods(t *testing.T, mark int64, port int) []string {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`postfix/auth-%d/smtpd\[\d+\]: \w+: client=\S+, sasl_method=(\S+), sasl_username=%s`,
		port, regexp.QuoteMeta(env["SMARTHOST_USER"])))
	var out []string
	for _, m := range re.FindAllStringSubmatch(postfixLogSince(t, mark), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestAuth_EachMechanism: relay delivers through each AUTH port, with the
// mechanism chosen automatically and named in auth; on the port that offers
// all four, the automatic choice is SCRAM-SHA-256 and a named one wins.
func TestAuth_EachMechanism(t *testing.T) {
	needHarness(t)
	for _, tc := range []struct {
		port, auth, want string
	}{
		{"SMARTHOST_PORT_CRAM_MD5", "", "CRAM-MD5"},
		{"SMARTHOST_PORT_CRAM_MD5", "cram-md5", "CRAM-MD5"},
		{"SMARTHOST_PORT_SCRAM_SHA_256", "", "SCRAM-SHA-256"},
		{"SMARTHOST_PORT_SCRAM_SHA_256", "scram-sha-256", "SCRAM-SHA-256"},
		{"SMARTHOST_PORT_AUTH_PLAIN", "", "PLAIN"},
		{"SMARTHOST_PORT_AUTH_PLAIN", "plain", "PLAIN"},
		{"SMARTHOST_PORT_AUTH_LOGIN", "", "LOGIN"},
		{"SMARTHOST_PORT_AUTH_LOGIN", "login", "LOGIN"},
		{"SMARTHOST_PORT_AUTH_ALL", "", "SCRAM-SHA-256"},
		{"SMARTHOST_PORT_AUTH_ALL", "cram-md5", "CRAM-MD5"},
		{"SMARTHOST_PORT_AUTH_ALL", "login", "LOGIN"},
	} {
		t.Run(strings.TrimPrefix(tc.port, "SMARTHOST_PORT_")+"/auth="+tc.auth, func(t *testing.T) {
			port := envInt(t, tc.port)
			sh := okSmarthost(t, dirFor(t))
			sh.Port, sh.Auth = port, tc.auth
			c := newCase(t, sh, "")
			user := env["SMARTHOST_USER"]
			m := newMsg(t, user, []string{"mech@example.org"}, "AUTH "+tc.want+"\n")
			mark := logMark(t)
			c.submit(m, user, "mech@example.org")
			r, lines := c.queueRun()
			if r.Code != 0 {
				t.Fatalf("queue run: %v", r)
			}
			if rl := recipientLines(lines); len(rl) != 1 || rl[0].kv["status"] != "sent" {
				t.Fatalf("log lines %v, want one status=sent", lines)
			}
			if n := len(waitCopies(t, 30*time.Second, m.ID)[m.ID]); n != 1 {
				t.Errorf("%d copies in the Maildir, want 1", n)
			}
			c.expectEmptyQueue()
			if got := saslMethods(t, mark, port); len(got) != 1 || got[0] != tc.want {
				t.Errorf("Postfix logged sasl_method %q on port %d, want %s", got, port, tc.want)
			}
		})
	}
}

// TestAuth_CRAMMD5_WrongPassword: a wrong password on the CRAM-MD5 port
// defers with the explanation; no PLAIN is tried (the port offers none).
func TestAuth_CRAMMD5_WrongPassword(t *testing.T) {
	needHarness(t)
	port := envInt(t, "SMARTHOST_PORT_CRAM_MD5")
	dir := dirFor(t)
	sh := okSmarthost(t, dir)
	sh.Port = port
	sh.PasswordFile = secretFile(t, dir, env["SMARTHOST_PASS2"]) // alice's: wrong for robot
	c := newCase(t, sh, "")
	user := env["SMARTHOST_USER"]
	m := newMsg(t, user, []string{"cram@example.org"}, "wrong password\n")
	mark := logMark(t)
	c.submit(m, user, "cram@example.org")
	_, lines := c.queueRun()
	expectDeferred(t, lines, 1, "535")
	for _, l := range recipientLines(lines) {
		contains(t, "hint", l.kv["hint"], "refused the username or password")
	}
	expectStillQueued(t, c, 1, "535")
	ss := sessions(t, mark, fmt.Sprintf("auth-%d", port))
	if len(ss) != 1 {
		t.Fatalf("%d sessions on port %d, want 1", len(ss), port)
	}
	if cmds := ss[0].commands(); cmds["auth"] != "0/1" || cmds["mail"] != "" {
		t.Errorf("Postfix's counters %v, want one failed AUTH and no MAIL", cmds)
	}
	contains(t, "Postfix log", ss[0].String(), "SASL CRAM-MD5 authentication failed")
}

// TestAuth_ProbeNamesMechanism: relay probe on the port with all four
// says SCRAM-SHA-256; -v shows it, redacted.
func TestAuth_ProbeNamesMechanism(t *testing.T) {
	needHarness(t)
	port := envInt(t, "SMARTHOST_PORT_AUTH_ALL")
	sh := okSmarthost(t, dirFor(t))
	sh.Port = port
	c := newCase(t, sh, "")
	r := c.probeRun("-v")
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0:\n%v", r.Code, r)
	}
	contains(t, "report", r.Stdout, "AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256", "  AUTH:         SCRAM-SHA-256 as "+env["SMARTHOST_USER"]+": ok\n")
	contains(t, "-v dialogue", r.Stderr, "AUTH SCRAM-SHA-256 ****\r\n334 ", "\r\n****\r\n235 ")
	noSecrets(t, "stdout", r.Stdout)
	noSecrets(t, "stderr", r.Stderr)
}

// TestAuth_FallbackToPlain_HashedPassword: a login whose password Dovecot
// keeps hashed, on the port that offers all four: relay tries SCRAM-SHA-256
// (refused: Dovecot cannot check it), then PLAIN, and delivers; Postfix's
// log shows both tries. Postfix drops the first session on go-smtp's "*"
// after the refusal ("non-SMTP command"), so PLAIN comes on a second one.
// relay probe says so too.
func TestAuth_FallbackToPlain_HashedPassword(t *testing.T) {
	needHarness(t)
	if env["SMARTHOST_HASHED_USER"] == "" {
		t.Fatal("the smarthost's env has no SMARTHOST_HASHED_USER: restart it with the current e2e/smarthost.sh")
	}
	port := envInt(t, "SMARTHOST_PORT_AUTH_ALL")
	user := env["SMARTHOST_HASHED_USER"]
	dir := dirFor(t)
	sh := okSmarthost(t, dir)
	sh.Port, sh.Username = port, user
	sh.PasswordFile = secretFile(t, dir, env["SMARTHOST_HASHED_PASS"])
	c := newCase(t, sh, "")
	m := newMsg(t, user, []string{"hashed@example.org"}, "fallback\n")
	mark := logMark(t)
	c.submit(m, user, "hashed@example.org")
	r, lines := c.queueRun()
	if rl := recipientLines(lines); len(rl) != 1 || rl[0].kv["status"] != "sent" {
		t.Fatalf("log lines %v, want one status=sent:\n%v", lines, r)
	}
	if n := len(waitCopies(t, 30*time.Second, m.ID)[m.ID]); n != 1 {
		t.Errorf("%d copies in the Maildir, want 1", n)
	}
	ss := sessions(t, mark, fmt.Sprintf("auth-%d", port))
	if len(ss) != 2 {
		t.Fatalf("%d sessions on port %d, want 2:\n%v", len(ss), port, ss)
	}
	contains(t, "Postfix log, first session", ss[0].String(), "SASL SCRAM-SHA-256 authentication failed")
	contains(t, "Postfix log, second session", ss[1].String(), "sasl_method=PLAIN, sasl_username="+user)
	if c0, c1 := ss[0].commands(), ss[1].commands(); c0["auth"] != "0/1" || c0["mail"] != "" || c1["auth"] != "1" || c1["mail"] != "1" {
		t.Errorf("Postfix's counters %v then %v, want SCRAM refused, then PLAIN accepted and one MAIL", c0, c1)
	}

	p := c.probeRun("-v")
	if p.Code != 0 {
		t.Fatalf("probe: exit %d:\n%v", p.Code, p)
	}
	contains(t, "probe report", p.Stdout, "  AUTH:         SCRAM-SHA-256, then PLAIN (on a new connection) as "+user+": ok\n")
	// Dovecot refuses at once, on the client-first message; Postfix
	// drops the session on go-smtp's "*".
	contains(t, "-v dialogue", p.Stderr, "AUTH SCRAM-SHA-256 ****\r\n535 5.7.8 ", "*\r\n221 ", "AUTH PLAIN ****\r\n235 ")
	for _, out := range []string{r.Stdout, r.Stderr, p.Stdout, p.Stderr} {
		if strings.Contains(out, env["SMARTHOST_HASHED_PASS"]) {
			t.Errorf("relay printed the password:\n%s", out)
		}
	}
}
