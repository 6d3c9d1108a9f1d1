package main_test

// The queue commands and relay check run as an administrator runs them.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/relaymail/relay/internal/testbin"
)

func TestQueueCommands(t *testing.T) {
	e := testbin.NewEnv(t, "")
	for i, args := range [][]string{{"-i", "-f", "alice@example.org", "bob@example.org"}, {"-i", "-f", "<>", "carol@example.org", "dave"}} {
		if r := testbin.Run(e.Cmd("sendmail", args...), fmt.Sprintf("Subject: m%d\n\nbody\n", i)); r.Code != 0 {
			t.Fatal(r)
		}
	}
	ids, _ := e.Open().IDs()
	if len(ids) != 2 {
		t.Fatalf("queued %v", ids)
	}

	r := testbin.Run(e.Cmd("mailq"), "")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "-Queue ID-") || !strings.Contains(r.Stdout, "alice@example.org") ||
		!strings.Contains(r.Stdout, "MAILER-DAEMON") || !strings.Contains(r.Stdout, "dave@server1.example.com") ||
		!strings.HasSuffix(r.Stdout, "in 2 Requests.\n") {
		t.Errorf("mailq: %+v", r)
	}
	if r2 := testbin.Run(e.Cmd("sendmail", "-bp"), ""); r2.Stdout != r.Stdout {
		t.Errorf("sendmail -bp differs from mailq:\n%s", r2.Stdout)
	}

	r = testbin.Run(e.Cmd("relay", "queue", "list", "--json"), "")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("json: %q", r.Stdout)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"queue_name", "queue_id", "arrival_time", "message_size", "sender", "recipients", "attempts", "next_attempt"} {
		if _, ok := first[k]; !ok {
			t.Errorf("json lacks %q: %s", k, lines[0])
		}
	}
	if first["queue_id"] != ids[0] || first["sender"] != "alice@example.org" {
		t.Errorf("json first = %v", first)
	}

	r = testbin.Run(e.Cmd("relay", "queue", "show", ids[1]), "")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Sender:       <>") || !strings.Contains(r.Stdout, "Subject: m1") {
		t.Errorf("show: %+v", r)
	}

	if r := testbin.Run(e.Cmd("relay", "queue", "hold", ids[0]), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(e.Cmd("mailq"), ""); !strings.Contains(r.Stdout, ids[0]+"!") {
		t.Errorf("held message not marked:\n%s", r.Stdout)
	}
	if r := testbin.Run(e.Cmd("relay", "queue", "release", ids[0]), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(e.Cmd("mailq"), ""); strings.Contains(r.Stdout, ids[0]+"!") {
		t.Errorf("released message still held:\n%s", r.Stdout)
	}

	// A message being delivered is marked '*' and cannot be deleted under
	// the runner: the delete waits, then fails.
	l, err := e.Open().Lock(ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if r := testbin.Run(e.Cmd("mailq"), ""); !strings.Contains(r.Stdout, ids[1]+"*") {
		t.Errorf("locked message not marked active:\n%s", r.Stdout)
	}
	l.Close()

	if r := testbin.Run(e.Cmd("relay", "queue", "delete", ids[0]), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(e.Cmd("relay", "queue", "delete", "--all"), ""); r.Code != 0 {
		t.Fatal(r)
	}
	if r := testbin.Run(e.Cmd("mailq"), ""); r.Stdout != "Mail queue is empty\n" {
		t.Errorf("after delete --all: %q", r.Stdout)
	}
}

// Users without access to the spool get a one-line refusal and 77.
func TestQueue_PermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a command as another user")
	}
	e := testbin.NewEnv(t, "")
	if r := testbin.Run(e.Cmd("sendmail", "-i", "a@example.org"), "x\n"); r.Code != 0 {
		t.Fatal(r)
	}
	// nobody may read the configuration and run the binary, not the spool.
	for _, d := range []string{testbin.Dir(t), e.Dir, filepath.Dir(e.Dir)} {
		os.Chmod(d, 0o755)
	}
	os.Chmod(e.Conf, 0o644)
	for _, args := range [][]string{{"mailq"}, {"relay", "queue", "list"}, {"relay", "queue", "flush"}} {
		c := e.Cmd(args[0], args[1:]...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		r := testbin.Run(c, "")
		if r.Code != 77 || !strings.Contains(r.Stderr, "permission denied") || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("%v as nobody: %+v", args, r)
		}
	}
}

func TestCheck(t *testing.T) {
	e := testbin.NewEnv(t, "")
	r := testbin.Run(e.Cmd("relay", "check"), "")
	if r.Code != 0 || !strings.Contains(r.Stdout, "OK") || !strings.Contains(r.Stderr, "warning") {
		t.Errorf("check: %+v", r)
	}
	e.WriteConf("spool = \"relative/path\"\n[queue]\nretry_min = \"soon\"\n")
	r = testbin.Run(e.Cmd("relay", "check"), "")
	if r.Code != 78 {
		t.Errorf("check of a broken file: %+v", r)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		if !strings.HasPrefix(line, "relay: "+e.Conf+":") {
			t.Errorf("line not of the form file:line: %q", line)
		}
	}
	if !strings.Contains(r.Stderr, e.Conf+":1:") || !strings.Contains(r.Stderr, e.Conf+":3:") {
		t.Errorf("line numbers missing: %s", r.Stderr)
	}
}
