package relay

import (
	"time"
)

// Observer is told what delivery does, for the daemon's metrics (package
// metrics, daemon/metrics.go). Workers call it concurrently. A nil
// Runner.Observer tells nobody.
type Observer interface {
	// Connection: a new connection to smarthost was tried. result is
	// "ok" or what failed (ConnectionResult); certExpiry is the NotAfter
	// of the certificate the smarthost showed (zero without TLS).
	Connection(smarthost, result string, certExpiry time.Time)
	// Recipient: one recipient's attempt ended, as its log line says:
	// sent, deferred, bounced or held. queueDelay is the time from
	// arrival to now (a sent recipient's queue delay).
	Recipient(smarthost, result string, queueDelay time.Duration)
	// Transaction: one message went through smarthost's connection (or
	// failed to), taking d from the connection's set-up or reuse to the
	// reply to its data.
	Transaction(smarthost string, d time.Duration)
	// Report: a delivery status notification was queued; kind is
	// "failure" (a bounce) or "delay" (a delay warning).
	Report(kind string)
	// RateLimited: a message was held back by smarthost's rate limit.
	RateLimited(smarthost string)
}

// TokenObserver is an Observer that is also told when the OAuth access
// token a new connection logged in with expires ([smarthost.oauth]: the
// cached token or a fresh one), for the daemon's
// relay_oauth_token_expiry_timestamp_seconds. Runner.Observer is asked
// for it with a type assertion, so an Observer without it still works.
type TokenObserver interface {
	TokenExpiry(smarthost string, expiry time.Time)
}

// ConnectionResult names what failed in a connection's set-up, for the
// metrics: "connect" (TCP, the greeting, EHLO), "proxy" (the SOCKS5
// proxy, or the smarthost beyond it), "tls", "auth", "local" (relay's own
// side: a password command, a certificate file), "ok" for none.
func ConnectionResult(err error, proxied bool) string {
	if err == nil {
		return "ok"
	}
	f := failure(StageConnect, err)
	switch f.Stage {
	case StageTLS:
		return "tls"
	case StageAuth:
		return "auth"
	case StageLocal:
		return "local"
	}
	if proxied && f.Code == 0 && f.Stage == StageConnect {
		return "proxy"
	}
	return "connect"
}

// CertExpiry is when the certificate the smarthost showed expires (zero
// without TLS).
func (c *Conn) CertExpiry() time.Time {
	st, ok := c.tlsState()
	if !ok || len(st.PeerCertificates) == 0 {
		return time.Time{}
	}
	return st.PeerCertificates[0].NotAfter
}
