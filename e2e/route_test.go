package e2e_test

// Routing by recipient domain and the connection's own side, against the
// e2e Postfix (issue 22): two smarthosts — two ports, two logins — carry
// the two halves of one message as two transactions (Postfix's log and
// Received fields prove which port and which login took which
// recipient); a failure of one leaves the other delivered; helo_name is
// the name Postfix writes in Received; source_address is the peer address
// Postfix sees; ip_family = "ipv6" reaches it over ::1.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

// shTable is a [[smarthost]] table for sh with extra lines (TOML) in it.
func shTable(name string, sh smarthost, extra string) string {
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "[[smarthost]]\nname = %s\n", q(name))
	for _, kv := range [][2]string{{"host", sh.Host}, {"tls", sh.TLS}, {"tls_server_name", sh.ServerName},
		{"tls_ca_file", sh.CAFile}, {"username", sh.Username}, {"password_file", sh.PasswordFile}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s = %s\n", kv[0], q(kv[1]))
		}
	}
	fmt.Fprintf(&b, "port = %d\n%s\n", sh.Port, extra)
	return b.String()
}

// writeTables replaces c's configuration: top-level lines, the tables,
// no detached delivery.
func (c *tc) writeTables(top string, tables ...string) {
	c.t.Helper()
	text := fmt.Sprintf("spool = %q\ndomain = \"client.example.test\"\n%s\n%s[daemon]\ndetached_delivery = false\n",
		filepath.Join(c.dir, "spool"), top, strings.Join(tables, "\n"))
	if err := os.WriteFile(c.conf, []byte(text), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// aliceSmarthost is okSmarthost with the second login, on the AUTH port
// that offers every mechanism.
func aliceSmarthost(t *testing.T) smarthost {
	sh := okSmarthost(t, dirFor(t))
	sh.Port = envInt(t, "SMARTHOST_PORT_AUTH_ALL")
	sh.Username = env["SMARTHOST_USER2"]
	sh.PasswordFile = secretFile(t, dirFor(t), env["SMARTHOST_PASS2"])
	return sh
}

// smarthostReceived returns the topmost Received field Postfix wrote into the
// copy of id delivered to rcpt ("" when there is none).
func smarthostReceived(t *testing.T, id, rcpt string) string {
	t.Helper()
	for _, d := range waitCopies(t, 30*time.Second, id)[id] {
		if !strings.EqualFold(d.deliveredTo, rcpt) {
			continue
		}
		b, err := os.ReadFile(d.path)
		if err != nil {
			t.Fatal(err)
		}
		fs, _ := splitMessage(b)
		if r := fieldsNamed(fs, "Received"); len(r) > 0 {
			return r[0].raw
		}
	}
	return ""
}

// postfixTook checks that Postfix's queue ID qid came in a session of
// service authenticated as user and went to rcpt.
func postfixTook(t *testing.T, mark int64, service, qid, user, rcpt string) {
	t.Helper()
	if qid == "" {
		return
	}
	var found bool
	for _, s := range sessions(t, mark, service) {
		if strings.Contains(s.String(), qid+": client=") {
			found = true
			contains(t, service+" session", s.String(), "sasl_username="+user)
		}
	}
	if !found {
		t.Errorf("no %s session in Postfix's log took %s", service, qid)
	}
	// The delivery into the Maildir is logged a moment after the session.
	if !testsmtp.WaitFor(10*time.Second, func() bool { return strings.Contains(postfixLogSince(t, mark), qid+": to=<"+rcpt+">") }) {
		t.Errorf("Postfix's log does not show %s delivered to %s", qid, rcpt)
	}
}

func TestRouteByRecipient_TwoSmarthosts(t *testing.T) {
	needHarness(t)
	robot, alice := okSmarthost(t, dirFor(t)), aliceSmarthost(t)
	const corpRcpt, netRcpt, from = "a@corp.example.com", "b@example.net", "app@client.example.test"
	corpService := "starttls-" + env["SMARTHOST_PORT_STARTTLS"]
	netService := "auth-" + env["SMARTHOST_PORT_AUTH_ALL"]
	routes := `recipients = ["*@corp.example.com", "@.corp.example.com"]` + "\nhelo_name = \"corp-out.e2e.relay.test\""

	t.Run("two transactions, each through its own port and login", func(t *testing.T) {
		c := newCase(t, robot, "")
		c.writeTables(`helo_name = "out.e2e.relay.test"`, shTable("corp", robot, routes), shTable("provider", alice, ""))
		m := newMsg(t, from, []string{corpRcpt, netRcpt}, "one message, two smarthosts\n")
		c.submit(m, from, corpRcpt, netRcpt)
		mark := logMark(t)
		r, lines := c.queueRun()
		if r.Code != 0 {
			t.Errorf("queue run: %v", r)
		}
		rl := recipientLines(lines)
		if len(rl) != 2 {
			t.Fatalf("%d recipient log lines, want 2:\n%s", len(rl), r.Stderr)
		}
		qids := map[string]string{}
		for _, l := range rl {
			switch l.kv["to"] {
			case "<" + corpRcpt + ">":
				qids[corpRcpt] = expectSent(t, l, corpRcpt, robot.Port)
			case "<" + netRcpt + ">":
				qids[netRcpt] = expectSent(t, l, netRcpt, alice.Port)
			default:
				t.Errorf("log line about another recipient: %s", l.raw)
			}
		}
		if qids[corpRcpt] != "" && qids[corpRcpt] == qids[netRcpt] {
			t.Errorf("both recipients in one Postfix transaction %s", qids[corpRcpt])
		}
		postfixTook(t, mark, corpService, qids[corpRcpt], robot.Username, corpRcpt)
		postfixTook(t, mark, netService, qids[netRcpt], alice.Username, netRcpt)

		// The EHLO name Postfix recorded: each smarthost's own helo_name,
		// else the top-level one.
		contains(t, "Received of "+corpRcpt, smarthostReceived(t, m.ID, corpRcpt), "from corp-out.e2e.relay.test (", "Authenticated sender: "+robot.Username)
		contains(t, "Received of "+netRcpt, smarthostReceived(t, m.ID, netRcpt), "from out.e2e.relay.test (", "Authenticated sender: "+alice.Username)
		c.expectEmptyQueue()
	})

	t.Run("a failure of one part leaves the other delivered", func(t *testing.T) {
		broken := robot
		broken.PasswordFile = secretFile(t, dirFor(t), "not-"+env["SMARTHOST_PASS"]) // 535
		c := newCase(t, robot, "")
		c.writeTables("", shTable("corp", broken, routes), shTable("provider", alice, ""))
		m := newMsg(t, from, []string{corpRcpt, netRcpt}, "one part fails\n")
		c.submit(m, from, corpRcpt, netRcpt)
		r, lines := c.queueRun()
		if r.Code != 0 {
			t.Errorf("queue run: %v", r)
		}
		for _, l := range recipientLines(lines) {
			switch l.kv["to"] {
			case "<" + corpRcpt + ">":
				if l.kv["status"] != "deferred" || !strings.Contains(l.kv["reply"], "535") {
					t.Errorf("want %s deferred with 535: %s", corpRcpt, l.raw)
				}
			case "<" + netRcpt + ">":
				expectSent(t, l, netRcpt, alice.Port)
			}
		}
		if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 || !strings.EqualFold(cs[0].deliveredTo, netRcpt) {
			t.Errorf("copies %+v, want one, to %s", cs, netRcpt)
		}
		q := c.queueList()
		if len(q) != 1 || len(q[0].Recipients) != 1 || q[0].Recipients[0].Address != corpRcpt || q[0].Attempts != 1 {
			t.Fatalf("queue %+v, want the message with %s alone pending after one attempt", q, corpRcpt)
		}
		contains(t, "delay_reason", q[0].Recipients[0].DelayReason, "535")

		// Fixed: the retry carries a@corp alone; b@example.net is not sent
		// again.
		c.writeTables("", shTable("corp", robot, routes), shTable("provider", alice, ""))
		if r := run(t, nil, relayBin, "-C", c.conf, "queue", "flush"); r.Code != 0 {
			t.Fatalf("queue flush: %v", r)
		}
		r, lines = c.queueRun()
		rl := recipientLines(lines)
		if len(rl) != 1 {
			t.Fatalf("retry: %d recipient lines, want 1 (a@corp):\n%s", len(rl), r.Stderr)
		}
		expectSent(t, rl[0], corpRcpt, robot.Port)
		if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 2 {
			t.Errorf("%d copies after the retry, want 2 (one per recipient)", len(cs))
		}
		c.expectEmptyQueue()
	})
}

// TestSourceAddressAndIPFamily: source_address = "127.0.0.2" is the peer
// Postfix records; ip_family = "ipv6" reaches Postfix over ::1, and
// "ipv4" refuses an address of the other family.
func TestSourceAddressAndIPFamily(t *testing.T) {
	needHarness(t)
	t.Run("source_address", func(t *testing.T) {
		sh := okSmarthost(t, dirFor(t))
		c := newCase(t, sh, "")
		c.writeTables("", shTable("main", sh, `source_address = "127.0.0.2"`))
		m := newMsg(t, sh.Username, []string{"bob@example.org"}, "from 127.0.0.2\n")
		c.submit(m, sh.Username, "bob@example.org")
		mark := logMark(t)
		if r, _ := c.queueRun(); r.Code != 0 {
			t.Errorf("queue run: %v", r)
		}
		contains(t, "Received", smarthostReceived(t, m.ID, "bob@example.org"), "[127.0.0.2])")
		// client=NAME[127.0.0.2], sasl_username=…: the name is whatever
		// the host resolves 127.0.0.2 to (often unknown).
		contains(t, "Postfix's log", postfixLogSince(t, mark), "[127.0.0.2], sasl_method=PLAIN, sasl_username="+sh.Username)
		c.expectEmptyQueue()
	})

	t.Run("ip_family", func(t *testing.T) {
		if b, err := os.ReadFile("/proc/net/if_inet6"); err != nil || !strings.Contains(string(b), "00000000000000000000000000000001 ") {
			if os.Getenv("RELAY_CI") != "" {
				t.Fatal("no IPv6 loopback (::1) on this machine: the ip_family test cannot run")
			}
			t.Skip("no IPv6 loopback (::1)")
		}
		sh := okSmarthost(t, dirFor(t))
		sh.Host = "::1"
		c := newCase(t, sh, "")
		c.writeTables("", shTable("v6", sh, `ip_family = "ipv6"`))
		m := newMsg(t, sh.Username, []string{"bob@example.org"}, "over ::1\n")
		c.submit(m, sh.Username, "bob@example.org")
		r, lines := c.queueRun()
		rl := recipientLines(lines)
		if r.Code != 0 || len(rl) != 1 || rl[0].kv["status"] != "sent" || rl[0].kv["relay"] != "::1[::1]:"+strconv.Itoa(sh.Port) {
			t.Fatalf("want one line status=sent relay=::1[::1]:%d:\n%s", sh.Port, r.Stderr)
		}
		contains(t, "Received", smarthostReceived(t, m.ID, "bob@example.org"), "[IPv6:::1])")

		// ipv4 with an IPv6 address: no address to try, the mail waits.
		c.writeTables("", shTable("v6", sh, `ip_family = "ipv4"`))
		m = newMsg(t, sh.Username, []string{"bob@example.org"}, "never over ::1\n")
		c.submit(m, sh.Username, "bob@example.org")
		r, lines = c.queueRun()
		if rl := recipientLines(lines); len(rl) != 1 || rl[0].kv["status"] != "deferred" {
			t.Errorf("ip_family = \"ipv4\" to ::1: want deferred:\n%s", r.Stderr)
		}
		expectNotDelivered(t, m)
	})
}

// TestPHPMail_EachFromThroughItsOwnAccount: PHP's mail() with
// sendmail_path = "/usr/sbin/sendmail -t -i" puts the sender only in
// From. With envelope_from_header and two accounts (senders routing), each
// From goes out through its own account: Postfix refuses a sender owned
// by another login (reject_known_sender_login_mismatch), and its Received
// field names the login that authenticated.
func TestPHPMail_EachFromThroughItsOwnAccount(t *testing.T) {
	needHarness(t)
	needCaller(t, "php")
	robot, alice := okSmarthost(t, dirFor(t)), aliceSmarthost(t)
	conf := "envelope_from_header = true\n" +
		shTable("robot", robot, `senders = ["robot@example.test"]`) +
		shTable("alice", alice, `senders = ["alice@example.test"]`) +
		"[daemon]\ndetached_delivery = false\n"
	tok := token()
	idRobot, idAlice := "robot-"+tok+"@e2e.relay.test", "alice-"+tok+"@e2e.relay.test"
	code := fmt.Sprintf(`$a = mail("bob@example.org", "php robot %[1]s", "from robot", "From: Robot <robot@example.test>\r\nMessage-ID: <%[2]s>");`+
		` $b = mail("carol@example.org", "php alice %[1]s", "from alice", "From: Alice <alice@example.test>\r\nMessage-ID: <%[3]s>");`+
		` exit($a && $b ? 0 : 1);`, tok, idRobot, idAlice)
	o := runCaller(t, relayForCallers(t), false, callerRun{
		args: []string{"php", "-n", "-d", "sendmail_path=/usr/sbin/sendmail -t -i", "-r", code},
		conf: conf,
	})
	if len(o.queue) != 2 {
		t.Fatalf("%d messages queued, want 2; PHP said:\n%s", len(o.queue), o.out)
	}
	senders := map[string]bool{}
	for _, q := range o.queue {
		senders[q.Sender] = true
	}
	if !senders["robot@example.test"] || !senders["alice@example.test"] {
		t.Errorf("envelope senders %v, want each From's address", senders)
	}

	r := run(t, nil, relayBin, "-C", o.conf, "queue", "run")
	port := map[string]int{"bob@example.org": robot.Port, "carol@example.org": alice.Port}
	rl := recipientLines(parseLog(r.Stderr))
	if r.Code != 0 || len(rl) != 2 {
		t.Fatalf("queue run: %v", r)
	}
	for _, l := range rl {
		rcpt := strings.Trim(l.kv["to"], "<>")
		expectSent(t, l, rcpt, port[rcpt])
	}
	contains(t, "Received of robot's mail", smarthostReceived(t, idRobot, "bob@example.org"), "Authenticated sender: robot@example.test")
	contains(t, "Received of alice's mail", smarthostReceived(t, idAlice, "carol@example.org"), "Authenticated sender: alice@example.test")
}
