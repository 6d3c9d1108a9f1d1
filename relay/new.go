package relay

import (
	"os"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/spool"
)

// NewRunner is the one place a delivery runner is put together from the
// configuration: relay queue run, sendmail --wait/-v and the daemon all
// take theirs here. The inline passwords of cfg are masked in log (see
// MaskSecrets); the [rewrite] files are read now (see loadRewrite).
func NewRunner(cfg *config.Config, sp *spool.Spool, log *maillog.Logger) *Runner {
	MaskSecrets(log, cfg)
	return &Runner{Spool: sp, Config: cfg, Log: log, HeloName: HeloName(cfg), Domain: cfg.MailDomain(), Now: time.Now,
		Rewrite: loadRewrite(cfg, log)}
}

// HeloName is the name relay gives in EHLO (a smarthost's own helo_name
// wins, see Dial): helo_name; else the domain key, when set; else the
// host's fully qualified name; else the mail domain (/etc/mailname).
func HeloName(cfg *config.Config) string {
	switch {
	case cfg.HeloName != "":
		return cfg.HeloName
	case cfg.Domain != "":
		return cfg.Domain
	}
	if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") {
		return h
	}
	return cfg.MailDomain()
}

// MaskSecrets makes log mask the inline passwords of cfg: a last line of
// defence, for passwords long enough that masking them cannot mangle
// ordinary text (and so give them away).
func MaskSecrets(log *maillog.Logger, cfg *config.Config) {
	for _, sh := range cfg.Smarthosts {
		if len(sh.Password) >= 8 {
			log.AddSecrets(sh.Password)
		}
	}
}

// loadRewrite reads the [rewrite] files for delivery (sender map, header
// rules). A file that cannot be read is logged as an error; delivery goes
// on without it (a wrong sender is refused and deferred, never lost).
func loadRewrite(cfg *config.Config, log *maillog.Logger) *rewrite.Rules {
	host, _ := os.Hostname()
	rw := rewrite.Load(cfg, host)
	if err := rw.Err(); err != nil && log != nil {
		log.Error("status", "error", "reason", err.Error())
	}
	return rw
}
