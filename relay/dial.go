package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
)

// Timeouts of a connection. Variables so tests can shorten them.
var (
	ConnectTimeout = 30 * time.Second
	CommandTimeout = 5 * time.Minute  // every command's reply (RFC 5321 4.5.3.2)
	DataTimeout    = 10 * time.Minute // the reply to the final dot
	// WriteIdleTimeout bounds each write of the message: a server that
	// stops reading fails the delivery instead of hanging it.
	WriteIdleTimeout = 3 * time.Minute
	// DataBudgetBase and DataMinRate make the budget of a whole DATA:
	// DataBudgetBase plus the message size at DataMinRate octets per
	// second. A server that keeps reading, but slower than that (a
	// trickle that each write's idle timeout never catches), fails the
	// delivery when the budget is spent. 32 KiB/s is slower than a poor
	// Tor circuit: a 100 MB message gets 5 min + 53 min.
	DataBudgetBase       = 5 * time.Minute
	DataMinRate    int64 = 32 << 10
)

// dataBudget is the time a DATA of size octets may take.
func dataBudget(size int64) time.Duration {
	rate := max(DataMinRate, 1)
	return DataBudgetBase + time.Duration(float64(size)/float64(rate)*float64(time.Second))
}

// DialOptions are the parts of a connection that do not come from the
// smarthost's configuration.
type DialOptions struct {
	// HeloName is our name in every EHLO, the one before STARTTLS too;
	// the smarthost's helo_name, when set, replaces it.
	HeloName string
	Debug    io.Writer // the SMTP dialogue, for -v; nil for none
	// Abort, when done, closes the connection at once, even in the middle
	// of a DATA: the transaction in flight fails with ErrAborted and its
	// message stays queued, never half-sent (the final dot is never
	// written). Once the final dot is out, the server has the whole
	// message: then the reply is awaited (a CommandTimeout at most from
	// the stop), recorded, and only then is the connection closed, so a
	// stop never sends a delivered message again. SIGTERM and SIGINT of
	// every runner. nil: never.
	Abort context.Context
	// StopWait, when set, is told that a stop came while the reply to a
	// final dot was awaited, and for how long at most it is awaited
	// still: the runner logs it, so that an administrator whose
	// `systemctl stop` takes that long reads why.
	StopWait func(atMost time.Duration)
}

// ErrAborted is the error of a transaction cut short by DialOptions.Abort.
var ErrAborted = errors.New("delivery interrupted: relay is stopping")

// Conn is an open, authenticated connection to a smarthost.
type Conn struct {
	Host *config.Smarthost
	Addr string // the address reached, "ip:port"; "" through a proxy
	Via  string // the SOCKS5 proxy, password masked; "" when direct
	TLS  string // TLS version such as "TLSv1.3", "" without TLS
	// OAuth, after a login with [smarthost.oauth]: the mechanism and
	// the token's expiry (never the token).
	OAuth  *OAuthLogin
	client *smtp.Client
	idle   *idleConn
	tls    *tls.Conn // nil without TLS
	broken bool
	// clean says no transaction is open (the last one ended with the
	// reply to its DATA, or RSET), at lastUsed: the next message needs no
	// RSET (see Reset).
	clean    bool
	lastUsed time.Time
	// stopAbort unregisters DialOptions.Abort (see idleConn.abort).
	stopAbort func() bool
}

