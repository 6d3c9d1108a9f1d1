package relay

// ForgetAuthFallbacks clears what auth.go remembers of fallbacks to PLAIN,
// so that a test server on a reused port starts afresh.
func ForgetAuthFallbacks() {
	fallbacks.Clear()
}
