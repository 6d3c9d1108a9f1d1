package config_test

// The proxy setting: the URL forms accepted.

import (
	"testing"

	"github.com/relaymail/relay/config"
)

func TestProxy(t *testing.T) {
	tests := []struct {
		in   string
		want config.Proxy
		str  string
	}{
		{"socks5://127.0.0.1:9050", config.Proxy{Network: "tcp", Address: "127.0.0.1:9050"}, "socks5://127.0.0.1:9050"},
		{"socks5://u:p%40ss@[::1]:1080", config.Proxy{Network: "tcp", Address: "[::1]:1080", Username: "u", Password: "p@ss"}, "socks5://u:xxx@[::1]:1080"},
		{"socks5://iso@tor.local:9050", config.Proxy{Network: "tcp", Address: "tor.local:9050", Username: "iso"}, "socks5://iso@tor.local:9050"},
		{"socks5://unix:/run/tor/socks", config.Proxy{Network: "unix", Address: "/run/tor/socks"}, "socks5://unix:/run/tor/socks"},
		{"socks5://a:b@unix:/run/tor/socks", config.Proxy{Network: "unix", Address: "/run/tor/socks", Username: "a", Password: "b"}, "socks5://a:xxx@unix:/run/tor/socks"},
	}
	for _, tt := range tests {
		p, err := config.ParseProxy(tt.in)
		if err != nil {
			t.Errorf("ParseProxy(%q): %v", tt.in, err)
			continue
		}
		if *p != tt.want || p.String() != tt.str {
			t.Errorf("ParseProxy(%q) = %+v (%s), want %+v (%s)", tt.in, *p, p, tt.want, tt.str)
		}
	}
	for _, bad := range []string{"", "socks5://", "socks5://host", "socks5://:1080", "socks5://h:0", "socks5://h:x", "socks4://h:1", "socks5://:pw@h:1", "socks5://u:%zz@h:1", "socks5://unix:"} {
		if _, err := config.ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q) succeeded", bad)
		}
	}
	for in, want := range map[string]string{
		"socks5://u:pw@h:1":        "socks5://u:xxx@h:1",
		"socks5://u:p/w@h:1":       "socks5://u:xxx@h:1",
		"socks5://u@h:1":           "socks5://u@h:1",
		"socks5://h:1":             "socks5://h:1",
		"u:pw@h:1":                 "xxx",
		"socks5://u:p@w@unix:/x/y": "socks5://u:xxx@unix:/x/y",
	} {
		if got := config.MaskProxy(in); got != want {
			t.Errorf("MaskProxy(%q) = %q, want %q", in, got, want)
		}
	}
}
