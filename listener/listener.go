// Package listener is the daemon's SMTP listener: `[daemon] listen`
// addresses on which applications that do not call sendmail (Django,
// Ansible's mail module, Grafana, Java, containers) submit over SMTP.
//
// Policy, in the order a connection meets it:
//
//  1. Who may connect. Before a single byte is written the client's address
//     is checked: loopback (127.0.0.0/8, ::1, and IPv4-mapped loopback) and
//     the networks of `listen_networks` are served; anyone else is answered
//     "554 5.7.1" (so that a developer whose container is not listed reads
//     why instead of a bare reset) and disconnected, with one warning line
//     in the log naming the address (at most one a minute per address, so a
//     scan cannot fill the disk). relay is never an open relay: without
//     listen_users the address is the only credential, exactly as
//     Postfix's mynetworks. With it (and listen_tls, which it needs),
//     clients of listen_auth_networks are admitted too, but may not say
//     MAIL before STARTTLS and AUTH (smtpd's AuthRequired); an address of
//     those networks with ClientAuthFailures failed AUTHs within
//     AuthFailureWindow (10 in 10 minutes) is answered "421 4.7.0" at
//     connect until the window ends. Loopback and listen_networks are
//     never blocked (they need no AUTH). The users file (users.go), the
//     hashes (bcrypt, sha512crypt.go), `relay listener passwd`
//     (passwd.go) and the certificate (cert.go) are explained where they
//     are written.
//  2. How many. At most MaxConnections sessions at once (default 100, as
//     Postfix's default_process_limit): beyond that the listener stops
//     accepting and new clients wait in the kernel's backlog, as they wait
//     for a free smtpd process in Postfix. At most MaxPerClient sessions
//     from one address (default 50, Postfix's
//     smtpd_client_connection_count_limit): one more is answered "421 4.7.0"
//     and closed, so one runaway process cannot take every slot.
//  3. The session itself is smtpd.Server, the same code as
//     `sendmail -bs`: each message goes through Submitter.Enqueue and is
//     queued exactly as the sendmail command line queues it (header
//     fix-ups, max_message_size announced in SIZE and enforced while
//     reading, header_size_limit, min_free_space); 1,000 recipients per
//     message; 5 minutes of
//     silence (Postfix's smtpd_timeout) for a command, a line of DATA or a
//     reply to be taken; "250 … queued as ID" only once the message is
//     fsynced and renamed into the queue and the directory fsynced. A client
//     that goes away or a process killed before that 250 leaves no message
//     or (a crash between the rename and the reply) one complete message,
//     never a partial one. The client's address is recorded in the Received
//     field and in the log line (client=[IP]:port).
//
// Memory: a session holds its buffers (64 KiB to read the connection, two
// of 64 KiB in the Submitter's reader, 4 KiB to write, the spool file's)
// and the message's header, at most header_size_limit (100 KiB by default)
// held as fields that may take twice that while they grow; the body
// streams to the spool. So each session stays under 250 KiB plus twice
// header_size_limit, about 450 KiB by default, and MaxConnections bounds
// the sum (45 MB for 100 sessions). header_memory_test.go measures it.
//
// Stopping (the daemon's SIGTERM): the listening sockets are closed at once;
// each session is interrupted at its next read: the client is told "421
// 4.3.2 Service shutting down" and the message it was sending, if any, is
// dropped unqueued (it saw no 250 and will send it again). A message whose
// final dot was already read is still committed and its 250 written. Serve
// returns when every session has ended.
//
// Sockets are opened by Listen, separately from Serve, so that the daemon
// can open port 25 while it still runs as root (or with
// CAP_NET_BIND_SERVICE) and serve after it has dropped its privileges.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/smtpd"
	"github.com/relaymail/relay/sysexits"
	"golang.org/x/sys/unix"
)

// Defaults of the limits.
const (
	DefaultMaxConnections = 100
	DefaultMaxPerClient   = 50
)

// stopWriteGrace is how long a session may still take to write its last
// replies after the listener was told to stop.
const stopWriteGrace = 5 * time.Second

