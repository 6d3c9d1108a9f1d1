package spool

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// BecomeOwner makes a process running as root continue as the owner of
// the spool (its uid and gid, no supplementary groups), so that every
// queue file it writes belongs to relay and the daemon can always read
// it; the caller records the submitting uid before. A process that is not
// root is left as it is. An error of the change of identity wraps
// fs.ErrPermission (exit 77), whatever the system call said.
func (s *Spool) BecomeOwner() error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := s.Owner()
	if err != nil || uid == 0 {
		return err
	}
	// Go applies these to every thread of the process (Linux, Go 1.16+).
	if err := syscall.Setgroups(nil); err != nil {
		return &identityError{fmt.Sprintf("cannot drop supplementary groups: %v", err)}
	}
	if err := syscall.Setgid(gid); err != nil {
		return &identityError{fmt.Sprintf("cannot take the spool group (gid %d): %v", gid, err)}
	}
	if err := syscall.Setuid(uid); err != nil {
		return &identityError{fmt.Sprintf("cannot take the spool owner's identity (uid %d): %v", uid, err)}
	}
	return nil
}

// identityError is a refused change of identity: a permission problem
// whatever the errno (which the message gives).
type identityError struct{ msg string }

func (e *identityError) Error() string { return e.msg }
func (e *identityError) Unwrap() error { return fs.ErrPermission }
