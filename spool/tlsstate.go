package spool

import (
	"os"
	"path/filepath"
)

// The daemon listener's self-signed certificate ([daemon] listen_tls =
// "self-signed") is spool state: tls/listener.pem holds the certificate
// and its private key, PEM, mode 0600 in a directory of mode 0700, owned
// by the spool's owner (the daemon's user), whatever the spool's file
// mode: only the daemon may read the key. It is made once and kept, so
// that clients that pinned it keep trusting it across restarts.

func (s *Spool) listenerCertPath() string { return filepath.Join(s.Dir, "tls", "listener.pem") }

// ListenerCertificate returns the listener's certificate and key as kept,
// and the file's path; an error satisfying errors.Is(err, fs.ErrNotExist)
// when there is none yet.
func (s *Spool) ListenerCertificate() (pem []byte, path string, err error) {
	p := s.listenerCertPath()
	b, err := os.ReadFile(p)
	return b, p, err
}

// SetListenerCertificate keeps pem (certificate and key) as the listener's
// certificate, atomically (a reader sees the old file or the new one,
// complete) and durably, mode 0600.
func (s *Spool) SetListenerCertificate(pem []byte) error {
	p := s.listenerCertPath()
	dir := filepath.Dir(p)
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return err
	}
	f, err := os.CreateTemp(dir, ".listener.pem.*") // 0600
	if err != nil {
		return err
	}
	_, err = f.Write(pem)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return syncDir(dir)
}
