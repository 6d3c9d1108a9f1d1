package rewrite

import "github.com/relaymail/relay/spool"

type spoolRecipient struct{ addr, orig string }

func toSpool(in []spoolRecipient) []spool.Recipient {
	var out []spool.Recipient
	for _, r := range in {
		out = append(out, spool.Recipient{Address: r.addr, Original: r.orig, Status: spool.Pending})
	}
	return out
}
