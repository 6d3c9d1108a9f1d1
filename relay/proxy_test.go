package relay_test

// Delivery through a SOCKS5 proxy (SPEC 8, issue 11), against the scripted
// proxy of socks_test.go in front of the fault-injecting smarthost. The
// smarthost is named by a name that cannot resolve here (.invalid, RFC
// 6761): only the proxy knows where it leads, as Tor knows a .onion. Every
// delivery that works proves that relay made no DNS lookup of its own, and
// a trap on the resolver shows that none was even tried.

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// onionHost is the smarthost's name: it resolves nowhere but at the proxy.
const onionHost = "smarthost.onion-test.invalid"

// proxyPass is the proxy's password: distinctive, so that a leak can be
// grepped for.
const proxyPass = "Sox-walrus-9Kp"

// Phrases of the explanation table's proxy rows, one per row.
const (
	sayProxyDown        = "is not running or cannot be reached: start it (Tor: systemctl start tor)"
	sayProxyAuth        = "The SOCKS proxy refused the user name or password in proxy"
	sayProxyWantsLogin  = "The SOCKS proxy wants a login that relay was not given"
	sayProxyUnreachable = "the hidden service is down or the name in host is wrong"
	sayProxyRefused     = "the hidden service has no HiddenServicePort for it"
	sayProxyRuleset     = "with Tor, the exit relays' policy"
	sayProxyNotSOCKS    = "does not speak SOCKS5"
	sayProxyTimeout     = "The SOCKS proxy did not connect to the smarthost in time"
	sayProxyClosed      = "The SOCKS proxy closed the connection before it connected to the smarthost"
)

// proxied is the smarthost onionHost:port as Load would produce it, reached
// through proxy.
func proxied(port int, tlsMode, proxy string) config.Smarthost {
	return config.Smarthost{Name: "hidden", Host: onionHost, Port: port, TLS: tlsMode, TLSMinVersion: "1.2", Proxy: proxy}
}

// dnsTrap records every DNS query relay's process sends.
type dnsTrap struct {
	mu      sync.Mutex
	queries []string
}

func (d *dnsTrap) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.queries...)
}

// trapDNS replaces the resolver (that of every net.Dialer without its own)
// for the test by one that records each query and answers none. It first
// checks that the trap catches the lookup of a name like onionHost; else
// it would prove nothing.
func trapDNS(t *testing.T) *dnsTrap {
	t.Helper()
	d := &dnsTrap{}
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		d.mu.Lock()
		d.queries = append(d.queries, network+" "+address)
		d.mu.Unlock()
		return nil, errors.New("no DNS in this test")
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
	if _, err := net.DefaultResolver.LookupHost(context.Background(), "trap-check.onion-test.invalid"); err == nil || len(d.Queries()) == 0 {
		t.Skipf("the resolver does not ask DNS for a .invalid name here (err %v): cannot watch relay's lookups", err)
	}
	d.mu.Lock()
	d.queries = nil
	d.mu.Unlock()
	return d
}

// lastFields returns the keys and values of the last log line about addr.
func (h *harness) lastFields(addr string) (line string, keys []string, vals map[string]string) {
	h.t.Helper()
	line, _, _ = h.lastLine(addr)
	keys, vals = logFields(h.t, line)
	return line, keys, vals
}

