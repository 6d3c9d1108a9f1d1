package docs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// setupCommands returns the shell blocks of the README's Set-up section.
func setupCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Set-up\n")
	if !ok {
		t.Fatal("README.md has no ## Set-up section")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var cmds []string
	for {
		_, rest, ok := strings.Cut(sec, "```sh\n")
		if !ok {
			return cmds
		}
		block, after, _ := strings.Cut(rest, "```")
		cmds = append(cmds, strings.TrimSpace(block))
		sec = after
	}
}

// The README's Set-up holds exactly two commands: the tests, and the main
// job, which this test runs as a newcomer would, in a copy of the
// repository with a HOME that has never seen relay (no configuration, no
// spool): it builds relay, queues the message and lists it.
func TestREADME_SetupCommandsWork(t *testing.T) {
	cmds := setupCommands(t)
	if len(cmds) != 2 || strings.Count(cmds[0], "\n") != 0 || strings.Count(cmds[1], "\n") != 0 {
		t.Fatalf("Set-up has %d shell blocks, want exactly two one-line commands: %q", len(cmds), cmds)
	}
	if cmds[1] != "go test -race ./..." {
		t.Errorf("the second command is %q, want the test command go test -race ./...", cmds[1])
	}
	if testing.Short() {
		t.Skip("builds relay in a copy of the repository")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git lists the repository's files")
	}
	ls, err := exec.Command("git", "-C", "..", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	repo := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(ls), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			continue // listed but deleted in the working tree
		}
		p := filepath.Join(repo, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", cmds[0])
	if os.Geteuid() == 0 {
		// root's relay uses the system paths, /etc/relay/relay.toml and
		// /var/spool/relay: in a private mount namespace they are new
		// and empty, as on a fresh machine, and the host's stay untouched.
		cmd = exec.Command("unshare", "-m", "--propagation", "private", "bash", "-euo", "pipefail", "-c",
			`mount -t tmpfs relay-readme /var/spool
			if [ -d /etc/relay ]; then mount -t tmpfs relay-readme /etc/relay; fi
			exec bash -euo pipefail -c "$0"`, cmds[0])
	}
	cmd.Dir = repo
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "XDG_") || strings.HasPrefix(k, "RELAY_") || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	// Go's own caches stay where they are (they live under HOME by
	// default): the newcomer's machine has Go set up, not relay.
	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	gv := strings.Split(strings.TrimSpace(string(goenv)), "\n")
	cmd.Env = append(env, "HOME="+home, "GOCACHE="+gv[0], "GOMODCACHE="+gv[1], "GOPATH="+gv[2])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmds[0], err, out)
	}
	// mailq lists the one message it queued, for you@example.org.
	if !strings.Contains(string(out), "you@example.org") || !strings.Contains(string(out), "Request") {
		t.Errorf("the main job printed:\n%s", out)
	}
	for _, bin := range []string{"bin/relay", "bin/relay-oauth"} {
		if _, err := os.Stat(filepath.Join(repo, bin)); err != nil {
			t.Errorf("the command did not build %s: %v", bin, err)
		}
	}
}
