package daemon

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/listener"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// Serve is relay daemon: it opens the SMTP listener's sockets ([daemon]
// listen) while the process may still be root (port 25), continues as the
// spool's owner, makes the spool on first use (as sendmail does; a system
// install has its spool from relay install or tmpfiles.d), and runs a
// Daemon until SIGTERM. reload reads the configuration again on SIGHUP.
// Its log goes to [log] to, stderr being the fallback. It returns an
// error that IsRunning recognises when another daemon serves the spool.
//
// cfg may have errors (config.LoadLenient): the daemon then starts all the
// same, says so in the log, queues what its listener receives and holds
// the mail (see Hold) until reload returns a configuration without errors.
func Serve(cfg *config.Config, reload func() (*config.Config, error), stderr io.Writer) error {
	lns, err := listener.Listen(cfg.Daemon.Listen)
	if err != nil {
		return err
	}
	var metricsLn net.Listener
	// Whatever ends Serve — a secret that cannot be read, the spool, the
	// log, another daemon — the sockets opened here are given back: a
	// caller that tries again (a test, a supervisor in the same process)
	// finds the addresses free. After a run the services closed them
	// already; a second Close is harmless.
	defer func() {
		for _, l := range lns {
			l.Close()
		}
		if metricsLn != nil {
			metricsLn.Close()
		}
	}()
	var sec listenerSecrets
	if len(lns) > 0 {
		// Read while the process may still be root (a key in
		// /etc/ssl/private); it continues as the spool's owner below.
		if sec, err = loadListenerSecrets(cfg); err != nil {
			return err
		}
	}
	if cfg.Metrics.Listen != "" {
		// Opened with the SMTP sockets, while the process may be root.
		if metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return sysexits.New(sysexits.Unavailable, "[metrics] listen %s: %v", cfg.Metrics.Listen, err)
		}
	}
	sp, err := mailq.Open(cfg)
	if err != nil {
		return err
	}
	if sp == nil {
		if sp, err = spool.Create(cfg.Spool); err != nil {
			return sysexits.Wrap(sysexits.CantCreat, err)
		}
	}
	log, err := openLog(cfg, stderr)
	if err != nil {
		return err
	}
	defer log.Close()
	if cfg.Broken() != nil {
		// It runs all the same: its listener queues, its passes hold the
		// mail; a reload with the file fixed delivers it.
		log.Error("status", "error", "reason", "mail is queued but held until the configuration is fixed (then reload): "+cfg.HoldReason())
	}
	d := &Daemon{Spool: sp, Config: cfg, Log: log, Reload: reload}
	if metricsLn != nil {
		d.Metrics = NewMetrics(func() (*mailq.Stats, error) {
			c := cfg
			if r := d.runner.Load(); r != nil {
				c = r.Config // the configuration in use, after a reload
			}
			return mailq.CollectStats(c, sp, 0, time.Now(), nil)
		})
		svc, err := metricsService(cfg, sp, log, d.Metrics, metricsLn)
		if err != nil {
			return err
		}
		d.Services = append(d.Services, svc)
	}
	if len(lns) > 0 {
		svc, err := smtpListener(cfg, sp, log, lns, sec)
		if err != nil {
			return err
		}
		d.Services = append(d.Services, svc)
	}
	return d.Run(context.Background())
}

// smtpListener is the daemon's service for [daemon] listen (package
// listener), on sockets already open. Its messages are queued as the
// daemon's user, which owns the spool.
func smtpListener(cfg *config.Config, sp *spool.Spool, log *maillog.Logger, lns []net.Listener, sec listenerSecrets) (func(context.Context) error, error) {
	nets, err := listener.ParseNetworks(cfg.Daemon.ListenNetworks)
	if err != nil {
		return nil, err
	}
	authNets, err := listener.ParseNetworks(cfg.Daemon.ListenAuthNetworks)
	if err != nil {
		return nil, err
	}
	s := sendmailcompat.NewSubmitter(cfg)
	s.Spool, s.Log = sp, log
	// A network client is nobody's login: a From made for its mail
	// carries no full name. Aliases apply to its mail too
	// (sender_login_map does not: a network client has no login).
	s.Gecos = ""
	s.Source = "smtp"
	o := listener.Options{Submitter: s, Networks: nets, Log: log, Users: sec.users, AuthNetworks: authNets}
	if cfg.Daemon.ListenTLS != "" {
		if o.TLS, err = listener.TLSConfig(sec.certs, sp, s.Hostname, cfg.Daemon.Listen, log); err != nil {
			return nil, err
		}
	}
	if o.Users != nil {
		o.Users.Log = log
	}
	srv, err := listener.New(o)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return srv.Serve(ctx, lns) }, nil
}

// listenerSecrets are the files of listen_tls and listen_users, read
// before the daemon gives up root.
type listenerSecrets struct {
	certs *listener.CertFiles // nil: none, or the self-signed certificate
	users *listener.Users
}

func loadListenerSecrets(cfg *config.Config) (listenerSecrets, error) {
	var sec listenerSecrets
	var err error
	d := cfg.Daemon
	if d.ListenTLS != "" && d.ListenTLS != listener.SelfSigned {
		if sec.certs, err = listener.LoadCertFiles(d.ListenTLS, d.ListenTLSKey); err != nil {
			return sec, err
		}
	}
	if d.ListenUsers != "" {
		if sec.users, err = listener.LoadUsers(d.ListenUsers); err != nil {
			return sec, err
		}
	}
	return sec, nil
}
