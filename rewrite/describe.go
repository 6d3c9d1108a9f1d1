package rewrite

import (
	"fmt"
	"io"
	"strings"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/route"
)

// Report says what relay makes of one address (relay rewrite, sendmail
// -bv): as an envelope recipient, as an envelope sender, and as the
// address of a From field; each with the rules that decided.
type Report struct {
	Input   string // as given
	Address string // qualified
	// Recipients: what the address becomes as an envelope recipient.
	Recipients []Expansion
	// Routes names, for each of Recipients, the smarthost that carries it
	// (the first of its candidates) for mail from the address itself (as
	// cron mails root from root); "" when none does. nil without any
	// [[smarthost]].
	Routes []string
	// Sender is the envelope sender that goes out, through Smarthost;
	// SenderRules the rules applied in order (sender map, envelope_from or
	// a preset's rule); Smarthost "" when no smarthost serves the sender.
	Sender      string
	SenderRules []string
	Smarthost   string
	// From is the From field of a message from this address without a
	// display name, as delivered; FromRule the rule ("" when unchanged).
	From     string
	FromRule string
}

// Undeliverable reports whether the address has nowhere to go as a
// recipient.
func (rep Report) Undeliverable() bool {
	return len(rep.Recipients) > 0 && rep.Recipients[0].Undeliverable != ""
}

// Describe follows addr through every rule in the order of delivery: the
// alias file and the route of each recipient (by the smarthosts'
// recipients, then the sender's route); the sender map, routing by the
// smarthosts' senders, envelope_from and the preset's rule (sender);
// from_header (From).
func (r *Rules) Describe(addr string) Report {
	q := r.qualify(addr)
	rep := Report{Input: addr, Address: q, Recipients: r.Expand(addr)}
	rep.Sender, rep.From = q, q
	mapped, rule := r.MapSender(q)
	if rule != "" {
		rep.SenderRules = append(rep.SenderRules, rule)
	}
	rep.Sender = mapped
	for _, x := range rep.Recipients {
		if len(r.Config.Smarthosts) == 0 {
			break // the sender's line says that nothing is configured
		}
		name := ""
		if x.Undeliverable == "" {
			if hosts := route.Recipient(r.Config, mapped, x.Address); len(hosts) > 0 {
				name = hosts[0].Name
			}
		}
		rep.Routes = append(rep.Routes, name)
	}
	if hosts := route.Route(r.Config, mapped); len(hosts) > 0 {
		sh := hosts[0]
		rep.Smarthost = sh.Name
		out, rule := route.OutgoingSender(sh, mapped)
		if rule != "" {
			rep.SenderRules = append(rep.SenderRules, fmt.Sprintf("%s of smarthost %q", rule, sh.Name))
		}
		rep.Sender = out
	}
	if r.Config.Rewrite.FromHeader == "rewrite" && rep.Sender != "" && !strings.EqualFold(rep.Sender, q) {
		rep.From = mailaddr.FormatMailbox(r.whoWhere(q), rep.Sender)
		rep.FromRule = `from_header = "rewrite", the old From kept in X-Original-From`
	}
	return rep
}

// WriteReport prints rep for people:
//
//	root
//	  envelope recipient: alice@example.com via smarthost "mail" (alias /etc/aliases: root (line 3))
//	  envelope sender:    robot@example.com via smarthost "mail" (sender_map /etc/relay/senders:1 root)
//	  From:               root on server1 <robot@example.com> (from_header = "rewrite", …)
func WriteReport(w io.Writer, rep Report) {
	fmt.Fprintln(w, rep.Input)
	for i, x := range rep.Recipients {
		label := "  envelope recipient: "
		if i > 0 {
			label = "                      "
		}
		via := ""
		switch {
		case i >= len(rep.Routes):
		case rep.Routes[i] != "":
			via = fmt.Sprintf(" via smarthost %q", rep.Routes[i])
		default:
			via = " (no smarthost serves this recipient: its mail would wait in the queue)"
		}
		switch {
		case x.Undeliverable != "":
			fmt.Fprintf(w, "%sundeliverable: %s\n", label, x.Undeliverable)
		case x.Rule != "":
			fmt.Fprintf(w, "%s%s%s (%s)\n", label, x.Address, via, x.Rule)
		case !strings.EqualFold(x.Address, rep.Input):
			fmt.Fprintf(w, "%s%s%s (qualified with the mail domain)\n", label, x.Address, via)
		default:
			fmt.Fprintf(w, "%s%s%s (unchanged)\n", label, x.Address, via)
		}
	}
	why := "unchanged"
	if len(rep.SenderRules) > 0 {
		why = strings.Join(rep.SenderRules, "; ")
	} else if !strings.EqualFold(rep.Sender, rep.Input) {
		why = "qualified with the mail domain"
	}
	route := fmt.Sprintf(" via smarthost %q", rep.Smarthost)
	if rep.Smarthost == "" {
		route = " (no smarthost serves this sender: its mail would wait in the queue)"
	}
	fmt.Fprintf(w, "  envelope sender:    %s%s (%s)\n", rep.Sender, route, why)
	fromWhy := rep.FromRule
	if fromWhy == "" {
		fromWhy = "unchanged"
	}
	fmt.Fprintf(w, "  From:               %s (%s)\n", rep.From, fromWhy)
}
