package listener

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sysexits"
	"golang.org/x/crypto/bcrypt"
)

// The listen_users file: who may AUTH to the listener. One user a line,
//
//	NAME:HASH
//
// HASH being bcrypt ($2a$, $2b$, $2y$: htpasswd -B, `relay listener
// passwd`, Dovecot's BLF-CRYPT) or SHA-512-crypt ($6$: openssl passwd -6,
// mkpasswd -m sha-512, /etc/shadow, Dovecot's SHA512-CRYPT); a Dovecot
// scheme prefix ({BLF-CRYPT}, {SHA512-CRYPT}) is accepted. Empty lines
// and lines starting with # are ignored; anything else that is not a user
// is an error naming the line, as is a name given twice. A name is 1 to
// 255 bytes without a colon, white space or control characters.
//
// The daemon reads the file at start (a broken one stops it, exit 78) and
// again whenever it changes (its size, time or inode): `relay listener
// passwd` takes effect at the next AUTH, without a reload. A changed file
// that is broken is logged and the users read before stay in force.

// Users is a listen_users file, read again when it changes.
type Users struct {
	// Log receives the problems of re-reads.
	Log  *maillog.Logger
	path string

	mu      sync.Mutex
	stamp   fileStamp
	hashes  map[string]string
	lastErr string // the problem of the last re-read, logged once
}

type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = s.Ino
	}
	return st
}

// LoadUsers reads the file at path. The error is a *sysexits.Error (78
// for a broken file, 66 for one that cannot be read).
func LoadUsers(path string) (*Users, error) {
	u := &Users{path: path}
	hashes, stamp, err := readUsers(path)
	if err != nil {
		return nil, err
	}
	u.hashes, u.stamp = hashes, stamp
	return u, nil
}

// Len is the number of users.
func (u *Users) Len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.hashes)
}

// Verify reports whether password is name's. An unknown name costs as
// much time as a known one (a bcrypt comparison with a hash of nothing),
// so that timing does not tell which names exist.
func (u *Users) Verify(name, password string) bool {
	u.refresh()
	u.mu.Lock()
	hash, ok := u.hashes[name]
	u.mu.Unlock()
	if !ok {
		bcrypt.CompareHashAndPassword([]byte(noUserHash), []byte(password))
		return false
	}
	return verifyHash(hash, password)
}

// noUserHash is a bcrypt hash (cost 10, the cost relay writes) that no
// password matches in practice: compared for unknown users.
const noUserHash = "$2a$10$Fc4p9sYIOA.dCDHvOBHsvORYhyVEqKn788dEL.Op5zCv.vMr2JY4m"

func (u *Users) refresh() {
	fi, err := os.Stat(u.path)
	u.mu.Lock()
	same := err == nil && stampOf(fi) == u.stamp
	u.mu.Unlock()
	if same {
		return
	}
	hashes, stamp, err := readUsers(u.path)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		// Said once per problem, not at every AUTH.
		if msg := oneLine(err.Error()); msg != u.lastErr {
			u.lastErr = msg
			u.Log.Error("status", "error", "reason", msg+"; the users read before stay in force")
		}
		return
	}
	u.hashes, u.stamp, u.lastErr = hashes, stamp, ""
}

func readUsers(path string) (map[string]string, fileStamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileStamp{}, sysexits.New(sysexits.NoInput, "listen_users: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, sysexits.New(sysexits.NoInput, "listen_users: %v", err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, stampOf(fi), sysexits.New(sysexits.NoInput, "listen_users: %s: %v", path, err)
	}
	hashes, err := ParseUsers(buf.Bytes(), path)
	return hashes, stampOf(fi), err
}

// ParseUsers parses the content of a listen_users file named file; the
// error (a *sysexits.Error, 78) names the first bad line.
func ParseUsers(data []byte, file string) (map[string]string, error) {
	hashes := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok {
			return nil, sysexits.New(sysexits.Config, "%s:%d: not NAME:HASH", file, n)
		}
		if err := CheckName(name); err != nil {
			return nil, sysexits.New(sysexits.Config, "%s:%d: %v", file, n, err)
		}
		hash = stripScheme(hash)
		if err := checkHash(hash); err != nil {
			return nil, sysexits.New(sysexits.Config, "%s:%d: user %q: %v", file, n, name, err)
		}
		if _, dup := hashes[name]; dup {
			return nil, sysexits.New(sysexits.Config, "%s:%d: user %q is already listed", file, n, name)
		}
		hashes[name] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, sysexits.New(sysexits.Config, "%s: %v", file, err)
	}
	return hashes, nil
}

// CheckName checks a user name of the file.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > 255:
		return errors.New("user name longer than 255 bytes")
	case strings.ContainsFunc(name, func(r rune) bool { return r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("user name %q has a colon, a space or a control character", name)
	}
	return nil
}

func stripScheme(hash string) string {
	for _, p := range []string{"{BLF-CRYPT}", "{SHA512-CRYPT}"} {
		if h, ok := strings.CutPrefix(hash, p); ok {
			return h
		}
	}
	return hash
}

func checkHash(hash string) error {
	switch {
	case isBcrypt(hash):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("bad bcrypt hash: %v", err)
		}
	case strings.HasPrefix(hash, "$6$"):
		if _, err := sha512Crypt("", hash); err != nil {
			return err
		}
		if i := strings.LastIndexByte(hash, '$'); len(hash)-i-1 != 86 {
			return errors.New("bad SHA-512-crypt hash: the hash part is not 86 characters")
		}
	default:
		return errors.New(`the hash is neither bcrypt ("$2y$…", relay listener passwd) nor SHA-512-crypt ("$6$…", openssl passwd -6)`)
	}
	return nil
}

func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

func verifyHash(hash, password string) bool {
	if isBcrypt(hash) {
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	return verifySHA512Crypt(hash, password)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
