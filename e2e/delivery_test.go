package e2e_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

var (
	tlsVersionRE = regexp.MustCompile(`^TLSv1\.[23]$`)
	queuedAsRE   = regexp.MustCompile(`^250 .*queued as ([0-9A-Za-z]+)`)
)

// expectSent checks a status=sent line for rcpt and returns the smarthost's
// queue ID from its reply.
func expectSent(t *testing.T, l logLine, rcpt string, port int) string {
	t.Helper()
	kv := l.kv
	if kv["status"] != "sent" || kv["to"] != "<"+rcpt+">" {
		t.Errorf("want status=sent to=<%s>, got: %s", rcpt, l.raw)
	}
	if !tlsVersionRE.MatchString(kv["tls"]) {
		t.Errorf("tls=%q, want TLSv1.3 or TLSv1.2: %s", kv["tls"], l.raw)
	}
	if want := fmt.Sprintf("%s[%s]:%d", env["SMARTHOST_HOST"], env["SMARTHOST_HOST"], port); kv["relay"] != want {
		t.Errorf("relay=%q, want %q", kv["relay"], want)
	}
	if kv["dsn"] != "2.0.0" || kv["id"] == "" || kv["delay"] == "" {
		t.Errorf("want id=, delay= and dsn=2.0.0: %s", l.raw)
	}
	m := queuedAsRE.FindStringSubmatch(kv["reply"])
	if m == nil {
		t.Errorf("reply=%q does not carry the smarthost's \"queued as\" ID", kv["reply"])
		return ""
	}
	return m[1]
}

// expectDeferred checks that every recipient line is status=deferred and
// that its reply contains each of subs; it returns the lines.
func expectDeferred(t *testing.T, lines []logLine, n int, subs ...string) {
	t.Helper()
	rl := recipientLines(lines)
	if len(rl) != n {
		t.Errorf("%d recipient log line(s), want %d", len(rl), n)
	}
	for _, l := range rl {
		if l.kv["status"] != "deferred" || l.kv["attempt"] != "1" {
			t.Errorf("want status=deferred attempt=1: %s", l.raw)
		}
		contains(t, "log reply", l.kv["reply"], subs...)
	}
}

// expectStillQueued checks the queue after one failed pass: every message
// is there with attempts=1, every recipient pending (not failed) with a
// reason containing subs.
func expectStillQueued(t *testing.T, c *tc, n int, subs ...string) {
	t.Helper()
	q := c.queueList()
	if len(q) != n {
		t.Fatalf("queue list --json: %d message(s), want %d: %+v", len(q), n, q)
	}
	for _, e := range q {
		if e.Attempts != 1 {
			t.Errorf("%s: attempts=%d, want 1", e.QueueID, e.Attempts)
		}
		if e.QueueName != "deferred" {
			t.Errorf("%s: queue_name=%q, want deferred", e.QueueID, e.QueueName)
		}
		if len(e.Recipients) == 0 {
			t.Errorf("%s: no recipient left: it was dropped", e.QueueID)
		}
		for _, r := range e.Recipients {
			if strings.Contains(r.DelayReason, "refused permanently") {
				t.Errorf("%s: %s marked failed; an own-side failure must only defer: %q", e.QueueID, r.Address, r.DelayReason)
			}
			contains(t, "delay_reason of "+r.Address, r.DelayReason, subs...)
		}
	}
}

// expectNotDelivered fails when any of the messages reached the Maildir.
func expectNotDelivered(t *testing.T, ms ...msg) {
	t.Helper()
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	for id, cs := range waitCopies(t, 30*time.Second, ids...) {
		t.Errorf("message %s reached the Maildir %d time(s), want never", id, len(cs))
	}
}

// ------------------------------------------------------- 1. delivery --

func TestDeliverySTARTTLS(t *testing.T) {
	needHarness(t)
	sh := okSmarthost(t, dirFor(t)) // password_file
	testDelivery(t, sh, "starttls-"+env["SMARTHOST_PORT_STARTTLS"])
}

func TestDeliveryImplicitTLS(t *testing.T) {
	needHarness(t)
	sh := okSmarthost(t, dirFor(t))
	sh.Port = envInt(t, "SMARTHOST_PORT_TLS")
	sh.TLS = "implicit"
	// The third password source: a command, run without a shell.
	sh.PasswordCommand = []string{"/bin/cat", sh.PasswordFile}
	sh.PasswordFile = ""
	testDelivery(t, sh, "tls-"+env["SMARTHOST_PORT_TLS"])
}

