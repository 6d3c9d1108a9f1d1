package testsmtp

import (
	"net"
	"sync"
	"testing"
)

// Serve accepts connections on ln until the end of the test and runs
// handle for each in a goroutine of its own. At the end it closes ln and
// waits for every handle to return, so that no peer outlives its test: a
// handle must end when its connection is closed by the client or when the
// test's other cleanups (registered after Serve, so run before) tell it to.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { handle(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

// ServeLoopback is Serve on a new listener on 127.0.0.1; it returns the
// listener's port.
func ServeLoopback(t testing.TB, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, ln, handle)
	return ln.Addr().(*net.TCPAddr).Port
}
