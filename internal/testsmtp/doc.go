// Package testsmtp holds the test peers and helpers that relay's tests
// share: SMTP smarthosts that record what they were sent or fail on
// purpose at any stage, a certificate made on the fly, free and closed
// loopback ports, a buffer that goroutines may write at once, and a
// bounded wait for an event. It is imported by _test.go files only; the
// relay binary never links it.
//
// Every server listens on 127.0.0.1 and is closed by the test's cleanup.
//
// The peers:
// FaultServer (fault.go, fault_session.go) is go-smtp's server with an
// error, a silence or a dropped connection configurable at every stage,
// STARTTLS or implicit TLS, AUTH, and a leak check of the connections at
// the end of the test; RawServer (raw.go) plays a script of reply lines,
// for what go-smtp's server cannot send; SocksServer (socks.go) is a
// SOCKS5 proxy in front of either, which records what each CONNECT asked
// for and can refuse, stall or speak another protocol; Serve (accept.go)
// is the accept loop of a test's own one-off peer. Ports that refuse or
// never answer a connection stand for a smarthost that is down
// (ports.go, unanswered.go).
package testsmtp