func testDelivery(t *testing.T, sh smarthost, service string) {
	c := newCase(t, sh, "")
	user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
	m := newMsg(t, user, []string{rcpt}, "Hello from relay's end-to-end suite.\n.leading dot\n")
	c.submit(m, user, rcpt)
	mark := logMark(t)
	r, lines := c.queueRun()
	if r.Code != 0 {
		t.Errorf("queue run: %v", r)
	}
	rl := recipientLines(lines)
	if len(rl) != 1 {
		t.Fatalf("%d recipient log lines, want 1:\n%s", len(rl), r.Stderr)
	}
	qid := expectSent(t, rl[0], rcpt, sh.Port)
	if rl[0].kv["attempt"] != "1" {
		t.Errorf("attempt=%q, want 1", rl[0].kv["attempt"])
	}

	copies := waitCopies(t, 30*time.Second, m.ID)[m.ID]
	if len(copies) != 1 {
		t.Fatalf("message in the Maildir %d time(s), want exactly once", len(copies))
	}
	body, err := os.ReadFile(copies[0].path)
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's Received: shows the login and the TLS version (harness:
	// smtpd_sasl_authenticated_header, smtpd_tls_received_header).
	contains(t, "delivered header", string(body), "Authenticated sender: "+user, "(using TLSv1.")
	if !bytes.Contains(body, []byte("\n.leading dot\n")) {
		t.Errorf("a leading dot did not arrive intact:\n%s", body)
	}

	// The ID in relay's log is the smarthost's own: Postfix logged it for
	// this Message-ID, in a session that authenticated as the user.
	if qid != "" {
		if !testsmtp.WaitFor(10*time.Second, func() bool {
			return strings.Contains(postfixLogSince(t, mark), qid+": message-id=<"+m.ID+">")
		}) {
			t.Errorf("Postfix's log has no %q for Message-ID %s", qid, m.ID)
		}
		var found bool
		for _, s := range sessions(t, mark, service) {
			if !strings.Contains(s.String(), qid+": client=") {
				continue
			}
			found = true
			contains(t, "Postfix session", s.String(), "sasl_username="+user)
			cmds := s.commands()
			if cmds["auth"] != "1" || cmds["mail"] != "1" || cmds["data"] != "1" {
				t.Errorf("session counters %v, want auth=1 mail=1 data=1", cmds)
			}
			if sh.TLS == "starttls" && cmds["starttls"] != "1" {
				t.Errorf("session counters %v, want starttls=1", cmds)
			}
		}
		if !found {
			t.Errorf("no %s session in Postfix's log took %s", service, qid)
		}
	}
	c.expectEmptyQueue()
}

// ------------------------------------------------- 2. wrong password --

func TestWrongPassword(t *testing.T) {
	needHarness(t)
	sh := okSmarthost(t, dirFor(t))
	// Alice's password for robot: a real secret that must stay secret
	// even in the error path (the last test greps for it).
	sh.PasswordFile = secretFile(t, dirFor(t), env["SMARTHOST_PASS2"])
	c := newCase(t, sh, "")
	user := env["SMARTHOST_USER"]
	var ms []msg
	for range 3 {
		m := newMsg(t, user, []string{"bob@example.org"}, "wrong password\n")
		c.submit(m, user, "bob@example.org")
		ms = append(ms, m)
	}
	mark := logMark(t)
	_, lines := c.queueRun()
	expectDeferred(t, lines, 3, "535")
	expectStillQueued(t, c, 3, "535")
	expectNotDelivered(t, ms...)
	// Both the log and mailq say what the 535 means.
	for _, l := range recipientLines(lines) {
		contains(t, "hint", l.kv["hint"], "password")
	}
	contains(t, "mailq", c.mailq(), "hint: ", "password")

	ss := sessions(t, mark, "starttls-"+env["SMARTHOST_PORT_STARTTLS"])
	expectNoMail(t, ss)
	// One failed AUTH defers the whole pass: no new connection per message.
	tried := 0
	for _, s := range ss {
		if a := s.commands()["auth"]; a != "" {
			tried++
			if a != "0/1" {
				t.Errorf("Postfix did not see one refused AUTH: %s", s.disconnect)
			}
		}
	}
	if tried != 1 {
		t.Errorf("%d connections tried AUTH for 3 messages, want 1 (the failure defers the rest of the pass):\n%v", tried, ss)
	}
}

