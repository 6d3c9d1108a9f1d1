// Package testsmtp holds the test peers and helpers that relay's tests
// share: SMTP smarthosts that record what they were sent or fail on
// purpose at any stage, a certificate made on the fly, free and closed
// loopback ports, a buffer that goroutines may write at once, and a
// bounded wait for an event. It is imported by _test.go files only; the
// relay binary never links it.
//
// Every server listens on 127.0.0.1 and is closed by the test's cleanup.
package testsmtp
