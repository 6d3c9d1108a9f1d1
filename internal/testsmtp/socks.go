package testsmtp

// SocksServer is a scripted SOCKS5 proxy for the tests (RFC 1928 CONNECT, RFC 1929
// username/password), in front of the fault-injecting smarthost of
// fault.go. Like Tor, it resolves nothing for the client: it
// records the name (or address) each CONNECT asks for and connects to the
// one target it was told, whatever the name — so a smarthost named
// "x.onion-test.invalid", which cannot resolve here, is reached through
// it. It can refuse the login, answer CONNECT with a SOCKS error reply,
// stay silent, close at once or answer in another protocol. It listens on
// 127.0.0.1 or on a unix socket (Tor's SocksPort unix:). Every proxy
// checks at the end of its test that the client closed all its
// connections.

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SOCKS5 reply codes (RFC 1928 section 6).
const (
	SocksGeneralFailure     byte = 0x01
	SocksNotAllowed         byte = 0x02
	SocksNetworkUnreachable byte = 0x03
	SocksHostUnreachable    byte = 0x04
	SocksConnRefused        byte = 0x05
	SocksTTLExpired         byte = 0x06
)

// How a SocksServer misbehaves, instead of serving (SocksConfig.Misbehave).
const (
	SocksServe    = ""         // speak SOCKS5
	SocksSilent   = "silent"   // read the client's greeting, never answer (until the end of the test, at most HangMax)
	SocksClose    = "close"    // read the client's greeting, close the connection
	SocksNotSOCKS = "notsocks" // answer the greeting as an HTTP proxy would, and close
)

// SocksConfig says how a SocksServer behaves. The zero value accepts
// every client, with or without credentials, and connects every CONNECT
// to Target.
type SocksConfig struct {
	// Target is the address ("127.0.0.1:port") every CONNECT is connected
	// to, whatever name or address it asked for: the proxy's own name
	// resolution.
	Target string
	// User and Pass, when User is set, are the only credentials accepted
	// (method 0x02 required; wrong ones get status 0x01 and the
	// connection closed). Without them any credentials a client offers are
	// taken and recorded (Tor's stream isolation), and a client without
	// any gets method 0x00.
	User, Pass string
	// Reply, when set, is the SOCKS error reply every CONNECT gets; the
	// target is never contacted.
	Reply byte
	// Misbehave is one of SocksServe, SocksSilent, SocksClose and
	// SocksNotSOCKS.
	Misbehave string
}

// SocksRequest is what one client connection told the proxy.
type SocksRequest struct {
	Methods    []byte // the authentication methods offered
	Method     byte   // the method chosen; 0xFF for none
	User, Pass string // the RFC 1929 credentials, when method 0x02
	Cmd        byte   // 1 for CONNECT; 0 when the request never came
	ATYP       byte   // 1 IPv4, 3 domain name, 4 IPv6
	Host       string // the name (ATYP 3) or the address as text
	Port       int
}

// SocksServer is a running scripted SOCKS5 proxy.
type SocksServer struct {
	Network string // "tcp" or "unix"
	Addr    string // "127.0.0.1:port" or the socket's path

	t       *testing.T
	ln      net.Listener
	release chan struct{} // closed at the end of the test: silences end
	wg      sync.WaitGroup

	mu    sync.Mutex
	cfg   SocksConfig
	reqs  []SocksRequest
	conns int                   // client connections accepted
	open  map[net.Conn]struct{} // connections (both sides) not closed yet
}

// NewSocksServer starts a proxy on 127.0.0.1 that lives until the end of
// the test.
func NewSocksServer(t *testing.T, cfg SocksConfig) *SocksServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return StartSocks(t, ln, cfg)
}

// NewUnixSocksServer starts a proxy on a unix socket.
func NewUnixSocksServer(t *testing.T, cfg SocksConfig) *SocksServer {
	t.Helper()
	// t.TempDir's path grows with the test's name and may pass the
	// 108-byte limit of a socket path.
	dir, err := os.MkdirTemp("", "relay-socks")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "socks"))
	if err != nil {
		t.Fatal(err)
	}
	return StartSocks(t, ln, cfg)
}

