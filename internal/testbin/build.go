package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// mainPackage is what is built: the relay command, wherever the test runs;
// helperPackage is relay's OAuth helper, built beside it as it is shipped
// (relay runs it from its own directory).
const (
	mainPackage   = "github.com/relaymail/relay"
	helperPackage = "github.com/relaymail/relay/cmd/relay-oauth"
)

var (
	buildOnce sync.Once
	binDir    string // holds the binary and its links; removed by Main
	binPath   string
	buildErr  error
)

// Main runs the tests (m.Run) and removes the binary built for them; call
// it from TestMain. It does not return.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Binary returns the path of the relay binary, building it on the first
// call of the test binary (tests that never run it do not wait for the
// build). It fails t when the build fails.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(build)
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Dir is the directory that holds the binary and its links.
func Dir(t testing.TB) string {
	t.Helper()
	return filepath.Dir(Binary(t))
}

func build() {
	dir, err := os.MkdirTemp("", "relay-bin-")
	if err != nil {
		buildErr = err
		return
	}
	binDir, binPath = dir, filepath.Join(dir, "relay")
	// The binary as shipped: static, without cgo (see README).
	for pkg, out := range map[string]string{mainPackage: binPath, helperPackage: filepath.Join(dir, "relay-oauth")} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			return
		}
	}
	for _, name := range []string{"sendmail", "mailq", "newaliases"} {
		if err := os.Symlink(binPath, filepath.Join(dir, name)); err != nil {
			buildErr = err
			return
		}
	}
}
