package route

import (
	"strings"

	"github.com/relaymail/relay/config"
)

// Route returns the smarthosts to try, in order, for mail from the
// envelope sender sender (the address after the sender map, SPEC §5).
//
// The rule, like msmtp's accounts and Postfix's
// sender_dependent_relayhost_maps:
//
//   - the smarthosts whose senders patterns match the sender, in
//     configuration order;
//   - when none matches, the smarthosts without senders, in configuration
//     order (the catch-all ones);
//   - a smarthost with senders that do not match is never used for this
//     sender: its account may not send as it.
//
// Failover goes down the returned list. An empty list means that no
// smarthost serves this sender: the mail waits in the queue (a fault of the
// configuration, never a bounce).
//
// Patterns: "*" (any sender, the null sender too), "*@domain" or "@domain"
// (that domain exactly, not its subdomains), "local@domain" (that address).
// Matching ignores case.
func Route(cfg *config.Config, sender string) []*config.Smarthost {
	var matched, open []*config.Smarthost
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		switch {
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

// SenderMatches reports whether sender matches one of the senders patterns
// (see [Route]).
func SenderMatches(patterns []string, sender string) bool {
	for _, p := range patterns {
		if senderMatch(p, sender) {
			return true
		}
	}
	return false
}

func senderMatch(pattern, sender string) bool {
	if pattern == "*" {
		return true
	}
	if sender == "" {
		return false
	}
	if dom, ok := strings.CutPrefix(pattern, "*@"); ok {
		pattern = "@" + dom
	}
	if strings.HasPrefix(pattern, "@") {
		at := strings.LastIndexByte(sender, '@')
		return at >= 0 && strings.EqualFold(sender[at:], pattern)
	}
	return strings.EqualFold(sender, pattern)
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
