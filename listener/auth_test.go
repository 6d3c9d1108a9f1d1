package listener

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
)

func fixtureSubmitter(sp *spool.Spool) *sendmailcompat.Submitter {
	return &sendmailcompat.Submitter{Spool: sp, Domain: "server1.example.com", Hostname: "server1",
		UID: 999, User: "relay", MaxMessageSize: 1 << 20, Now: time.Now}
}

// authOptions: STARTTLS with the test certificate and one user, app /
// s3cret, from a users file.
func authOptions(t *testing.T, authNets ...string) Options {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users")
	writeFile(t, p, "app:"+bcryptHash(t, "s3cret")+"\n")
	users, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		TLS:              &tls.Config{Certificates: []tls.Certificate{testsmtp.LocalhostCert(t).Pair}},
		Users:            users,
		AuthFailureDelay: time.Millisecond,
	}
	for _, n := range authNets {
		o.AuthNetworks = append(o.AuthNetworks, netip.MustParsePrefix(n))
	}
	return o
}

// session is a client on one end of a pipe the fixture admitted as a
// peer at remote.
type session struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (f *fixture) connectAs(t *testing.T, remote string) *session {
	t.Helper()
	server, client := net.Pipe()
	go f.admit(fakeConn{server, &net.TCPAddr{IP: net.ParseIP(remote), Port: 40000}})
	client.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { client.Close() })
	return &session{t: t, conn: client, r: bufio.NewReader(client)}
}

func (s *session) reply() (int, string) {
	s.t.Helper()
	var text []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return 0, strings.Join(text, "\n") + " [" + err.Error() + "]"
		}
		text = append(text, strings.TrimRight(line, "\r\n"))
		if len(line) > 3 && line[3] == ' ' {
			code, _ := strconv.Atoi(line[:3])
			return code, strings.Join(text, "\n")
		}
	}
}

func (s *session) cmd(line string, want int) string {
	s.t.Helper()
	if _, err := io.WriteString(s.conn, line+"\r\n"); err != nil {
		s.t.Fatalf("%q: %v", line, err)
	}
	code, text := s.reply()
	if code != want {
		s.t.Fatalf("%q: %d %q, want %d", line, code, text, want)
	}
	return text
}

func (s *session) startTLS() {
	s.t.Helper()
	s.cmd("STARTTLS", 220)
	tc := tls.Client(s.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		s.t.Fatal(err)
	}
	s.conn, s.r = tc, bufio.NewReader(tc)
}

func authPlain(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
}

// A client outside loopback, listen_networks and listen_auth_networks
// is refused at connect, before it can say anything: credentials do not
// help it. Its network in listen_auth_networks lets it connect, and only
// STARTTLS then AUTH let it submit.
func TestAdmit_AuthNetworks(t *testing.T) {
	// Not listed: 554 at connect, with users configured or not.
	f := newFixture(t, authOptions(t))
	s := f.connectAs(t, "198.51.100.9")
	if code, text := s.reply(); code != 554 || !strings.Contains(text, "5.7.1") {
		t.Fatalf("unlisted client: %d %q, want 554 5.7.1", code, text)
	}
	if _, err := io.WriteString(s.conn, authPlain("app", "s3cret")+"\r\n"); err == nil {
		if code, _ := s.reply(); code != 0 {
			t.Errorf("the refused client got a reply to AUTH: %d", code)
		}
	}
	if !strings.Contains(f.log.String(), "client=[198.51.100.9]:40000 status=refused") {
		t.Errorf("refusal not logged:\n%s", f.log)
	}

	// Listed for AUTH: greeted; no mail without STARTTLS and AUTH.
	f = newFixture(t, authOptions(t, "198.51.100.0/24"))
	s = f.connectAs(t, "198.51.100.9")
	if code, _ := s.reply(); code != 220 {
		t.Fatalf("auth-network client greeted with %d", code)
	}
	s.cmd("EHLO app.example", 250)
	s.cmd("MAIL FROM:<app@example.org>", 530)
	s.cmd(authPlain("app", "s3cret"), 538)
	s.startTLS()
	s.cmd("EHLO app.example", 250)
	s.cmd("MAIL FROM:<app@example.org>", 530)
	s.cmd(authPlain("app", "s3cret"), 235)
	s.cmd("MAIL FROM:<app@example.org>", 250)
	s.cmd("RCPT TO:<ops@example.org>", 250)
	s.cmd("DATA", 354)
	s.cmd("Subject: from outside\r\n\r\nbody\r\n.", 250)
	s.cmd("QUIT", 221)
	ids := f.ids()
	if len(ids) != 1 || !strings.Contains(f.content(ids[0]), "from app.example ([198.51.100.9])\r\n\tby server1 (relay) with ESMTPSA id ") {
		t.Fatalf("queue %v", ids)
	}
	if !strings.Contains(f.log.String(), "client=[198.51.100.9]:40000 sasl_username=app ") {
		t.Errorf("enqueue line without the user:\n%s", f.log)
	}

	// Still refused: a client of neither network.
	s = f.connectAs(t, "203.0.113.5")
	if code, _ := s.reply(); code != 554 {
		t.Errorf("client outside every network: %d, want 554", code)
	}
	// Loopback submits without AUTH, as before.
	s = f.connectAs(t, "127.0.0.1")
	s.reply()
	s.cmd("HELO local", 250)
	s.cmd("MAIL FROM:<cron@example.org>", 250)
}

