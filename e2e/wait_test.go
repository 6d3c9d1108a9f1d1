package e2e_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

// sendmail --wait delivers at once and says how it went in the exit code
// (SPEC 3): 0 delivered, 75 still queued, 67 a recipient refused for good.
func TestWait_ExitCodes(t *testing.T) {
	needHarness(t)
	user := env["SMARTHOST_USER"]
	for _, tt := range []struct {
		name  string
		sh    func() smarthost
		rcpts []string
		code  int
		msg   string
	}{
		{"delivered", func() smarthost { return okSmarthost(t, dirFor(t)) }, []string{"wait-ok@example.org"}, 0, ""},
		{"refused", func() smarthost { return okSmarthost(t, dirFor(t)) }, []string{"wait-ok2@example.org", env["SMARTHOST_REFUSED_RCPT"]}, 67, "refused permanently"},
		{"deferred", func() smarthost {
			sh := okSmarthost(t, dirFor(t))
			sh.PasswordFile = secretFile(t, dirFor(t), env["SMARTHOST_PASS2"]) // the wrong one: 535
			return sh
		}, []string{"wait-later@example.org"}, 75, "not delivered yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCase(t, tt.sh(), "")
			m := newMsg(t, user, tt.rcpts, "--wait "+tt.name+"\n")
			args := append([]string{"-C", c.conf, "sendmail", "--wait=30s", "-i", "-f", user}, tt.rcpts...)
			r := run(t, bytes.NewReader(m.Body), relayBin, args...)
			if r.Code != tt.code {
				t.Fatalf("exit %d, want %d: %+v", r.Code, tt.code, r)
			}
			if tt.code == 0 && (r.Stdout != "" || r.Stderr != "") {
				t.Errorf("output on success: %+v", r)
			}
			if tt.msg != "" && (!strings.Contains(r.Stderr, tt.msg) || strings.Count(r.Stderr, "\n") != 1) {
				t.Errorf("stderr %q, want one line with %q", r.Stderr, tt.msg)
			}
			q := c.queueList()
			switch tt.code {
			case 0:
				if len(q) != 0 {
					t.Errorf("queue after delivery: %+v", q)
				}
				if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 {
					t.Errorf("%d copies delivered, want 1", len(cs))
				}
			case 75:
				if len(q) != 1 || q[0].Attempts != 1 {
					t.Errorf("queue after a deferral: %+v, want the message, tried once", q)
				}
			case 67:
				// The refused recipient's bounce is queued; the other got it.
				if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 {
					t.Errorf("%d copies delivered, want 1", len(cs))
				}
			}
		})
	}
}

// sendmail -v shows the SMTP dialogue on stderr, with AUTH redacted.
func TestVerbose_ShowsDialogueWithoutCredentials(t *testing.T) {
	needHarness(t)
	user, pass := env["SMARTHOST_USER"], env["SMARTHOST_PASS"]
	c := newCase(t, okSmarthost(t, dirFor(t)), "")
	m := newMsg(t, user, []string{"verbose@example.org"}, "-v\n")
	r := run(t, bytes.NewReader(m.Body), relayBin, "-C", c.conf, "sendmail", "-v", "-i", "-f", user, "verbose@example.org")
	if r.Code != 0 {
		t.Fatalf("exit %d: %+v", r.Code, r)
	}
	for _, want := range []string{"EHLO", "STARTTLS", "AUTH PLAIN", "MAIL FROM:<" + user + ">", "RCPT TO:<verbose@example.org>", "250", "status=sent"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("dialogue lacks %q:\n%s", want, r.Stderr)
		}
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	for _, secret := range []string{pass, plain, base64.StdEncoding.EncodeToString([]byte(pass))} {
		if strings.Contains(r.Stderr, secret) {
			t.Errorf("the dialogue shows the credentials (%q)", secret)
		}
	}
	if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 {
		t.Errorf("%d copies delivered, want 1", len(cs))
	}
}

// Without a daemon, sendmail starts delivery in a detached process. Called
// through pipes whose reader waits for EOF (as cron and PHP do), it
// returns at once: the detached runner holds none of its streams, even
// while it hangs on a smarthost that never answers.
func TestDetached_CallerNeverWaits(t *testing.T) {
	needHarness(t)
	user := env["SMARTHOST_USER"]

	t.Run("a silent smarthost does not hold the caller", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan struct{}, 8)
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- struct{}{}
				defer conn.Close() // never greets
			}
		}()
		sh := okSmarthost(t, dirFor(t))
		sh.Port = ln.Addr().(*net.TCPAddr).Port
		c := &tc{t: t, detached: true}
		c0 := newCase(t, sh, "")
		c.dir, c.conf = c0.dir, c0.conf
		c.writeConfig(sh, "")

		m := newMsg(t, user, []string{"detached@example.org"}, "detached\n")
		cmd := exec.Command(relayBin, "-C", c.conf, "sendmail", "-i", "-f", user, "detached@example.org")
		cmd.Env = cleanEnv()
		cmd.Stdin = bytes.NewReader(m.Body)
		stdout, _ := cmd.StdoutPipe()
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Read both pipes to EOF, as cron does, with a deadline far below
		// the runner's command timeout (minutes): EOF must come when
		// sendmail exits, not when the runner does.
		out := make(chan string, 2)
		for _, p := range []io.Reader{stdout, stderr} {
			go func() { b, _ := io.ReadAll(p); out <- string(b) }()
		}
		for i := 0; i < 2; i++ {
			select {
			case s := <-out:
				if s != "" {
					t.Errorf("sendmail printed %q", s)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the caller's pipes stayed open: the detached runner holds them")
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("sendmail: %v", err)
		}
		select {
		case <-accepted: // the runner did start and connect
		case <-time.After(20 * time.Second):
			t.Fatal("no detached runner connected to the smarthost")
		}
	})

	t.Run("the message arrives without relay queue run", func(t *testing.T) {
		sh := okSmarthost(t, dirFor(t))
		c := &tc{t: t, detached: true}
		c0 := newCase(t, sh, "")
		c.dir, c.conf = c0.dir, c0.conf
		c.writeConfig(sh, "")
		m := newMsg(t, user, []string{"detached2@example.org"}, "detached and delivered\n")
		c.submit(m, user, "detached2@example.org")
		if !testsmtp.WaitFor(30*time.Second, func() bool { return len(c.queueList()) == 0 }) {
			t.Fatalf("still queued after 30 s: %+v", c.queueList())
		}
		if cs := waitCopies(t, 30*time.Second, m.ID)[m.ID]; len(cs) != 1 {
			t.Errorf("%d copies delivered, want 1", len(cs))
		}
	})
}
