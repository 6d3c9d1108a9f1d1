package main_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
)

// sendmail -bs through the built binary: an SMTP dialogue on stdin and
// stdout (Symfony Mailer's default transport), exit 0, nothing but SMTP
// replies on stdout, the message queued.
func TestSendmail_BS(t *testing.T) {
	for _, how := range []struct {
		name string
		prog string
		args []string
	}{
		{"relay sendmail", "relay", []string{"sendmail", "-bs"}},
		{"sendmail symlink", "sendmail", []string{"-bs"}},
	} {
		t.Run(how.name, func(t *testing.T) {
			// No alias file: the host's /etc/aliases may alias root.
			e := testbin.NewEnv(t, "[rewrite]\naliases = \"\"\n")
			transcript := "EHLO app.example\r\n" +
				"MAIL FROM:<app@example.org>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<root>\r\nDATA\r\n" +
				"From: App <app@example.org>\r\nTo: bob@example.org\r\nSubject: via -bs\r\n\r\n..dotted\r\nbody\r\n.\r\n" +
				"RCPT TO:<bad@@example.org>\r\n" + // refused: no transaction, no exit code
				"QUIT\r\n"
			r := testbin.Run(e.Cmd(how.prog, append(how.args, "-C", e.Conf)...), transcript)
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("exit %d, stderr %q\nstdout:\n%s", r.Code, r.Stderr, r.Stdout)
			}
			reply := regexp.MustCompile(`^[2-5][0-9][0-9][ -][^\r\n]*\r\n$`)
			var codes []string
			var queuedAs string
			for _, l := range strings.SplitAfter(r.Stdout, "\r\n") {
				if l == "" {
					continue
				}
				if !reply.MatchString(l) {
					t.Fatalf("stdout holds %q, not an SMTP reply line:\n%s", l, r.Stdout)
				}
				if l[3] == ' ' {
					codes = append(codes, l[:3])
				}
				if m := regexp.MustCompile(`^250 2\.0\.0 Ok: queued as ([0-9A-Z]+)\r\n$`).FindStringSubmatch(l); m != nil {
					queuedAs = m[1]
				}
			}
			if want := []string{"220", "250", "250", "250", "250", "354", "250", "503", "221"}; !slices.Equal(codes, want) {
				t.Errorf("replies %v, want %v\n%s", codes, want, r.Stdout)
			}
			msgs := e.Messages()
			m := msgs[queuedAs]
			if len(msgs) != 1 || m == nil {
				t.Fatalf("queue holds %d messages, want the one the 250 named (%q)", len(msgs), queuedAs)
			}
			var rcpts []string
			for _, rc := range m.Recipients {
				rcpts = append(rcpts, rc.Address)
			}
			if m.Sender != "app@example.org" || !slices.Equal(rcpts, []string{"bob@example.org", "root@server1.example.com"}) {
				t.Errorf("envelope: sender %q recipients %q", m.Sender, rcpts)
			}
			content := e.Content(queuedAs)
			if !strings.HasSuffix(content, "\r\n\r\n.dotted\r\nbody\r\n") || !strings.Contains(content, "Subject: via -bs\r\n") {
				t.Errorf("queued content:\n%q", content)
			}
		})
	}
}

// When relay cannot accept mail at all, the SMTP client reads why in a 421
// greeting, and the exit code says it too.
func TestSendmail_BSCannotStart(t *testing.T) {
	// A spool that cannot be made (its path is a file): no message could
	// be kept. (A configuration with errors is no such case: sendmail
	// queues its mail all the same.)
	e := testbin.NewEnv(t, "")
	if err := os.WriteFile(e.Spool, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := testbin.Run(e.Cmd("sendmail", "-bs"), "EHLO x\r\nQUIT\r\n")
	if r.Code == 0 || r.Code == 78 {
		t.Errorf("exit %d, want the spool's failure", r.Code)
	}
	if !strings.HasPrefix(r.Stdout, "421 4.3.0 relay cannot accept mail: ") || strings.Count(r.Stdout, "\r\n") != 1 || !strings.HasSuffix(r.Stdout, "\r\n") {
		t.Errorf("stdout %q, want one 421 line", r.Stdout)
	}
	if !strings.Contains(r.Stderr, e.Spool) {
		t.Errorf("stderr %q, want the spool's error", r.Stderr)
	}
}

// A client that stops reading (closes its end of the pipe) must not kill
// relay with SIGPIPE.
func TestSendmail_BSClosedStdout(t *testing.T) {
	e := testbin.NewEnv(t, "")
	c := e.Cmd("sendmail", "-bs")
	c.Stdin = strings.NewReader("EHLO x\r\nQUIT\r\n")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	out.Close() // before the child writes anything: its stdout is a broken pipe
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	var ee *exec.ExitError
	if ee, _ = err.(*exec.ExitError); ee != nil {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("killed by %v", ws.Signal())
		}
	}
	if err != nil {
		t.Fatalf("exit: %v", err)
	}
}
