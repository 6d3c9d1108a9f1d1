package relay

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/relaymail/relay/config"
	"golang.org/x/net/proxy"
)

// dialSmarthost opens the connection to the smarthost: directly, or
// through its SOCKS5 proxy (proxy = "socks5://[user:pass@]host:port" or
// "socks5://unix:/path", per smarthost or inherited from the top level).
// Through a proxy the smarthost's name goes to the proxy unresolved (SOCKS
// ATYP 3): relay makes no DNS lookup of its own, so nothing leaks over Tor
// and .onion names work. A proxy that fails is a failure: relay never
// falls back to a direct connection, and the inherited ALL_PROXY is never
// read (proxy.FromEnvironment is not used). via names the proxy with its
// password masked, "" for a direct connection.
//
// A direct connection comes from source_address when set, and uses only
// the addresses of ip_family ("ipv4": tcp4, "ipv6": tcp6). Through a
// proxy both are ignored (relay check warns): the proxy resolves the
// name and opens the connection, from its own address.
func dialSmarthost(ctx context.Context, sh *config.Smarthost) (conn net.Conn, via string, err error) {
	return dialVia(ctx, sh, net.JoinHostPort(sh.Host, strconv.Itoa(sh.Port)))
}

// dialVia opens a TCP connection to addr the way the smarthost sh is
// reached: directly or through its proxy (also its OAuth endpoints: over
// Tor, they must not leak either).
func dialVia(ctx context.Context, sh *config.Smarthost, addr string) (conn net.Conn, via string, err error) {
	direct := &net.Dialer{Timeout: ConnectTimeout}
	if sh.Proxy == "" {
		network := "tcp"
		switch sh.IPFamily {
		case "ipv4":
			network = "tcp4"
		case "ipv6":
			network = "tcp6"
		}
		if sh.SourceAddress != "" {
			ip := net.ParseIP(sh.SourceAddress)
			if ip == nil {
				return nil, "", fmt.Errorf("source_address %q is not an IP address", sh.SourceAddress)
			}
			direct.LocalAddr = &net.TCPAddr{IP: ip}
		}
		conn, err = direct.DialContext(ctx, network, addr)
		if err != nil && sh.SourceAddress != "" {
			err = fmt.Errorf("from source_address %s: %w", sh.SourceAddress, err)
		}
		return conn, "", err
	}
	p, err := config.ParseProxy(sh.Proxy)
	if err != nil {
		return nil, config.MaskProxy(sh.Proxy), err
	}
	via = p.String()
	var auth *proxy.Auth
	if p.Username != "" {
		auth = &proxy.Auth{User: p.Username, Password: p.Password}
	}
	d, err := proxy.SOCKS5(p.Network, p.Address, auth, direct)
	if err != nil {
		return nil, via, fmt.Errorf("proxy %s: %w", via, err)
	}
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	conn, err = d.(proxy.ContextDialer).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, via, fmt.Errorf("proxy %s: %w", via, err)
	}
	return conn, via, nil
}
