package relay

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
)

// ProbeAll is relay probe: every smarthost of cfg in order, probed (see
// Probe) and its report written to out, a blank line between two; with
// sendTo set a test message goes to that address through each (never
// queued). With trace set (-v) the SMTP dialogue goes there, AUTH
// redacted, after a line naming each smarthost. It returns how many
// smarthosts failed; a cancelled ctx ends it after the smarthost at hand.
func ProbeAll(ctx context.Context, cfg *config.Config, sendTo string, out, trace io.Writer) (failed int) {
	hostname, _ := os.Hostname()
	o := ProbeOptions{
		HeloName: HeloName(cfg),
		Domain:   cfg.MailDomain(),
		Hostname: hostname,
		SendTo:   sendTo,
		Now:      time.Now,
		Debug:    trace, // Probe redacts AUTH (RedactAuth)
	}
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		if i > 0 {
			io.WriteString(out, "\n")
		}
		if trace != nil {
			fmt.Fprintf(trace, "relay probe: smarthost %q %s:%d (%s)\n", sh.Name, sh.Host, sh.Port, sh.TLS)
		}
		r := Probe(ctx, sh, o)
		var b strings.Builder
		r.Format(&b, Explain, time.Now())
		report := b.String()
		// A last line of defence, as for the delivery log: the report is
		// built from server replies and errors, never from the password,
		// but an inline password long enough not to mangle ordinary text
		// is masked all the same.
		if len(sh.Password) >= 8 {
			report = strings.ReplaceAll(report, sh.Password, "****")
		}
		io.WriteString(out, report)
		if !r.OK() {
			failed++
		}
		if ctx.Err() != nil {
			break
		}
	}
	return failed
}