// wantOneConnect checks that the proxy got exactly one CONNECT, for the
// smarthost's name (ATYP 3) and port.
func wantOneConnect(t *testing.T, px *testsmtp.SocksServer, host string, port int) testsmtp.SocksRequest {
	t.Helper()
	reqs := px.Requests()
	if len(reqs) != 1 {
		t.Fatalf("proxy got %d connections %+v, want one", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Cmd != 1 || r.ATYP != 3 || r.Host != host || r.Port != port {
		t.Errorf("proxy got CMD %d ATYP %d %q port %d, want CONNECT (1) with the name (ATYP 3) %q port %d",
			r.Cmd, r.ATYP, r.Host, r.Port, host, port)
	}
	return r
}

// TestProxy_ConnectCarriesTheSmarthostsName_NoLocalDNS: relay hands the
// proxy the smarthost's name unresolved (ATYP 3) with the configured port,
// looks up nothing itself, and delivers through the proxy with TLS
// verified as configured, STARTTLS and implicit TLS alike.
func TestProxy_ConnectCarriesTheSmarthostsName_NoLocalDNS(t *testing.T) {
	for _, tc := range []struct {
		name string
		port int
		cfg  testsmtp.ServerConfig
		mode string
		tls  func(sh *config.Smarthost, srv *testsmtp.FaultServer)
	}{
		{"STARTTLS_VerifiedByCAFile", 587, testsmtp.ServerConfig{STARTTLS: true}, "starttls", func(sh *config.Smarthost, srv *testsmtp.FaultServer) {
			sh.TLSServerName = "localhost"
			sh.TLSCAFile = srv.Cert.CAFile(t)
		}},
		{"ImplicitTLS_PinnedByFingerprint", 465, testsmtp.ServerConfig{ImplicitTLS: true}, "implicit", func(sh *config.Smarthost, srv *testsmtp.FaultServer) {
			sh.TLSFingerprint = srv.Cert.Fingerprint
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := trapDNS(t)
			srv := testsmtp.NewFaultServer(t, tc.cfg)
			px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
			sh := proxied(tc.port, tc.mode, px.URL(""))
			tc.tls(&sh, srv)
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			if st := h.run(); st.Delivered != 1 {
				t.Fatalf("stats %+v, want delivered; log:\n%s", st, h.log.String())
			}
			if h.read(id) != nil {
				t.Error("the message is still queued")
			}
			if srv.DeliveredTo(rcptA) != 1 || srv.Conns() != 1 {
				t.Errorf("server got %d messages for %s over %d connections, want 1 over 1", srv.DeliveredTo(rcptA), rcptA, srv.Conns())
			}
			r := wantOneConnect(t, px, onionHost, tc.port)
			if r.Method != 0x00 {
				t.Errorf("method %#x without credentials, want 0x00", r.Method)
			}
			if q := dns.Queries(); len(q) != 0 {
				t.Errorf("relay sent DNS queries %q for a smarthost behind a proxy", q)
			}
			if _, _, v := h.lastFields(rcptA); v["tls"] != "TLSv1.3" || v["status"] != "sent" {
				t.Errorf("tls=%q status=%q, want TLSv1.3 and sent", v["tls"], v["status"])
			}
		})
	}
}

// TestProxy_WrongCertificateThroughProxy_Defers: through a proxy the
// certificate is still verified against the smarthost's name: the test
// certificate is not made out to onionHost.
func TestProxy_WrongCertificateThroughProxy_Defers(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true})
	px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
	sh := proxied(587, "starttls", px.URL(""))
	sh.TLSCAFile = srv.Cert.CAFile(t) // trusted, but for localhost, not onionHost
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "not "+onionHost)
	if len(srv.Messages()) != 0 || len(srv.Mails()) != 0 {
		t.Errorf("server got MAIL %q over a certificate for another name", srv.Mails())
	}
}

// TestProxy_Credentials_ReachTheProxy: the user and password of proxy are
// given to the proxy (RFC 1929), percent-escapes decoded: Tor uses them to
// keep each smarthost's traffic on its own circuits.
func TestProxy_Credentials_ReachTheProxy(t *testing.T) {
	for _, tc := range []struct {
		name               string
		cfg                testsmtp.SocksConfig
		userinfo           string
		wantUser, wantPass string
	}{
		{"AnyTaken_StreamIsolation", testsmtp.SocksConfig{}, "iso-mail:" + proxyPass, "iso-mail", proxyPass},
		{"PercentEscaped", testsmtp.SocksConfig{}, "iso%20mail:p%40ss%3Aword", "iso mail", "p@ss:word"},
		{"UserOnly", testsmtp.SocksConfig{}, "iso-mail", "iso-mail", ""},
		{"Required_Right", testsmtp.SocksConfig{User: "tor", Pass: proxyPass}, "tor:" + proxyPass, "tor", proxyPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
			tc.cfg.Target = srv.Addr()
			px := testsmtp.NewSocksServer(t, tc.cfg)
			h := newHarness(t, proxied(25, "none", px.URL(tc.userinfo)))
			id := h.enqueue(content, rcptA)
			h.run()
			if h.read(id) != nil {
				t.Fatalf("not delivered; log:\n%s", h.log.String())
			}
			r := wantOneConnect(t, px, onionHost, 25)
			if r.Method != 0x02 || r.User != tc.wantUser || r.Pass != tc.wantPass {
				t.Errorf("proxy saw method %#x user %q password %q, want 0x02 %q %q", r.Method, r.User, r.Pass, tc.wantUser, tc.wantPass)
			}
		})
	}
}

