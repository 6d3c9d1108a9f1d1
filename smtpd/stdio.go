package smtpd

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// NewStdioConn makes a net.Conn of a reader (the client's commands) and a
// writer (the replies), for sendmail -bs. Read deadlines work whatever in
// is (a goroutine reads it ahead by one chunk; it stays blocked in in.Read
// after Close until in delivers or ends); write deadlines are accepted and
// not enforced. Close closes neither in nor out.
func NewStdioConn(in io.Reader, out io.Writer) net.Conn {
	c := &stdioConn{out: out, chunks: make(chan chunk), closed: make(chan struct{})}
	go c.readLoop(in)
	return c
}

type stdioConn struct {
	out    io.Writer
	chunks chan chunk
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time

	// Used by Read only (one reader at a time, as net.Conn users do).
	pending []byte
	readErr error
}

type chunk struct {
	b   []byte
	err error
}

func (c *stdioConn) readLoop(in io.Reader) {
	for {
		buf := make([]byte, 32<<10)
		n, err := in.Read(buf)
		if n == 0 && err == nil {
			continue
		}
		select {
		case c.chunks <- chunk{buf[:n], err}:
		case <-c.closed:
			return
		}
		if err != nil {
			return
		}
	}
}

func (c *stdioConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 && c.readErr == nil {
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		default:
		}
		c.mu.Lock()
		deadline := c.deadline
		c.mu.Unlock()
		var timer <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timer = t.C
		}
		select {
		case ch := <-c.chunks:
			c.pending, c.readErr = ch.b, ch.err
		case <-timer:
			return 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return 0, c.readErr
}

func (c *stdioConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.out.Write(p)
}

func (c *stdioConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *stdioConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *stdioConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *stdioConn) SetWriteDeadline(time.Time) error { return nil }

func (c *stdioConn) LocalAddr() net.Addr  { return stdioAddr("stdout") }
func (c *stdioConn) RemoteAddr() net.Addr { return stdioAddr("stdin") }

type stdioAddr string

func (a stdioAddr) Network() string { return "stdio" }
func (a stdioAddr) String() string  { return string(a) }
