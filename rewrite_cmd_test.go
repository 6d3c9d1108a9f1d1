package main_test

// relay rewrite, sendmail -bv, newaliases, relay check and sendmail's exit
// 67, run as an administrator runs them.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
)

// rewriteEnv is an env with an alias file (its text) and a sender map.
func rewriteEnv(t *testing.T, aliases, extra string) (*testbin.Env, string) {
	t.Helper()
	dir := t.TempDir()
	af := filepath.Join(dir, "aliases")
	if err := os.WriteFile(af, []byte(aliases), 0o644); err != nil {
		t.Fatal(err)
	}
	sm := filepath.Join(dir, "senders")
	if err := os.WriteFile(sm, []byte("root: robot@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := testbin.NewEnv(t, fmt.Sprintf("[rewrite]\naliases = %q\nsender_map = %q\n%s\n[[smarthost]]\nname = \"mail\"\nhost = \"smtp.example.com\"\nusername = \"robot@example.com\"\npassword = \"x\"\n", af, sm, extra))
	return e, af
}

func TestRewriteCommand(t *testing.T) {
	e, af := rewriteEnv(t, "root: admin\nadmin: alice@example.org\npipe: |/usr/bin/procmail\n", `from_header = "rewrite"`)
	want := fmt.Sprintf(`root
  envelope recipient: alice@example.org via smarthost "mail" (alias %[1]s: root (line 1) -> admin (line 2))
  envelope sender:    robot@example.com via smarthost "mail" (sender_map %[2]s:1 root)
  From:               root on server1 <robot@example.com> (from_header = "rewrite", the old From kept in X-Original-From)
bob@example.org
  envelope recipient: bob@example.org via smarthost "mail" (unchanged)
  envelope sender:    bob@example.org via smarthost "mail" (unchanged)
  From:               bob@example.org (unchanged)
`, af, filepath.Join(filepath.Dir(af), "senders"))
	host, _ := os.Hostname()
	short, _, _ := strings.Cut(host, ".")
	want = strings.ReplaceAll(want, " on server1", " on "+short)
	for _, c := range [][]string{{"relay", "rewrite", "root", "bob@example.org"}, {"sendmail", "-bv", "root", "bob@example.org"}} {
		r := testbin.Run(e.Cmd(c[0], c[1:]...), "")
		if r.Code != 0 || r.Stdout != want || r.Stderr != "" {
			t.Errorf("%v: exit %d\n%s\nstderr %q\nwant\n%s", c, r.Code, r.Stdout, r.Stderr, want)
		}
	}
	r := testbin.Run(e.Cmd("relay", "rewrite", "pipe"), "")
	if r.Code != 67 || !strings.Contains(r.Stdout, "envelope recipient: undeliverable: "+af+":3: pipe:") {
		t.Errorf("pipe: %+v", r)
	}
	if _, err := os.Stat(e.Spool); err == nil {
		t.Error("relay rewrite made a spool: it must send and queue nothing")
	}
}

func TestNewaliases(t *testing.T) {
	e, af := rewriteEnv(t, "root: alice@example.org\nno colon\nbackup: |/usr/local/bin/archive\n", "")
	for _, c := range [][]string{{"newaliases"}, {"relay", "newaliases"}, {"sendmail", "-bi"}} {
		r := testbin.Run(e.Cmd(c[0], c[1:]...), "")
		want := fmt.Sprintf("%[2]s: %[1]s:2: warning: \"no colon\": no colon: an entry is \"name: address, address…\"\n"+
			"%[2]s: %[1]s:3: warning: backup: \"|/usr/local/bin/archive\" is a command; relay only hands mail to its smarthost and runs no commands; mail reaching it bounces\n", af, progName(c))
		if r.Code != 0 || r.Stdout != "" || r.Stderr != want {
			t.Errorf("%v: exit %d stdout %q\nstderr:\n%s\nwant:\n%s", c, r.Code, r.Stdout, r.Stderr, want)
		}
	}
	// A clean file: silence.
	e, _ = rewriteEnv(t, "root: alice@example.org\n", "")
	if r := testbin.Run(e.Cmd("newaliases"), ""); r.Code != 0 || r.Stdout+r.Stderr != "" {
		t.Errorf("clean: %+v", r)
	}
}

func progName(c []string) string {
	if c[0] == "sendmail" && c[1] == "-bi" {
		return "sendmail"
	}
	return c[0]
}

func TestCheckRewriting(t *testing.T) {
	// A bad alias line is a configuration error for relay check (78), an
	// unservable entry a warning.
	e, af := rewriteEnv(t, "root: alice@example.org\nno colon\npostmaster: |/bin/cat\n", "")
	r := testbin.Run(e.Cmd("relay", "check"), "")
	if r.Code != 78 || !strings.Contains(r.Stderr, af+":2: \"no colon\": no colon") ||
		!strings.Contains(r.Stderr, "warning: rewrite.aliases: mail to postmaster bounces: "+af+":3: postmaster:") {
		t.Errorf("check: %+v", r)
	}
	// root at a private name, and a From not aligned with the login.
	e, _ = rewriteEnv(t, "", "")
	e.WriteConf(strings.Replace(readFile(t, e.Conf), `domain = "server1.example.com"`, `domain = "server1.lan"`, 1))
	r = testbin.Run(e.Cmd("relay", "check"), "")
	for _, want := range []string{
		"warning: rewrite.aliases: mail to root goes to root@server1.lan, which a smarthost cannot deliver (.lan is a private name)",
		"warning: rewrite.aliases: mail to postmaster goes to postmaster@server1.lan",
	} {
		if r.Code != 0 || !strings.Contains(r.Stderr, want) {
			t.Errorf("missing %q: %+v", want, r)
		}
	}
	// root's envelope is mapped to robot@example.com, but From is kept.
	if !strings.Contains(r.Stderr, `warning: rewrite.from_header: mail from root goes out through smarthost "mail" with From root@server1.lan, not in the domain of its login robot@example.com`) {
		t.Errorf("no DMARC warning: %s", r.Stderr)
	}
}

func TestCheckDMARCMisaligned(t *testing.T) {
	e, _ := rewriteEnv(t, "root: alice@example.org\npostmaster: root\n", "")
	e.WriteConf(strings.Replace(readFile(t, e.Conf), `domain = "server1.example.com"`, `domain = "server1.example.net"`, 1))
	r := testbin.Run(e.Cmd("relay", "check"), "")
	if r.Code != 0 || !strings.Contains(r.Stderr, `warning: rewrite.from_header: mail from root goes out through smarthost "mail" with From root@server1.example.net, not in the domain of its login robot@example.com`) {
		t.Errorf("check: %+v", r)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSendmail_NowhereToGo(t *testing.T) {
	e, _ := rewriteEnv(t, "root: |/usr/bin/procmail\n", "[daemon]\ndetached_delivery = false")
	r := testbin.Run(e.Cmd("sendmail", "-i", "root", "bob@example.org"), "Subject: s\n\nx\n")
	if r.Code != 67 || !strings.Contains(r.Stderr, "have nowhere to go and bounce: root: ") {
		t.Errorf("sendmail: %+v", r)
	}
	msgs := e.Messages()
	if len(msgs) != 1 {
		t.Fatalf("queued %d message(s), want 1 (bob's copy and root's bounce)", len(msgs))
	}
	for _, m := range msgs {
		if len(m.Recipients) != 2 || m.Recipients[0].Status != "failed" || m.Recipients[1].Status != "pending" {
			t.Errorf("recipients %+v", m.Recipients)
		}
	}
}