// expectNoMail fails when a session got to MAIL FROM.
func expectNoMail(t *testing.T, ss []session) {
	t.Helper()
	if len(ss) == 0 {
		t.Errorf("Postfix logged no session: relay did not connect")
	}
	for _, s := range ss {
		if m := s.commands()["mail"]; m != "" {
			t.Errorf("Postfix saw MAIL FROM (mail=%s):\n%s", m, s)
		}
	}
}

// ------------------------------------------------ 3. certificate errors --

// testRefusedTLS queues one message with sh, runs the queue and checks
// that nothing got past TLS and the mail is deferred with reason.
func testRefusedTLS(t *testing.T, sh smarthost, service string, reason ...string) {
	t.Helper()
	c := newCase(t, sh, "")
	user := env["SMARTHOST_USER"]
	m := newMsg(t, user, []string{"bob@example.org"}, "must not be sent\n")
	c.submit(m, user, "bob@example.org")
	mark := logMark(t)
	_, lines := c.queueRun()
	expectDeferred(t, lines, 1, reason...)
	expectStillQueued(t, c, 1, reason...)
	expectNoMailOrAuth(t, sessions(t, mark, service), service)
	expectNotDelivered(t, m)
}

func TestUntrustedCA(t *testing.T) {
	needHarness(t)
	t.Run("starttls", func(t *testing.T) {
		sh := okSmarthost(t, dirFor(t))
		sh.CAFile = env["SMARTHOST_OTHER_CA"]
		testRefusedTLS(t, sh, "starttls-"+env["SMARTHOST_PORT_STARTTLS"], "certificate signed by unknown authority")
	})
	t.Run("implicit", func(t *testing.T) {
		sh := okSmarthost(t, dirFor(t))
		sh.Port, sh.TLS = envInt(t, "SMARTHOST_PORT_TLS"), "implicit"
		sh.CAFile = env["SMARTHOST_OTHER_CA"]
		testRefusedTLS(t, sh, "tls-"+env["SMARTHOST_PORT_TLS"], "certificate signed by unknown authority")
	})
}

func TestCertificateNameMismatch(t *testing.T) {
	needHarness(t)
	t.Run("wrong-name port", func(t *testing.T) {
		// The certificate on this port is for wrong.test, signed by the
		// trusted CA: the only fault is the name.
		sh := okSmarthost(t, dirFor(t))
		sh.Port = envInt(t, "SMARTHOST_PORT_WRONGNAME")
		testRefusedTLS(t, sh, "wrongname-"+env["SMARTHOST_PORT_WRONGNAME"],
			"certificate is valid for "+env["SMARTHOST_WRONG_NAME"], "not "+env["SMARTHOST_NAME"])
	})
	t.Run("tls_server_name wrong.test", func(t *testing.T) {
		sh := okSmarthost(t, dirFor(t))
		sh.ServerName = env["SMARTHOST_WRONG_NAME"]
		testRefusedTLS(t, sh, "starttls-"+env["SMARTHOST_PORT_STARTTLS"],
			"certificate is valid for", "not "+env["SMARTHOST_WRONG_NAME"])
	})
}

// ------------------------------------------------------ 4. fingerprint --

