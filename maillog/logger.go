// Package maillog writes relay's log: one line per event, key=value pairs
// in Postfix's spirit, for instance
//
//	id=4bX9 to=<ann@example.org> relay=smtp.yandex.ru[77.88.21.158]:465 status=sent dsn=2.0.0 reply="250 2.0.0 Ok: queued as 1A2B"
//
// A value is written bare when it is plain and quoted otherwise (see
// Quote); a line never breaks inside a value.
//
// The target is named by the configuration's [log] to (see Open):
//
//   - "stderr" (journald under systemd): no timestamp, journald stamps the
//     lines; Warning and Error lines start with "warning: " and "error: ",
//     as Postfix's do. When stderr is the journal (systemd's
//     JOURNAL_STREAM names it), each line also starts with the syslog
//     priority "<6>", "<4>" or "<3>", which journald strips and records,
//     so that journalctl -p err shows relay's errors.
//   - "syslog": facility mail, tag "relay", through log/syslog to the
//     local socket (/dev/log); the level gives the priority (Info
//     LOG_INFO, Warning LOG_WARNING, Error LOG_ERR) and the line carries
//     the same "warning: "/"error: " words, so grep finds them in
//     /var/log/mail.log as it finds Postfix's.
//   - an absolute file path: appended to, each line starting with an RFC
//     3339 time with the local offset and the program, as in
//     "2026-11-22T21:42:28+00:00 relay[812]: warning: …". A file relay
//     creates gets mode 0640 whatever the umask; an existing file keeps
//     its mode. Reopen (SIGHUP, logrotate) opens the path again.
//
// A Logger does not lose lines quietly: when a write to a file or syslog
// fails, the line goes to the fallback writer given to Open (stderr),
// preceded once by an error line saying why the log target failed, and
// followed by a "status=resumed" line when the target works again.
package maillog

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Level is the severity of a line.
type Level int

const (
	// Info is a normal event: mail queued, sent, deferred by the remote
	// side.
	Info Level = iota
	// Warning is something an administrator should look at, though
	// nothing failed on relay's side.
	Warning
	// Error is a failure of relay's own side or of the account (spec
	// section 6): it is logged as an error each time it happens.
	Error
)

// String gives the level's word: "info", "warning" or "error".
func (lv Level) String() string {
	switch lv.clamp() {
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "info"
}

// clamp maps unknown levels to the nearest known one.
func (lv Level) clamp() Level {
	if lv < Info {
		return Info
	}
	if lv > Error {
		return Error
	}
	return lv
}

// prefix is what a line of this level starts with ("" for Info).
func (lv Level) prefix() string {
	switch lv {
	case Warning:
		return "warning: "
	case Error:
		return "error: "
	}
	return ""
}

// journal is the syslog priority prefix journald understands on stderr.
func (lv Level) journal() string {
	switch lv {
	case Warning:
		return "<4>"
	case Error:
		return "<3>"
	}
	return "<6>"
}

// Tag is the program name in syslog and file lines.
const Tag = "relay"

// stampLayout is RFC 3339 with a numeric offset even in UTC ("+00:00",
// not "Z"), as syslog daemons write it.
const stampLayout = "2006-01-02T15:04:05-07:00"

type kind int

const (
	toDiscard kind = iota
	toWriter
	toFile
	toSyslog
)

// Logger writes one line per event. It is safe for concurrent use; each
// line reaches its target in one write, so lines of concurrent goroutines
// (and, for a file, of other processes appending to it) do not interleave.
//
// A nil *Logger, like Discard, accepts every call and writes nothing.
type Logger struct {
	kind kind
	pid  string // for file lines
	now  func() time.Time

	secrets atomic.Pointer[[]string] // longest first

	mu       sync.Mutex
	w        io.Writer      // toWriter
	journal  bool           // toWriter: prefix lines with <N> for journald
	path     string         // toFile
	file     *os.File       // toFile
	sys      *syslog.Writer // toSyslog
	fallback sink           // where lines go when the target fails
	failing  error          // the target's last failure, reported on fallback
	closed   bool
}

// sink is a plain writer in the stderr format.
type sink struct {
	w       io.Writer
	journal bool
}

func (s sink) write(lv Level, body string) {
	if s.w == nil || s.w == io.Discard {
		return
	}
	io.WriteString(s.w, plainLine(s.journal, lv, body))
}

func plainLine(journal bool, lv Level, body string) string {
	p := ""
	if journal {
		p = lv.journal()
	}
	return p + lv.prefix() + body + "\n"
}

// Discard is a Logger that writes nothing.
var Discard = &Logger{kind: toDiscard}

// New returns a Logger writing plain lines to w, in the stderr format
// (no timestamp; "warning: " and "error: " before Warning and Error
// lines). Close does not close w.
func New(w io.Writer) *Logger {
	if w == nil || w == io.Discard {
		return &Logger{kind: toDiscard}
	}
	return &Logger{kind: toWriter, w: w}
}

// AddSecrets makes the Logger replace each of these secrets with "****"
// wherever it appears in a key or value (see Mask): the daemon passes the
// passwords it read, so that no error text can carry one into the log.
func (l *Logger) AddSecrets(secrets ...string) {
	if l == nil || l.kind == toDiscard {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []string
	if p := l.secrets.Load(); p != nil {
		all = append(all, *p...)
	}
	all = byLength(append(all, secrets...))
	l.secrets.Store(&all)
}

// Log writes one line of key, value pairs: kv[0]=kv[1] kv[2]=kv[3] …
// With an odd number of strings the last key gets the empty value
// (written key=""), so a forgotten value shows instead of hiding the key.
// Without any string nothing is written.
func (l *Logger) Log(level Level, kv ...string) {
	if l == nil || l.kind == toDiscard || len(kv) == 0 {
		return
	}
	l.write(level.clamp(), l.format(kv))
}

// Info writes an Info line (see Log).
func (l *Logger) Info(kv ...string) { l.Log(Info, kv...) }

// Warning writes a Warning line (see Log).
func (l *Logger) Warning(kv ...string) { l.Log(Warning, kv...) }

// Error writes an Error line (see Log).
func (l *Logger) Error(kv ...string) { l.Log(Error, kv...) }

// format builds the key=value part of a line.
func (l *Logger) format(kv []string) string {
	var secrets []string
	if p := l.secrets.Load(); p != nil {
		secrets = *p
	}
	n := 0
	for _, s := range kv {
		n += len(s) + 2
	}
	b := make([]byte, 0, n+16)
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, key(maskSorted(kv[i], secrets))...)
		b = append(b, '=')
		v := ""
		if i+1 < len(kv) {
			v = kv[i+1]
		}
		b = append(b, Quote(maskSorted(v, secrets))...)
	}
	return string(b)
}

