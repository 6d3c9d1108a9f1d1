package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commands are the relay commands the dispatcher knows (main.go's switch).
var commands = []string{"sendmail", "mailq", "newaliases", "queue", "check", "rewrite", "install", "version", "help", "probe", "daemon"}

// TestHelp_EveryCommandPrintsItsUsage: --help and -h after any command,
// relay help COMMAND, and the names sendmail, mailq, newaliases with
// --help print the usage on stdout and exit 0, before any configuration
// is read (install --help needs no root).
func TestHelp_EveryCommandPrintsItsUsage(t *testing.T) {
	// A configuration that does not load: help must not read it.
	conf := filepath.Join(t.TempDir(), "relay.toml")
	os.WriteFile(conf, []byte("this is = = not toml\n"), 0o600)
	t.Setenv("RELAY_CONFIG", conf)

	type tc struct {
		argv []string
		want string // in the usage
	}
	var cases []tc
	for _, cmd := range commands {
		want := "usage: relay " + cmd
		switch cmd {
		case "sendmail", "mailq", "newaliases":
			want = "usage: " + cmd
		}
		cases = append(cases,
			tc{[]string{"relay", cmd, "--help"}, want},
			tc{[]string{"relay", "help", cmd}, want},
			tc{[]string{"relay", "-C", conf, cmd, "--help"}, want})
		if cmd != "sendmail" { // sendmail's -h N is a hop count
			cases = append(cases, tc{[]string{"relay", cmd, "-h"}, want})
		}
	}
	cases = append(cases,
		tc{[]string{"relay", "--help"}, "usage: relay [-C FILE] COMMAND"},
		tc{[]string{"relay", "-h"}, "usage: relay [-C FILE] COMMAND"},
		tc{[]string{"relay", "help"}, "usage: relay [-C FILE] COMMAND"},
		tc{[]string{"relay", "queue", "list", "--help"}, "usage: relay queue"},
		tc{[]string{"relay", "queue", "show", "-h"}, "usage: relay queue"},
		tc{[]string{"relay", "probe", "-v", "--help"}, "usage: relay probe"},
		tc{[]string{"/usr/sbin/sendmail", "--help"}, "usage: sendmail"},
		tc{[]string{"/usr/bin/mailq", "--help"}, "usage: mailq"},
		tc{[]string{"/usr/bin/newaliases", "--help"}, "usage: newaliases"},
	)
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := run(c.argv, strings.NewReader(""), &stdout, &stderr)
		if code != 0 || !strings.HasPrefix(stdout.String(), c.want) || stderr.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and a usage beginning %q", c.argv, code, stdout.String(), stderr.String(), c.want)
		}
	}
}

// TestHelp_Refusals: help for an unknown command is a usage error; relay
// without a command prints the usage on stderr and exits 64 as before.
func TestHelp_Refusals(t *testing.T) {
	for _, argv := range [][]string{{"relay", "help", "frobnicate"}, {"relay"}} {
		var stdout, stderr bytes.Buffer
		if code := run(argv, strings.NewReader(""), &stdout, &stderr); code != 64 || stdout.Len() != 0 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 64 and stderr only", argv, code, stdout.String(), stderr.String())
		}
	}
}

// TestHelp_SendmailHopCountIsNoHelp: sendmail's -h N stays the hop count
// it is in sendmail (accepted and ignored), and --help after other flags
// is no request for help either.
func TestHelp_SendmailHopCountIsNoHelp(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "relay.toml")
	os.WriteFile(conf, []byte("spool = \""+filepath.Join(dir, "spool")+"\"\n"), 0o600)
	t.Setenv("RELAY_CONFIG", conf)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sendmail", "-h", "5", "-bp"}, strings.NewReader(""), &stdout, &stderr); code != 0 || strings.Contains(stdout.String(), "usage") {
		t.Errorf("sendmail -h 5 -bp: exit %d, stdout %q, stderr %q; want the queue listing", code, stdout.String(), stderr.String())
	}
	for _, args := range [][]string{{"-h", "5", "-bp"}, {"-t", "--help"}} {
		if helpAsked("sendmail", args) {
			t.Errorf("helpAsked(sendmail, %q)", args)
		}
	}
}
