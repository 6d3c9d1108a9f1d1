package testbin

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/spool"
)

// Env is one spool with its configuration, in a directory of the test's.
type Env struct {
	T     testing.TB
	Dir   string // the test's directory
	Conf  string // the configuration file (Dir/relay.toml)
	Spool string // the spool directory (Dir/spool), not made by NewEnv
}

// NewEnv writes a configuration naming the spool and the domain
// server1.example.com, followed by extra (more TOML).
func NewEnv(t testing.TB, extra string) *Env {
	t.Helper()
	Binary(t) // built before any test's clock starts
	dir := t.TempDir()
	e := &Env{T: t, Dir: dir, Conf: filepath.Join(dir, "relay.toml"), Spool: filepath.Join(dir, "spool")}
	e.WriteConf(fmt.Sprintf("spool = %q\ndomain = \"server1.example.com\"\n%s", e.Spool, extra))
	return e
}

// WriteConf replaces the configuration file's text.
func (e *Env) WriteConf(s string) {
	e.T.Helper()
	if err := os.WriteFile(e.Conf, []byte(s), 0o600); err != nil {
		e.T.Fatal(err)
	}
}

// Cmd prepares name (relay, or its links sendmail, mailq, newaliases) with
// args and this env's configuration in RELAY_CONFIG.
func (e *Env) Cmd(name string, args ...string) *exec.Cmd {
	e.T.Helper()
	c := exec.Command(filepath.Join(Dir(e.T), name), args...)
	c.Env = append(os.Environ(), "RELAY_CONFIG="+e.Conf)
	return c
}

// Result is how a command ended: its exit code (-1: it could not be run
// or was killed by a signal) and what it printed.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs c with stdin as its standard input, to the end.
func Run(c *exec.Cmd, stdin string) Result {
	c.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return Result{code, out.String(), errb.String()}
}

// Open opens the spool, failing the test when it cannot.
func (e *Env) Open() *spool.Spool {
	e.T.Helper()
	sp, err := spool.Open(e.Spool)
	if err != nil {
		e.T.Fatal(err)
	}
	return sp
}

// Messages returns every queued message by queue ID, failing on an
// unreadable one.
func (e *Env) Messages() map[string]*spool.Message {
	e.T.Helper()
	sp := e.Open()
	ids, err := sp.IDs()
	if err != nil {
		e.T.Fatal(err)
	}
	out := map[string]*spool.Message{}
	for _, id := range ids {
		m, err := sp.Read(id)
		if err != nil {
			e.T.Fatalf("queue holds an unreadable message: %v", err)
		}
		out[id] = m
	}
	return out
}

// Content returns the queued message id as stored (headers and body).
func (e *Env) Content(id string) string {
	e.T.Helper()
	f, err := e.Open().OpenContent(id)
	if err != nil {
		e.T.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}
