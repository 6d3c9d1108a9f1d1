package e2e_test

// Address rewriting against the real Postfix smarthost (issue 10): Debian
// cron's mail from root through a port that refuses every sender its login
// does not own (reject_sender_login_mismatch, as Yandex and mail.ru do),
// and messages that must pass untouched (a correct From, a DKIM
// signature).

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/relaymail/relay/spool"
)

// rewriteFiles writes an alias file and a sender map into c's directory
// and returns the [rewrite] table naming them.
func rewriteFiles(t *testing.T, c *tc, aliases, senders, extra string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[rewrite]\n")
	for _, f := range []struct{ key, name, text string }{{"aliases", "aliases", aliases}, {"sender_map", "senders", senders}} {
		if f.text == "" {
			continue
		}
		p := filepath.Join(c.dir, f.name)
		if err := os.WriteFile(p, []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s = %q\n", f.key, p)
	}
	b.WriteString(extra + "\n")
	return b.String()
}

// queuedMessageID is the Message-ID relay gave the only queued message.
func queuedMessageID(t *testing.T, c *tc) string {
	t.Helper()
	sp, err := spool.Open(filepath.Join(c.dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := sp.IDs()
	if err != nil || len(ids) != 1 {
		t.Fatalf("queue: %v %v, want one message", ids, err)
	}
	m, err := sp.Read(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Trim(m.MessageID, "<>")
}

// deliveredCopy waits for the one copy of msgID in the Maildir and returns
// it with LF line ends.
func deliveredCopy(t *testing.T, msgID string) string {
	t.Helper()
	copies := waitCopies(t, 60*time.Second, msgID)[msgID]
	if len(copies) != 1 {
		t.Fatalf("%d copies of <%s> in the Maildir, want 1", len(copies), msgID)
	}
	b, err := os.ReadFile(copies[0].path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// headerField returns the first field name of a message (unfolded value),
// "" when there is none.
func headerField(msg, name string) string {
	head, _, _ := strings.Cut(msg, "\n\n")
	head = strings.ReplaceAll(head, "\n\t", " ")
	head = strings.ReplaceAll(head, "\n ", " ")
	for _, l := range strings.Split(head, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestRewrite_CronAsRoot: Debian cron's own message and command line,
// submitted as root, through a smarthost that accepts only its login as
// the sender. Without rewriting it is deferred with the 553 and its
// explanation; after the configuration is fixed, relay queue flush and a
// run deliver it, with envelope sender and From = the login, a display
// name naming root and the host, and the aliased recipient.
func TestRewrite_CronAsRoot(t *testing.T) {
	needHarness(t)
	if os.Geteuid() != 0 {
		t.Skip("cron mails as root: run the e2e suite as root")
	}
	dir := dirFor(t)
	sh := okSmarthost(t, dir)
	sh.Port = envInt(t, "SMARTHOST_PORT_STRICT_SENDER")
	login, alice := env["SMARTHOST_USER"], env["SMARTHOST_USER2"]
	c := newCase(t, sh, "")
	aliases := "# root's mail goes to a person\nroot: admin\nadmin: " + alice + "\n"
	c.writeConfig(sh, rewriteFiles(t, c, aliases, "", ""))

	host, _ := os.Hostname()
	short, _, _ := strings.Cut(host, ".")
	tok := token()
	cmd := "/usr/local/bin/backup-" + tok + " --all"
	// What Debian cron (do_command.c) writes, byte for byte, then the
	// job's output (8-bit).
	cronMsg := "From: root (Cron Daemon)\n" +
		"To: root\n" +
		"Subject: Cron <root@" + short + "> " + cmd + "\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: text/plain; charset=UTF-8\n" +
		"Content-Transfer-Encoding: 8bit\n" +
		"X-Cron-Env: <SHELL=/bin/sh>\n" +
		"X-Cron-Env: <HOME=/root>\n" +
		"X-Cron-Env: <PATH=/usr/bin:/bin>\n" +
		"X-Cron-Env: <LOGNAME=root>\n" +
		"\n" +
		"backup: 3 files, 1.2 GB — готово\n.\nlast line\n"
	// cron's exact command line: the configuration comes from the
	// environment, as on a machine with /etc/relay/relay.toml.
	environ := append(cleanEnv(), "RELAY_CONFIG="+c.conf)
	if r := runEnv(t, environ, strings.NewReader(cronMsg), sendmailBin, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"); r.Code != 0 || r.Stdout+r.Stderr != "" {
		t.Fatalf("sendmail as cron runs it: %v", r)
	}
	msgID := queuedMessageID(t, c)
	if q := c.queueList(); len(q) != 1 || len(q[0].Recipients) != 1 || q[0].Recipients[0].Address != alice {
		t.Fatalf("queued: %+v, want one message to %s (root -> admin -> %s)", q, alice, alice)
	}

	// Without rewriting: root@client.example.test is no address of the
	// login, and the smarthost says so at MAIL FROM.
	mark := logMark(t)
	_, lines := c.queueRun()
	rl := recipientLines(lines)
	if len(rl) != 1 || rl[0].kv["status"] != "deferred" {
		t.Fatalf("without rewriting: %v, want one deferred line", lines)
	}
	contains(t, "reply", rl[0].kv["reply"], "553 5.7.1", "Sender address rejected: not owned by user "+login)
	contains(t, "hint", rl[0].kv["hint"], "envelope_from", "sender_map")
	ss := sessions(t, mark, "strict-"+env["SMARTHOST_PORT_STRICT_SENDER"])
	if len(ss) == 0 || !strings.Contains(ss[len(ss)-1].String(), "from=<root@client.example.test>") {
		t.Errorf("Postfix did not see MAIL FROM:<root@client.example.test>: %v", ss)
	}

	// relay rewrite says what the fix will do before it is applied.
	fixed := rewriteFiles(t, c, aliases, "root: "+login+"\n", `from_header = "rewrite"`)
	c.writeConfig(sh, fixed)
	r := run(t, nil, relayBin, "-C", c.conf, "rewrite", "root")
	contains(t, "relay rewrite root", r.Stdout,
		"envelope recipient: "+alice+" via smarthost ",
		"envelope sender:    "+login+" via smarthost ",
		"From:               root on "+short+" <"+login+">")

	// Fixed: flush and run.
	if r := run(t, nil, relayBin, "-C", c.conf, "queue", "flush"); r.Code != 0 {
		t.Fatalf("flush: %v", r)
	}
	_, lines = c.queueRun()
	rl = recipientLines(lines)
	if len(rl) != 1 || rl[0].kv["status"] != "sent" || rl[0].kv["to"] != "<"+alice+">" {
		t.Fatalf("after the fix: %v, want one sent line to %s", lines, alice)
	}
	c.expectEmptyQueue()

	got := deliveredCopy(t, msgID)
	for _, f := range []struct{ name, want string }{
		{"Return-Path", "<" + login + ">"}, // the envelope sender, as Postfix recorded it
		{"Delivered-To", alice},
		{"From", `"Cron Daemon (root on ` + short + `)" <` + login + `>`},
		{"X-Original-From", "root@client.example.test (Cron Daemon)"},
		{"To", "root@client.example.test"},
		{"Subject", "Cron <root@" + short + "> " + cmd},
		{"Content-Type", "text/plain; charset=UTF-8"},
	} {
		if v := headerField(got, f.name); v != f.want {
			t.Errorf("%s: %q, want %q", f.name, v, f.want)
		}
	}
	if !strings.Contains(got, "X-Cron-Env: <SHELL=/bin/sh>\nX-Cron-Env: <HOME=/root>\nX-Cron-Env: <PATH=/usr/bin:/bin>\nX-Cron-Env: <LOGNAME=root>\n") {
		t.Errorf("X-Cron-Env lines changed:\n%s", got)
	}
	if _, body, _ := strings.Cut(got, "\n\n"); body != "backup: 3 files, 1.2 GB — готово\n.\nlast line\n" {
		t.Errorf("body %q", body)
	}
}

// dkimSigned returns msg (CRLF) with a DKIM-Signature (simple/simple:
// any change to a signed byte breaks it) and the TXT record of the key.
func dkimSigned(t *testing.T, msg string, headers []string) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
		Domain: "example.test", Selector: "relay", Signer: priv,
		HeaderCanonicalization: dkim.CanonicalizationSimple, BodyCanonicalization: dkim.CanonicalizationSimple,
		HeaderKeys: headers,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

// verifyDKIM checks the signature of a delivered message (LF line ends,
// as the Maildir stores it) against the TXT record.
func verifyDKIM(t *testing.T, delivered, txt string) error {
	t.Helper()
	v, err := dkim.VerifyWithOptions(strings.NewReader(strings.ReplaceAll(delivered, "\n", "\r\n")), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "relay._domainkey.example.test" {
				return nil, fmt.Errorf("no TXT record for %s", domain)
			}
			return []string{txt}, nil
		},
	})
	if err != nil {
		return err
	}
	if len(v) != 1 {
		return fmt.Errorf("%d signatures", len(v))
	}
	return v[0].Err
}

// TestRewrite_PassesUnchanged: an application that already sends as the
// login, with a DKIM signature, through the strict port. With
// from_header = "keep" and no header rules the message arrives byte for
// byte as submitted (below the smarthost's and relay's trace fields); with
// from_header = "rewrite" (its From is already the sender) and rules on
// unsigned fields the signature still verifies; a rule on a signed field
// breaks it, as the README says.
func TestRewrite_PassesUnchanged(t *testing.T) {
	needHarness(t)
	dir := dirFor(t)
	sh := okSmarthost(t, dir)
	sh.Port = envInt(t, "SMARTHOST_PORT_STRICT_SENDER")
	login, alice := env["SMARTHOST_USER"], env["SMARTHOST_USER2"]
	signed := []string{"From", "To", "Subject", "Date", "Message-ID", "Content-Type"}

	for _, tt := range []struct {
		name      string
		rewrite   string
		exact     bool // the submitted bytes arrive unchanged
		dkimValid bool
	}{
		{"keep, no rules", `from_header = "keep"`, true, true},
		{"rewrite, rules on unsigned fields", `from_header = "rewrite"
[[rewrite.header]]
action = "add"
name = "X-Relay-Host"
value = "%h"
[[rewrite.header]]
action = "remove"
name = "X-Mailer"`, false, true},
		{"a rule on a signed field", `from_header = "keep"
[[rewrite.header]]
action = "append"
name = "Subject"
value = " [%h]"`, false, false},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			c := newCase(t, sh, "")
			c.writeConfig(sh, rewriteFiles(t, c, "", "", tt.rewrite))
			id := token() + "@shop.example.test"
			msg := "From: \"Shop, Orders\" <" + login + ">\r\n" +
				"To: Alice <" + alice + ">\r\n" +
				"Subject: Order " + id + "\r\n" +
				"Date: Mon, 23 Nov 2026 01:00:00 +0000\r\n" +
				"Message-ID: <" + id + ">\r\n" +
				"Reply-To: orders@shop.example.test\r\n" +
				"X-Mailer: ShopMailer 1.0\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n" +
				"\r\n" +
				"Thank you for your order.\r\n  Indented line, trailing space \r\n"
			msg, txt := dkimSigned(t, msg, signed)
			if r := run(t, strings.NewReader(msg), sendmailBin, "-C", c.conf, "-i", "-f", login, alice); r.Code != 0 || r.Stdout+r.Stderr != "" {
				t.Fatalf("sendmail: %v", r)
			}
			_, lines := c.queueRun()
			if rl := recipientLines(lines); len(rl) != 1 || rl[0].kv["status"] != "sent" {
				t.Fatalf("delivery: %v", lines)
			}
			got := deliveredCopy(t, id)
			want := strings.ReplaceAll(msg, "\r\n", "\n")
			if tt.exact && !strings.HasSuffix(got, want) {
				t.Errorf("the message changed on its way:\n%s\nwant it to end with:\n%s", got, want)
			}
			if v := headerField(got, "From"); v != `"Shop, Orders" <`+login+`>` {
				t.Errorf("From changed: %q", v)
			}
			if v := headerField(got, "X-Original-From"); v != "" {
				t.Errorf("X-Original-From added to a correct From: %q", v)
			}
			if v := headerField(got, "Reply-To"); v != "orders@shop.example.test" {
				t.Errorf("Reply-To: %q", v)
			}
			err := verifyDKIM(t, got, txt)
			if tt.dkimValid && err != nil {
				t.Errorf("DKIM signature broken: %v\n%s", err, got)
			}
			if !tt.dkimValid && err == nil {
				t.Errorf("a changed Subject still verifies: the check proves nothing\n%s", got)
			}
			if strings.Contains(tt.rewrite, "X-Relay-Host") {
				// The rules did apply.
				host, _ := os.Hostname()
				if v := headerField(got, "X-Relay-Host"); v != host || headerField(got, "X-Mailer") != "" {
					t.Errorf("rules not applied: X-Relay-Host %q, X-Mailer %q", v, headerField(got, "X-Mailer"))
				}
			}
		})
	}
}
