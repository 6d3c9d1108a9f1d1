package relay

import (
	"io"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/spool"
)

// Rewriter changes a message on its way out, at delivery time, so that a
// corrected configuration applies to mail already queued (fix the sender
// map, then flush). Package rewrite implements it; a nil Rewriter in the
// Runner sends the queued envelope sender and message unchanged.
//
// The order of decisions follows SPEC §5: the sender map first (Sender),
// then routing by the smarthosts' senders on its result, then the chosen
// smarthost's envelope_from and the preset's rule, then the header changes
// for that smarthost (Content).
type Rewriter interface {
	// Sender returns the envelope sender after the sender map: the address
	// routing looks at.
	Sender(env *spool.Envelope) string
	// Content returns the message as it goes out through smarthost sh with
	// the envelope sender sender: From rewritten by from_header, header
	// rules applied. It must stream: content may be 100 MB.
	Content(env *spool.Envelope, sh *config.Smarthost, sender string, content io.Reader) io.Reader
}
