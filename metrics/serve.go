package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Server answers HTTP GET /metrics with the registry's families. It is a
// few lines of HTTP/1.1, not net/http: relay's one binary does not link
// net/http otherwise, and every sendmail run would initialise it. Each
// connection serves one request and is closed (Prometheus scrapes so
// happily); requests are read with a deadline and a size bound.
type Server struct {
	Registry *Registry
	// Allowed says whether a client may connect; nil: everyone. Others
	// are closed at once, before a byte is read.
	Allowed func(netip.Addr) bool
	// Refused is told about a refused client (for the log); nil: nobody.
	Refused func(addr string)
}

// Serve accepts on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("metrics: accept: %w", err)
		}
		if !s.allowed(c.RemoteAddr()) {
			if s.Refused != nil {
				s.Refused(c.RemoteAddr().String())
			}
			c.Close()
			continue
		}
		wg.Go(func() { s.serveConn(c) })
	}
}

func (s *Server) allowed(a net.Addr) bool {
	if s.Allowed == nil {
		return true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && s.Allowed(ap.Addr().Unmap())
}

// serveConn reads one request and answers it.
func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	// The header fields are read and ignored (8 KiB at most).
	for n := 0; ; n++ {
		h, err := br.ReadSlice('\n')
		if err != nil || n > 100 {
			return
		}
		if len(bytes.TrimSpace(h)) == 0 {
			break
		}
	}
	method, target, _ := strings.Cut(strings.TrimSpace(line), " ")
	target, _, _ = strings.Cut(target, " ")
	path, _, _ := strings.Cut(target, "?")
	switch {
	case method != "GET" && method != "HEAD":
		respond(c, "405 Method Not Allowed", "text/plain", []byte("GET /metrics\n"), method == "HEAD")
	case path == "/metrics":
		var body bytes.Buffer
		s.Registry.WriteTo(&body)
		respond(c, "200 OK", ContentType, body.Bytes(), method == "HEAD")
	case path == "/":
		respond(c, "200 OK", "text/html; charset=utf-8", []byte(`<html><head><title>relay</title></head><body><a href="/metrics">/metrics</a></body></html>`+"\n"), method == "HEAD")
	default:
		respond(c, "404 Not Found", "text/plain", []byte("not found: the metrics are at /metrics\n"), method == "HEAD")
	}
}

func respond(c net.Conn, status, ctype string, body []byte, head bool) {
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, ctype, len(body))
	if !head {
		w.Write(body)
	}
	w.Flush()
}
