package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

// Symfony Mailer's default transport runs `sendmail -bs` and speaks SMTP
// to it on stdin/stdout (Debian's php-symfony-mailer, installed by
// e2e/callers.sh). These tests point its SendmailTransport at the built
// relay.
//
// Gate: php and Symfony Mailer installed, else skipped (failed with
// RELAY_E2E=1). Queueing needs no smarthost: without the harness the test
// builds its own binary. Delivery through the harness runs when it is up.

const symfonyAutoload = "/usr/share/php/Symfony/Component/Mailer/autoload.php"

// symfonyScript sends one message with SendmailTransport; the parameters
// come as JSON in argv[1]. It prints "SENT <message-id>" and Symfony's
// record of the SMTP dialogue, or "ERROR: …" and exits 1.
const symfonyScript = `<?php
require_once '` + symfonyAutoload + `';

use Symfony\Component\Mailer\Transport\SendmailTransport;
use Symfony\Component\Mime\Email;

$p = json_decode($argv[1], true, 512, JSON_THROW_ON_ERROR);
$transport = new SendmailTransport($p['command']);
$email = (new Email())
	->from($p['from'])
	->to(...$p['to'])
	->subject($p['subject'])
	->text($p['text']);
if ($p['cc']) { $email->cc(...$p['cc']); }
if ($p['bcc']) { $email->bcc(...$p['bcc']); }
$email->getHeaders()->addIdHeader('Message-ID', $p['id']);
try {
	$sent = $transport->send($email);
} catch (\Throwable $e) {
	echo 'ERROR: ', get_class($e), ': ', $e->getMessage(), "\n";
	if (method_exists($e, 'getDebug')) { echo $e->getDebug(); }
	exit(1);
}
unset($transport); // QUIT; the sendmail process is waited for
echo 'SENT ', $sent->getMessageId(), "\n", $sent->getDebug();
`

// needSymfony skips (fails with RELAY_E2E=1) when PHP or Symfony Mailer is
// missing, and returns the php binary.
func needSymfony(t *testing.T) string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err == nil {
		_, err = os.Stat(symfonyAutoload)
	}
	if err != nil {
		msg := fmt.Sprintf("Symfony Mailer is not installed (%v): sudo bash e2e/callers.sh install (packages php-cli, php-symfony-mailer)", err)
		if os.Getenv("RELAY_E2E") == "1" {
			t.Fatalf("RELAY_E2E=1 but %s", msg)
		}
		t.Skip(msg)
	}
	return php
}

