package e2e_test

// Postfix's log: the SMTP sessions relay held with the smarthost, read
// from an offset taken before the action.

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

// ------------------------------------------------------ Postfix's log --

// logMark is an offset in Postfix's log: what follows happened after it.
func logMark(t testing.TB) int64 {
	t.Helper()
	fi, err := os.Stat(env["SMARTHOST_POSTFIX_LOG"])
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// session is one smtpd connection as Postfix logged it.
type session struct {
	service    string // syslog name such as "starttls-2587"
	pid        string
	lines      []string
	disconnect string // the "disconnect from … ehlo=1 … commands=…" line
}

func (s session) String() string { return strings.Join(s.lines, "\n") }

// commands gives the per-command counters of the disconnect line, such as
// {"ehlo": "2", "auth": "0/1", "mail": "1"}.
func (s session) commands() map[string]string {
	out := map[string]string{}
	_, stats, _ := strings.Cut(s.disconnect, "]")
	for _, f := range strings.Fields(stats) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

var smtpdRE = regexp.MustCompile(`postfix/([^/\s]+)/smtpd\[(\d+)\]: (.*)$`)

// sessions returns the smtpd sessions of service that began after mark,
// waiting (Postfix logs through postlogd, a moment later) until each has
// its disconnect line.
func sessions(t testing.TB, mark int64, service string) []session {
	t.Helper()
	var ss []session
	if !testsmtp.WaitFor(10*time.Second, func() bool {
		var complete bool
		ss, complete = readSessions(t, mark, service)
		return complete
	}) {
		t.Logf("Postfix log: some %s sessions have no disconnect line yet", service)
	}
	return ss
}

func postfixLogSince(t testing.TB, mark int64) string {
	t.Helper()
	f, err := os.Open(env["SMARTHOST_POSTFIX_LOG"])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(mark, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readSessions(t testing.TB, mark int64, service string) ([]session, bool) {
	current := map[string]*session{} // by smtpd pid
	var order []*session
	for _, line := range strings.Split(postfixLogSince(t, mark), "\n") {
		m := smtpdRE.FindStringSubmatch(line)
		if m == nil || m[1] != service {
			continue
		}
		if strings.HasPrefix(m[3], "connect from ") {
			// A new session (one smtpd process serves many in turn).
			s := &session{service: m[1], pid: m[2]}
			current[m[2]] = s
			order = append(order, s)
		}
		s := current[m[2]]
		if s == nil {
			continue // began before the mark
		}
		s.lines = append(s.lines, line)
		if strings.HasPrefix(m[3], "disconnect from ") {
			s.disconnect = m[3]
		}
	}
	complete := true
	out := make([]session, 0, len(order))
	for _, s := range order {
		if s.disconnect == "" {
			complete = false
		}
		if isProbe(s) {
			continue
		}
		out = append(out, *s)
	}
	return out, complete
}

// isProbe tells a bare "QUIT" session, such as `smarthost.sh status` makes
// (with or without TLS), from a client's: relay never quits without EHLO.
func isProbe(s *session) bool {
	c := s.commands()
	return s.disconnect != "" && len(c) == 2 && c["quit"] == "1" && c["commands"] == "1"
}

// expectNoMailOrAuth fails when one of the sessions got as far as AUTH or
// MAIL FROM, and when there is no session at all (relay never connected:
// the test would prove nothing).
func expectNoMailOrAuth(t *testing.T, ss []session, what string) {
	t.Helper()
	if len(ss) == 0 {
		t.Errorf("%s: Postfix logged no session: relay did not even connect", what)
		return
	}
	for _, s := range ss {
		c := s.commands()
		if c["auth"] != "" || c["mail"] != "" {
			t.Errorf("%s: Postfix saw AUTH or MAIL in the session (auth=%q mail=%q):\n%s", what, c["auth"], c["mail"], s)
		}
	}
}
