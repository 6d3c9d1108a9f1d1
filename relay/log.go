package relay

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Logger writes relay's log: one line per event, key=value pairs in
// Postfix's spirit, values with spaces quoted.
type Logger struct {
	mu sync.Mutex
	w  io.Writer
	// Stamp prefixes each line with an RFC 3339 time (for log files; not
	// for stderr under journald, which stamps lines itself).
	Stamp bool
	Now   func() time.Time
}

// NewLogger logs to w.
func NewLogger(w io.Writer) *Logger { return &Logger{w: w, Now: time.Now} }

// Log writes one line of key, value pairs.
func (l *Logger) Log(kv ...string) {
	if l == nil {
		return
	}
	var b strings.Builder
	if l.Stamp {
		b.WriteString(l.Now().Format(time.RFC3339))
		b.WriteByte(' ')
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(quote(kv[i+1]))
	}
	b.WriteByte('\n')
	l.mu.Lock()
	io.WriteString(l.w, b.String())
	l.mu.Unlock()
}

// quote leaves simple values bare and quotes the rest, escaping inner
// quotes and backslashes; line breaks become "; ".
func quote(v string) string {
	v = oneLine(v)
	if v != "" && !strings.ContainsAny(v, " \"\\=") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

func fmtDelay(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
