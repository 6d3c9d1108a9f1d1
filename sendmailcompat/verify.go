package sendmailcompat

import (
	"fmt"
	"io"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/sysexits"
)

// Verify prints what each address argument becomes as an envelope
// recipient (sendmail -bv, relay rewrite), one line per address in the
// manner of Exim's -bv: the result, and under it the address as given when
// they differ. Addresses that cannot be used are reported on the same
// writer and make the result an exit-64 error. No mail is sent.
func (s *Submitter) Verify(args []string, w io.Writer) error {
	if len(args) == 0 {
		return usageErr("no addresses to verify")
	}
	bad := 0
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
			fmt.Fprintln(w, r.Address)
			if r.Original != "" {
				fmt.Fprintf(w, "  <-- %s\n", r.Original)
			}
		}
	}
	if bad > 0 {
		return sysexits.New(sysexits.Usage, "%d address(es) cannot be used", bad)
	}
	return nil
}
