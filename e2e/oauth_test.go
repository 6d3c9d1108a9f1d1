package e2e_test

// OAuth 2.0 against the real Postfix + Dovecot: Dovecot's oauth2 passdb
// checks every XOAUTH2 and OAUTHBEARER token by introspection at the
// authorization server this test starts (internal/testoauth) on the port
// smarthost.sh names; Postfix offers what Dovecot offers on the OAuth
// ports. A device login approved by the test delivers; the mail goes on
// after the access token expired (refreshed, the refresh token rotated);
// a revoked grant leaves the mail queued with the explanation and relay
// check exits 75 naming relay oauth login.

import (
	"bufio"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testoauth"
)

// refreshMargin is oauth.RefreshMargin: a cached token closer than this to
// its expiry is refreshed before use.
const refreshMargin = 2 * time.Minute

func TestOAuth_DovecotIntrospection(t *testing.T) {
	needHarness(t)
	if env["SMARTHOST_OAUTH_AS_PORT"] == "" {
		t.Fatal("the smarthost's env file lacks SMARTHOST_OAUTH_AS_PORT: restart it with this e2e/smarthost.sh")
	}
	user := env["SMARTHOST_USER"]
	// The login's token outlives the refresh margin by a few seconds:
	// used from the cache first, expired (for relay) soon after.
	const spare = 8 * time.Second
	as := testoauth.NewOn(t, "127.0.0.1:"+env["SMARTHOST_OAUTH_AS_PORT"], testoauth.Script{
		Manual: true, Rotate: true, User: user, ClientID: "relay-e2e", AccessLifetime: refreshMargin + spare})
	sh := okSmarthost(t, dirFor(t))
	sh.PasswordFile, sh.Name = "", "oauth-e2e"
	sh.Port = envInt(t, "SMARTHOST_PORT_OAUTH")
	sh.OAuth = fmt.Sprintf("provider = \"generic\"\nflow = \"device\"\nclient_id = \"relay-e2e\"\n"+
		"device_authorization_url = %q\ntoken_url = %q\nscopes = [\"smtp\", \"offline_access\"]\n", as.URL+"/device", as.URL+"/token")
	c := newCase(t, sh, "")
	var outputs []string
	noTokens := func() {
		t.Helper()
		all := strings.Join(outputs, "\n")
		for _, tok := range as.Issued() {
			if strings.Contains(all, tok) {
				t.Errorf("a token (%s…) shows in relay's output", tok[:5])
			}
		}
	}

	// relay oauth login: the device flow, approved by the test.
	login := exec.Command(relayBin, "-C", c.conf, "oauth", "login", "oauth-e2e")
	login.Env = cleanEnv()
	out, _ := login.StdoutPipe()
	var loginErr strings.Builder
	login.Stderr = &loginErr
	if err := login.Start(); err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		shown.WriteString(sc.Text() + "\n")
		if code := regexp.MustCompile(`\bUC-\d{4}\b`).FindString(sc.Text()); code != "" {
			as.Approve(code)
		}
	}
	if err := login.Wait(); err != nil {
		t.Fatalf("relay oauth login: %v\n%s%s", err, shown.String(), loginErr.String())
	}
	outputs = append(outputs, shown.String(), loginErr.String())
	loggedIn := time.Now() // the token was issued before

	send := func(what string) (result, []logLine, msg) {
		t.Helper()
		m := newMsg(t, user, []string{"oauth@example.org"}, what+"\n")
		c.submit(m, user, "oauth@example.org")
		r, lines := c.queueRun()
		outputs = append(outputs, r.Stdout+r.Stderr)
		return r, lines, m
	}
	delivered := func(port int, mech string, what string) {
		t.Helper()
		mark := logMark(t)
		r, lines, m := send(what)
		if rl := recipientLines(lines); r.Code != 0 || len(rl) != 1 || rl[0].kv["status"] != "sent" {
			t.Fatalf("%s: queue run %v, log %v", what, r, lines)
		}
		if n := len(waitCopies(t, 30*time.Second, m.ID)[m.ID]); n != 1 {
			t.Errorf("%s: %d copies in the Maildir, want 1", what, n)
		}
		if got := saslMethods(t, mark, port); len(got) != 1 || got[0] != mech {
			t.Errorf("%s: Postfix logged sasl_method %q on port %d, want %s", what, got, port, mech)
		}
	}

	// The token of the login, from the cache: OAUTHBEARER where both are
	// offered, XOAUTH2 where only it is.
	delivered(sh.Port, "OAUTHBEARER", "with the login's token, OAUTHBEARER")
	sh.Port = envInt(t, "SMARTHOST_PORT_XOAUTH2")
	c.writeConfig(sh, "")
	delivered(sh.Port, "XOAUTH2", "with the login's token, XOAUTH2")
	if n := as.Count("refresh_token"); n != 0 {
		t.Errorf("%d refreshes while the login's token was fresh, want 0", n)
	}

	// The access token expires: relay refreshes it (the refresh token
	// rotates) and the mail goes on. The server forgets the old token too.
	time.Sleep(time.Until(loggedIn.Add(spare + time.Second)))
	as.ExpireAccess()
	delivered(sh.Port, "XOAUTH2", "after the access token expired")
	if n := as.Count("refresh_token"); n != 1 {
		t.Errorf("%d refreshes after the expiry, want 1", n)
	}

	// The grant is revoked. The cached token is refused by Dovecot, then
	// the refresh by the token endpoint: the mail waits, explained.
	as.RevokeAll()
	_, lines, _ := send("after the grant was revoked")
	expectDeferred(t, lines, 1, "535", "a valid token of relay oauth")
	for _, l := range recipientLines(lines) {
		contains(t, "hint", l.kv["hint"], "refused a valid OAuth access token")
	}
	r := run(t, nil, relayBin, "-C", c.conf, "queue", "flush")
	outputs = append(outputs, r.Stdout+r.Stderr)
	_, lines = c.queueRun()
	rl := recipientLines(lines)
	if len(rl) != 1 || rl[0].kv["status"] != "deferred" || rl[0].kv["stage"] != "local" {
		t.Fatalf("after the revocation: %v, want one deferral at stage local", lines)
	}
	contains(t, "reply", rl[0].kv["reply"], "refused the grant (invalid_grant", "run relay oauth login oauth-e2e")
	contains(t, "hint", rl[0].kv["hint"], "relay has no usable OAuth grant")
	if q := c.queueList(); len(q) != 1 || q[0].QueueName != "deferred" || !strings.Contains(q[0].Recipients[0].DelayReason, "relay oauth login oauth-e2e") {
		t.Errorf("queue: %+v, want the message deferred, naming relay oauth login oauth-e2e", q)
	}
	r = run(t, nil, relayBin, "-C", c.conf, "check")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 75 || !strings.Contains(r.Stderr, "relay oauth login oauth-e2e") {
		t.Errorf("relay check: exit %d, want 75 naming relay oauth login oauth-e2e:\n%s", r.Code, r.Stderr)
	}
	r = run(t, nil, relayBin, "-C", c.conf, "oauth", "status", "oauth-e2e")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 75 || !strings.Contains(r.Stdout, "invalid_grant") {
		t.Errorf("relay oauth status: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	noTokens()
}
