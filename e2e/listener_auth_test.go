package e2e_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

// The listener for applications that insist on TLS and AUTH ([daemon]
// listen_tls, listen_users, listen_auth_networks): swaks and Python's
// smtplib authenticate over STARTTLS to the real daemon with its
// self-signed certificate and a users file written by `relay listener
// passwd`; the messages reach the real Postfix smarthost. A wrong password
// is refused with 535, AUTH in clear with 538, and a client in a network
// namespace of its own (10.231.N.2, not loopback) is refused at connect,
// credentials or not, until listen_auth_networks names its network; then
// it must STARTTLS and AUTH before MAIL.

const listenerUser, listenerPassword = "grafana", "listener-e2e-pw"

// pythonAuthSMTP drives smtplib as Django's backend does with
// EMAIL_USE_TLS and a user; mode "send" prints the reply to DATA, "clear"
// sends AUTH before STARTTLS and prints its reply.
const pythonAuthSMTP = `
import base64, smtplib, ssl, sys
host, port, helo, frm, to, mid, user, pw, cafile, mode = sys.argv[1:11]
s = smtplib.SMTP(host, int(port), local_hostname=helo, timeout=60)
s.ehlo()
if mode == 'clear':
    code, msg = s.docmd('AUTH', 'PLAIN ' + base64.b64encode(('\0' + user + '\0' + pw).encode()).decode())
    print('AUTH in clear:', code, msg.decode())
    sys.exit(0 if code == 538 else 1)
s.starttls(context=ssl.create_default_context(cafile=cafile))
s.ehlo()
try:
    s.login(user, pw)
except smtplib.SMTPAuthenticationError as e:
    print('login refused:', e.smtp_code, e.smtp_error.decode())
    sys.exit(3)
msg = 'From: %s\r\nTo: %s\r\nSubject: relay e2e listener auth %s\r\nMessage-ID: <%s>\r\n\r\nsent by smtplib over STARTTLS with AUTH\r\n' % (frm, to, mid, mid)
s.mail(frm)
s.rcpt(to)
code, reply = s.data(msg.encode())
print(code, reply.decode())
s.quit()
sys.exit(0 if code == 250 else 1)
`