// noProxySecret fails the test when any of outputs holds the proxy's
// password.
func noProxySecret(t *testing.T, outputs map[string]string) {
	t.Helper()
	for where, s := range outputs {
		if strings.Contains(s, proxyPass) {
			t.Errorf("%s contains the proxy's password: %s", where, s)
		}
	}
}

// envOutputs is everything relay keeps about a message as text.
func envOutputs(h *harness, id string) map[string]string {
	out := map[string]string{"log": h.log.String(), "debug": h.debug.String()}
	if env := h.read(id); env != nil {
		out["last error"] = env.LastError()
		for _, r := range env.Recipients {
			out["reason of "+r.Address] = r.Reason()
		}
	}
	return out
}

// TestProxy_WrongCredentials_DefersNeverBounces: a proxy that refuses the
// login defers the mail (and, past the lifetime, holds it: never a bounce);
// the reason names the proxy with its password masked, the hint says in
// plain words that the login failed, and nothing reached the smarthost.
func TestProxy_WrongCredentials_DefersNeverBounces(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr(), User: "tor", Pass: "the-right-one"})
	h := newHarness(t, proxied(25, "none", px.URL("tor:"+proxyPass)))
	h.cfg.Queue.Lifetime = config.Duration(time.Hour)
	id := h.enqueue(content, rcptA)
	st := h.run()
	if st.Deferred != 1 || st.Failed != 0 {
		t.Errorf("stats %+v, want one deferred", st)
	}
	masked := px.URL("tor:xxx")
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, masked)
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "authentication failed")
	wantHint(t, h, rcptA, "deferred", sayProxyAuth)
	if reqs := px.Requests(); len(reqs) != 1 || reqs[0].User != "tor" || reqs[0].Pass != proxyPass || reqs[0].Cmd != 0 {
		t.Errorf("proxy saw %+v, want the login tried and no CONNECT after its refusal", reqs)
	}
	if srv.Conns() != 0 {
		t.Errorf("%d connections reached the smarthost", srv.Conns())
	}
	noProxySecret(t, envOutputs(h, id))

	// Past the lifetime: held for the admin to fix, never bounced.
	h.log.Reset()
	h.now = h.now.Add(2 * time.Hour)
	h.run()
	if env := h.mustRead(id); !env.Held || rcpt(env, rcptA).Status != spool.Pending {
		t.Errorf("past the lifetime: held %v, %s %s; want held and pending", env.Held, rcptA, rcpt(env, rcptA).Status)
	}
	wantHint(t, h, rcptA, "held", sayProxyAuth) // and no report queued
	if srv.Conns() != 0 {
		t.Errorf("%d connections reached the smarthost", srv.Conns())
	}
	noProxySecret(t, envOutputs(h, id))
}

