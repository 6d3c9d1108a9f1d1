package rewrite

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

// writeFile writes text into a file of the test's own and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rulesWith loads Rules for a configuration with the given alias file
// text ("" = none), sender map and login map.
func rulesWith(t *testing.T, aliases, senders, logins string) *Rules {
	t.Helper()
	cfg := config.Default()
	cfg.Path = "/etc/relay/relay.toml"
	cfg.Domain = "server1.example.com"
	cfg.Rewrite.Aliases = ""
	if aliases != "" {
		cfg.Rewrite.Aliases = writeFile(t, "aliases", aliases)
	}
	if senders != "" {
		cfg.Rewrite.SenderMap = writeFile(t, "senders", senders)
	}
	if logins != "" {
		cfg.Rewrite.SenderLoginMap = writeFile(t, "logins", logins)
	}
	r := Load(cfg, "server1.example.com")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// expansions formats what addr becomes: "addr" or "!reason" each.
func expansions(r *Rules, addr string) string {
	var out []string
	for _, x := range r.Expand(addr) {
		if x.Undeliverable != "" {
			out = append(out, "!"+x.Undeliverable)
		} else {
			out = append(out, x.Address)
		}
	}
	return strings.Join(out, " ")
}

func TestAliasExpansion(t *testing.T) {
	const file = `# /etc/aliases
# a comment line, and an empty one:

mailer-daemon: postmaster
postmaster: root
root: alice@example.org, bob
Bob: bob@example.org
team: alice@example.org,
	carol@example.org,
  # a comment between continuation lines
	dave
dave: "Dave Jones" <dave@example.org>
self: self, alice@example.org
loop1: loop2
loop2: loop1
loop3: loop2, alice@example.org
deep1: deep2
deep2: deep3
deep3: deep4
deep4: deep5
deep5: deep6
deep6: deep7
deep7: deep8
deep8: deep9
deep9: deep10
deep10: deep11
deep11: deep12
deep12: alice@example.org
pipe: "|/usr/bin/procmail -d pipe"
file: /var/log/mail-archive
incl: :include:/etc/mail/staff
mixed: |/usr/bin/logger, alice@example.org
escaped: \root
"quoted": alice@example.org
full: root@server1.example.com
*: catchall@example.org
`
	r := rulesWith(t, file, "", "")
	line := func(prefix string) string {
		for i, l := range strings.Split(file, "\n") {
			if strings.HasPrefix(l, prefix) {
				return r.Files().Aliases.File + ":" + strconv.Itoa(i+1)
			}
		}
		return "?"
	}
	tests := []struct{ in, want string }{
		{"alice@example.org", "alice@example.org"},                        // not local: untouched
		{"root", "alice@example.org bob@example.org"},                     // list, recursion, case
		{"ROOT@Server1.Example.Com", "alice@example.org bob@example.org"}, // case-insensitive, local domain
		{"root@server1", "alice@example.org bob@example.org"},             // the short host name is local
		{"root@localhost", "alice@example.org bob@example.org"},
		{"mailer-daemon", "alice@example.org bob@example.org"},           // three levels
		{"team", "alice@example.org carol@example.org dave@example.org"}, // continuation lines, trailing comma
		{"self", "self@server1.example.com alice@example.org"},           // a name listing itself means itself
		{"loop1", "!alias loop: loop1 -> loop2 -> loop1"},
		{"loop3", "alice@example.org"}, // the looping branch is left out
		{"deep1", "!aliases nested deeper than 10: deep1 -> deep2 -> deep3 -> deep4 -> deep5 -> deep6 -> deep7 -> deep8 -> deep9 -> deep10"},
		{"pipe", `!` + line("pipe:") + `: pipe: "|/usr/bin/procmail -d pipe" is a command; relay only hands mail to its smarthost and runs no commands`},
		{"file", `!` + line("file:") + `: file: "/var/log/mail-archive" is a file; relay only hands mail to its smarthost and writes no mailboxes`},
		{"incl", `!` + line("incl:") + `: incl: ":include:/etc/mail/staff" is an :include: list, which relay does not read; write the addresses into the entry`},
		{"mixed", "alice@example.org"},          // the command is left out
		{"escaped", "root@server1.example.com"}, // \root: not expanded again
		{"quoted", "alice@example.org"},
		{"full", "alice@example.org bob@example.org"}, // a full local address on the right is expanded
		{"nobody", "catchall@example.org"},            // the catch-all
		{"nobody@other.example", "nobody@other.example"},
	}
	for _, tt := range tests {
		if got := expansions(r, tt.in); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, p := range r.Files().Problems {
		if !p.Warning {
			t.Errorf("unexpected error: %s", p)
		}
	}
}

func TestAliasCatchAllNotRecursive(t *testing.T) {
	// What "*" gives is expanded by entries, not by "*" again.
	r := rulesWith(t, "*: admin\nroot: alice@example.org\n", "", "")
	if got := expansions(r, "www-data"); got != "admin@server1.example.com" {
		t.Errorf("www-data: %q", got)
	}
	r = rulesWith(t, "*: root\nroot: alice@example.org\n", "", "")
	if got := expansions(r, "www-data"); got != "alice@example.org" {
		t.Errorf("www-data through root: %q", got)
	}
}

func TestAliasProblems(t *testing.T) {
	const file = `root: alice@example.org,
	continued@example.org
no colon here
: nobody@example.org
empty:
	  
bad: a@b@c
two@example.org: x@example.org
root: again@example.org
pipe: |/usr/bin/procmail
file: /var/mail/x
incl: :include:/etc/staff
quote: "|unterminated, x@example.org
ok: fine@example.org,
	"Jo, Smith" <jo@example.org>
`
	p := writeFile(t, "aliases", file)
	a, probs, err := ParseAliases(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pr := range probs {
		got = append(got, strings.TrimPrefix(pr.String(), p))
	}
	want := []string{
		`:3: "no colon here": no colon: an entry is "name: address, address…"`,
		`:4: ": nobody@example.org": empty name before the colon`,
		`:5: empty: nothing after the colon`,
		`:7: bad: "a@b@c" is not an address: mailaddr: more than one "@": "a@b@c" (offset 0)`,
		`:8: two@example.org: an alias name is a local name (no @, no spaces)`,
		`:9: warning: root: defined again (first at line 1, which counts)`,
		`:10: warning: pipe: "|/usr/bin/procmail" is a command; relay only hands mail to its smarthost and runs no commands; mail reaching it bounces`,
		`:11: warning: file: "/var/mail/x" is a file; relay only hands mail to its smarthost and writes no mailboxes; mail reaching it bounces`,
		`:12: warning: incl: ":include:/etc/staff" is an :include: list, which relay does not read; write the addresses into the entry; mail reaching it bounces`,
		`:13: quote: unterminated quoted string`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The good entries still count.
	x := &expander{a: a, local: func(string) bool { return true }, qual: func(s string) string { return s }}
	var addrs []string
	for _, e := range x.expand("ok") {
		addrs = append(addrs, e.Address)
	}
	if strings.Join(addrs, " ") != "fine@example.org jo@example.org" {
		t.Errorf("ok: %v", addrs)
	}
	if e := x.expand("root"); len(e) != 2 || e[1].Address != "continued@example.org" || e[1].Rule != "alias "+p+": root (line 1)" {
		t.Errorf("root: %+v", e)
	}
}

func TestAliasContinuationWithoutEntry(t *testing.T) {
	p := writeFile(t, "aliases", "\tstray@example.org\nroot: a@example.org\r\n")
	a, probs, err := ParseAliases(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 1 || probs[0].Line != 1 || !strings.Contains(probs[0].Msg, "continuation line") {
		t.Errorf("problems: %v", probs)
	}
	if al := a.entries["root"]; al == nil || al.targets[0].text != "a@example.org" {
		t.Errorf("CRLF line: %+v", al)
	}
}

func TestRecipientsKeepOriginal(t *testing.T) {
	r := rulesWith(t, "root: alice@example.org, bob@example.org\npipe: |/bin/cat\n", "", "")
	in := []spoolRecipient{{"root@server1.example.com", "root"}, {"bob@example.org", ""}, {"pipe@server1.example.com", "pipe"}}
	out, bad := r.Recipients(toSpool(in))
	var got []string
	for _, rc := range out {
		got = append(got, rc.Address+"<"+rc.Original+">"+string(rc.Status))
	}
	want := "alice@example.org<root>pending bob@example.org<root>pending pipe@server1.example.com<pipe>failed"
	if strings.Join(got, " ") != want {
		t.Errorf("got %s\nwant %s", strings.Join(got, " "), want)
	}
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "pipe: ") {
		t.Errorf("bad: %v", bad)
	}
	if !strings.HasPrefix(out[2].Reason(), "550 5.1.1 <pipe>: ") {
		t.Errorf("reason %q", out[2].Reason())
	}
}
