package relay

import "time"

// ForgetAuthFallbacks clears what auth.go remembers of fallbacks to PLAIN,
// so that a test server on a reused port starts afresh.
func ForgetAuthFallbacks() {
	fallbacks.Clear()
}

// SetFreshFor changes how long a kept connection is reused without a NOOP.
func SetFreshFor(d time.Duration) (restore func()) {
	old := freshFor
	freshFor = d
	return func() { freshFor = old }
}
