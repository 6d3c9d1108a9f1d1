package testsmtp

import (
	"net"
	"syscall"
	"testing"
)

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClosedPort returns a port on 127.0.0.1 that is bound but not listening
// until the test ends: connecting to it is refused, and nothing else can
// take it meanwhile.
func ClosedPort(t testing.TB) int {
	t.Helper()
	_, port := bindLoopback(t)
	return port
}

// bindLoopback binds a new TCP socket to a port of 127.0.0.1 without
// listening, and closes it at the end of the test.
func bindLoopback(t testing.TB) (fd, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*syscall.SockaddrInet4).Port
}
