package daemon

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/listener"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/metrics"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// Metrics are the daemon's Prometheus metrics ([metrics] listen): the
// counters and histograms delivery reports as it goes (it is the
// relay.Observer of the daemon's runners), the messages received, and
// the queue's gauges, counted at scrape time. docs/relay-metrics.7.md
// lists them.
type Metrics struct {
	Registry *metrics.Registry

	received, attempts, reports, conns, rateWaits *metrics.Vec
	duration, delay                               *metrics.Vec
	certExpiry, tokenExpiry                       *metrics.Vec

	mu      sync.Mutex
	queue   *mailq.Stats // the last count, reused for statsMaxAge
	counted time.Time
}

// statsMaxAge is how long a count of the queue serves scrapes: two
// Prometheus servers scraping every few seconds do not make the daemon
// read 100,000 envelopes each time.
const statsMaxAge = 10 * time.Second

// NewMetrics makes the daemon's metrics; queue counts the queue at
// scrape time (nil: no queue gauges).
func NewMetrics(queue func() (*mailq.Stats, error)) *Metrics {
	r := &metrics.Registry{}
	m := &Metrics{Registry: r}
	m.received = r.Counter("relay_messages_received_total",
		"Messages queued, by how they came in: sendmail (the command, queueing directly), maildrop (taken from the maildrop by the daemon's pickup), smtp (the daemon's SMTP listener).", "source")
	for _, s := range []string{"sendmail", "maildrop", "smtp"} {
		m.received.Touch(s)
	}
	m.attempts = r.Counter("relay_delivery_attempts_total",
		"Delivery attempts per recipient, by smarthost and result: sent, deferred, bounced, held (one per log line; smarthost \"none\" when no smarthost serves the sender).", "smarthost", "result")
	m.reports = r.Counter("relay_bounces_total",
		"Delivery status notifications queued for senders: failure (a bounce) or delay (a delay warning).", "kind")
	m.reports.Touch("failure")
	m.reports.Touch("delay")
	m.conns = r.Counter("relay_connections_total",
		"New connections to smarthosts, by result: ok, or what failed: connect (TCP, greeting, EHLO), proxy, tls, auth, local (relay's own side).", "smarthost", "result")
	m.rateWaits = r.Counter("relay_rate_limit_waits_total",
		"Messages held back by a smarthost's rate limit (each time one has to wait).", "smarthost")
	m.duration = r.Histogram("relay_delivery_duration_seconds",
		"Duration of a message's delivery attempt through a smarthost, from the connection's set-up or reuse to the reply to its data.",
		[]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}, "smarthost")
	m.delay = r.Histogram("relay_queue_delay_seconds",
		"Time from a message's arrival in the queue to its delivery, per recipient sent.",
		[]float64{1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400, 259200}, "smarthost")
	m.certExpiry = r.Gauge("relay_smarthost_certificate_expiry_timestamp_seconds",
		"When the TLS certificate the smarthost showed at the last connection expires, Unix time.", "smarthost")
	m.tokenExpiry = r.Gauge("relay_oauth_token_expiry_timestamp_seconds",
		"When the OAuth access token the last connection to the smarthost logged in with expires, Unix time.", "smarthost")

	bi := r.Gauge("relay_build_info", "Always 1: the version of relay and of Go it was built with, as labels.", "version", "goversion")
	bi.Set(1, buildVersion(), runtime.Version())
	r.Gauge("relay_daemon_start_time_seconds", "When the daemon started, Unix time.").Set(float64(time.Now().Unix()))
	if queue != nil {
		r.Collect(func(w *metrics.Writer) {
			if st := m.stats(queue); st != nil {
				st.WritePrometheus(w, false)
			}
		})
	}
	return m
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "unknown"
}

// stats returns a count of the queue no older than statsMaxAge (nil when
// it cannot be counted).
func (m *Metrics) stats(count func() (*mailq.Stats, error)) *mailq.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.queue != nil && time.Since(m.counted) < statsMaxAge {
		return m.queue
	}
	st, err := count()
	if err != nil {
		return nil
	}
	m.queue, m.counted = st, time.Now()
	return st
}

// Connection implements relay.Observer.
func (m *Metrics) Connection(smarthost, result string, certExpiry time.Time) {
	m.conns.Inc(smarthost, result)
	if !certExpiry.IsZero() {
		m.certExpiry.Set(float64(certExpiry.Unix()), smarthost)
	}
}

// Recipient implements relay.Observer.
func (m *Metrics) Recipient(smarthost, result string, queueDelay time.Duration) {
	m.attempts.Inc(smarthost, result)
	if result == "sent" {
		m.delay.Observe(queueDelay.Seconds(), smarthost)
	}
}

// Transaction implements relay.Observer.
func (m *Metrics) Transaction(smarthost string, d time.Duration) {
	m.duration.Observe(d.Seconds(), smarthost)
}

// Report implements relay.Observer.
func (m *Metrics) Report(kind string) { m.reports.Inc(kind) }

// RateLimited implements relay.Observer.
func (m *Metrics) RateLimited(smarthost string) { m.rateWaits.Inc(smarthost) }

// The runners find TokenExpiry by a type assertion: make sure it is there.
var _ relay.TokenObserver = (*Metrics)(nil)

// TokenExpiry implements relay.TokenObserver: when the OAuth access
// token a new connection to smarthost logged in with expires. The gauge
// has no series for a smarthost until then.
func (m *Metrics) TokenExpiry(smarthost string, at time.Time) {
	m.tokenExpiry.Set(float64(at.Unix()), smarthost)
}

// Received counts a message new in the queue, from its envelope: taken
// from the maildrop (Drop), received by the listener (Source "smtp"), or
// queued by the sendmail command. relay's own reports are counted as
// bounces, not here.
func (m *Metrics) Received(env *spool.Envelope) {
	switch {
	case env.Bounce:
	case env.Drop != nil:
		m.received.Inc("maildrop")
	case env.Source == "smtp":
		m.received.Inc("smtp")
	default:
		m.received.Inc("sendmail")
	}
}

// countArrival counts the message a watch event announces, when it is a
// new queue file (not an envelope file, not a drop).
func (d *Daemon) countArrival(ev fsnotify.Event) {
	if d.Metrics == nil || !ev.Has(fsnotify.Create) {
		return
	}
	id, drop, ok := d.Spool.Announced(ev.Name)
	if !ok || drop || filepath.Base(ev.Name) != id {
		return
	}
	if m, err := d.Spool.Read(id); err == nil {
		d.Metrics.Received(&m.Envelope)
	}
}

// metricsService serves [metrics] listen on ln: loopback clients and
// those of [daemon] listen_networks; anyone else is closed at connect.
func metricsService(cfg *config.Config, sp *spool.Spool, log *maillog.Logger, m *Metrics, ln net.Listener) (func(context.Context) error, error) {
	nets, err := listener.ParseNetworks(cfg.Daemon.ListenNetworks)
	if err != nil {
		return nil, err
	}
	srv := &metrics.Server{
		Registry: m.Registry,
		Allowed: func(a netip.Addr) bool {
			if a.IsLoopback() {
				return true
			}
			for _, n := range nets {
				if n.Contains(a) {
					return true
				}
			}
			return false
		},
		Refused: func(addr string) {
			log.Warning("client", addr, "status", "refused", "reason", "metrics: not loopback and not in [daemon] listen_networks")
		},
	}
	log.Info("status", "metrics", "listen", ln.Addr().String())
	return func(ctx context.Context) error { return srv.Serve(ctx, ln) }, nil
}