// refusalLogInterval: one warning per refused address per interval.
const refusalLogInterval = time.Minute

// Options configure a Server.
type Options struct {
	// Submitter queues the messages; it must write the queue itself (not
	// the maildrop): the daemon runs as the spool's owner.
	Submitter *sendmailcompat.Submitter
	// Networks are the client networks served besides loopback
	// (listen_networks).
	Networks []netip.Prefix
	// MaxConnections bounds the sessions at once; 0 means
	// DefaultMaxConnections.
	MaxConnections int
	// MaxPerClient bounds the sessions of one client address; 0 means
	// DefaultMaxPerClient.
	MaxPerClient int
	// Timeout is the longest silence of a client (and the longest a reply
	// may take to be written); 0 means smtpd.DefaultTimeout.
	Timeout time.Duration
	// Log receives refusals (the Submitter's Log the enqueue lines).
	Log *maillog.Logger

	// TLS offers STARTTLS ([daemon] listen_tls, see TLSConfig); nil: none.
	TLS *tls.Config
	// Users offers AUTH PLAIN and LOGIN after STARTTLS ([daemon]
	// listen_users); nil: none. Needs TLS.
	Users *Users
	// AuthNetworks are the networks whose clients are served only once
	// they have authenticated ([daemon] listen_auth_networks). Needs
	// Users.
	AuthNetworks []netip.Prefix
	// AuthFailureDelay and MaxAuthFailures are smtpd's per-session rules
	// (0: smtpd's defaults, 2 s and 3).
	AuthFailureDelay time.Duration
	MaxAuthFailures  int
	// ClientAuthFailures failed AUTHs from one address of AuthNetworks
	// within AuthFailureWindow have the address refused at connect until
	// the window ends; 0 means DefaultClientAuthFailures and
	// DefaultAuthFailureWindow.
	ClientAuthFailures int
	AuthFailureWindow  time.Duration
}

// Defaults of the failed-AUTH limit per client address (Options).
const (
	DefaultClientAuthFailures = 10
	DefaultAuthFailureWindow  = 10 * time.Minute
)

// Server serves SMTP sessions on listeners opened by Listen.
type Server struct {
	o    Options
	host string

	mu       sync.Mutex
	conns    map[*conn]struct{}
	perIP    map[netip.Addr]int
	refused  map[netip.Addr]refusal
	authFail map[netip.Addr]authFailures
	stopping bool
	wg       sync.WaitGroup
	slots    chan struct{} // one token per session that may start
}

type refusal struct {
	logged     time.Time
	suppressed int
}

// authFailures counts the failed AUTHs of one address since first.
type authFailures struct {
	first time.Time
	n     int
}