// TestProxy_Down_DefersAndNeverConnectsDirectly: with the proxy down, the
// mail is deferred and the smarthost, reachable directly at the configured
// address, gets no connection; the log names the proxy and explains; a
// later pass remembers the smarthost down and still explains why; a retry
// when due goes through the proxy again.
func TestProxy_Down_DefersAndNeverConnectsDirectly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proxy func(t *testing.T) string
	}{
		{"TCPPortClosed", func(t *testing.T) string {
			return "socks5://tor:" + proxyPass + "@127.0.0.1:" + itoa(testsmtp.ClosedPort(t))
		}},
		{"UnixSocketMissing", func(t *testing.T) string {
			return "socks5://tor:" + proxyPass + "@unix:" + filepath.Join(t.TempDir(), "no-socks")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
			proxy := tc.proxy(t)
			sh := smarthost(srv.Port, "none") // a direct connection would deliver
			sh.Proxy = proxy
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			h.mustRead(id)
			wantHint(t, h, rcptA, "deferred", sayProxyDown)
			line, _, v := h.lastFields(rcptA)
			if want := config.MaskProxy(proxy); v["via"] != want {
				t.Errorf("via=%q, want %q (line %q)", v["via"], want, line)
			}
			if want := "127.0.0.1:" + itoa(srv.Port); v["relay"] != want {
				t.Errorf("relay=%q, want %q without an address reached (line %q)", v["relay"], want, line)
			}

			// Remembered down: deferred without a try, still explained.
			h.log.Reset()
			h.now = h.now.Add(10 * time.Second)
			id2 := h.enqueue(content, rcptB)
			h.run()
			if line, _, hint := h.lastLine(rcptB); !strings.Contains(line, "is down until") || !strings.Contains(hint, sayProxyDown) {
				t.Errorf("later pass: line %q, want the smarthost down with the proxy's hint", line)
			}
			// Due again: tried through the proxy again, never directly.
			h.log.Reset()
			h.now = h.now.Add(2 * time.Hour)
			h.run()
			if env := h.mustRead(id); env.Attempts != 2 {
				t.Errorf("attempts %d, want 2", env.Attempts)
			}
			if line, _, hint := h.lastLine(rcptA); strings.Contains(line, "is down until") || !strings.Contains(hint, sayProxyDown) {
				t.Errorf("due pass: line %q, want a new try through the proxy, explained", line)
			}
			h.mustRead(id2)
			if srv.Conns() != 0 {
				t.Errorf("%d connections reached the smarthost directly", srv.Conns())
			}
			noProxySecret(t, envOutputs(h, id))
		})
	}
}

// TestProxy_SOCKSErrorReply_DefersWithPlainExplanation: the proxy answers
// the CONNECT with an error: the mail is deferred, the reason keeps the
// SOCKS reply, the hint says what it means (the same for the reason as
// mailq shows it), and the smarthost is never tried otherwise.
func TestProxy_SOCKSErrorReply_DefersWithPlainExplanation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   byte
		reply  string // in the reason
		phrase string // in the hint
	}{
		{"HostUnreachable", testsmtp.SocksHostUnreachable, "host unreachable", sayProxyUnreachable},
		{"ConnectionRefused", testsmtp.SocksConnRefused, "connection refused", sayProxyRefused},
		{"TTLExpired", testsmtp.SocksTTLExpired, "TTL expired", sayProxyUnreachable},
		{"GeneralFailure", testsmtp.SocksGeneralFailure, "general SOCKS server failure", sayProxyUnreachable},
		{"NetworkUnreachable", testsmtp.SocksNetworkUnreachable, "network unreachable", sayProxyUnreachable},
		{"NotAllowedByRuleset", testsmtp.SocksNotAllowed, "not allowed by ruleset", sayProxyRuleset},
		{"TorExtendedOnionNotFound", 0xF0, "unknown code: 240", sayProxyUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
			px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr(), Reply: tc.code})
			h := newHarness(t, proxied(587, "starttls", px.URL("")))
			id := h.enqueue(content, rcptA)
			h.run()
			env := h.mustRead(id)
			wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, tc.reply)
			wantHint(t, h, rcptA, "deferred", tc.phrase)
			wantOneConnect(t, px, onionHost, 587)
			if srv.Conns() != 0 {
				t.Errorf("%d connections reached the smarthost", srv.Conns())
			}
			// mailq explains the stored reason alike.
			reason := rcpt(env, rcptA).Reason()
			if got := relay.Explain(rcpt(env, rcptA).Failure); !strings.Contains(got, tc.phrase) {
				t.Errorf("Explain(%q) = %q, want %q", reason, got, tc.phrase)
			}
			if got := relay.Explain(env.LastFailure); !strings.Contains(got, tc.phrase) {
				t.Errorf("Explain(%q) = %q, want %q", env.LastError(), got, tc.phrase)
			}
		})
	}
}