// Dial connects to the smarthost, sets up TLS as configured and
// authenticates. Every error is a *Failure; none of them is permanent.
func Dial(ctx context.Context, sh *config.Smarthost, o DialOptions) (*Conn, error) {
	tcfg, err := TLSConfig(sh)
	if err != nil {
		return nil, &Failure{Stage: StageLocal, Err: err}
	}
	raw, via, err := dialSmarthost(ctx, sh)
	if err != nil {
		return nil, &Failure{Stage: StageConnect, Err: err}
	}
	conn := raw
	if o.Debug != nil && sh.TLS == "starttls" {
		// go-smtp's debug writer starts inside TLS; the tap shows the
		// plain-text greeting, EHLO and STARTTLS before it.
		conn = &startTLSTap{Conn: raw, w: o.Debug}
	}
	idle := &idleConn{Conn: conn, stopWait: o.StopWait}
	stopAbort := func() bool { return false }
	if o.Abort != nil {
		stopAbort = context.AfterFunc(o.Abort, idle.abort)
	}
	c, err := handshake(ctx, sh, o, tcfg, idle)
	if err != nil {
		stopAbort()
		raw.Close()
		if idle.aborted() {
			return nil, &Failure{Stage: StageConnect, Err: ErrAborted}
		}
		if errors.Is(err, errAuthRedial) {
			// auth.go: the server closed the session after refusing
			// a challenge-response mechanism; a new connection starts
			// with the fallback (never again with a refused one).
			return Dial(ctx, sh, o)
		}
		f := failure(StageConnect, err)
		if via == "" {
			f.Addr = raw.RemoteAddr().String()
		}
		return nil, f
	}
	if via != "" {
		// The peer is the proxy: its address says nothing of the smarthost
		// (and is never loopback evidence for AUTH in clear).
		c.Addr, c.Via = "", via
	}
	c.stopAbort = stopAbort
	c.clean, c.lastUsed = true, time.Now()
	return c, nil
}

// handshake speaks TLS, EHLO and AUTH on a fresh connection.
func handshake(ctx context.Context, sh *config.Smarthost, o DialOptions, tcfg *tls.Config, conn *idleConn) (*Conn, error) {
	c := &Conn{Host: sh, Addr: conn.RemoteAddr().String(), idle: conn}
	var err error
	if sh.HeloName != "" {
		o.HeloName = sh.HeloName // the smarthost's own helo_name wins
	}

	var client *smtp.Client
	debug := o.Debug
	switch sh.TLS {
	case "implicit":
		tc := tls.Client(conn, tcfg)
		hctx, cancel := context.WithTimeout(ctx, CommandTimeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return nil, &Failure{Stage: StageTLS, Err: fmt.Errorf("TLS handshake: %w", err)}
		}
		client, c.tls = smtp.NewClient(tc), tc
	case "starttls":
		// Our name in the EHLO before STARTTLS too (see startTLS); the
		// one inside TLS follows below.
		var greeting int
		client, c.tls, greeting, err = startTLS(conn, tcfg, o.HeloName)
		if err != nil {
			return nil, startTLSFailure(err)
		}
		if debug != nil {
			debug = &skipWriter{w: debug, n: greeting}
		}
	default:
		client = smtp.NewClient(conn)
	}
	client.CommandTimeout = CommandTimeout
	client.SubmissionTimeout = DataTimeout
	client.DebugWriter = debug
	c.client = client

	// Hello right away: with STARTTLS the handshake happens here, so a bad
	// certificate shows now and not at MAIL FROM.
	if err := client.Hello(o.HeloName); err != nil {
		client.Close()
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			// go-smtp reads the greeting inside Hello too: a 421 greeting
			// is labelled ehlo here. Both defer alike.
			return nil, failure(StageEHLO, err)
		}
		if sh.TLS == "starttls" {
			return nil, &Failure{Stage: StageTLS, Err: err}
		}
		return nil, failure(StageGreeting, err)
	}
	if st, ok := c.tlsState(); ok {
		c.TLS = tlsVersionName(st.Version)
	}
	if sh.Username != "" {
		if err := c.auth(ctx, conn.RemoteAddr()); err != nil {
			client.Close()
			return nil, err
		}
	}
	return c, nil
}

// startTLSFailure classifies what startTLS returns: a reply to
// the greeting, EHLO or STARTTLS, or a missing STARTTLS.
func startTLSFailure(err error) *Failure {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return failure(StageEHLO, err)
	}
	if errors.Is(err, errNoStartTLS) {
		return &Failure{Stage: StageTLS, Err: errors.New("the server does not offer STARTTLS, and tls = \"starttls\" never falls back to plain text")}
	}
	return &Failure{Stage: StageGreeting, Err: err}
}

// tlsState is the state of the connection's TLS; ok false without TLS.
func (c *Conn) tlsState() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return c.tls.ConnectionState(), true
}

