package e2e_test

// A test case: its relay.toml and smarthost settings, the messages it
// submits through sendmail, and its queue.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ------------------------------------------------------ configuration --

// smarthost is one [[smarthost]] table; zero fields are left out.
type smarthost struct {
	Host, ServerName, CAFile, Fingerprint string
	Port                                  int
	TLS                                   string
	Username                              string
	// Exactly one of the three password sources.
	PasswordFile    string
	PasswordCommand []string
	Password        string
	// Proxy is the smarthost's own proxy = "socks5://…" (socks_test.go).
	Proxy string
	// Auth is the smarthost's auth = "…" (auth_test.go).
	Auth string
	// Name is the smarthost's name = "…"; OAuth, the body of its
	// [smarthost.oauth] table (oauth_test.go).
	Name, OAuth string
}

// okSmarthost is the working STARTTLS configuration every test starts from.
func okSmarthost(t *testing.T, dir string) smarthost {
	return smarthost{
		Host:         env["SMARTHOST_HOST"],
		Port:         envInt(t, "SMARTHOST_PORT_STARTTLS"),
		TLS:          "starttls",
		ServerName:   env["SMARTHOST_NAME"],
		CAFile:       env["SMARTHOST_CA"],
		Username:     env["SMARTHOST_USER"],
		PasswordFile: secretFile(t, dir, env["SMARTHOST_PASS"]),
	}
}

// secretFile writes pw into a 0600 file of its own and returns its path.
func secretFile(t *testing.T, dir, pw string) string {
	t.Helper()
	p := filepath.Join(dir, "secret-"+token())
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tc is one test's private corner: its directory, spool and configuration.
type tc struct {
	t    *testing.T
	dir  string
	conf string
	// detached: leave detached delivery on (sendmail starts a runner).
	detached bool
}

// newCase makes a directory with a spool and writes relay.toml (0600) for
// sh; extra is appended to the top level (before the table).
func newCase(t *testing.T, sh smarthost, extra string) *tc {
	t.Helper()
	needHarness(t)
	dir := filepath.Join(workRoot, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+token()[:6])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &tc{t: t, dir: dir, conf: filepath.Join(dir, "relay.toml")}
	c.writeConfig(sh, extra)
	return c
}

// dirFor gives a test directory for secret files before newCase.
func dirFor(t *testing.T) string {
	t.Helper()
	needHarness(t)
	d := filepath.Join(workRoot, "secrets")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *tc) writeConfig(sh smarthost, extra string) {
	c.t.Helper()
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "spool = %s\ndomain = \"client.example.test\"\n%s\n", q(filepath.Join(c.dir, "spool")), extra)
	b.WriteString("[[smarthost]]\n")
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s = %s\n", k, q(v))
		}
	}
	kv("name", sh.Name)
	kv("host", sh.Host)
	if sh.Port != 0 {
		fmt.Fprintf(&b, "port = %d\n", sh.Port)
	}
	kv("tls", sh.TLS)
	kv("tls_server_name", sh.ServerName)
	kv("tls_ca_file", sh.CAFile)
	kv("tls_fingerprint", sh.Fingerprint)
	kv("username", sh.Username)
	kv("password_file", sh.PasswordFile)
	kv("password", sh.Password)
	kv("proxy", sh.Proxy)
	kv("auth", sh.Auth)
	if len(sh.PasswordCommand) > 0 {
		var parts []string
		for _, a := range sh.PasswordCommand {
			parts = append(parts, q(a))
		}
		fmt.Fprintf(&b, "password_command = [%s]\n", strings.Join(parts, ", "))
	}
	if sh.OAuth != "" {
		b.WriteString("[smarthost.oauth]\n" + sh.OAuth)
	}
	// The tests drive delivery with relay queue run themselves: no runner
	// started behind their back by sendmail.
	if !c.detached {
		b.WriteString("[daemon]\ndetached_delivery = false\n")
	}
	if err := os.WriteFile(c.conf, []byte(b.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
	os.Chmod(c.conf, 0o600) // WriteFile keeps the mode of an existing file
}

// ------------------------------------------------------------ messages --

func token() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// msg is a test message with a unique Message-ID and Subject.
type msg struct {
	ID   string // Message-ID without <>
	Body []byte // the whole message as submitted
}

func newMsg(t *testing.T, from string, to []string, body string) msg {
	tok := token()
	id := tok + "@e2e.relay.test"
	text := fmt.Sprintf("From: %s\nTo: %s\nSubject: relay e2e %s %s\nMessage-ID: <%s>\n\n%s",
		from, strings.Join(to, ", "), t.Name(), tok, id, body)
	return msg{ID: id, Body: []byte(text)}
}

// submit queues m with relay's sendmail (via the symlink named sendmail
// every other time, so both dispatches are used) and fails the test when
// sendmail does not exit 0.
func (c *tc) submit(m msg, from string, to ...string) {
	c.t.Helper()
	if r := c.submitQuiet(c.t, m, from, to...); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		c.t.Fatalf("sendmail: %v", r)
	}
}

var submitCount int64
var submitMu sync.Mutex

func (c *tc) submitQuiet(t testing.TB, m msg, from string, to ...string) result {
	submitMu.Lock()
	submitCount++
	viaLink := submitCount%2 == 0
	submitMu.Unlock()
	args := []string{"-C", c.conf, "-i", "-f", from}
	if viaLink {
		return run(t, bytes.NewReader(m.Body), sendmailBin, append(args, to...)...)
	}
	return run(t, bytes.NewReader(m.Body), relayBin, append([]string{"sendmail"}, append(args, to...)...)...)
}

// queueRun makes one delivery pass and returns its log lines.
func (c *tc) queueRun() (result, []logLine) {
	c.t.Helper()
	r := run(c.t, nil, relayBin, "-C", c.conf, "queue", "run")
	lines := parseLog(r.Stderr)
	for _, l := range lines {
		c.t.Logf("relay: %s", l.raw)
	}
	return r, lines
}

// queueEntry is one line of `relay queue list --json`.
type queueEntry struct {
	QueueName  string `json:"queue_name"`
	QueueID    string `json:"queue_id"`
	Sender     string `json:"sender"`
	Recipients []struct {
		Address     string `json:"address"`
		DelayReason string `json:"delay_reason"`
	} `json:"recipients"`
	Attempts    int   `json:"attempts"`
	NextAttempt int64 `json:"next_attempt"`
}

func (c *tc) queueList() []queueEntry {
	c.t.Helper()
	r := run(c.t, nil, relayBin, "-C", c.conf, "queue", "list", "--json")
	if r.Code != 0 {
		c.t.Fatalf("queue list --json: %v", r)
	}
	var out []queueEntry
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if line == "" {
			continue
		}
		var e queueEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			c.t.Fatalf("queue list --json: %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func (c *tc) mailq() string {
	c.t.Helper()
	r := run(c.t, nil, relayBin, "-C", c.conf, "mailq")
	if r.Code != 0 {
		c.t.Fatalf("mailq: %v", r)
	}
	return r.Stdout
}

// expectEmptyQueue fails unless both listings say the queue is empty.
func (c *tc) expectEmptyQueue() {
	c.t.Helper()
	if q := c.queueList(); len(q) != 0 {
		c.t.Errorf("queue list --json: %d message(s) left, want none: %+v", len(q), q)
	}
	if out := c.mailq(); strings.TrimSpace(out) != "Mail queue is empty" {
		c.t.Errorf("mailq = %q, want \"Mail queue is empty\"", out)
	}
}