// relayBinary is the suite's binary when TestMain built one (the harness
// is up), RELAY_E2E_BIN when set, else a binary built for this test.
func relayBinary(t *testing.T) string {
	t.Helper()
	if relayBin != "" {
		return relayBin
	}
	if bin := os.Getenv("RELAY_E2E_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(t.TempDir(), "relay")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type symfonyMail struct {
	Command string   `json:"command"`
	From    string   `json:"from"`
	To      []string `json:"to"`
	Cc      []string `json:"cc"`
	Bcc     []string `json:"bcc"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	ID      string   `json:"id"`
}

// symfonySend runs the PHP script; it returns its output and whether it
// exited 0.
func symfonySend(t *testing.T, php string, m symfonyMail) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "send.php")
	if err := os.WriteFile(script, []byte(symfonyScript), 0o644); err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, php, script, string(params))
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	t.Logf("php (Symfony Mailer):\n%s", out)
	printedMu.Lock()
	printed.Write(out) // the dialogue shows relay's replies: checked for passwords too
	printedMu.Unlock()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("php: %v", err)
		}
	}
	return string(out), err == nil
}

// shellQuote quotes s for /bin/sh, which PHP's proc_open runs the
// transport's command with.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// queueEntries lists conf's queue with `relay queue list --json`.
func queueEntries(t *testing.T, bin, conf string) []queueEntry {
	t.Helper()
	r := run(t, nil, bin, "-C", conf, "queue", "list", "--json")
	if r.Code != 0 {
		t.Fatalf("queue list --json: %v", r)
	}
	var out []queueEntry
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if line == "" {
			continue
		}
		var e queueEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("queue list --json: %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func TestSymfonyMailer_SendmailBS(t *testing.T) {
	php := needSymfony(t)
	bin := relayBinary(t)
	sendmail := filepath.Join(t.TempDir(), "sendmail")
	if err := os.Symlink(bin, sendmail); err != nil {
		t.Fatal(err)
	}

	t.Run("queued", func(t *testing.T) {
		dir := t.TempDir()
		conf := filepath.Join(dir, "relay.toml")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("spool = %s\ndomain = \"client.example.test\"\n", strconv.Quote(filepath.Join(dir, "spool")))), 0o600); err != nil {
			t.Fatal(err)
		}
		id := token() + "@e2e.relay.test"
		out, ok := symfonySend(t, php, symfonyMail{
			// As an application configures it: the sendmail name, -bs.
			Command: shellQuote(sendmail) + " -bs -C " + shellQuote(conf),
			From:    "App <app@example.org>",
			To:      []string{"bob@example.org"},
			Cc:      []string{"Carol <carol@example.org>"},
			Bcc:     []string{"dave@example.org"},
			Subject: "Symfony via sendmail -bs",
			Text:    "first\n.leading dot\n..two dots\n.\nlast\n",
			ID:      id,
		})
		if !ok || !strings.HasPrefix(out, "SENT "+id+"\n") {
			t.Fatalf("Symfony did not send:\n%s", out)
		}
		contains(t, "Symfony's dialogue", out, "< 220 ", "> HELO ", "< 354 ", "< 250 2.0.0 Ok: queued as ")
		q := queueEntries(t, bin, conf)
		if len(q) != 1 {
			t.Fatalf("%d messages queued, want 1: %+v", len(q), q)
		}
		var rcpts []string
		for _, r := range q[0].Recipients {
			rcpts = append(rcpts, r.Address)
		}
		if q[0].Sender != "app@example.org" || !slices.Equal(rcpts, []string{"bob@example.org", "carol@example.org", "dave@example.org"}) {
			t.Errorf("envelope: sender %q recipients %q, want app@example.org to bob, carol, dave", q[0].Sender, rcpts)
		}
		if !strings.Contains(out, "queued as "+q[0].QueueID) {
			t.Errorf("Symfony's 250 does not name queue ID %s", q[0].QueueID)
		}
		r := run(t, nil, bin, "-C", conf, "queue", "show", q[0].QueueID)
		if r.Code != 0 {
			t.Fatalf("queue show: %v", r)
		}
		contains(t, "queue show", r.Stdout, "Message-ID: <"+id+">", "Subject: Symfony via sendmail -bs", "Received: by ", "(relay, from userid "+strconv.Itoa(os.Getuid())+")")
		if strings.Contains(strings.ToLower(r.Stdout), "bcc:") {
			t.Errorf("a Bcc header was queued:\n%s", r.Stdout)
		}
	})

	t.Run("refused", func(t *testing.T) {
		// A message over max_message_size: Symfony must see the 552 and
		// throw (the reason -bs is Symfony's default), nothing queued.
		dir := t.TempDir()
		conf := filepath.Join(dir, "relay.toml")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("spool = %s\ndomain = \"client.example.test\"\nmax_message_size = \"2KB\"\n", strconv.Quote(filepath.Join(dir, "spool")))), 0o600); err != nil {
			t.Fatal(err)
		}
		out, ok := symfonySend(t, php, symfonyMail{
			Command: shellQuote(bin) + " sendmail -bs -C " + shellQuote(conf),
			From:    "app@example.org",
			To:      []string{"bob@example.org"},
			Subject: "too large",
			Text:    strings.Repeat("0123456789 ", 1000),
			ID:      token() + "@e2e.relay.test",
		})
		if ok || !strings.Contains(out, "ERROR: ") || !strings.Contains(out, "552") {
			t.Errorf("Symfony should have thrown on relay's 552:\n%s", out)
		}
		if q := queueEntries(t, bin, conf); len(q) != 0 {
			t.Errorf("queued after a 552: %+v", q)
		}
	})

	t.Run("delivered", func(t *testing.T) {
		// Through the real smarthost: Symfony → relay's queue → Postfix.
		c := newCase(t, okSmarthost(t, dirFor(t)), "")
		user := env["SMARTHOST_USER"]
		id := token() + "@e2e.relay.test"
		out, ok := symfonySend(t, php, symfonyMail{
			Command: shellQuote(relayBin) + " sendmail -bs -C " + shellQuote(c.conf),
			From:    user,
			To:      []string{"bob@example.org"},
			Cc:      []string{"carol@example.org"},
			Subject: "Symfony via relay",
			Text:    "before\n.leading dot\n.\nafter\n",
			ID:      id,
		})
		if !ok {
			t.Fatalf("Symfony did not send:\n%s", out)
		}
		r, lines := c.queueRun()
		if r.Code != 0 {
			t.Fatalf("queue run: %v", r)
		}
		if n := len(recipientLines(lines)); n != 2 {
			t.Errorf("%d recipient lines in the log, want 2", n)
		}
		copies := waitCopies(t, 30*time.Second, id)[id]
		got := map[string]int{}
		for _, d := range copies {
			got[d.deliveredTo]++
		}
		if len(copies) != 2 || got["bob@example.org"] != 1 || got["carol@example.org"] != 1 {
			t.Fatalf("delivered copies %v, want one each for bob and carol", got)
		}
		b, err := os.ReadFile(copies[0].path)
		if err != nil {
			t.Fatal(err)
		}
		// Symfony dot-stuffs, relay unstuffs, relay's client stuffs again,
		// Postfix unstuffs: the lines arrive as Symfony was given them.
		body := string(b)
		if i := strings.Index(body, "\n\n"); i >= 0 {
			body = body[i+2:]
		}
		if !strings.HasPrefix(body, "before\n.leading dot\n.\nafter\n") {
			t.Errorf("delivered body %q", body)
		}
		c.expectEmptyQueue()
	})

	t.Run("delivered at once", func(t *testing.T) {
		// As installed (detached_delivery on), no queue run: relay -bs
		// starts delivery after the message it queued, as sendmail does.
		sh := okSmarthost(t, dirFor(t))
		c := newCase(t, sh, "")
		c.detached = true
		c.writeConfig(sh, "")
		id := token() + "@e2e.relay.test"
		out, ok := symfonySend(t, php, symfonyMail{
			Command: shellQuote(relayBin) + " sendmail -bs -C " + shellQuote(c.conf),
			From:    env["SMARTHOST_USER"],
			To:      []string{"bob@example.org"},
			Subject: "Symfony via relay, delivered at once",
			Text:    "no timer, no daemon\n",
			ID:      id,
		})
		if !ok {
			t.Fatalf("Symfony did not send:\n%s", out)
		}
		// relay's runner hands it to Postfix, then Postfix delivers it.
		if !testsmtp.WaitFor(30*time.Second, func() bool { return len(c.queueList()) == 0 }) {
			t.Fatalf("still queued 30 s later, without a queue run: %+v", c.queueList())
		}
		if cs := waitCopies(t, 30*time.Second, id)[id]; len(cs) != 1 {
			t.Errorf("%d copies delivered without a queue run, want 1", len(cs))
		}
	})
}