// TestProxy_Misbehaving_DefersWithPlainExplanation: a proxy that wants a
// login relay lacks, answers in another protocol, closes at once or never
// answers (bounded by ConnectTimeout) defers the mail with a hint about
// the proxy, not about the smarthost.
func TestProxy_Misbehaving_DefersWithPlainExplanation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    testsmtp.SocksConfig
		phrase string
	}{
		{"WantsLogin", testsmtp.SocksConfig{User: "tor", Pass: proxyPass}, sayProxyWantsLogin},
		{"NotSOCKS", testsmtp.SocksConfig{Misbehave: testsmtp.SocksNotSOCKS}, sayProxyNotSOCKS},
		{"ClosesAtOnce", testsmtp.SocksConfig{Misbehave: testsmtp.SocksClose}, sayProxyClosed},
		{"Silent_BoundedByConnectTimeout", testsmtp.SocksConfig{Misbehave: testsmtp.SocksSilent}, sayProxyTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shortTimeouts(t, 300*time.Millisecond, time.Second, time.Second, time.Second)
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
			tc.cfg.Target = srv.Addr()
			px := testsmtp.NewSocksServer(t, tc.cfg)
			h := newHarness(t, proxied(587, "none", px.URL("")))
			id := h.enqueue(content, rcptA)
			start := time.Now()
			h.run()
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("the pass took %v with ConnectTimeout 300ms", d)
			}
			h.mustRead(id)
			wantHint(t, h, rcptA, "deferred", tc.phrase)
			if px.Conns() != 1 || srv.Conns() != 0 {
				t.Errorf("%d connections to the proxy and %d to the smarthost, want 1 and 0", px.Conns(), srv.Conns())
			}
		})
	}
}

// TestProxy_UnixSocket_Delivers: proxy = "socks5://[user:pass@]unix:/path"
// (Tor's SocksPort unix:) delivers, with the name in the CONNECT.
func TestProxy_UnixSocket_Delivers(t *testing.T) {
	for _, tc := range []struct{ name, userinfo string }{{"NoCredentials", ""}, {"WithCredentials", "iso:" + proxyPass}} {
		userinfo := tc.userinfo
		t.Run(tc.name, func(t *testing.T) {
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true})
			px := testsmtp.NewUnixSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
			sh := proxied(587, "starttls", px.URL(userinfo))
			sh.TLSServerName, sh.TLSCAFile = "localhost", srv.Cert.CAFile(t)
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			if h.read(id) != nil || srv.DeliveredTo(rcptA) != 1 {
				t.Fatalf("not delivered; log:\n%s", h.log.String())
			}
			r := wantOneConnect(t, px, onionHost, 587)
			if userinfo != "" && (r.User != "iso" || r.Pass != proxyPass) {
				t.Errorf("proxy saw user %q password %q, want iso and the password", r.User, r.Pass)
			}
			_, _, v := h.lastFields(rcptA)
			if want := config.MaskProxy(px.URL(userinfo)); v["via"] != want || !strings.Contains(v["via"], "unix:/") {
				t.Errorf("via=%q, want %q", v["via"], want)
			}
			noProxySecret(t, envOutputs(h, id))
		})
	}
}

