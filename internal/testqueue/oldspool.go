package testqueue

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/relaymail/relay/spool"
)

// OldSpoolIDs are the messages of the spool OldSpool copies, in arrival
// order: three deferred (an envelope file with a connection failure),
// one held (OldSpoolHeld), one fresh (no envelope file).
var OldSpoolIDs = []string{"1K1WC6Q1DFWCDX3", "1K1WC6Q47FV2AVE", "1K1WC6Q6CS3FBR2", "1K1WC6Q8QB319AH", "1K1WC6W9VPZ1RVM"}

// OldSpoolHeld is the held message of OldSpool.
const OldSpoolHeld = "1K1WC6Q6CS3FBR2"

// OldSpoolTestdata is the directory of the spool written by relay at
// commit a0b0368, before the envelope index, and of what its mailq
// printed (spool/testdata/README).
func OldSpoolTestdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "spool", "testdata")
}

// OldSpool copies the queue of that spool into a new spool in the test's
// directory, byte for byte, as an upgrade finds it.
func OldSpool(t testing.TB) *spool.Spool {
	t.Helper()
	return SpoolFrom(t, "format2-a0b0368")
}

// SpoolFrom copies the queue of spool/testdata/NAME, a spool an earlier
// relay wrote, into a new spool in the test's directory, byte for byte.
func SpoolFrom(t testing.TB, name string) *spool.Spool {
	t.Helper()
	sp := NewSpool(t)
	src := filepath.Join(OldSpoolTestdata(), name, "queue")
	names, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sp.Dir, "queue", n.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return sp
}

// NewSpool returns a new, empty spool in the test's directory.
func NewSpool(t testing.TB) *spool.Spool {
	t.Helper()
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}
