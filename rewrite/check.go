package rewrite

import (
	"fmt"
	"os"
	"strings"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/route"
)

// privateTLDs are top-level names no public smarthost delivers to
// (RFC 6761, RFC 6762, and what installers often put in /etc/hosts).
var privateTLDs = map[string]bool{
	"local": true, "localdomain": true, "localhost": true, "lan": true, "home": true,
	"internal": true, "intranet": true, "corp": true, "private": true, "invalid": true,
}

// Check returns what relay check says about rewriting:
//
//   - bad lines (errors) and unservable entries (warnings) of the alias
//     file, sender map and sender_login_map, with file:line;
//   - root and postmaster (RFC 2142: every domain must have a
//     postmaster) ending where the smarthost cannot deliver: a command or
//     file, a loop, or (once a smarthost is configured) a local address
//     whose domain is this host's own name or a private one (.local,
//     .lan, …);
//   - DMARC alignment: the From of mail from root after rewriting is not
//     in the domain of the login of the smarthost that sends it
//     (receivers drop or junk such mail).
func (r *Rules) Check() []config.Problem {
	// (Files that cannot be read: config.Check says so.)
	probs := append([]config.Problem(nil), r.Files().Problems...)
	warn := func(key, format string, args ...any) {
		probs = append(probs, config.Problem{File: r.Config.Path, Key: key, Msg: fmt.Sprintf(format, args...), Warning: true})
	}
	aliasFile := r.Config.Rewrite.Aliases
	if aliasFile == "" {
		aliasFile = "/etc/aliases"
	}
	for _, name := range []string{"root", "postmaster"} {
		for _, x := range r.Expand(name) {
			if x.Undeliverable != "" {
				warn("rewrite.aliases", "mail to %s bounces: %s", name, x.Undeliverable)
				continue
			}
			// Without a smarthost nothing is delivered at all, and relay
			// check says that first: which address root's mail needs is
			// the next step, shown once a smarthost is there (a fresh
			// package install reports the one thing to do).
			if len(r.Config.Smarthosts) == 0 {
				continue
			}
			if why := r.undeliverableDomain(x.Address); why != "" {
				warn("rewrite.aliases", "mail to %s goes to %s, which a smarthost cannot deliver (%s): add \"%s: you@example.com\" to %s",
					name, x.Address, why, name, aliasFile)
			}
		}
	}
	if sh, from, login := r.misaligned(); sh != nil {
		how := `set [rewrite] from_header = "rewrite"`
		if r.Config.Rewrite.FromHeader == "rewrite" {
			how = "map the sender to an address of that domain (sender_map) or set envelope_from"
		}
		warn("rewrite.from_header", "mail from root goes out through smarthost %q with From %s, not in the domain of its login %s: receivers that check DMARC drop or junk it; %s",
			sh.Name, from, login, how)
	}
	return probs
}

// undeliverableDomain says why a local address cannot be delivered by a
// smarthost, "" when it may well be.
func (r *Rules) undeliverableDomain(addr string) string {
	if !r.Local(addr) {
		return ""
	}
	d := strings.ToLower(mailaddr.Domain(addr))
	labels := strings.Split(d, ".")
	switch {
	case len(labels) < 2:
		return d + " has no dot: it is no mail domain"
	case privateTLDs[labels[len(labels)-1]]:
		return "." + labels[len(labels)-1] + " is a private name"
	case r.Config.Domain == "" && !exists(config.MailnamePath):
		return d + " is this host's name (no domain in relay.toml, no " + config.MailnamePath + ")"
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// misaligned returns the smarthost, From address and login when mail
// from root would leave with a From whose domain is not the login's
// (relaxed DMARC alignment, approximated by the last two labels).
func (r *Rules) misaligned() (*config.Smarthost, string, string) {
	root := r.qualify("root")
	mapped, _ := r.MapSender(root)
	hosts := route.Route(r.Config, mapped)
	if len(hosts) == 0 {
		return nil, "", ""
	}
	sh := hosts[0]
	if !strings.Contains(sh.Username, "@") {
		return nil, "", ""
	}
	out, _ := route.OutgoingSender(sh, mapped)
	from := root
	if r.Config.Rewrite.FromHeader == "rewrite" && out != "" {
		from = out
	}
	if orgDomain(mailaddr.Domain(from)) == orgDomain(mailaddr.Domain(sh.Username)) {
		return nil, "", ""
	}
	return sh, from, sh.Username
}

// orgDomain approximates the organizational domain: the last two labels.
func orgDomain(d string) string {
	labels := strings.Split(strings.ToLower(strings.TrimSuffix(d, ".")), ".")
	if len(labels) > 2 {
		labels = labels[len(labels)-2:]
	}
	return strings.Join(labels, ".")
}