// An auth-network address that keeps failing AUTH is refused at connect
// (421) until its window ends; another address is not; loopback is never
// blocked.
func TestAdmit_FailedAuthBlocksTheAddress(t *testing.T) {
	o := authOptions(t, "198.51.100.0/24")
	o.ClientAuthFailures, o.MaxAuthFailures = 4, 2
	o.AuthFailureWindow = time.Hour
	f := newFixture(t, o)
	guess := func(remote string, n int) {
		s := f.connectAs(t, remote)
		if code, text := s.reply(); code != 220 {
			t.Fatalf("%s: greeting %d %q", remote, code, text)
		}
		s.cmd("EHLO x", 250)
		s.startTLS()
		s.cmd("EHLO x", 250)
		for i := range n {
			s.cmd(authPlain("app", "guess"+strconv.Itoa(i)), 535)
		}
		if n == o.MaxAuthFailures {
			if code, _ := s.reply(); code != 421 {
				t.Fatalf("after %d failures: %d, want 421", n, code)
			}
		}
	}
	guess("198.51.100.9", 2)
	guess("198.51.100.9", 2)
	s := f.connectAs(t, "198.51.100.9")
	if code, text := s.reply(); code != 421 || !strings.Contains(text, "too many failed authentications from 198.51.100.9") {
		t.Fatalf("after 4 failures the address reads %d %q, want 421", code, text)
	}
	if !strings.Contains(f.log.String(), "client=198.51.100.9 status=blocked") {
		t.Errorf("block not logged:\n%s", f.log)
	}
	guess("198.51.100.10", 1) // another address is served

	// Loopback: the same failures never block it.
	guess("127.0.0.1", 2)
	guess("127.0.0.1", 2)
	guess("127.0.0.1", 2)

	// The window passed: served again.
	f.srv.mu.Lock()
	fa := f.srv.authFail[netip.MustParseAddr("198.51.100.9")]
	fa.first = fa.first.Add(-2 * time.Hour)
	f.srv.authFail[netip.MustParseAddr("198.51.100.9")] = fa
	f.srv.mu.Unlock()
	guess("198.51.100.9", 1)
}

// New refuses users without TLS and auth networks without users.
func TestNew_AuthNeedsTLSAndUsers(t *testing.T) {
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	base := authOptions(t, "198.51.100.0/24")
	base.Submitter = fixtureSubmitter(sp)
	o := base
	o.TLS = nil
	if _, err := New(o); err == nil {
		t.Error("users without TLS accepted")
	}
	o = base
	o.Users = nil
	if _, err := New(o); err == nil {
		t.Error("auth networks without users accepted")
	}
}