// TestProxy_InheritedEnvironment_NeverChangesTheRoute: ALL_PROXY and
// friends in relay's environment are ignored: a direct smarthost is
// reached directly, a proxied one through its own proxy. The proxy in the
// environment works, so that using it would deliver and be counted.
func TestProxy_InheritedEnvironment_NeverChangesTheRoute(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	envProxy := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
	for _, k := range []string{"ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(k, envProxy.URL(""))
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	t.Run("Direct", func(t *testing.T) {
		before := srv.Conns()
		h := newHarness(t, smarthost(srv.Port, "none"))
		id := h.enqueue(content, rcptA)
		h.run()
		if h.read(id) != nil {
			t.Fatalf("not delivered; log:\n%s", h.log.String())
		}
		if line, _, v := h.lastFields(rcptA); v["via"] != "" || !strings.HasPrefix(v["relay"], "127.0.0.1[127.0.0.1]:") {
			t.Errorf("line %q: want a direct connection, relay=host[ip]:port, no via=", line)
		}
		if srv.Conns() != before+1 {
			t.Errorf("%d connections to the smarthost, want 1", srv.Conns()-before)
		}
		r := relay.Probe(context.Background(), ptr(smarthost(srv.Port, "none")), relay.ProbeOptions{HeloName: "relay.test"})
		if !r.OK() || r.Route != "direct" {
			t.Errorf("probe: route %q, failure %v; want direct and OK", r.Route, r.Failure)
		}
	})
	t.Run("OwnProxy", func(t *testing.T) {
		px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
		h := newHarness(t, proxied(25, "none", px.URL("")))
		id := h.enqueue(content, rcptA)
		h.run()
		if h.read(id) != nil {
			t.Fatalf("not delivered; log:\n%s", h.log.String())
		}
		wantOneConnect(t, px, onionHost, 25)
	})
	if n := envProxy.Conns(); n != 0 {
		t.Errorf("the proxy of the environment got %d connections", n)
	}
}

func ptr[T any](v T) *T { return &v }

func itoa(i int) string { return strconv.Itoa(i) }

// TestProxy_TopLevelProxy_InheritedThroughConfigLoad: the top-level proxy
// is every smarthost's that sets none (config.Load fills it in), and mail
// goes through it; a smarthost's own proxy wins.
func TestProxy_TopLevelProxy_InheritedThroughConfigLoad(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true})
	px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
	top := px.URL("iso:" + proxyPass)
	path := filepath.Join(t.TempDir(), "relay.toml")
	text := `proxy = "` + top + `"

[[smarthost]]
name = "inherits"
host = "` + onionHost + `"
port = 587
tls = "starttls"
tls_server_name = "localhost"
tls_ca_file = "` + srv.Cert.CAFile(t) + `"

[[smarthost]]
name = "own"
host = "other.onion-test.invalid"
proxy = "socks5://unix:/run/tor/socks"
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Location{Path: path, Required: true, DefaultSpool: t.TempDir()})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(cfg.Smarthosts) != 2 || cfg.Smarthosts[0].Proxy != top || cfg.Smarthosts[1].Proxy != "socks5://unix:/run/tor/socks" {
		t.Fatalf("smarthosts %+v: want the top-level proxy inherited by the first, the second's own kept", cfg.Smarthosts)
	}
	h := newHarness(t, cfg.Smarthosts[0])
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Fatalf("not delivered; log:\n%s", h.log.String())
	}
	if r := wantOneConnect(t, px, onionHost, 587); r.User != "iso" || r.Pass != proxyPass {
		t.Errorf("proxy saw user %q password %q, want the top-level proxy's", r.User, r.Pass)
	}
	noProxySecret(t, envOutputs(h, id))
}

// TestProxy_AuthInClear_Refused: through a proxy, even one on loopback and
// to a smarthost named 127.0.0.1, relay does not send a password without
// TLS: the peer is the proxy, and the path beyond it is unknown. A direct
// connection to the same server may authenticate (TestTLS_None_Loopback…).
func TestProxy_AuthInClear_Refused(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
	sh := withAuth(smarthost(srv.Port, "none"))
	sh.Proxy = px.URL("")
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "without TLS")
	wantHint(t, h, rcptA, "deferred", "refuses to send the password unencrypted")
	if a := srv.Auths(); len(a) != 0 {
		t.Errorf("the server got AUTH %+v in clear through the proxy", a)
	}
	if srv.Conns() != 1 || len(srv.Mails()) != 0 {
		t.Errorf("server: %d connections, MAIL %q; want the connection made, no AUTH, no MAIL", srv.Conns(), srv.Mails())
	}
	noSecret(t, "the log", h.log.String())
	noSecret(t, "the -v dialogue", h.debug.String())
}

// TestProxy_LogLine: through a proxy the log says relay=host:port (no
// address: the peer is the proxy) and via= the proxy with its password
// masked, right after relay=; no password appears anywhere, sent or
// deferred.
func TestProxy_LogLine(t *testing.T) {
	t.Run("Sent", func(t *testing.T) {
		srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true, AuthMechs: []string{"PLAIN"}, Password: testPass})
		px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
		sh := withAuth(proxied(587, "starttls", px.URL("iso:"+proxyPass)))
		sh.TLSServerName, sh.TLSCAFile = "localhost", srv.Cert.CAFile(t)
		h := newHarness(t, sh)
		id := h.enqueue(content, rcptA)
		h.run()
		line, keys, v := h.lastFields(rcptA)
		want := map[string]string{"relay": onionHost + ":587", "via": px.URL("iso:xxx"), "tls": "TLSv1.3", "status": "sent"}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("%s=%q, want %q (line %q)", k, v[k], w, line)
			}
		}
		if i := keyIndex(keys, "via"); i < 1 || keys[i-1] != "relay" {
			t.Errorf("fields %q: want via right after relay", keys)
		}
		if a := srv.Auths(); len(a) != 1 {
			t.Errorf("server saw AUTH %+v, want one (under TLS through the proxy)", a)
		}
		noProxySecret(t, envOutputs(h, id))
		noSecret(t, "the log", h.log.String()) // the -v dialogue is redacted by its caller (RedactAuth)
	})
	t.Run("Deferred", func(t *testing.T) {
		srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
		px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr(), Reply: testsmtp.SocksHostUnreachable})
		h := newHarness(t, proxied(587, "starttls", px.URL("iso:"+proxyPass)))
		id := h.enqueue(content, rcptA)
		h.run()
		line, _, v := h.lastFields(rcptA)
		if v["relay"] != onionHost+":587" || v["via"] != px.URL("iso:xxx") || v["status"] != "deferred" {
			t.Errorf("line %q: want relay=%s:587 via=%s status=deferred", line, onionHost, px.URL("iso:xxx"))
		}
		if !strings.Contains(v["reply"], px.URL("iso:xxx")) {
			t.Errorf("reply=%q does not name the proxy", v["reply"])
		}
		noProxySecret(t, envOutputs(h, id))
	})
}

// TestDial_ThroughProxy: a Conn through a proxy has Via (password masked)
// and no Addr; a Dial error names the proxy masked.
func TestDial_ThroughProxy(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
	sh := proxied(25, "none", px.URL("iso:"+proxyPass))
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Via != px.URL("iso:xxx") || c.Addr != "" {
		t.Errorf("Via %q Addr %q, want %q and \"\"", c.Via, c.Addr, px.URL("iso:xxx"))
	}
	c.Close()

	sh.Proxy = "socks5://iso:" + proxyPass + "@127.0.0.1:" + itoa(testsmtp.ClosedPort(t))
	_, err = relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	var f *relay.Failure
	if !errors.As(err, &f) || f.Stage != relay.StageConnect || f.Permanent() {
		t.Fatalf("Dial error %v, want a connect failure that is not permanent", err)
	}
	if !strings.Contains(err.Error(), config.MaskProxy(sh.Proxy)) || strings.Contains(err.Error(), proxyPass) {
		t.Errorf("Dial error %q, want the proxy named with the password masked", err)
	}
}

// TestProbe_ThroughProxy: relay probe shows the route through the proxy
// (password masked) and the smarthost's name instead of an address, and
// works up to AUTH and a test message; with the proxy down it fails at
// connect and explains the proxy.
func TestProbe_ThroughProxy(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true, AuthMechs: []string{"PLAIN", "LOGIN"}, Password: testPass})
		px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
		sh := withAuth(proxied(587, "starttls", px.URL("iso:"+proxyPass)))
		sh.TLSServerName, sh.TLSCAFile = "localhost", srv.Cert.CAFile(t)
		r, out := probeReport(t, sh, relay.ProbeOptions{SendTo: "you@example.org"})
		if !r.OK() {
			t.Fatalf("probe failed at %s: %v", r.Step, r.Failure)
		}
		via := px.URL("iso:xxx")
		if r.Route != "via "+via {
			t.Errorf("Route %q, want %q", r.Route, "via "+via)
		}
		wantLines(t, out,
			"  route:        via "+via+"\n",
			"  connected:    "+onionHost+":587 via "+via+" in ",
			"  TLS:          TLSv1.3, TLS_",
			"  AUTH:         PLAIN as robot@example.test: ok\n",
			"  test message: sent to you@example.org as <",
			"  result:       OK\n")
		wantOneConnect(t, px, onionHost, 587)
		if srv.DeliveredTo("you@example.org") != 1 {
			t.Error("the test message did not arrive")
		}
		noSecret(t, "the report", out)
		noProxySecret(t, map[string]string{"the report": out})
	})
	t.Run("ProxyDown", func(t *testing.T) {
		srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
		sh := smarthost(srv.Port, "none")
		sh.Proxy = "socks5://iso:" + proxyPass + "@127.0.0.1:" + itoa(testsmtp.ClosedPort(t))
		r, out := probeReport(t, sh, relay.ProbeOptions{})
		if r.OK() || r.Step != "connect" {
			t.Fatalf("probe step %q failure %v, want a failure at connect", r.Step, r.Failure)
		}
		wantLines(t, out, "  route:        via "+config.MaskProxy(sh.Proxy)+"\n", "  result:       FAILED at connect\n")
		wantExplained(t, r, out)
		if e := relay.Explain(r.Failure); !strings.Contains(e, sayProxyDown) {
			t.Errorf("explanation %q, want the proxy's", e)
		}
		if srv.Conns() != 0 {
			t.Errorf("%d connections reached the smarthost directly", srv.Conns())
		}
		noProxySecret(t, map[string]string{"the report": out})
	})
}

// TestExplain_ProxyUnixSocketPermission: relay may not open the proxy's
// unix socket (Debian's Tor keeps it in a directory of its group). For
// root permissions do not hold: then the row is checked on the error
// dialSmarthost gives for it alone.
func TestExplain_ProxyUnixSocketPermission(t *testing.T) {
	const phrase = "may not open the SOCKS proxy's unix socket"
	text := "proxy socks5://unix:/run/tor/socks: socks connect tcp: dial unix /run/tor/socks: connect: permission denied"
	if got := relay.Explain(&relay.Failure{Stage: relay.StageConnect, Err: errors.New(text)}); !strings.Contains(got, phrase) {
		t.Errorf("Explain = %q, want %q", got, phrase)
	}
	if got := relay.Explain((&relay.Failure{Stage: relay.StageConnect, Err: errors.New(text)}).Stored(time.Now())); !strings.Contains(got, phrase) {
		t.Errorf("Explain(stored) = %q, want %q", got, phrase)
	}
	if os.Geteuid() == 0 {
		return
	}
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	px := testsmtp.NewUnixSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
	dir := filepath.Dir(px.Addr)
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	h := newHarness(t, proxied(25, "none", px.URL("")))
	h.enqueue(content, rcptA)
	h.run()
	wantHint(t, h, rcptA, "deferred", phrase)
}

// TestProxy_FixedProxy_ForgetsTheRememberedOutage: a smarthost remembered
// as down because of its proxy is tried at once when the proxy is changed:
// the memory is about host, port, TLS mode and proxy.
func TestProxy_FixedProxy_ForgetsTheRememberedOutage(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{})
	sh := smarthost(srv.Port, "none")
	sh.Proxy = "socks5://127.0.0.1:" + itoa(testsmtp.ClosedPort(t))
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	if env := h.mustRead(id); env.Attempts != 1 {
		t.Fatalf("attempts %d after the failed pass", env.Attempts)
	}
	// The admin fixes the proxy; the message is due again (a flush).
	px := testsmtp.NewSocksServer(t, testsmtp.SocksConfig{Target: srv.Addr()})
	h.cfg.Smarthosts[0].Proxy = px.URL("")
	h.change(id, func(e *spool.Envelope) { e.NextAttempt = h.now })
	if st := h.run(); st.Delivered != 1 {
		t.Fatalf("stats %+v after the proxy was fixed, want delivered (the old outage must not count); log:\n%s", st, h.log.String())
	}
	if px.Conns() != 1 {
		t.Errorf("%d connections through the new proxy, want 1", px.Conns())
	}
}
