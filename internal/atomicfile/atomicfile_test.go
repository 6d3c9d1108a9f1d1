package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/relaymail/relay/internal/atomicfile"
)

func TestWrite_ReplacesWithModeAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "relay.prom")
	if err := os.WriteFile(p, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteBytes(p, atomicfile.Options{Mode: 0o644}, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new\n" {
		t.Fatalf("content %q, %v", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want the file alone", names)
	}
}

// A failing writer leaves the old file untouched and no temporary file.
func TestWrite_FailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users")
	os.WriteFile(p, []byte("old\n"), 0o640)
	boom := errors.New("boom")
	err := atomicfile.Write(p, atomicfile.Options{Mode: 0o640}, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the writer's", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old\n" {
		t.Errorf("old file now %q", b)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v after a failure", names)
	}
}

// The content never exists in a file readable by others: the temporary
// file is 0600 with its final mode set before the first byte.
func TestWrite_ContentNeverInAWiderMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.secret")
	err := atomicfile.Write(p, atomicfile.Options{Mode: 0o640}, func(w io.Writer) error {
		fi, err := w.(*os.File).Stat()
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o640 || !strings.HasPrefix(fi.Name(), ".x.secret.") {
			t.Errorf("temporary file %s mode %v before writing", fi.Name(), fi.Mode().Perm())
		}
		_, err = io.WriteString(w, "s3cret")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The path is a symbolic link to another file: the link is replaced, its
// target left alone (rename never follows it).
func TestWrite_ReplacesASymlinkNotItsTarget(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	os.WriteFile(target, []byte("root:x\n"), 0o600)
	p := filepath.Join(dir, "token.json")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteBytes(p, atomicfile.Options{Mode: 0o600}, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "root:x\n" {
		t.Errorf("the link's target was written: %q", b)
	}
	if fi, _ := os.Lstat(p); fi.Mode()&os.ModeSymlink != 0 {
		t.Errorf("%s is still a link", p)
	}
}

func TestWrite_ChownNamesTheOwnerItCouldNotSet(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may give a file any owner")
	}
	p := filepath.Join(t.TempDir(), "f")
	err := atomicfile.WriteBytes(p, atomicfile.Options{Mode: 0o640, Chown: true, UID: -1, GID: 0}, []byte("x"))
	if !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "chown -1:0") {
		t.Errorf("err %v, want EPERM naming -1:0", err)
	}
	if _, serr := os.Stat(p); serr == nil {
		t.Error("the file was created although its owner could not be set")
	}
}

// As root (CI runs the tests as root): the group is set before the content.
func TestWrite_ChownAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := atomicfile.WriteBytes(p, atomicfile.Options{Mode: 0o640, Chown: true, UID: 65534, GID: 65534}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("owner %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
