package relay_test

// The connection's own side, per smarthost: helo_name in every EHLO (the
// one before STARTTLS too), source_address as the peer address the
// smarthost sees, ip_family choosing the addresses tried.

import (
	"context"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
)

// TestDelivery_SmarthostHeloName_EveryEHLO: a smarthost's helo_name
// replaces the runner's name before and after STARTTLS.
func TestDelivery_SmarthostHeloName_EveryEHLO(t *testing.T) {
	s := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true})
	sh := smarthost(s.Port, "starttls")
	sh.TLSCAFile = s.Cert.CAFile(t)
	sh.HeloName = "mx-out.example.test"
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Fatalf("not delivered:\n%s", h.log.String())
	}
	if got := s.Helos(); !slices.Equal(got, []string{"mx-out.example.test", "mx-out.example.test"}) {
		t.Errorf("the server was greeted as %q, want mx-out.example.test before and after STARTTLS", got)
	}
}

// peers is a loopback server on ln that records the peer address of each
// connection and closes it.
func peers(t *testing.T, ln net.Listener) func() []string {
	var mu sync.Mutex
	var seen []string
	testsmtp.Serve(t, ln, func(c net.Conn) {
		mu.Lock()
		seen = append(seen, c.RemoteAddr().(*net.TCPAddr).IP.String())
		mu.Unlock()
		c.Close()
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// TestDial_SourceAddress_IsThePeerTheServerSees: source_address =
// 127.0.0.2 connects from 127.0.0.2 (every 127/8 address is the
// loopback's); without it, from 127.0.0.1.
func TestDial_SourceAddress_IsThePeerTheServerSees(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := peers(t, ln)
	port := ln.Addr().(*net.TCPAddr).Port
	sh := smarthost(port, "none")
	sh.SourceAddress = "127.0.0.2"
	relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	sh.SourceAddress = ""
	relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	testsmtp.WaitFor(5*time.Second, func() bool { return len(seen()) == 2 })
	if got := seen(); !slices.Equal(got, []string{"127.0.0.2", "127.0.0.1"}) {
		t.Errorf("peers %v, want 127.0.0.2 then 127.0.0.1", got)
	}
}

// ipv6Loopback listens on [::1]; without ::1 the test is skipped, except
// under RELAY_CI, where it fails: CI must prove the IPv6 path.
func ipv6Loopback(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		if os.Getenv("RELAY_CI") != "" {
			t.Fatalf("no IPv6 loopback (::1) on this machine: %v", err)
		}
		t.Skipf("no IPv6 loopback (::1): %v", err)
	}
	return ln
}

// TestDial_IPFamily: ip_family = "ipv6" reaches ::1 and never an IPv4
// address; "ipv4" never ::1. (Literals: a name with addresses of both
// families would need the host's /etc/hosts or DNS; the e2e test dials
// Postfix by name.)
func TestDial_IPFamily(t *testing.T) {
	ln := ipv6Loopback(t)
	seen := peers(t, ln)
	port := ln.Addr().(*net.TCPAddr).Port
	sh := smarthost(port, "none")
	sh.Host, sh.IPFamily = "::1", "ipv6"
	relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	testsmtp.WaitFor(5*time.Second, func() bool { return len(seen()) == 1 })
	if got := seen(); len(got) != 1 || got[0] != "::1" {
		t.Errorf("peer %v, want ::1", got)
	}

	sh.IPFamily = "ipv4"
	if _, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"}); err == nil {
		t.Error(`ip_family = "ipv4" connected to ::1`)
	}
	sh.Host, sh.IPFamily, sh.Port = "127.0.0.1", "ipv6", testsmtp.ClosedPort(t)
	if _, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"}); err == nil {
		t.Error(`ip_family = "ipv6" connected to 127.0.0.1`)
	}
	if len(seen()) != 1 {
		t.Errorf("%d connections, want the one over ::1", len(seen()))
	}
}
