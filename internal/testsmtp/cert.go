package testsmtp

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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Cert is a self-signed certificate for 127.0.0.1 and localhost.
type Cert struct {
	Pair        tls.Certificate // for a server's tls.Config
	PEM         []byte          // the certificate, for tls_ca_file
	KeyPEM      []byte          // its private key, for tls_client_key
	Fingerprint string          // hex SHA-256 of the DER, for tls_fingerprint
}

var (
	certOnce sync.Once
	certVal  *Cert
	certErr  error
)

// LocalhostCert returns the certificate every test server of the test
// binary shares; it is made once, since a key takes a while.
func LocalhostCert(t testing.TB) *Cert {
	t.Helper()
	certOnce.Do(func() { certVal, certErr = MakeCert() })
	if certErr != nil {
		t.Fatal(certErr)
	}
	return certVal
}

// MakeCert makes a new self-signed certificate and key for 127.0.0.1 and
// localhost, valid from an hour ago for a day; use it where a test needs
// a certificate of its own (a key that does not match another).
func MakeCert() (*Cert, error) {
	return MakeCertValid(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// MakeCertValid is MakeCert for a certificate valid from notBefore to
// notAfter only: one that expired yesterday, say.
func MakeCertValid(notBefore, notAfter time.Time) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay test smarthost"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Cert{Pair: pair, PEM: certPEM, KeyPEM: keyPEM, Fingerprint: hex.EncodeToString(sum[:])}, nil
}

// CAFile writes the certificate to a file for tls_ca_file.
func (c *Cert) CAFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, c.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