// auth authenticates, refusing to send a password over a connection
// without TLS to anything but a loopback address (see authenticate in
// auth.go: the mechanism, the fallback to PLAIN).
func (c *Conn) auth(ctx context.Context, peer net.Addr) error {
	_, err := c.authenticate(ctx, peer)
	return err
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Close ends the session politely when it can (QUIT closes the
// connection itself). A stop (DialOptions.Abort) still cuts a QUIT that
// waits for its reply.
func (c *Conn) Close() error {
	if c.stopAbort != nil {
		defer c.stopAbort()
	}
	if !c.broken && c.client.Quit() == nil {
		return nil
	}
	c.broken = true
	return c.client.Close()
}

// idleConn gives every write its own deadline, so that a server that stops
// reading the message fails the delivery after WriteIdleTimeout instead of
// hanging it (go-smtp sets none while DATA is written), and no later than
// the budget of the DATA in progress (see dataBudget). Deadlines that
// go-smtp sets for replies are kept.
//
// It also carries out a stop (DialOptions.Abort, see abort): the
// connection is closed at once, except from the moment the final dot of a
// DATA is out until its reply is in.
type idleConn struct {
	net.Conn
	budget atomic.Int64 // the DATA's end as Unix nanoseconds; 0: none

	mu       sync.Mutex
	stopping bool      // abort was called
	stopped  bool      // the stop took effect: closed, or writes refused
	ending   bool      // the end of a DATA (rest of the message, dot) is being written
	awaiting time.Time // since then the dot is out and its reply awaited; zero: not

	stopWait func(time.Duration) // DialOptions.StopWait
}

func (c *idleConn) Write(p []byte) (int, error) {
	d := time.Now().Add(WriteIdleTimeout)
	if b := c.budget.Load(); b != 0 && time.Unix(0, b).Before(d) {
		d = time.Unix(0, b)
	}
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return 0, ErrAborted
	}
	c.Conn.SetWriteDeadline(d)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Read notes the first read after the end of a DATA was written: every
// byte of it, the dot included, is out (go-smtp reads the reply only when
// its writes are done, and TLS reads nothing while it writes).
func (c *idleConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.ending && c.awaiting.IsZero() {
		c.awaiting = time.Now()
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// abort is the stop (DialOptions.Abort). Before the end of a DATA it
// closes the connection; while the end is being written it fails the
// write in progress (its deadline is now) and refuses the next, so the
// dot never goes out after a stop; once the dot is out it only bounds the
// wait for the reply (a CommandTimeout from now, never later than
// DataTimeout after the dot), and endDot closes the connection when the
// reply is in.
func (c *idleConn) abort() {
	c.mu.Lock()
	var waited time.Duration // how long the reply may still take; 0: no wait
	defer func() {
		c.mu.Unlock()
		if waited > 0 && c.stopWait != nil {
			c.stopWait(waited)
		}
	}()
	if c.stopping {
		return
	}
	c.stopping = true
	switch {
	case !c.awaiting.IsZero():
		now := time.Now()
		until := minTime(c.awaiting.Add(DataTimeout), now.Add(CommandTimeout))
		c.Conn.SetReadDeadline(until)
		waited = until.Sub(now)
	case c.ending:
		c.stopped = true
		c.Conn.SetWriteDeadline(time.Now())
	default:
		c.stopped = true
		c.Conn.Close()
	}
}

// beginDot says that the end of a DATA is about to be written (go-smtp's
// CloseWithResponse: the rest of the message, the dot, then the reply).
func (c *idleConn) beginDot() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ending, c.awaiting = true, time.Time{}
}

// endDot says that the reply to the dot was read (or failed). It reports
// whether a stop came meanwhile: then the connection is closed now.
func (c *idleConn) endDot() (stopped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ending, c.awaiting = false, time.Time{}
	if c.stopping {
		c.stopped = true
		c.Conn.Close()
	}
	return c.stopping
}

// aborted reports whether a stop cut the connection (or the write of a
// DATA's end), so that what failed after it failed because of it.
func (c *idleConn) aborted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// startBudget bounds the writes to come by the deadline end; stopBudget
// lifts that. overBudget reports whether the budget is spent.
func (c *idleConn) startBudget(end time.Time) { c.budget.Store(end.UnixNano()) }
func (c *idleConn) stopBudget()               { c.budget.Store(0) }
func (c *idleConn) overBudget() bool {
	b := c.budget.Load()
	return b != 0 && !time.Now().Before(time.Unix(0, b))
}
