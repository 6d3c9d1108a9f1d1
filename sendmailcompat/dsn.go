package sendmailcompat

import "strings"

// The DSN options (RFC 3461) are given as flags (-N, -V) and as ESMTP
// parameters (NOTIFY, ENVID); both are checked here, and the pickup checks
// a drop's with the same rules.

// ParseNotify parses a DSN NOTIFY list (sendmail -N, RCPT NOTIFY=):
// NEVER alone, or some of SUCCESS, DELAY and FAILURE, in any case. The
// error is a *sysexits.Error with code 64.
func ParseNotify(val string) ([]string, error) {
	var out []string
	for _, w := range strings.Split(val, ",") {
		w = strings.ToUpper(strings.TrimSpace(w))
		switch w {
		case "NEVER", "SUCCESS", "DELAY", "FAILURE":
			out = append(out, w)
		default:
			return nil, usageErr("-N %s: use never, or a list of success, delay, failure", val)
		}
	}
	if len(out) > 1 {
		for _, w := range out {
			if w == "NEVER" {
				return nil, usageErr("-N %s: never cannot be combined with other values", val)
			}
		}
	}
	return out, nil
}

// ValidEnvID reports whether s can be a DSN envelope ID (sendmail -V,
// MAIL ENVID=, decoded): 1 to 100 printable ASCII characters, no spaces.
func ValidEnvID(s string) bool {
	if len(s) == 0 || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
