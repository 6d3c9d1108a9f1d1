package relay

import (
	"time"

	"github.com/relaymail/relay/spool"
)

// NextDue returns when a delivery pass next has work to do for env: a
// time at or before now when it is due, its next attempt time when it
// waits. ok is false when it has none until someone acts (held, or done).
// A failure not yet reported to the sender is work at once (zero time).
// The daemon sets its retry timer from it.
func NextDue(env *spool.Envelope) (at time.Time, ok bool) {
	switch {
	case env.Held:
		return time.Time{}, false
	case len(unnotified(env)) > 0:
		return time.Time{}, true
	case len(env.Pending()) == 0:
		return time.Time{}, false
	}
	return env.NextAttempt, true
}
