package main_test

// relay oauth with the real binary: a device login approved by the test,
// delivery with refresh-token rotation, a SIGKILL between storing the
// rotated token and using it, a revoked grant, and no token in any output
// (oauth login and status, relay check, the log, sendmail -v, probe).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testoauth"
	"github.com/relaymail/relay/internal/testsmtp"
)

// oauthEnv is a relay whose smarthost "acct" logs in with OAuth against
// the authorization server as (device flow, rotation), at a test
// smarthost that accepts the tokens as says are live; hold, when set,
// holds an AUTH until it is closed.
type oauthEnv struct {
	*testbin.Env
	as   *testoauth.Server
	srv  *testsmtp.FaultServer
	log  string
	mu   sync.Mutex
	hold chan struct{} // AUTH waits on it while set
	seen chan struct{} // an AUTH arrived while hold was set
}

func newOAuthEnv(t *testing.T) *oauthEnv {
	e := &oauthEnv{as: testoauth.New(t, testoauth.Script{Manual: true, Rotate: true, AccessLifetime: time.Minute})}
	e.srv = testsmtp.NewFaultServer(t, testsmtp.ServerConfig{AuthMechs: []string{"XOAUTH2"}, AllowInsecureAuth: true,
		AuthServer: testsmtp.TokenAuth(func(user, tok string) bool {
			e.mu.Lock()
			hold, seen := e.hold, e.seen
			e.mu.Unlock()
			if hold != nil {
				close(seen)
				<-hold
			}
			return user == "robot@example.test" && e.as.Valid(tok)
		})})
	dir := t.TempDir()
	e.log = filepath.Join(dir, "relay.log")
	e.Env = testbin.NewEnv(t, fmt.Sprintf(`[[smarthost]]
name = "acct"
host = "127.0.0.1"
port = %d
tls = "none"
username = "robot@example.test"
[smarthost.oauth]
provider = "generic"
flow = "device"
client_id = "relay-test-client"
device_authorization_url = "%s/device"
token_url = "%s/token"
scopes = ["mail.send", "offline_access"]
[daemon]
detached_delivery = false
[log]
to = %q
`, e.srv.Port, e.as.URL, e.as.URL, e.log))
	return e
}

var userCode = regexp.MustCompile(`\bUC-\d{4}\b`)

// login runs relay oauth login acct and approves the code it shows.
func (e *oauthEnv) login(t *testing.T) string {
	t.Helper()
	cmd := e.Cmd("relay", "oauth", "login", "acct")
	out, _ := cmd.StdoutPipe()
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		if c := userCode.FindString(sc.Text()); c != "" && !e.as.Approve(c) {
			t.Errorf("no device code for %s", c)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("relay oauth login: %v\n%s%s", err, all.String(), errb.String())
	}
	return all.String() + errb.String()
}

// grant reads the token file.
func (e *oauthEnv) grant(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.Spool, "oauth", "acct.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	json.Unmarshal(b, &m)
	return m
}

// noTokens fails when any token the server issued shows in out.
func (e *oauthEnv) noTokens(t *testing.T, what, out string) {
	t.Helper()
	for _, tok := range e.as.Issued() {
		if strings.Contains(out, tok) {
			t.Errorf("%s shows a token (%s…):\n%s", what, tok[:5], out)
		}
	}
}

