package relay

import (
	"fmt"
	"io"
	"time"

	"github.com/relaymail/relay/maillog"
)

// Logger is relay's log (package maillog): one key=value line per event.
type Logger = maillog.Logger

// NewLogger logs plain lines to w.
func NewLogger(w io.Writer) *Logger { return maillog.New(w) }

func fmtDelay(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
