package maillog

import "time"

// SetSyslogAddr makes Open and OpenBestEffort send syslog lines to the
// unixgram socket at addr instead of /dev/log, until restore is called.
func SetSyslogAddr(addr string) (restore func()) {
	old := syslogAddr
	syslogAddr = addr
	return func() { syslogAddr = old }
}

// IsDiscard reports whether l writes nothing.
func IsDiscard(l *Logger) bool { return l.kind == toDiscard }

// SetNow sets the clock of a file Logger's timestamps.
func SetNow(l *Logger, now func() time.Time) { l.now = now }

// BreakFile closes a file Logger's file behind its back, so that writes
// fail until Reopen.
func BreakFile(l *Logger) { l.file.Close() }
