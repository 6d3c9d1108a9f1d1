package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// Pass is one delivery pass over sp, the one both the daemon and relay
// queue run make: every drop of the maildrop is taken into the queue
// (pickup; nil or a spool without a maildrop: none), then r makes one
// pass over the queue. worked says that the pass found something to do (a
// drop taken, a message tried).
//
// A failed pickup does not keep the queue from being delivered: its error
// comes back with the runner's, joined (errors.Join), the pickup's first;
// the daemon logs each, relay queue run exits with them.
// Without a smarthost nothing is tried and the error says so (exit 78).
// With a configuration that has errors (config.LoadLenient) nothing is
// delivered either: the due mail is held with the reason (Hold) and the
// error says so, one line (exit 78).
func Pass(ctx context.Context, sp *spool.Spool, r *relay.Runner, pickup *sendmailcompat.Pickup) (worked bool, err error) {
	var pickupErr error
	if pickup != nil && sp.HasMaildrop() {
		n, err := pickup.Run()
		if err != nil {
			pickupErr = fmt.Errorf("maildrop pickup: %w", err)
		}
		worked = n > 0
	}
	if r.Config.Broken() != nil {
		held, err := Hold(sp, r.Config, r.Only, r.Now())
		return worked, errors.Join(pickupErr, err, heldError(r.Config, held))
	}
	if len(r.Config.Smarthosts) == 0 {
		return worked, errors.Join(pickupErr, noSmarthost(r.Config))
	}
	st, err := r.Run(ctx)
	return worked || st.Messages > 0, errors.Join(pickupErr, err)
}

func noSmarthost(cfg *config.Config) error {
	return sysexits.New(sysexits.Config, "%s: no [[smarthost]] configured: mail waits in the queue", cfg.Path)
}
