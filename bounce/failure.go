package bounce

import "github.com/relaymail/relay/failure"

// RecipientOf describes a recipient for a report of kind from its stored
// failure (nil when it has none, as a delay warning may find): the status
// code, the server's reply as Diagnostic-Code, and the plain-words
// explanation. When relay gave up after the lifetime, the diagnostic stays
// the server's last reply and the explanation says that relay, not the
// server, stopped. RemoteMTA and LastAttempt are the caller's.
func RecipientOf(kind Kind, address, original string, f *failure.Failure) Recipient {
	rc := Recipient{Address: address, Original: original, Status: "4.4.7"}
	if kind != Delay {
		rc.Status = "5.0.0"
		if f != nil {
			rc.Status = f.FailedStatus()
		}
	}
	if f == nil {
		return rc
	}
	rc.Diagnostic = f.ReplyLine()
	if f.GaveUpAfter != "" {
		rc.Explanation = "The smarthost kept deferring this recipient; relay gave up after " + f.GaveUpAfter + " (lifetime)."
	} else {
		rc.Explanation = failure.Explain(f)
	}
	return rc
}