// New checks o and returns a Server.
func New(o Options) (*Server, error) {
	if o.Submitter == nil || o.Submitter.Spool == nil {
		return nil, errors.New("listener: no submitter")
	}
	if o.Submitter.Drop {
		return nil, errors.New("listener: the daemon cannot write the queue (it must run as the spool's owner)")
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxPerClient <= 0 {
		o.MaxPerClient = DefaultMaxPerClient
	}
	if o.Timeout <= 0 {
		o.Timeout = smtpd.DefaultTimeout
	}
	if o.ClientAuthFailures <= 0 {
		o.ClientAuthFailures = DefaultClientAuthFailures
	}
	if o.AuthFailureWindow <= 0 {
		o.AuthFailureWindow = DefaultAuthFailureWindow
	}
	switch {
	case o.Users != nil && o.TLS == nil:
		return nil, errors.New("listener: users without TLS: AUTH is offered only after STARTTLS")
	case len(o.AuthNetworks) > 0 && o.Users == nil:
		return nil, errors.New("listener: auth networks without users")
	}
	host := o.Submitter.Hostname
	if host == "" {
		host = "localhost"
	}
	s := &Server{o: o, host: host, conns: map[*conn]struct{}{}, perIP: map[netip.Addr]int{},
		refused: map[netip.Addr]refusal{}, authFail: map[netip.Addr]authFailures{}, slots: make(chan struct{}, o.MaxConnections)}
	for range o.MaxConnections {
		s.slots <- struct{}{}
	}
	return s, nil
}

// ParseNetworks parses listen_networks (CIDR, as config validated them).
func ParseNetworks(nets []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(nets))
	for _, n := range nets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, sysexits.New(sysexits.Config, "%q is not a network in CIDR form: %v", n, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// AuthOnly reports whether a client at addr is served only once it has
// authenticated: not Allowed, and in one of the AuthNetworks.
func (s *Server) AuthOnly(addr netip.Addr) bool {
	addr = addr.Unmap()
	if s.Allowed(addr) {
		return false
	}
	for _, p := range s.o.AuthNetworks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Allowed reports whether a client at addr may submit without AUTH:
// loopback, or in one of the networks.
func (s *Server) Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	if addr.IsLoopback() {
		return true
	}
	for _, p := range s.o.Networks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Listen opens a TCP listener on each address (host:port, as in
// `[daemon] listen`). On any failure it closes those already open and
// returns one error naming the address, with a hint for the usual causes.
//
// Then the process gives up CAP_NET_BIND_SERVICE (caps_linux.go): it
// needs it for nothing else.
//
// The sockets are bound with IP_FREEBIND: an address that does not exist
// yet (the docker bridge's 172.17.0.1 before docker has started) is
// accepted and served as soon as the interface appears.
func Listen(addrs []string) ([]net.Listener, error) {
	lc := net.ListenConfig{Control: freebind}
	var out []net.Listener
	for _, a := range addrs {
		ln, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			hint, code := "", sysexits.Unavailable
			switch {
			case errors.Is(err, syscall.EACCES):
				hint, code = " (a port below 1024 needs root or the capability CAP_NET_BIND_SERVICE)", sysexits.NoPerm
			case errors.Is(err, syscall.EADDRINUSE):
				// Like a second daemon on the spool: 75.
				hint, code = " (another program listens there: a relay daemon already running, or a Postfix or exim still installed?)", sysexits.TempFail
			}
			return nil, sysexits.New(code, "[daemon] listen %q: %v%s", a, err, hint)
		}
		out = append(out, ln)
	}
	if len(out) > 0 {
		if err := dropBindCapability(); err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, sysexits.New(sysexits.NoPerm, "cannot give up CAP_NET_BIND_SERVICE after opening [daemon] listen: %v", err)
		}
	}
	return out, nil
}

func freebind(network, _ string, rc syscall.RawConn) error {
	rc.Control(func(fd uintptr) {
		// Best effort: without it an address that does not exist yet
		// fails to bind, which Listen reports.
		if network == "tcp6" {
			unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}
	})
	return nil
}

// Serve accepts connections on every listener until ctx is done (or a
// listener fails for good), then closes them, stops every session as the
// package doc says, waits for them and returns. It returns nil after ctx is
// done, else the listener's error.
func (s *Server) Serve(ctx context.Context, lns []net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(lns))
	var loops sync.WaitGroup
	nets := "loopback"
	for _, p := range s.o.Networks {
		nets += "," + p.String()
	}
	for _, p := range s.o.AuthNetworks {
		nets += "," + p.String() + "(auth)"
	}
	if len(lns) > 0 && holdsBindCapability() {
		s.o.Log.Warning("status", "warning", "reason", "the daemon still holds CAP_NET_BIND_SERVICE, and programs it runs inherit it: "+
			"allow the capset system call (systemd: SystemCallFilter=capset), or build relay without cgo")
	}
	for _, ln := range lns {
		kv := []string{"listen", ln.Addr().String(), "clients", nets}
		if s.o.TLS != nil {
			kv = append(kv, "tls", "starttls")
		}
		if s.o.Users != nil {
			kv = append(kv, "auth", strconv.Itoa(s.o.Users.Len())+" users")
		}
		s.o.Log.Info(append(kv, "status", "listening")...)
		loops.Go(func() {
			if err := s.acceptLoop(ctx, ln); err != nil {
				errc <- err
				cancel()
			}
		})
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	loops.Wait()
	s.stop()
	s.wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (s *Server) acceptLoop(ctx context.Context, ln net.Listener) error {
	var backoff time.Duration
	for {
		// A free slot first: past MaxConnections, clients wait in the
		// backlog.
		select {
		case <-s.slots:
		case <-ctx.Done():
			return nil
		}
		nc, err := ln.Accept()
		if err != nil {
			s.slots <- struct{}{}
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) {
				// Out of descriptors or memory: wait and try again, as
				// net/http does; say so once per streak.
				if backoff == 0 {
					backoff = 5 * time.Millisecond
					s.o.Log.Error("listen", ln.Addr().String(), "status", "accept failed", "error", err.Error())
				} else {
					backoff = min(2*backoff, time.Second)
				}
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			return fmt.Errorf("listener %s: %w", ln.Addr(), err)
		}
		backoff = 0
		if !s.admit(nc) {
			s.slots <- struct{}{}
		}
	}
}

// admit applies the client policy to a new connection and starts its
// session; false when it was refused (its slot is free again).
func (s *Server) admit(nc net.Conn) bool {
	ap, ok := addrPort(nc.RemoteAddr())
	authOnly := ok && s.AuthOnly(ap.Addr())
	if !ok || !s.Allowed(ap.Addr()) && !authOnly {
		s.refuse(nc, ap)
		return false
	}
	ip := ap.Addr().Unmap()
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	if authOnly && s.authBlocked(ip, time.Now()) {
		s.mu.Unlock()
		s.refuseAuthBlocked(nc, ap)
		return false
	}
	if s.perIP[ip] >= s.o.MaxPerClient {
		s.mu.Unlock()
		s.o.Log.Warning("client", clientString(ap), "status", "refused",
			"reason", "too many connections from this address (max "+strconv.Itoa(s.o.MaxPerClient)+")")
		writeAndClose(nc, "421 4.7.0 "+s.host+" Error: too many connections from "+ip.String()+"\r\n")
		return false
	}
	c := &conn{Conn: nc, host: s.host}
	s.perIP[ip]++
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		srv := &smtpd.Server{Submitter: s.o.Submitter, Timeout: s.o.Timeout, TLS: s.o.TLS,
			AuthRequired: authOnly, AuthFailureDelay: s.o.AuthFailureDelay, MaxAuthFailures: s.o.MaxAuthFailures}
		if s.o.Users != nil {
			srv.Auth = func(user, password string) bool {
				ok := s.o.Users.Verify(user, password)
				if !ok && authOnly {
					s.noteAuthFailure(ip, time.Now())
				}
				return ok
			}
		}
		if err := srv.ServeConn(c); err != nil {
			s.o.Log.Warning("client", clientString(ap), "status", "session failed", "error", err.Error())
		}
		s.mu.Lock()
		delete(s.conns, c)
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
		s.mu.Unlock()
		s.slots <- struct{}{}
	}()
	return true
}

// refuse answers a client that is not allowed and logs it (rate-limited
// per address).
func (s *Server) refuse(nc net.Conn, ap netip.AddrPort) {
	ip := ap.Addr().Unmap()
	now := time.Now()
	s.mu.Lock()
	r := s.refused[ip]
	logIt := now.Sub(r.logged) >= refusalLogInterval
	suppressed := r.suppressed
	if logIt {
		r = refusal{logged: now}
	} else {
		r.suppressed++
	}
	if len(s.refused) > 10000 { // a wide scan: forget the old ones
		for k, v := range s.refused {
			if now.Sub(v.logged) >= refusalLogInterval {
				delete(s.refused, k)
			}
		}
	}
	s.refused[ip] = r
	s.mu.Unlock()
	who := "loopback and listen_networks may submit"
	reason := "not loopback and not in listen_networks"
	if len(s.o.AuthNetworks) > 0 {
		who = "loopback, listen_networks and listen_auth_networks may connect"
		reason = "not loopback and not in listen_networks or listen_auth_networks"
	}
	if logIt {
		kv := []string{"client", clientString(ap), "status", "refused", "reason", reason}
		if suppressed > 0 {
			kv = append(kv, "suppressed", strconv.Itoa(suppressed))
		}
		s.o.Log.Warning(kv...)
	}
	writeAndClose(nc, "554 5.7.1 "+s.host+" Error: access denied for "+ip.String()+" (only "+who+")\r\n")
}

// authBlocked reports whether ip has failed AUTH ClientAuthFailures times
// within the window (s.mu held). Only clients of AuthNetworks are
// counted: loopback and listen_networks may submit without AUTH, so
// blocking them would stop nothing but local mail (as Postfix exempts
// mynetworks from its anvil limits).
func (s *Server) authBlocked(ip netip.Addr, now time.Time) bool {
	f, ok := s.authFail[ip]
	if !ok {
		return false
	}
	if now.Sub(f.first) >= s.o.AuthFailureWindow {
		delete(s.authFail, ip)
		return false
	}
	return f.n >= s.o.ClientAuthFailures
}

// noteAuthFailure counts a failed AUTH of ip.
func (s *Server) noteAuthFailure(ip netip.Addr, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.authFail[ip]
	if f.n == 0 || now.Sub(f.first) >= s.o.AuthFailureWindow {
		f = authFailures{first: now}
	}
	f.n++
	s.authFail[ip] = f
	if len(s.authFail) > 10000 { // a wide guessing campaign: forget the old
		for k, v := range s.authFail {
			if now.Sub(v.first) >= s.o.AuthFailureWindow {
				delete(s.authFail, k)
			}
		}
	}
	if f.n == s.o.ClientAuthFailures {
		s.o.Log.Warning("client", ip.String(), "status", "blocked", "reason",
			strconv.Itoa(f.n)+" failed authentications: refused at connect for "+s.o.AuthFailureWindow.String()+" from the first")
	}
}

// refuseAuthBlocked answers a client whose address failed AUTH too often.
func (s *Server) refuseAuthBlocked(nc net.Conn, ap netip.AddrPort) {
	writeAndClose(nc, "421 4.7.0 "+s.host+" Error: too many failed authentications from "+ap.Addr().Unmap().String()+", try again later\r\n")
}

// writeAndClose writes a last reply to a fresh connection (its send buffer
// is empty: the write does not block; the deadline is a safety net) and
// closes it.
func writeAndClose(nc net.Conn, line string) {
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(nc, line)
	nc.Close()
}

// stop refuses new sessions and interrupts those running.
func (s *Server) stop() {
	s.mu.Lock()
	s.stopping = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.stop()
	}
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort(), true
	}
	return netip.AddrPort{}, false
}