// colonUpper writes a hex fingerprint as AB:CD:…, the way openssl prints it.
func colonUpper(hex string) string {
	var parts []string
	for i := 0; i+2 <= len(hex); i += 2 {
		parts = append(parts, strings.ToUpper(hex[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func TestFingerprint(t *testing.T) {
	needHarness(t)
	pinned := func(t *testing.T, fp string) smarthost {
		sh := okSmarthost(t, dirFor(t))
		sh.CAFile, sh.Fingerprint = "", fp
		// The inline password source (relay.toml is 0600).
		sh.Password, sh.PasswordFile = env["SMARTHOST_PASS"], ""
		return sh
	}
	t.Run("right/starttls", func(t *testing.T) {
		testDelivery(t, pinned(t, env["SMARTHOST_CERT_SHA256"]), "starttls-"+env["SMARTHOST_PORT_STARTTLS"])
	})
	t.Run("right/implicit sha256: with colons", func(t *testing.T) {
		sh := pinned(t, "sha256:"+colonUpper(env["SMARTHOST_CERT_SHA256"]))
		sh.Port, sh.TLS = envInt(t, "SMARTHOST_PORT_TLS"), "implicit"
		testDelivery(t, sh, "tls-"+env["SMARTHOST_PORT_TLS"])
	})
	t.Run("right/pin replaces the name check", func(t *testing.T) {
		// As documented: the pin names exactly one certificate, so the
		// wrong-name port delivers when its own certificate is pinned.
		sh := pinned(t, env["SMARTHOST_WRONG_CERT_SHA256"])
		sh.Port = envInt(t, "SMARTHOST_PORT_WRONGNAME")
		testDelivery(t, sh, "wrongname-"+env["SMARTHOST_PORT_WRONGNAME"])
	})
	t.Run("wrong", func(t *testing.T) {
		// A real certificate of the same CA, just not this server's.
		testRefusedTLS(t, pinned(t, env["SMARTHOST_WRONG_CERT_SHA256"]), "starttls-"+env["SMARTHOST_PORT_STARTTLS"],
			"does not match tls_fingerprint", env["SMARTHOST_CERT_SHA256"])
	})
}

// ------------------------------------- 5. STARTTLS demanded, not offered --

func TestStartTLSNotOffered(t *testing.T) {
	needHarness(t)
	sh := okSmarthost(t, dirFor(t))
	sh.Port = envInt(t, "SMARTHOST_PORT_PLAIN") // offers AUTH in clear, no STARTTLS
	testRefusedTLS(t, sh, "plain-"+env["SMARTHOST_PORT_PLAIN"], "STARTTLS")
}

// ------------------------------------------------- 7. foreign sender --

func TestForeignSenderDefers(t *testing.T) {
	needHarness(t)
	c := newCase(t, okSmarthost(t, dirFor(t)), "")
	from := env["SMARTHOST_USER2"] // logged in as robot, sending as alice
	rcpts := []string{"bob@example.org", "carol@example.org"}
	m := newMsg(t, from, rcpts, "sender not owned by the login\n")
	c.submit(m, from, rcpts...)
	mark := logMark(t)
	_, lines := c.queueRun()
	expectDeferred(t, lines, 2, "553 5.7.1")
	for _, l := range recipientLines(lines) {
		if l.kv["status"] == "bounced" {
			t.Errorf("a 5xx at MAIL FROM bounced a recipient: %s", l.raw)
		}
	}
	expectStillQueued(t, c, 1, "553 5.7.1")
	if q := c.queueList(); len(q) == 1 && len(q[0].Recipients) != 2 {
		t.Errorf("pending recipients %+v, want both", q[0].Recipients)
	}
	if out := c.mailq(); strings.Contains(out, "refused permanently") || !strings.Contains(out, "553 5.7.1") {
		t.Errorf("mailq should show the 553 as a delay reason, not a failure:\n%s", out)
	}
	expectNotDelivered(t, m)
	refused := 0
	for _, s := range sessions(t, mark, "starttls-"+env["SMARTHOST_PORT_STARTTLS"]) {
		c := s.commands()
		if c["mail"] == "" {
			continue
		}
		refused++
		if c["auth"] != "1" || c["mail"] != "0/1" || c["rcpt"] != "" || c["data"] != "" {
			t.Errorf("want AUTH accepted, MAIL refused, no RCPT or DATA; Postfix: %s", s.disconnect)
		}
	}
	if refused != 1 {
		t.Errorf("%d sessions tried MAIL FROM, want 1", refused)
	}
}

// ------------------------------------------------ 8. refused recipient --

func TestRefusedRecipient(t *testing.T) {
	needHarness(t)
	c := newCase(t, okSmarthost(t, dirFor(t)), "")
	user, refused := env["SMARTHOST_USER"], env["SMARTHOST_REFUSED_RCPT"]
	rcpts := []string{"bob@example.org", refused, "carol@example.org"}
	m := newMsg(t, user, rcpts, "one of three is refused\n")
	c.submit(m, user, rcpts...)

	_, lines := c.queueRun()
	status := map[string]string{}
	bounceID := ""
	for _, l := range recipientLines(lines) {
		if l.kv["status"] == "bounce" { // the notice queued for the sender
			bounceID = l.kv["bounce_id"]
			continue
		}
		if l.kv["id"] == bounceID { // the notice's own delivery
			continue
		}
		status[strings.Trim(l.kv["to"], "<>")] = l.kv["status"]
		if l.kv["to"] == "<"+refused+">" {
			contains(t, "refused recipient's reply", l.kv["reply"], "550 5.1.1")
			if l.kv["dsn"] != "5.1.1" {
				t.Errorf("dsn=%q, want 5.1.1: %s", l.kv["dsn"], l.raw)
			}
		}
	}
	want := map[string]string{"bob@example.org": "sent", "carol@example.org": "sent", refused: "bounced"}
	if fmt.Sprint(status) != fmt.Sprint(want) {
		t.Errorf("per-recipient status %v, want %v", status, want)
	}

	checkCopies := func(when string) {
		t.Helper()
		cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]
		got := map[string]int{}
		for _, d := range cs {
			got[d.deliveredTo]++
		}
		if len(cs) != 2 || got["bob@example.org"] != 1 || got["carol@example.org"] != 1 {
			t.Errorf("%s: Maildir copies by Delivered-To %v, want bob and carol once each", when, got)
		}
	}
	checkCopies("after the first pass")

	// The original left the queue, and the same run, looking again when its
	// pass was done, sent the bounce to the sender, from the smarthost login
	// (providers refuse the null sender).
	var bounceSent bool
	for _, l := range recipientLines(lines) {
		if l.kv["id"] == bounceID && l.kv["to"] == "<"+user+">" && l.kv["status"] == "sent" {
			bounceSent = true
		}
	}
	if bounceID == "" || !bounceSent {
		t.Errorf("no bounce %q sent to %s in the run:\n%v", bounceID, user, lines)
	}
	if q := c.queueList(); len(q) != 0 {
		t.Errorf("queue after the run: %+v", q)
	}

	// A second run sends nothing again.
	r, lines := c.queueRun()
	if rl := recipientLines(lines); len(rl) != 0 || r.Code != 0 {
		t.Errorf("second run did something: %v %v", r, lines)
	}
	checkCopies("after the second run")
	// The report reached the sender, names the refused recipient and the
	// server's reply, and quotes the original.
	if !testsmtp.WaitFor(30*time.Second, func() bool { return findReport(t, refused, m.ID) }) {
		t.Fatalf("no delivery status notification for %s in the Maildir", refused)
	}
}

// findReport looks in the Maildir for a multipart/report naming rcpt as
// Final-Recipient and quoting the message msgID.
func findReport(t *testing.T, rcpt, msgID string) bool {
	t.Helper()
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(env["SMARTHOST_MAILDIR"], sub, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			s := string(b)
			if strings.Contains(s, "report-type=delivery-status") && strings.Contains(s, "Final-Recipient: rfc822;"+rcpt) &&
				strings.Contains(s, "Action: failed") && strings.Contains(s, "550 5.1.1") && strings.Contains(s, msgID) &&
				strings.Contains(s, "Auto-Submitted: auto-replied") {
				return true
			}
		}
	}
	return false
}

// --------------------------------------------------- 9. 40 MB message --

// bigBody is about n bytes of 76-character lines, with the lines SMTP
// transparency is about: leading dots, a lone dot, a double dot.
func bigBody(n int) []byte {
	rng := rand.New(rand.NewChaCha8([32]byte{'r', 'e', 'l', 'a', 'y'}))
	raw := make([]byte, 57)
	var b bytes.Buffer
	b.Grow(n + 100)
	for i := 0; b.Len() < n; i++ {
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		switch i % 10007 {
		case 17:
			b.WriteString(".\n")
		case 4711:
			b.WriteString("..\n")
		case 500, 9000:
			b.WriteByte('.')
		}
		b.WriteString(base64.StdEncoding.EncodeToString(raw))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// bodyHash hashes what follows the header of a message file.
func bodyHash(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: no end of header", path)
		}
		if line == "\n" || line == "\r\n" {
			break
		}
	}
	h := sha256.New()
	n, err := io.Copy(h, br)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), n
}

func TestLargeMessage(t *testing.T) {
	needHarness(t)
	c := newCase(t, okSmarthost(t, dirFor(t)), `max_message_size = "100MB"`)
	user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
	body := bigBody(40 << 20)
	want := fmt.Sprintf("%x", sha256.Sum256(body))
	m := newMsg(t, user, []string{rcpt}, string(body))
	start := time.Now()
	c.submit(m, user, rcpt)
	t.Logf("submitted %d bytes in %v", len(m.Body), time.Since(start).Round(time.Millisecond))

	r, lines := c.queueRun()
	t.Logf("queue run: %v", r.Dur.Round(time.Millisecond))
	rl := recipientLines(lines)
	if len(rl) != 1 {
		t.Fatalf("%d recipient log lines, want 1:\n%s", len(rl), r.Stderr)
	}
	expectSent(t, rl[0], rcpt, envInt(t, "SMARTHOST_PORT_STARTTLS"))
	cs := waitCopies(t, 60*time.Second, m.ID)[m.ID]
	if len(cs) != 1 {
		t.Fatalf("message in the Maildir %d time(s), want once", len(cs))
	}
	got, n := bodyHash(t, cs[0].path)
	if got != want || n != int64(len(body)) {
		t.Errorf("body as delivered: %d bytes sha256 %s; sent %d bytes sha256 %s", n, got, len(body), want)
	}
	c.expectEmptyQueue()
}

// --------------------------------------------------- 10. 1,000 messages --

func TestThousandMessages(t *testing.T) {
	needHarness(t)
	const total, loops = 1000, 4
	c := newCase(t, okSmarthost(t, dirFor(t)), "")
	user := env["SMARTHOST_USER"]
	rcpt := "bulk@example.org"
	ms := make([]msg, total)
	for i := range ms {
		ms[i] = newMsg(t, user, []string{rcpt}, "message "+strconv.Itoa(i)+"\n")
	}

	start := time.Now()
	var wg sync.WaitGroup
	var failMu sync.Mutex
	var failures []string
	for w := range loops {
		wg.Go(func() {
			for i := w; i < total; i += loops {
				r := c.submitQuiet(t, ms[i], user, rcpt)
				if r.Code != 0 || r.Stderr != "" {
					failMu.Lock()
					failures = append(failures, r.String())
					failMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d submissions failed; first: %s", len(failures), failures[0])
	}
	t.Logf("submitted %d messages with %d parallel sendmail loops in %v", total, loops, time.Since(start).Round(time.Millisecond))
	if q := c.queueList(); len(q) != total {
		t.Fatalf("queued %d, want %d", len(q), total)
	}

	mark := logMark(t)
	r, lines := c.queueRunQuiet()
	t.Logf("one queue run delivered the queue of %d in %v (%.0f msg/s)", total, r.Dur.Round(time.Millisecond), float64(total)/r.Dur.Seconds())
	if r.Code != 0 {
		t.Errorf("queue run: exit %d\n%s", r.Code, lastLines(r.Stderr, 5))
	}
	sent := 0
	for _, l := range recipientLines(lines) {
		if l.kv["status"] == "sent" {
			sent++
		} else if sent < 5 {
			t.Errorf("not sent: %s", l.raw)
		}
	}
	if sent != total {
		t.Errorf("%d status=sent lines, want %d", sent, total)
	}

	settleStart := time.Now()
	ids := make([]string, total)
	for i, m := range ms {
		ids[i] = m.ID
	}
	missing, dup := missingAndDuplicated(t, 120*time.Second, ids...)
	t.Logf("Postfix finished delivering into the Maildir %v after the run", time.Since(settleStart).Round(time.Millisecond))
	if missing > 0 || dup > 0 {
		t.Errorf("of %d Message-IDs: %d missing from the Maildir, %d there more than once", total, missing, dup)
	}
	c.expectEmptyQueue()

	// One connection carries many messages (at most max_connections = 4).
	conns := 0
	for _, s := range sessions(t, mark, "starttls-"+env["SMARTHOST_PORT_STARTTLS"]) {
		if s.commands()["mail"] != "" {
			conns++
		}
	}
	t.Logf("%d smarthost connection(s) carried the %d messages", conns, total)
	if conns == 0 || conns > 4 {
		t.Errorf("%d connections carried mail, want 1 to 4 (connections are reused)", conns)
	}
}

// queueRunQuiet is queueRun without logging every line.
func (c *tc) queueRunQuiet() (result, []logLine) {
	c.t.Helper()
	r := run(c.t, nil, relayBin, "-C", c.conf, "queue", "run")
	return r, parseLog(r.Stderr)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
