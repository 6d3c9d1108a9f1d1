package sendmailcompat

import (
	"slices"
	"strings"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/route"
	"github.com/relaymail/relay/sysexits"
)

// senderFromHeader reports whether the envelope sender of m comes from
// its From header: no -f, a local submitter (an SMTP client gave MAIL
// FROM), and --read-envelope-from, or -t with envelope_from_header. PHP's
// mail() runs "sendmail -t -i" and puts the sender only in From; with
// several accounts (senders routing) that From must choose the account,
// as msmtp's --read-envelope-from makes it.
func (s *Submitter) senderFromHeader(m *Submission) bool {
	return !m.SenderSet && m.Client == nil && (m.ReadEnvelopeFrom || m.Extract && s.EnvelopeFromHeader)
}

// headerSender is the address of the From field (already qualified): its
// only mailbox, or, for a From with several, the Sender field's (RFC 5322
// 3.6.2). ok is false when there is none that is a valid address: then
// the envelope sender stays the user's own.
func headerSender(h *header) (string, bool) {
	from := h.get("from")
	if len(from) == 0 {
		return "", false
	}
	list, err := mailaddr.ParseList(from[0].value())
	if err != nil || len(list) == 0 {
		return "", false
	}
	addr := list[0].Addr
	if len(list) > 1 {
		if sf := h.get("sender"); len(sf) > 0 {
			if sl, err := mailaddr.ParseList(sf[0].value()); err == nil && len(sl) == 1 {
				addr = sl[0].Addr
			}
		}
	}
	if addr == "" || mailaddr.Valid(addr) != nil {
		return "", false
	}
	return addr, true
}

// checkPinned checks the smarthost named with -a: it must be configured
// (64 otherwise, with the names that are), and its senders, when it has
// any, must allow the sender after the sender map (77: its account may
// not send as it). Without a configuration to check against (a broken
// one), the name is kept: delivery holds the mail until it is fixed.
func (s *Submitter) checkPinned(name, sender string) error {
	if name == "" || s.Rewrite == nil || s.Rewrite.Config == nil || s.Rewrite.Config.Broken() != nil {
		return nil
	}
	cfg := s.Rewrite.Config
	var names []string
	for _, sh := range cfg.Smarthosts {
		names = append(names, sh.Name)
	}
	if !slices.Contains(names, name) {
		known := "none is configured"
		if len(names) > 0 {
			known = "configured: " + strings.Join(names, ", ")
		}
		return usageErr("-a %s: no [[smarthost]] has that name (%s)", name, known)
	}
	mapped, _ := s.Rewrite.MapSender(sender)
	if route.Pinned(cfg, name, mapped) == nil {
		return sysexits.New(sysexits.NoPerm, "-a %s: the senders of that smarthost do not allow <%s>", name, mapped)
	}
	return nil
}
