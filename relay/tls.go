package relay

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/relaymail/relay/config"
)

var tlsVersions = map[string]uint16{
	"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13,
}

// TLSConfig builds the TLS client configuration of a smarthost: chain
// verification against the system roots or tls_ca_file for
// tls_server_name (default: host), or a pinned leaf fingerprint instead.
func TLSConfig(sh *config.Smarthost) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: sh.Host, MinVersion: tls.VersionTLS12}
	if sh.TLSServerName != "" {
		cfg.ServerName = sh.TLSServerName
	}
	if v, ok := tlsVersions[sh.TLSMinVersion]; ok {
		cfg.MinVersion = v
	}
	if sh.TLSCAFile != "" {
		pem, err := os.ReadFile(sh.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file %s: no PEM certificate in it", sh.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if sh.TLSClientCert != "" {
		cert, err := tls.LoadX509KeyPair(sh.TLSClientCert, sh.TLSClientKey)
		if err != nil {
			return nil, fmt.Errorf("tls_client_cert: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if sh.TLSFingerprint != "" {
		want, err := hex.DecodeString(sh.TLSFingerprint)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("tls_fingerprint: not a SHA-256 in hex")
		}
		// The pin replaces chain and name verification, as msmtp's
		// tls_fingerprint does: it names exactly one certificate.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(got[:], want) {
				return fmt.Errorf("certificate fingerprint sha256:%x does not match tls_fingerprint", got)
			}
			return nil
		}
	}
	return cfg, nil
}

// tlsVersionName gives "TLSv1.3" as Postfix logs it.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}