// maskSorted is Mask with secrets already non-empty and longest first.
func maskSorted(s string, secrets []string) string {
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Masked)
		}
	}
	return s
}

// write sends one formatted line to the target.
func (l *Logger) write(lv Level, body string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.fallback.write(lv, body)
		return
	}
	var err error
	switch l.kind {
	case toWriter:
		// A broken stderr has nowhere to be reported.
		io.WriteString(l.w, plainLine(l.journal, lv, body))
		return
	case toFile:
		line := l.now().Format(stampLayout) + " " + Tag + "[" + l.pid + "]: " + lv.prefix() + body + "\n"
		_, err = l.file.WriteString(line)
	case toSyslog:
		msg := lv.prefix() + body
		switch lv {
		case Error:
			err = l.sys.Err(msg)
		case Warning:
			err = l.sys.Warning(msg)
		default:
			err = l.sys.Info(msg)
		}
	}
	l.report(err)
	if err != nil {
		l.fallback.write(lv, body)
	}
}

// report tells the fallback when the target starts or stops failing.
// It must be called with l.mu held.
func (l *Logger) report(err error) {
	switch {
	case err != nil && l.failing == nil:
		l.failing = err
		l.fallback.write(Error, l.format([]string{"log", l.target(), "status", "failed", "reason", err.Error()}))
	case err == nil && l.failing != nil:
		l.failing = nil
		l.fallback.write(Info, l.format([]string{"log", l.target(), "status", "resumed"}))
	}
}

func (l *Logger) target() string {
	if l.kind == toFile {
		return l.path
	}
	return "syslog"
}

// Reopen opens the log file again at its path, for logrotate (SIGHUP):
// lines written after it go to the file now at the path, created if it
// was moved away. When the path cannot be opened the old file is kept and
// the error returned. Reopen is a no-op for stderr and syslog.
func (l *Logger) Reopen() error {
	if l == nil || l.kind != toFile {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("log: reopen %s: %w", l.path, os.ErrClosed)
	}
	f, err := openLogFile(l.path)
	if err != nil {
		return err
	}
	// The old file's close error is not worth failing for: lines go to
	// the new file now.
	l.file.Close()
	l.file = f
	return nil
}

// Close closes a log file or the syslog connection; lines logged after
// it go to the fallback writer given to Open. For a Logger writing to
// stderr or to a writer given to New, Close does nothing: the writer is
// the caller's, and lines keep going to it.
func (l *Logger) Close() error {
	if l == nil || l.kind == toDiscard || l.kind == toWriter {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	switch l.kind {
	case toFile:
		return l.file.Close()
	case toSyslog:
		return l.sys.Close()
	}
	return nil
}

func pidString() string { return strconv.Itoa(os.Getpid()) }
