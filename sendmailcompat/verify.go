package sendmailcompat

import (
	"fmt"
	"io"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/sysexits"
)

// Verify prints what each address argument becomes (sendmail -bv, relay
// rewrite). With Rewrite set: as envelope recipient, envelope sender and
// From, each with the rule that decided (rewrite.WriteReport); an address
// with nowhere to go makes the result an exit-67 error. Without: one line
// per address in the manner of Exim's -bv, the result and under it the
// address as given when they differ. Addresses that cannot be used are
// reported on the same writer and make the result an exit-64 error. No
// mail is sent.
func (s *Submitter) Verify(args []string, w io.Writer) error {
	if len(args) == 0 {
		return usageErr("no addresses to verify")
	}
	bad, nowhere := 0, 0
	for _, arg := range args {
		list, err := mailaddr.ParseList(arg)
		if err != nil {
			fmt.Fprintf(w, "%s is undeliverable: %v\n", arg, err)
			bad++
			continue
		}
		for _, a := range list {
			r, err := s.recipient(a.Addr)
			if err != nil {
				fmt.Fprintf(w, "%s is undeliverable: %v\n", a.Addr, err)
				bad++
				continue
			}
			if s.Rewrite != nil {
				rep := s.Rewrite.Describe(a.Addr)
				rewrite.WriteReport(w, rep)
				if rep.Undeliverable() {
					nowhere++
				}
				continue
			}
			fmt.Fprintln(w, r.Address)
			if r.Original != "" {
				fmt.Fprintf(w, "  <-- %s\n", r.Original)
			}
		}
	}
	if bad > 0 {
		return sysexits.New(sysexits.Usage, "%d address(es) cannot be used", bad)
	}
	if nowhere > 0 {
		return sysexits.New(sysexits.NoUser, "%d address(es) have nowhere to go", nowhere)
	}
	return nil
}