// authListenerConfig writes c's relay.toml with a listener on addrs
// offering STARTTLS (self-signed) and AUTH for the users file, and makes
// the user with `relay listener passwd` reading the password on stdin.
func authListenerConfig(t *testing.T, c *tc, sh smarthost, addrs, authNets []string) {
	t.Helper()
	q := func(xs []string) string {
		var parts []string
		for _, x := range xs {
			parts = append(parts, strconv.Quote(x))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	users := filepath.Join(c.dir, "listener-users")
	c.detached = true
	c.writeConfig(sh, fmt.Sprintf("[daemon]\nlisten = %s\nlisten_tls = \"self-signed\"\nlisten_users = %s\nlisten_auth_networks = %s\ndetached_delivery = false\n",
		q(addrs), strconv.Quote(users), q(authNets)))
	if _, err := os.Stat(users); err == nil {
		return
	}
	cmd := exec.Command(relayBin, "-C", c.conf, "listener", "passwd", listenerUser)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(listenerPassword + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "user "+listenerUser+" added") {
		t.Fatalf("relay listener passwd: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(users)
	if !regexp.MustCompile(`^` + listenerUser + `:\$2a\$10\$\S{53}\n$`).Match(b) {
		t.Fatalf("users file %q, want one bcrypt line", b)
	}
}

// listenerCA writes the certificate part of the daemon's self-signed
// tls/listener.pem to a file for Python's cafile, once the daemon has
// logged its fingerprint.
func listenerCA(t *testing.T, c *tc, d *listenerDaemon) string {
	t.Helper()
	// The sockets accept before the daemon has made the certificate: its
	// log line says when it has.
	if !testsmtp.WaitFor(30*time.Second, func() bool {
		return regexp.MustCompile(`listen_tls=self-signed file=\S+ .*fingerprint=sha256:[0-9a-f]{64} status=(generated|loaded)`).MatchString(d.out.String())
	}) {
		t.Fatalf("the daemon did not log the certificate's fingerprint:\n%s", d.out)
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "spool", "tls", "listener.pem"))
	if err != nil {
		t.Fatal(err)
	}
	end := "-----END CERTIFICATE-----\n"
	i := strings.Index(string(b), end)
	if i < 0 {
		t.Fatalf("no certificate in listener.pem")
	}
	ca := filepath.Join(c.dir, "listener-ca.pem")
	if err := os.WriteFile(ca, b[:i+len(end)], 0o644); err != nil {
		t.Fatal(err)
	}
	return ca
}

func swaksAuthArgs(server string, port int, helo, from, to, id, pw string) []string {
	return append(swaksArgs(server, port, helo, from, to, id), "-tls", "--auth", "PLAIN", "--auth-user", listenerUser, "--auth-password", pw)
}

// Over loopback: swaks and smtplib authenticate after STARTTLS and
// submit; both arrive once, their Received fields say ESMTPSA, the log
// names the user. A wrong password reads 535; AUTH in clear reads 538.
func TestListener_AuthOverSTARTTLS(t *testing.T) {
	needHarness(t)
	python := needTool(t, "python3")
	swaks := needTool(t, "swaks")
	port := freeLoopbackPort(t)
	sh := okSmarthost(t, dirFor(t))
	c := newCase(t, sh, "")
	lo := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	authListenerConfig(t, c, sh, []string{lo}, nil)
	d := startListenerDaemon(t, c, lo)
	ca := listenerCA(t, c, d)
	script := filepath.Join(c.dir, "send_auth.py")
	if err := os.WriteFile(script, []byte(pythonAuthSMTP), 0o644); err != nil {
		t.Fatal(err)
	}
	user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
	py := func(id, pw, mode string) (string, int) {
		return runClient(t, python, script, "127.0.0.1", strconv.Itoa(port), "django.client.test", user, rcpt, id, listenerUser, pw, ca, mode)
	}

	swID, pyID := token()+"@swaks-auth.e2e.relay.test", token()+"@python-auth.e2e.relay.test"
	out, code := runClient(t, swaks, swaksAuthArgs("127.0.0.1", port, "grafana.client.test", user, rcpt, swID, listenerPassword)...)
	if code != 0 || !strings.Contains(out, "235 2.7.0") || !listenerQueuedRE.MatchString(out) {
		t.Fatalf("swaks with STARTTLS and AUTH: exit %d, want 0, 235 and a 250 queued as", code)
	}
	if out, code = py(pyID, listenerPassword, "send"); code != 0 || !listenerQueuedRE.MatchString(out) {
		t.Fatalf("smtplib with STARTTLS (verifying the self-signed certificate) and login: exit %d", code)
	}

	badID := token() + "@wrong-password.e2e.relay.test"
	out, code = runClient(t, swaks, swaksAuthArgs("127.0.0.1", port, "grafana.client.test", user, rcpt, badID, "wrong")...)
	if code == 0 || !strings.Contains(out, "535 5.7.8") {
		t.Errorf("swaks with a wrong password: exit %d, want a failure with 535 5.7.8", code)
	}
	if out, code = py(badID, "wrong", "send"); code != 3 || !strings.Contains(out, "login refused: 535") {
		t.Errorf("smtplib with a wrong password: exit %d, want its SMTPAuthenticationError with 535", code)
	}
	if out, code = py(badID, listenerPassword, "clear"); code != 0 || !strings.Contains(out, "AUTH in clear: 538") {
		t.Errorf("smtplib's AUTH before STARTTLS: exit %d, want 538", code)
	}

	copies := waitArrived(t, d, swID, pyID)
	for _, id := range []string{swID, pyID} {
		cs := copies[id]
		if len(cs) != 1 {
			t.Errorf("%s arrived %d times, want once", id, len(cs))
			continue
		}
		if r := receivedOf(t, cs[0]); !regexp.MustCompile(`\(\[127\.0\.0\.1\]\)\n\tby \S+ \(relay\) with ESMTPSA id `).MatchString(r) {
			t.Errorf("%s: relay's Received field\n%s\ndoes not say ESMTPSA", id, r)
		}
	}
	log := d.stop()
	if n := len(regexp.MustCompile(`client=\[127\.0\.0\.1\]:\d+ sasl_username=`+listenerUser+` from=<[^>]+> .*status=queued`).FindAllString(log, -1)); n != 2 {
		t.Errorf("%d enqueue lines with sasl_username=%s, want 2:\n%s", n, listenerUser, log)
	}
	// swaks tries PLAIN once; smtplib's login tries PLAIN, then LOGIN.
	if n := strings.Count(log, "status=auth-failed sasl_username="+listenerUser); n != 3 {
		t.Errorf("%d failed AUTHs logged, want 3 (swaks one, smtplib two):\n%s", n, log)
	}
	if cs := copiesOf(t, badID)[badID]; len(cs) != 0 {
		t.Errorf("a message with a wrong password arrived")
	}
	c.expectEmptyQueue()
}

// A client in a network namespace: refused at connect with and without
// credentials while its network is not listed; with it in
// listen_auth_networks it is greeted but refused MAIL (530) until
// STARTTLS and AUTH, and then its mail arrives.
func TestListener_AuthNetworksNetnsClient(t *testing.T) {
	needHarness(t)
	swaks := needTool(t, "swaks")
	python := needTool(t, "python3")
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2 for the network namespace")
	}
	hostIP, nsIP := setupNetns(t)
	port := freeLoopbackPort(t)
	sh := okSmarthost(t, dirFor(t))
	c := newCase(t, sh, "")
	lo, outer := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), net.JoinHostPort(hostIP, strconv.Itoa(port))
	user, rcpt := env["SMARTHOST_USER"], "bob@example.org"
	inNS := func(args ...string) (string, int) {
		return runClient(t, "ip", append([]string{"netns", "exec", nsName()}, args...)...)
	}

	// Not listed: 554 before any greeting, with or without credentials.
	authListenerConfig(t, c, sh, []string{lo, outer}, nil)
	d := startListenerDaemon(t, c, lo)
	refused := token() + "@refused-auth.e2e.relay.test"
	for _, args := range [][]string{
		swaksArgs(hostIP, port, "outside.test", user, rcpt, refused),
		swaksAuthArgs(hostIP, port, "outside.test", user, rcpt, refused, listenerPassword),
	} {
		out, code := inNS(append([]string{swaks}, args...)...)
		if code == 0 || !strings.Contains(out, "554 5.7.1") || strings.Contains(out, "220 ") {
			t.Errorf("swaks from %s (%s): exit %d, want 554 5.7.1 and no greeting", nsIP, strings.Join(args[len(args)-2:], " "), code)
		}
	}
	log := d.stop()
	if !regexp.MustCompile(`client=\[` + regexp.QuoteMeta(nsIP) + `\]:\d+ status=refused`).MatchString(log) {
		t.Errorf("no refusal naming %s in the log:\n%s", nsIP, log)
	}

	// Listed in listen_auth_networks.
	authListenerConfig(t, c, sh, []string{lo, outer}, []string{nsIP + "/32"})
	d = startListenerDaemon(t, c, lo)
	ca := listenerCA(t, c, d)
	noAuth := token() + "@no-auth.e2e.relay.test"
	out, code := inNS(append([]string{swaks}, swaksArgs(hostIP, port, "outside.test", user, rcpt, noAuth)...)...)
	if code == 0 || !strings.Contains(out, "220 ") || !strings.Contains(out, "530 5.7.0") {
		t.Errorf("swaks without AUTH from %s: exit %d, want the greeting and 530 5.7.0 at MAIL", nsIP, code)
	}
	okID := token() + "@auth-network.e2e.relay.test"
	out, code = inNS(append([]string{swaks}, swaksAuthArgs(hostIP, port, "outside.test", user, rcpt, okID, listenerPassword)...)...)
	if code != 0 || !listenerQueuedRE.MatchString(out) {
		t.Fatalf("swaks with STARTTLS and AUTH from %s: exit %d, want 0 and a 250 queued as", nsIP, code)
	}
	script := filepath.Join(c.dir, "send_auth.py")
	if err := os.WriteFile(script, []byte(pythonAuthSMTP), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = inNS(python, script, hostIP, strconv.Itoa(port), "outside.test", user, rcpt, noAuth, listenerUser, "wrong", ca, "send")
	if code != 3 || !strings.Contains(out, "login refused: 535") {
		t.Errorf("smtplib from %s with a wrong password: exit %d, want 535", nsIP, code)
	}
	copies := waitArrived(t, d, okID)
	if cs := copies[okID]; len(cs) != 1 {
		t.Errorf("arrived %d times, want once", len(cs))
	} else if r := receivedOf(t, cs[0]); !strings.HasPrefix(r, "Received: from outside.test (["+nsIP+"])\n") || !strings.Contains(r, "with ESMTPSA") {
		t.Errorf("Received field %q: want the client %s and ESMTPSA", r, nsIP)
	}
	d.stop()
	for _, id := range []string{refused, noAuth} {
		if cs := copiesOf(t, id)[id]; len(cs) != 0 {
			t.Errorf("%s arrived %d times: a refused client's mail went out", id, len(cs))
		}
	}
	c.expectEmptyQueue()
}
