package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/relaymail/relay/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// Grant is the token file's content (see the package documentation).
// Tokens are never printed: errors name the file, never its fields.
type Grant struct {
	Account   string `json:"account"`
	Smarthost string `json:"smarthost"`
	Provider  string `json:"provider"`
	Flow      string `json:"flow"`
	ClientID  string `json:"client_id,omitempty"`
	TokenURL  string `json:"token_url"`

	LoginTime        time.Time `json:"login_time,omitzero"`
	RefreshToken     string    `json:"refresh_token,omitempty"`
	RefreshTokenTime time.Time `json:"refresh_token_time,omitzero"` // when this refresh token was issued

	AccessToken string    `json:"access_token,omitempty"`
	TokenType   string    `json:"token_type,omitempty"`
	Expiry      time.Time `json:"expiry,omitzero"`
	LastRefresh time.Time `json:"last_refresh,omitzero"`

	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	// LoginNeeded: the last error was a refused grant; only relay oauth
	// login helps.
	LoginNeeded bool `json:"login_needed,omitempty"`
}

// readGrant reads the token file; a missing file is a nil grant and no
// error.
func readGrant(path string) (*Grant, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	g := &Grant{}
	if err := json.Unmarshal(b, g); err != nil {
		return nil, fmt.Errorf("%s is damaged (not the JSON relay writes)", path)
	}
	return g, nil
}

// writeGrant replaces the token file atomically and durably: a new file
// (0600) in the same directory, fsync, rename, fsync of the directory.
func writeGrant(path string, g *Grant) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, atomicfile.Options{Mode: 0o600}, append(b, '\n'))
}

// removeGrant deletes the token file durably; a missing one is no error.
func removeGrant(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil
	}
	defer d.Close()
	return d.Sync()
}

// inProcess holds a mutex per token file: the workers of one process
// take turns before they take the file lock.
var inProcess sync.Map // path → *sync.Mutex

// lockGrant takes the account's lock: the mutex of this process, then
// flock on path+".lock" (other processes), waiting until ctx is done.
// The returned function releases both.
func lockGrant(ctx context.Context, path string) (func(), error) {
	m, _ := inProcess.LoadOrStore(path, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	if !tryLock(ctx, mu) {
		return nil, ctx.Err()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		mu.Unlock()
		return nil, err
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			mu.Unlock()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			mu.Unlock()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return func() {
		f.Close() // drops the flock
		mu.Unlock()
	}, nil
}

// tryLock locks mu unless ctx is done first.
func tryLock(ctx context.Context, mu *sync.Mutex) bool {
	for !mu.TryLock() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// Load reads the account's token file: nil without one.
func (a *Account) Load() (*Grant, error) { return readGrant(a.TokenFile()) }

// Save replaces the account's token file, atomically and durably.
func (a *Account) Save(g *Grant) error { return writeGrant(a.TokenFile(), g) }

// Lock takes the account's lock (see lockGrant); the function returned
// releases it.
func (a *Account) Lock(ctx context.Context) (func(), error) { return lockGrant(ctx, a.TokenFile()) }
