package config

// Hooks for the black-box tests in package config_test.

// KeyLines exposes the line scanner.
func KeyLines(src string) map[string]int { return keyLines(src) }

// SetHostname replaces os.Hostname for MailDomain and forgets cached
// answers; the returned function restores it.
func SetHostname(f func() (string, error)) (restore func()) {
	old := hostname
	hostname = f
	clearDomainCache()
	return func() {
		hostname = old
		clearDomainCache()
	}
}

func clearDomainCache() {
	systemDomain.Lock()
	systemDomain.cache = nil
	systemDomain.Unlock()
}
