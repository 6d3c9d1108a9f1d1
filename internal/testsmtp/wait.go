package testsmtp

import "time"

// WaitFor polls ok every 10 ms until it holds or limit has passed, and
// reports whether it held. Tests wait for events with generous limits, so
// that a hang fails the test instead of blocking the suite; none asserts
// how fast anything was.
func WaitFor(limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
