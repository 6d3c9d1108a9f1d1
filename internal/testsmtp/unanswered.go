package testsmtp

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// UnansweredPort returns a port on 127.0.0.1 whose listener never takes a
// connection and whose accept queue is full, so that the kernel drops new
// connection attempts: a connect that times out, as with a firewall that
// drops packets.
func UnansweredPort(t testing.TB) int {
	t.Helper()
	fd, port := bindLoopback(t)
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 300*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return port // the queue is full
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("this kernel takes every connection into the accept queue: no way to make a connect time out on loopback")
	return 0
}
