package sysexits_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/relaymail/relay/sysexits"
)

func TestCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"explicit", sysexits.New(sysexits.DataErr, "too big"), 65},
		{"explicit wins over errno", sysexits.Wrap(sysexits.Config, &os.PathError{Op: "open", Path: "x", Err: syscall.EACCES}), 78},
		{"wrapped explicit", fmt.Errorf("context: %w", sysexits.New(sysexits.NoUser, "x")), 67},
		{"EACCES", &os.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, 77},
		{"EROFS", fmt.Errorf("spool: %w", syscall.EROFS), 77},
		{"ENOSPC", fmt.Errorf("spool: write: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), 75},
		{"EDQUOT", syscall.EDQUOT, 75},
		{"fs.ErrPermission", fs.ErrPermission, 77},
		{"other", errors.New("boom"), 73},
	}
	for _, tt := range tests {
		if got := sysexits.Code(tt.err, sysexits.CantCreat); got != tt.want {
			t.Errorf("%s: Code = %d, want %d", tt.name, got, tt.want)
		}
	}
	if sysexits.Wrap(75, nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
	if e := sysexits.New(64, "bad %s", "flag"); e.Error() != "bad flag" {
		t.Errorf("message %q", e)
	}
}
