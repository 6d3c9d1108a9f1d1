// Package sysexits holds the exit codes of sendmail(8) and BSD sysexits.h
// that relay answers with, and maps an error to exactly one of them.
//
// Every command of relay ends through Code: an error carries its code either
// explicitly (an *Error made with New or Wrap) or implicitly through the
// operating system error it wraps (EACCES is 77, ENOSPC is 75, …). Callers
// such as cron and PHP decide from the code alone whether to try again, so
// temporary and permanent failures must never share one.
package sysexits

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// The codes relay uses (sysexits.h).
const (
	OK          = 0
	Usage       = 64 // command line usage error
	DataErr     = 65 // data format error (unreadable input, message too large)
	NoInput     = 66 // cannot open input (no such queue entry)
	NoUser      = 67 // addressee unknown (a recipient refused permanently)
	Unavailable = 69 // service unavailable
	Software    = 70 // internal software error
	CantCreat   = 73 // cannot create (spool) file
	IOErr       = 74 // input/output error
	TempFail    = 75 // temporary failure; the user is invited to retry
	NoPerm      = 77 // permission denied
	Config      = 78 // configuration error
)

// Error is an error with the exit code it must end the program with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with code and a message formatted as fmt.Errorf does
// (so %w wraps).
func New(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Wrap gives err the exit code code, keeping its message. Wrap(code, nil) is nil.
func Wrap(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Code returns the exit code for err: 0 for nil, the code of the outermost
// *Error in its chain, else a code derived from the system error it wraps,
// else fallback.
func Code(err error, fallback int) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EACCES, syscall.EPERM, syscall.EROFS:
			return NoPerm
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EAGAIN, syscall.EINTR, syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE:
			return TempFail
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		return NoPerm
	}
	return fallback
}
