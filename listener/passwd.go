package listener

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/relaymail/relay/internal/atomicfile"
	"github.com/relaymail/relay/sysexits"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
)

// `relay listener passwd NAME` and `--delete NAME`: the listen_users file
// is changed in place of the user's line (the other lines, comments
// included, are kept as they are), written to a temporary file in the
// same directory, fsynced and renamed over the old one, so that the
// daemon, which reads it again when it changes, never sees half a file.
// Two runs at once are serialised by a lock on the directory.
//
// The new file keeps the old one's mode, owner and group. A file made
// anew is 0640, its group the daemon user's (`[daemon] user`), when run
// by root and that user exists, so that the daemon can read it and
// nobody else; else 0600, the caller's.

// PasswordCost is the bcrypt cost of the hashes relay writes: Go's
// default (10), about 50 ms per AUTH on a current machine.
const PasswordCost = bcrypt.DefaultCost

// HashPassword hashes a password with bcrypt. bcrypt takes at most 72
// bytes: a longer password is refused rather than silently cut.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", sysexits.New(sysexits.DataErr, "empty password")
	}
	if len(password) > 72 {
		return "", sysexits.New(sysexits.DataErr, "the password is %d bytes long; bcrypt takes at most 72", len(password))
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return "", sysexits.Wrap(sysexits.Software, err)
	}
	return string(h), nil
}

// NewFileOwner is who owns a listen_users file made anew: uid, gid and
// mode. See DefaultNewFileOwner.
type NewFileOwner struct {
	UID, GID int
	Mode     fs.FileMode
}

// DefaultNewFileOwner is the owner a new file gets when made by this
// process for a daemon running as daemonGID's user (-1: unknown).
func DefaultNewFileOwner(daemonGID int) NewFileOwner {
	if os.Geteuid() == 0 && daemonGID >= 0 {
		return NewFileOwner{UID: 0, GID: daemonGID, Mode: 0o640}
	}
	return NewFileOwner{UID: os.Geteuid(), GID: os.Getegid(), Mode: 0o600}
}

// SetUser sets name's hash in the file at path (hash "" removes the
// user), making the file when it does not exist. It reports whether the
// user was there before. Errors are *sysexits.Error: 67 for removing a
// user that is not there, 78 for a file that cannot be parsed (it is left
// alone), 73 when it cannot be written.
func SetUser(path, name, hash string, owner NewFileOwner) (existed bool, err error) {
	if err := CheckName(name); err != nil {
		return false, sysexits.New(sysexits.Usage, "%v", err)
	}
	dir := filepath.Dir(path)
	d, err := os.Open(dir)
	if err != nil {
		return false, sysexits.New(sysexits.CantCreat, "listen_users: %v", err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		return false, sysexits.New(sysexits.CantCreat, "listen_users: lock %s: %v", dir, err)
	}

	old, err := os.ReadFile(path)
	var fi fs.FileInfo
	switch {
	case err == nil:
		if _, perr := ParseUsers(old, path); perr != nil {
			return false, perr // not rewritten: a human must look at it
		}
		if fi, err = os.Stat(path); err != nil {
			return false, sysexits.New(sysexits.CantCreat, "listen_users: %v", err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if hash == "" {
			return false, sysexits.New(sysexits.NoUser, "listen_users: %s does not exist: no user %q to delete", path, name)
		}
	default:
		return false, sysexits.New(sysexits.NoInput, "listen_users: %v", err)
	}

	var out bytes.Buffer
	for _, line := range splitLines(old) {
		n, _, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		if ok && n == name && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			existed = true
			if hash != "" {
				out.WriteString(name + ":" + hash + "\n")
			}
			continue
		}
		out.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			out.WriteByte('\n')
		}
	}
	switch {
	case hash == "" && !existed:
		return false, sysexits.New(sysexits.NoUser, "listen_users: no user %q in %s", name, path)
	case hash != "" && !existed:
		out.WriteString(name + ":" + hash + "\n")
	}

	uid, gid, mode := owner.UID, owner.GID, owner.Mode
	if fi != nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if err := atomicfile.WriteBytes(path, atomicfile.Options{Mode: mode, Chown: uid != os.Geteuid() || gid != os.Getegid(), UID: uid, GID: gid}, out.Bytes()); err != nil {
		return existed, sysexits.New(sysexits.CantCreat, "listen_users: %v", err)
	}
	return existed, nil
}

// splitLines splits b after each newline; a last line without one is
// kept as it is.
func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(out, string(b))
		}
		out, b = append(out, string(b[:i+1])), b[i+1:]
	}
	return out
}
