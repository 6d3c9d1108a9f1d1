package daemon

import (
	"errors"
	"io"
	"io/fs"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sysexits"
)

// openLog opens the configured log for relay daemon and relay queue run.
// A log file this user may not open or create (EACCES, EPERM) is a
// permission problem, exit 77, as the spool's is: a user's queue run
// against a system install's log, or a daemon started as the wrong user.
// Every other failure (no such directory, syslog unreachable, a bad
// [log] to) is the configuration's, exit 78.
func openLog(cfg *config.Config, stderr io.Writer) (*maillog.Logger, error) {
	log, err := maillog.Open(cfg.Log.To, stderr)
	switch {
	case err == nil:
		return log, nil
	case errors.Is(err, fs.ErrPermission):
		return nil, sysexits.Wrap(sysexits.NoPerm, err)
	}
	return nil, sysexits.Wrap(sysexits.Config, err)
}