// The self-signed certificate: made once (ECDSA P-256, 0600 in the
// spool), the same one at the next start, its fingerprint logged; one
// about to expire is replaced.
func TestTLSConfig_SelfSigned(t *testing.T) {
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	var log testsmtp.LockedBuffer
	lg := maillog.New(&log)
	if _, _, err := sp.ListenerCertificate(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a new spool has a certificate: %v", err)
	}
	cfg, err := TLSConfig(nil, sp, "mail.example.com", []string{"127.0.0.1:25", "0.0.0.0:587", "[2001:db8::1]:25", "mx.example.com:25"}, lg)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cfg.Certificates[0].Leaf
	if k, ok := cfg.Certificates[0].PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", cfg.Certificates[0].PrivateKey)
	}
	if err := leaf.VerifyHostname("mail.example.com"); err != nil {
		t.Error(err)
	}
	for _, n := range []string{"127.0.0.1", "::1", "localhost", "2001:db8::1", "mx.example.com"} {
		if err := leaf.VerifyHostname(n); err != nil {
			t.Error(err)
		}
	}
	if leaf.VerifyHostname("0.0.0.0") == nil {
		t.Error("the certificate names the wildcard address")
	}
	data, path, err := sp.ListenerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	di, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes %v %v, want 0600 in 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
	fp := Fingerprint(leaf)
	if !strings.Contains(log.String(), "fingerprint="+fp+" status=generated") {
		t.Errorf("log does not give the new fingerprint %s:\n%s", fp, log.String())
	}
	// A clients' pin: the certificate verifies as its own trust anchor.
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("the certificate does not verify against itself: %v", err)
	}

	cfg2, err := TLSConfig(nil, sp, "mail.example.com", []string{"127.0.0.1:25", "0.0.0.0:587", "[2001:db8::1]:25", "mx.example.com:25"}, lg)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(cfg2.Certificates[0].Leaf) != fp || !strings.Contains(log.String(), "fingerprint="+fp+" status=loaded") {
		t.Errorf("second start did not keep the certificate:\n%s", log.String())
	}
	data2, _, _ := sp.ListenerCertificate()
	if string(data2) != string(data) {
		t.Error("the kept file changed")
	}

	// listen gained an address: replaced, and says why.
	if _, err := TLSConfig(nil, sp, "mail.example.com", []string{"192.0.2.25:25"}, lg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), `status="replaced (the kept one does not name 192.0.2.25, an address of listen)"`) {
		t.Errorf("a certificate without a new listen address was kept:\n%s", log.String())
	}

	// Nearly expired: replaced.
	old, err := makeSelfSigned("mail.example.com", []string{"2001:db8::1", "mx.example.com"}, time.Now().Add(-selfSignedLifetime+10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.SetListenerCertificate(old); err != nil {
		t.Fatal(err)
	}
	cfg3, err := TLSConfig(nil, sp, "mail.example.com", []string{"127.0.0.1:25", "0.0.0.0:587", "[2001:db8::1]:25", "mx.example.com:25"}, lg)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(cfg3.Certificates[0].Leaf) == fp || !strings.Contains(log.String(), "status=\"replaced (the kept one expires") {
		t.Errorf("a certificate expiring in 10 days was not replaced:\n%s", log.String())
	}
}

// Certificate files: loaded, served, and read again when renewed on disk.
func TestTLSConfig_FilesReloaded(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	put := func(c *testsmtp.Cert) {
		writeFile(t, certFile, string(c.PEM))
		writeFile(t, keyFile, string(c.KeyPEM))
	}
	c1, err := testsmtp.MakeCert()
	if err != nil {
		t.Fatal(err)
	}
	put(c1)
	if _, err := LoadCertFiles(certFile, filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing key loaded")
	}
	files, err := LoadCertFiles(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var log testsmtp.LockedBuffer
	cfg, err := TLSConfig(files, nil, "", nil, maillog.New(&log))
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		got, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return Fingerprint(got.Leaf)
	}
	if served() != "sha256:"+c1.Fingerprint {
		t.Error("not the file's certificate")
	}
	c2, _ := testsmtp.MakeCert()
	put(c2)
	os.Chtimes(certFile, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if served() != "sha256:"+c2.Fingerprint || !strings.Contains(log.String(), "status=reloaded") {
		t.Errorf("the renewed certificate is not served:\n%s", log.String())
	}
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("junk")})))
	os.Chtimes(keyFile, time.Now().Add(2*time.Minute), time.Now().Add(2*time.Minute))
	if served() != "sha256:"+c2.Fingerprint {
		t.Error("a broken renewal replaced the served certificate")
	}
	if n := len(regexp.MustCompile(`does not load`).FindAllString(log.String(), -1)); n != 1 {
		t.Errorf("%d log lines about the broken renewal, want 1:\n%s", n, log.String())
	}
	served()
	if n := len(regexp.MustCompile(`does not load`).FindAllString(log.String(), -1)); n != 1 {
		t.Errorf("the broken renewal is logged at every handshake:\n%s", log.String())
	}
}

// A stop ends a session that went over to TLS without writing the 421 in
// clear into the TLS stream: the client reads a clean end.
func TestServe_StopEndsTLSSession(t *testing.T) {
	f := newFixture(t, authOptions(t))
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	s := &session{t: t, conn: nc, r: bufio.NewReader(nc)}
	s.reply()
	s.cmd("EHLO a", 250)
	s.startTLS()
	s.cmd("EHLO a", 250)
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(s.r)
	if len(b) != 0 {
		t.Errorf("after the stop the TLS client read %q (%v), want nothing", b, err)
	}
	var ae tls.AlertError
	if err != nil && !errors.As(err, &ae) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("after the stop: %v, want a clean end of the connection", err)
	}
}