func clientString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "unknown"
	}
	return "[" + ap.Addr().Unmap().String() + "]:" + strconv.Itoa(int(ap.Port()))
}

// conn is a session's connection. stop makes its next read fail at once:
// the deadlines the session sets afterwards are ignored (it resets its
// read deadline before every read), and a read that fails for the stop
// tells the client "421 4.3.2" and reports end of input, which the session
// treats as the client leaving: a message in DATA is not queued.
type conn struct {
	net.Conn
	host string

	mu        sync.Mutex
	stopping  bool
	told      bool
	encrypted bool // after STARTTLS: a stop ends it without a 421 in clear
}

// StartingTLS is smtpd's notice that the session switches to TLS.
func (c *conn) StartingTLS() {
	c.mu.Lock()
	c.encrypted = true
	c.mu.Unlock()
}

func (c *conn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	c.Conn.SetReadDeadline(time.Unix(1, 0))
	c.Conn.SetWriteDeadline(time.Now().Add(stopWriteGrace))
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	c.mu.Lock()
	stopping, told, encrypted := c.stopping, c.told, c.encrypted
	c.told = true
	c.mu.Unlock()
	if !stopping {
		return n, err // the session's own idle timeout
	}
	if !told && !encrypted {
		// The session writes nothing while it waits for a read: its
		// replies are flushed; this line comes after them.
		io.WriteString(c.Conn, "421 4.3.2 "+c.host+" Service shutting down\r\n")
	}
	return n, io.EOF
}
