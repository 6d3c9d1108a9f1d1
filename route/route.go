package route

import (
	"strings"

	"github.com/relaymail/relay/config"
)

// Route returns the smarthosts to try, in order, for mail from the
// envelope sender sender (the address after the sender map, SPEC §5), to
// a recipient that no smarthost's recipients patterns name: the sender's
// route.
//
// The rule, like msmtp's accounts and Postfix's
// sender_dependent_relayhost_maps:
//
//   - the smarthosts whose senders patterns match the sender, in
//     configuration order;
//   - when none matches, the smarthosts without senders, in configuration
//     order (the catch-all ones);
//   - a smarthost with senders that do not match is never used for this
//     sender: its account may not send as it;
//   - a smarthost with recipients carries only the recipients they name
//     (see [Recipient]), so it is left out here, and its senders give no
//     sender a route of its own for other recipients.
//
// Failover goes down the returned list. An empty list means that no
// smarthost serves this sender: the mail waits in the queue (a fault of the
// configuration, never a bounce).
//
// Patterns: "*" (any address, the null sender too), "*@domain" or
// "@domain" (that domain exactly), "@.domain" (every subdomain of domain,
// not domain itself), "local@domain" (that address). Matching ignores case.
func Route(cfg *config.Config, sender string) []*config.Smarthost {
	var matched, open []*config.Smarthost
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		switch {
		case len(sh.Recipients) > 0:
			// Carries only the recipients it names (Recipient).
		case len(sh.Senders) == 0:
			open = append(open, sh)
		case SenderMatches(sh.Senders, sender):
			matched = append(matched, sh)
		}
	}
	if len(matched) > 0 {
		return matched
	}
	return open
}

// Recipient returns the smarthosts to try, in order, for the recipient
// rcpt of mail from sender (after the sender map): the recipient's step
// of SPEC §5, after the sender's.
//
//   - The smarthosts whose recipients patterns match rcpt and whose
//     senders allow the sender (senders match it, or there are none) carry
//     it; of those, the ones whose senders name the sender come first and
//     alone, as in [Route]. A recipients table thus wins over the sender's
//     own route, as Postfix's transport_maps win over
//     sender_dependent_relayhost_maps: mail for the company's own domain
//     goes to the internal relay whoever sends it.
//   - When no recipients pattern matches, the sender's route ([Route]):
//     the tables without recipients.
//   - A table whose recipients do not match never carries rcpt; one whose
//     senders do not match never carries mail from sender. Both must
//     allow a message for a table to carry it.
//
// An empty list: no smarthost serves this recipient for this sender; it
// waits (a fault of the configuration, never a bounce).
func Recipient(cfg *config.Config, sender, rcpt string) []*config.Smarthost {
	var own, open []*config.Smarthost
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		if len(sh.Recipients) == 0 || !AddressMatches(sh.Recipients, rcpt) {
			continue
		}
		switch {
		case len(sh.Senders) == 0:
			open = append(open, sh)
		case SenderMatches(sh.Senders, sender):
			own = append(own, sh)
		}
	}
	switch {
	case len(own) > 0:
		return own
	case len(open) > 0:
		return open
	}
	return Route(cfg, sender)
}

// Pinned returns the smarthost a submission named (sendmail -a NAME) as
// the only one to try, for every recipient: nil when no table has that
// name, or when its senders do not allow sender (its account may not send
// as it). Its recipients patterns are not looked at: the caller chose the
// account, as with msmtp's -a.
func Pinned(cfg *config.Config, name, sender string) *config.Smarthost {
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		if sh.Name != name {
			continue
		}
		if len(sh.Senders) > 0 && !SenderMatches(sh.Senders, sender) {
			return nil
		}
		return sh
	}
	return nil
}

// SenderMatches reports whether sender matches one of the senders patterns
// (see [Route]).
func SenderMatches(patterns []string, sender string) bool {
	return AddressMatches(patterns, sender)
}

// AddressMatches reports whether addr matches one of the patterns of
// senders or recipients (see [Route] for their syntax). "" (the null
// sender) matches only "*".
func AddressMatches(patterns []string, addr string) bool {
	for _, p := range patterns {
		if match(p, addr) {
			return true
		}
	}
	return false
}

func match(pattern, addr string) bool {
	if pattern == "*" {
		return true
	}
	if addr == "" {
		return false
	}
	if dom, ok := strings.CutPrefix(pattern, "*@"); ok {
		pattern = "@" + dom
	}
	at := strings.LastIndexByte(addr, '@')
	if parent, ok := strings.CutPrefix(pattern, "@."); ok {
		// Every subdomain of parent: "x.parent", "y.x.parent".
		return at >= 0 && len(addr)-at-1 > len(parent)+1 &&
			strings.EqualFold(addr[len(addr)-len(parent)-1:], "."+parent)
	}
	if strings.HasPrefix(pattern, "@") {
		return at >= 0 && strings.EqualFold(addr[at:], pattern)
	}
	return strings.EqualFold(addr, pattern)
}

// OutgoingSender returns the envelope sender that goes out through sh for
// mail whose sender (after the sender map) is sender, and the rule that
// changed it ("" when nothing did):
//
//   - envelope_from, when set, replaces every sender (rule "envelope_from");
//   - else a preset whose provider accepts only the login as the sender
//     (yandex, mailru, outlook, rambler) sends the login, when it is an
//     address (rule "preset yandex: envelope sender = login");
//   - else the sender goes out as it is.
//
// The null sender stays null: it says "never answer this" and no rule
// changes it. relay's own reports are not sent with the null sender
// anyway; they carry bounce_from (see package relay, notify.go).
func OutgoingSender(sh *config.Smarthost, sender string) (addr, rule string) {
	if sender == "" {
		return "", ""
	}
	switch {
	case sh.EnvelopeFrom != "":
		if sh.EnvelopeFrom == sender {
			return sender, ""
		}
		return sh.EnvelopeFrom, "envelope_from"
	case sh.Preset != "" && config.Presets[sh.Preset].SenderIsLogin && strings.Contains(sh.Username, "@"):
		if strings.EqualFold(sh.Username, sender) {
			return sender, ""
		}
		return sh.Username, "preset " + sh.Preset + ": envelope sender = login"
	}
	return sender, ""
}
