package rewrite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

func checkText(r *Rules) string {
	var out []string
	for _, p := range r.Check() {
		out = append(out, p.String())
	}
	return strings.Join(out, "\n")
}

func TestCheckRootAndPostmaster(t *testing.T) {
	// A mail domain of its own: root and postmaster may well be delivered.
	r := rulesWith(t, "", "", "")
	r.Config.Smarthosts = []config.Smarthost{{Name: "mail", Username: "robot@server1.example.com"}}
	if got := checkText(r); got != "" {
		t.Errorf("domain set, no aliases: %s", got)
	}
	// A private name: a smarthost cannot deliver it.
	r.Config.Domain, r.Domain = "server1.lan", "server1.lan"
	got := checkText(r)
	for _, want := range []string{
		`warning: rewrite.aliases: mail to root goes to root@server1.lan, which a smarthost cannot deliver (.lan is a private name): add "root: you@example.com" to /etc/aliases`,
		`warning: rewrite.aliases: mail to postmaster goes to postmaster@server1.lan`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	// No smarthost yet: relay check reports that first; the address
	// root's mail needs comes next.
	sh := r.Config.Smarthosts
	r.Config.Smarthosts = nil
	if got := checkText(r); strings.Contains(got, "which a smarthost cannot deliver") {
		t.Errorf("no smarthost: the root address is reported already: %s", got)
	}
	r.Config.Smarthosts = sh
	// No domain configured and no /etc/mailname: the host's own name.
	old := config.MailnamePath
	config.MailnamePath = filepath.Join(t.TempDir(), "no-mailname")
	defer func() { config.MailnamePath = old }()
	r.Config.Domain, r.Domain = "", "server1.example.com"
	if got := checkText(r); !strings.Contains(got, "server1.example.com is this host's name") {
		t.Errorf("host name as domain: %s", got)
	}
	// Aliased away: no warning; to a command: it bounces.
	r = rulesWith(t, "root: admin@example.org\npostmaster: root\n", "", "")
	r.Config.Domain, r.Domain = "server1.lan", "server1.lan"
	if got := checkText(r); got != "" {
		t.Errorf("aliased: %s", got)
	}
	r = rulesWith(t, "root: |/usr/bin/procmail\npostmaster: root\n", "", "")
	got = checkText(r)
	if !strings.Contains(got, "warning: rewrite.aliases: mail to root bounces: ") || !strings.Contains(got, "mail to postmaster bounces: ") ||
		!strings.Contains(got, ":1: warning: root: \"|/usr/bin/procmail\" is a command") {
		t.Errorf("command: %s", got)
	}
}

func TestCheckDMARC(t *testing.T) {
	r := rulesWith(t, "root: admin@example.org\npostmaster: root\n", "", "")
	r.Config.Smarthosts = []config.Smarthost{{Name: "yandex", Preset: "yandex", Username: "robot@example.com"}}
	// server1.example.com would be aligned with example.com (relaxed):
	r.Config.Domain, r.Domain = "server1.example.net", "server1.example.net"
	got := checkText(r)
	want := `/etc/relay/relay.toml: warning: rewrite.from_header: mail from root goes out through smarthost "yandex" with From root@server1.example.net, not in the domain of its login robot@example.com: receivers that check DMARC drop or junk it; set [rewrite] from_header = "rewrite"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	r.Config.Rewrite.FromHeader = "rewrite"
	if got := checkText(r); got != "" {
		t.Errorf("rewrite: %s", got)
	}
	// A subdomain of the login's domain is aligned (relaxed alignment).
	r.Config.Rewrite.FromHeader = "keep"
	r.Config.Domain, r.Domain = "server1.example.com", "server1.example.com"
	r.Config.Smarthosts[0] = config.Smarthost{Name: "corp", Username: "robot@example.com"}
	if got := checkText(r); got != "" {
		t.Errorf("subdomain: %s", got)
	}
	// envelope_from to a foreign domain with from_header = "rewrite": map
	// the sender instead.
	r.Config.Rewrite.FromHeader = "rewrite"
	r.Config.Smarthosts[0].EnvelopeFrom = "bounces@other.example"
	if got := checkText(r); !strings.Contains(got, "with From bounces@other.example") || !strings.Contains(got, "sender_map") {
		t.Errorf("envelope_from: %s", got)
	}
}
