package testqueue

import (
	"os"
	"os/exec"
	"testing"
)

// SmallFileSystem mounts a tmpfs of size ("20m") on dir, made if missing,
// for tests of a spool that runs out of room; the test's cleanup unmounts
// it. Without root, or where mounting is not allowed, the test is skipped.
func SmallFileSystem(t testing.TB, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
}
