package listener

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// The certificate of STARTTLS ([daemon] listen_tls):
//
//   - "self-signed": made by the daemon at its first start with the key
//     and kept in the spool (tls/listener.pem, 0600, see package spool):
//     an ECDSA P-256 key, the host name, localhost, 127.0.0.1, ::1 and the
//     addresses of [daemon] listen (ListenNames) as names, valid for ten
//     years (as Debian's ssl-cert "snakeoil"). Its
//     SHA-256 fingerprint is logged at every start, for clients that pin
//     it. One that has expired, or will within 30 days, or cannot be read,
//     or does not name an address listen has gained, is replaced by a new
//     one (logged with its new fingerprint and why).
//   - a file: listen_tls names the certificate (PEM, the chain after it)
//     and listen_tls_key its key. Both are read at start (a bad pair stops
//     the daemon) and again at the next handshake after either changes on
//     disk, so that a renewed certificate (certbot) is served without a
//     restart; a renewed pair that does not load is logged and the old
//     one served.
//
// Either way the listener speaks TLS 1.2 and 1.3 only.

// SelfSigned is the listen_tls value that asks for the generated
// certificate.
const SelfSigned = "self-signed"

const (
	selfSignedLifetime = 10 * 365 * 24 * time.Hour
	selfSignedRenew    = 30 * 24 * time.Hour
)

// CertFiles are listen_tls's certificate and key files. The daemon
// loads them while it may still be root (a key in /etc/ssl/private is
// root's), before it continues as the spool's owner; a change read later
// must be readable by that user.
type CertFiles struct {
	cert, key string
	log       *maillog.Logger

	mu     sync.Mutex
	pair   *tls.Certificate
	stamps [2]fileStamp
	failed [2]fileStamp // the stamps of a pair that did not load, said once
}

// LoadCertFiles reads the certificate (PEM, its chain after it) and the
// key. The error is a *sysexits.Error (78).
func LoadCertFiles(cert, key string) (*CertFiles, error) {
	cf := &CertFiles{cert: cert, key: key}
	if err := cf.load(); err != nil {
		return nil, sysexits.New(sysexits.Config, "listen_tls: %v", err)
	}
	return cf, nil
}

// TLSConfig returns the STARTTLS configuration: files, when listen_tls
// names them, else the self-signed certificate of the spool (made when
// needed, for host and the addresses the listener listens on, see
// ListenNames). It logs the certificate's fingerprint. Errors are
// *sysexits.Error.
func TLSConfig(files *CertFiles, sp *spool.Spool, host string, listen []string, log *maillog.Logger) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if files == nil {
		pair, err := selfSigned(sp, host, ListenNames(listen), time.Now(), log)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
		return cfg, nil
	}
	files.log = log
	logCert(log, "file", files.cert, files.pair.Leaf, "loaded")
	cfg.GetCertificate = files.get
	return cfg, nil
}

// selfSigned returns the spool's certificate, made anew when there is
// none or it is (nearly) expired or unreadable.
func selfSigned(sp *spool.Spool, host string, extra []string, now time.Time, log *maillog.Logger) (tls.Certificate, error) {
	data, path, err := sp.ListenerCertificate()
	status := "generated"
	if err == nil {
		pair, perr := tls.X509KeyPair(data, data)
		missing := ""
		for _, n := range extra {
			if perr == nil && pair.Leaf.VerifyHostname(n) != nil {
				missing = n
				break
			}
		}
		switch {
		case perr != nil:
			status = "replaced (the kept one cannot be read: " + perr.Error() + ")"
		case now.Add(selfSignedRenew).After(pair.Leaf.NotAfter):
			status = "replaced (the kept one expires " + pair.Leaf.NotAfter.Format(time.DateOnly) + ")"
		case missing != "":
			status = "replaced (the kept one does not name " + missing + ", an address of listen)"
		default:
			logCert(log, SelfSigned, path, pair.Leaf, "loaded")
			return pair, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, sysexits.New(sysexits.CantCreat, "listen_tls: %s: %v", path, err)
	}
	data, err = makeSelfSigned(host, extra, now)
	if err != nil {
		return tls.Certificate{}, sysexits.Wrap(sysexits.Software, err)
	}
	if err := sp.SetListenerCertificate(data); err != nil {
		return tls.Certificate{}, sysexits.New(sysexits.CantCreat, "listen_tls: keeping the self-signed certificate in %s: %v", path, err)
	}
	pair, err := tls.X509KeyPair(data, data)
	if err != nil {
		return tls.Certificate{}, sysexits.Wrap(sysexits.Software, err)
	}
	logCert(log, SelfSigned, path, pair.Leaf, status)
	return pair, nil
}

// ListenNames are the hosts of the listen addresses a self-signed
// certificate names besides the host name and loopback, so that a client
// that connects to one of them can verify it: every address but the
// wildcards (0.0.0.0, ::, which stand for addresses relay cannot know).
func ListenNames(listen []string) []string {
	var out []string
	for _, a := range listen {
		h, _, err := net.SplitHostPort(a)
		if err != nil || h == "" || h == "localhost" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil && (ip.IsUnspecified() || ip.IsLoopback()) {
			continue
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// makeSelfSigned makes the key and the certificate, PEM, one after the
// other.
func makeSelfSigned(host string, extra []string, now time.Time) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	ski := sha256.Sum256(pub)
	names := []string{"localhost"}
	if host != "" && host != "localhost" {
		names = []string{host, "localhost"}
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, n := range extra {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"relay (self-signed)"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(selfSignedLifetime),
		// Its own issuer: a trust anchor for clients given the file
		// (Python's cafile, curl's --cacert), with the key identifiers
		// strict verifiers (Python 3.13's VERIFY_X509_STRICT) want.
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski[:20],
		AuthorityKeyId:        ski[:20],
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), nil
}

// Fingerprint is a certificate's SHA-256, as tls_fingerprint takes it.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func logCert(log *maillog.Logger, setting, file string, c *x509.Certificate, status string) {
	log.Info("listen_tls", setting, "file", file, "subject", c.Subject.CommonName, "not_after", c.NotAfter.UTC().Format(time.RFC3339),
		"fingerprint", Fingerprint(c), "status", status)
}

func (cf *CertFiles) stat() ([2]fileStamp, error) {
	var st [2]fileStamp
	for i, p := range []string{cf.cert, cf.key} {
		fi, err := os.Stat(p)
		if err != nil {
			return st, err
		}
		st[i] = stampOf(fi)
	}
	return st, nil
}

// load reads the pair (cf.mu held, or before use).
func (cf *CertFiles) load() error {
	st, err := cf.stat()
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(cf.cert, cf.key)
	if err != nil {
		cf.failed = st
		return err
	}
	cf.pair, cf.stamps = &pair, st
	return nil
}

func (cf *CertFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if st, err := cf.stat(); err == nil && st != cf.stamps && st != cf.failed {
		if err := cf.load(); err != nil {
			cf.log.Error("listen_tls", cf.cert, "status", "error", "reason", "the changed certificate does not load, the old one is served: "+oneLine(err.Error()))
		} else {
			logCert(cf.log, "file", cf.cert, cf.pair.Leaf, "reloaded")
		}
	}
	return cf.pair, nil
}