// StartSocks serves a proxy on ln until the end of the test; ln is closed
// then.
func StartSocks(t *testing.T, ln net.Listener, cfg SocksConfig) *SocksServer {
	s := &SocksServer{
		Network: ln.Addr().Network(),
		Addr:    ln.Addr().String(),
		t:       t,
		ln:      ln,
		release: make(chan struct{}),
		cfg:     cfg,
		open:    map[net.Conn]struct{}{},
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.open[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		// Leak check, as FaultServer's: relay must have closed its
		// connection to the proxy, which then closes the one to the
		// target.
		deadline := time.Now().Add(3 * time.Second)
		for s.openConns() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := s.openConns(); n > 0 {
			t.Errorf("SocksServer: %d connections still open at the end of the test (relay leaked a connection)", n)
		}
		close(s.release)
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// URL is the proxy setting that reaches the server, with userinfo
// ("user:pass", "user" or "") in it.
func (s *SocksServer) URL(userinfo string) string {
	u := "socks5://"
	if userinfo != "" {
		u += userinfo + "@"
	}
	if s.Network == "unix" {
		return u + "unix:" + s.Addr
	}
	return u + s.Addr
}

// Conns is the number of client connections accepted so far.
func (s *SocksServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Requests returns what every client connection told the proxy.
func (s *SocksServer) Requests() []SocksRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SocksRequest(nil), s.reqs...)
}

func (s *SocksServer) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

func (s *SocksServer) closeConn(c net.Conn) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
	c.Close()
}

// serve speaks SOCKS5 with one client and records what it asked.
func (s *SocksServer) serve(c net.Conn) {
	defer s.closeConn(c)
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a safety net; the tests end long before
	s.mu.Lock()
	cfg := s.cfg
	i := len(s.reqs)
	s.reqs = append(s.reqs, SocksRequest{Method: 0xFF})
	s.mu.Unlock()
	update := func(f func(*SocksRequest)) {
		s.mu.Lock()
		f(&s.reqs[i])
		s.mu.Unlock()
	}

	// Greeting: VER NMETHODS METHODS.
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	update(func(r *SocksRequest) { r.Methods = methods })
	switch cfg.Misbehave {
	case SocksSilent:
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(done) }()
		select {
		case <-done: // the client gave up
		case <-s.release:
		case <-time.After(HangMax):
		}
		return
	case SocksClose:
		return
	case SocksNotSOCKS:
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
		return
	}

	offered := func(m byte) bool {
		for _, x := range methods {
			if x == m {
				return true
			}
		}
		return false
	}
	switch {
	case offered(0x02):
		// Take credentials whenever they are offered, as Tor does.
		c.Write([]byte{5, 0x02})
		update(func(r *SocksRequest) { r.Method = 0x02 })
		user, pass, err := readUserPass(c)
		if err != nil {
			return
		}
		update(func(r *SocksRequest) { r.User, r.Pass = user, pass })
		if cfg.User != "" && (user != cfg.User || pass != cfg.Pass) {
			c.Write([]byte{1, 0x01})
			return
		}
		c.Write([]byte{1, 0x00})
	case cfg.User == "" && offered(0x00):
		c.Write([]byte{5, 0x00})
		update(func(r *SocksRequest) { r.Method = 0x00 })
	default:
		c.Write([]byte{5, 0xFF})
		return
	}

	// Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 5 {
		return
	}
	var host string
	switch req[3] {
	case 1, 4:
		ip := make(net.IP, 4)
		if req[3] == 4 {
			ip = make(net.IP, 16)
		}
		if _, err := io.ReadFull(c, ip); err != nil {
			return
		}
		host = ip.String()
	case 3:
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return
		}
		host = string(name)
	default:
		socksReply(c, 0x08)
		return
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return
	}
	update(func(r *SocksRequest) {
		r.Cmd, r.ATYP, r.Host, r.Port = req[1], req[3], host, int(binary.BigEndian.Uint16(port[:]))
	})
	switch {
	case req[1] != 1:
		socksReply(c, 0x07) // command not supported
		return
	case cfg.Reply != 0:
		socksReply(c, cfg.Reply)
		return
	}
	up, err := net.DialTimeout("tcp", cfg.Target, 2*time.Second)
	if err != nil {
		socksReply(c, SocksConnRefused)
		return
	}
	s.mu.Lock()
	s.open[up] = struct{}{}
	s.mu.Unlock()
	defer s.closeConn(up)
	if err := socksReply(c, 0x00); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	// Pipe both ways; when one side ends, close both.
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	select {
	case <-done:
	case <-s.release:
	}
	c.Close()
	up.Close()
	<-done
}

// readUserPass reads an RFC 1929 request: VER ULEN UNAME PLEN PASSWD.
func readUserPass(r io.Reader) (user, pass string, err error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", err
	}
	if b[0] != 1 {
		return "", "", errors.New("bad username/password version " + strconv.Itoa(int(b[0])))
	}
	u := make([]byte, b[1])
	if _, err := io.ReadFull(r, u); err != nil {
		return "", "", err
	}
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return "", "", err
	}
	p := make([]byte, b[0])
	if _, err := io.ReadFull(r, p); err != nil {
		return "", "", err
	}
	return string(u), string(p), nil
}

// socksReply writes a reply with BND.ADDR 127.0.0.1:1080.
func socksReply(w io.Writer, code byte) error {
	_, err := w.Write([]byte{5, code, 0, 1, 127, 0, 0, 1, 0x04, 0x38})
	return err
}