func TestOAuth_LoginDeliverRotateSIGKILLRevoke(t *testing.T) {
	e := newOAuthEnv(t)
	var outputs []string
	outputs = append(outputs, e.login(t))
	fi, err := os.Stat(filepath.Join(e.Spool, "oauth", "acct.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v", err, fi)
	}

	// Delivery: the access token is within its margin, so it is refreshed
	// and the refresh token rotated.
	r := testbin.Run(e.Cmd("sendmail", "-v", "a@example.test"), "Subject: one\n\nhello\n")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 0 || e.srv.DeliveredTo("a@example.test") != 1 {
		t.Fatalf("sendmail -v: exit %d\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "AUTH XOAUTH2") {
		t.Errorf("sendmail -v does not show the AUTH line:\n%s", r.Stderr)
	}

	// SIGKILL after the rotated token is stored, while it is used.
	r = testbin.Run(e.Cmd("sendmail", "b@example.test"), "Subject: two\n\nhello\n")
	if r.Code != 0 {
		t.Fatalf("sendmail: %d %s", r.Code, r.Stderr)
	}
	e.mu.Lock()
	e.hold, e.seen = make(chan struct{}), make(chan struct{})
	hold, seen := e.hold, e.seen
	e.mu.Unlock()
	run := e.Cmd("relay", "queue", "run")
	var runOut strings.Builder
	run.Stdout, run.Stderr = &runOut, &runOut
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		run.Process.Kill()
		t.Fatalf("no AUTH came:\n%s", runOut.String())
	}
	issued := e.as.Issued()
	newest := issued[len(issued)-1]
	if got := e.grant(t)["refresh_token"]; got != newest {
		t.Errorf("while the new access token was in use, the token file did not hold the rotated refresh token")
	}
	run.Process.Kill()
	run.Wait()
	e.mu.Lock()
	e.hold = nil
	e.mu.Unlock()
	close(hold)
	outputs = append(outputs, runOut.String())
	if e.srv.DeliveredTo("b@example.test") != 0 {
		t.Fatal("the message went before the kill")
	}
	// The old refresh token is dead at the server: only the stored one
	// can deliver now.
	r = testbin.Run(e.Cmd("relay", "queue", "flush", "-v"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if e.srv.DeliveredTo("b@example.test") != 1 {
		t.Fatalf("after the SIGKILL the message was not delivered (exit %d):\n%s", r.Code, r.Stderr)
	}

	r = testbin.Run(e.Cmd("relay", "oauth", "status", "acct"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 0 || !strings.Contains(r.Stdout, "account:        robot@example.test (generic, flow device)") || !strings.Contains(r.Stdout, "access token:   valid until") {
		t.Errorf("relay oauth status: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = testbin.Run(e.Cmd("relay", "probe", "-v"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 0 || !regexp.MustCompile(`OAuth: +account robot@example.test \(generic, flow device\): access token valid until \S+ \((cached|new from the token endpoint)\)`).MatchString(r.Stdout) ||
		!strings.Contains(r.Stdout, "XOAUTH2 as robot@example.test: ok") {
		t.Errorf("relay probe: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = testbin.Run(e.Cmd("relay", "check"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 0 {
		t.Errorf("relay check: exit %d\n%s", r.Code, r.Stderr)
	}

	// A revoked grant: the mail waits, explained; relay check exits 75
	// naming the command.
	e.as.RevokeAll()
	testbin.Run(e.Cmd("sendmail", "c@example.test"), "Subject: three\n\nhello\n")
	r = testbin.Run(e.Cmd("relay", "queue", "run"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if e.srv.DeliveredTo("c@example.test") != 0 {
		t.Fatal("delivered with a revoked grant")
	}
	r = testbin.Run(e.Cmd("mailq"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if !strings.Contains(r.Stdout, "relay oauth login acct") {
		t.Errorf("mailq does not say what to run:\n%s", r.Stdout)
	}
	r = testbin.Run(e.Cmd("relay", "check"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 75 || !strings.Contains(r.Stderr, "relay oauth login acct") {
		t.Errorf("relay check: exit %d, want 75 naming relay oauth login acct\n%s", r.Code, r.Stderr)
	}
	r = testbin.Run(e.Cmd("relay", "oauth", "status"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 75 || !strings.Contains(r.Stdout, "invalid_grant") {
		t.Errorf("relay oauth status: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	log, _ := os.ReadFile(e.log)
	if !strings.Contains(string(log), "error: ") || !strings.Contains(string(log), "relay oauth login acct") {
		t.Errorf("the log has no error line naming the command:\n%s", log)
	}
	outputs = append(outputs, string(log))

	// A new login makes the waiting mail due at once (the flush after
	// it; with detached_delivery off here, the next run delivers it,
	// which without the flush would wait for its retry time).
	outputs = append(outputs, e.login(t))
	r = testbin.Run(e.Cmd("relay", "queue", "run"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if e.srv.DeliveredTo("c@example.test") != 1 {
		t.Errorf("after a new login the waiting message was not delivered:\n%s", r.Stderr)
	}
	r = testbin.Run(e.Cmd("relay", "oauth", "logout", "acct"), "")
	outputs = append(outputs, r.Stdout+r.Stderr)
	if r.Code != 0 {
		t.Errorf("logout: %d %s", r.Code, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(e.Spool, "oauth", "acct.json")); !os.IsNotExist(err) {
		t.Errorf("logout left the token file (%v)", err)
	}
	for i, out := range outputs {
		e.noTokens(t, fmt.Sprintf("output %d", i), out)
	}
}
