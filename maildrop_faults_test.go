package main_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// sysDeliver points the system install's configuration at a sink, with no
// detached runner: relay queue run alone moves the mail.
func sysDeliver(s *testbin.SysEnv, port int) {
	s.T.Helper()
	b, err := os.ReadFile(s.Conf)
	if err != nil {
		s.T.Fatal(err)
	}
	text := string(b) + fmt.Sprintf("\n[daemon]\ndetached_delivery = false\n\n[[smarthost]]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\n", port)
	if err := os.WriteFile(s.Conf, []byte(text), 0o644); err != nil {
		s.T.Fatal(err)
	}
}

// A Message-ID that holds a NUL, a CR, a line break (a folded value) or
// is over 998 octets: what sendmail accepts in a system install is
// delivered by the pickup, never moved to corrupt/; or sendmail refuses
// it (65, one line).
func TestSystemInstall_OddMessageIDsDeliveredOrRefused(t *testing.T) {
	s := testbin.NewSysEnv(t)
	sink := testsmtp.NewSink(t, 0, 0)
	sysDeliver(s, sink.Port)
	u := s.Users[0]
	cases := map[string]string{
		"nul":  "Message-ID: <nul\x00x@example.org>\n",
		"cr":   "Message-ID: <cr\rx@example.org>\n",
		"fold": "Message-ID: <fold@\n example.org>\n",
		"long": "Message-ID: <long" + strings.Repeat("a", 1200) + "@example.org>\n",
	}
	accepted := map[string]bool{}
	for tag, field := range cases {
		r := testbin.Run(testbin.As(u, s.Cmd("sendmail", "-i", "bob@example.org")), field+"Subject: "+tag+"\n\nbody\n")
		switch {
		case r.Code == 0 && r.Stderr == "":
			accepted[tag] = true
		case r.Code == 65 && strings.Count(r.Stderr, "\n") == 1:
			t.Logf("%s: refused at sendmail: %s", tag, r.Stderr)
		default:
			t.Errorf("%s: sendmail: %+v (want 0, or 65 with one line)", tag, r)
		}
	}
	r := testbin.Run(s.Cmd("relay", "queue", "run"), "")
	if r.Code != 0 {
		t.Errorf("relay queue run: %+v", r)
	}
	if bad, _ := filepath.Glob(filepath.Join(s.Spool, "corrupt", "*")); len(bad) != 0 {
		t.Errorf("moved to corrupt/: %v\n%s", bad, r.Stderr)
	}
	got := sink.Snapshot()
	for tag := range accepted {
		n := 0
		for id, c := range got {
			if strings.HasPrefix(id, tag) {
				n += c
			}
		}
		if n != 1 {
			t.Errorf("%s: accepted by sendmail, delivered %d times (sink saw %v)\n%s", tag, n, got, r.Stderr)
		}
	}
	if left := s.Messages(); len(left) != 0 {
		t.Errorf("%d messages still queued\n%s", len(left), r.Stderr)
	}
}

// Maildrop entries that are no message and cannot simply be unlinked (a
// directory, a unix socket, a name too long to get the corrupt/ prefix):
// one relay queue run deals with each once, in one pass, and delivers the
// good drop beside them. A user's directory with something in it cannot
// be removed nor moved by relay (renaming a directory needs write access
// to it): it stays, reported once per run.
func TestSystemInstall_UndeletableDropsOnePass(t *testing.T) {
	s := testbin.NewSysEnv(t)
	sink := testsmtp.NewSink(t, 0, 0)
	sysDeliver(s, sink.Port)
	maildrop := filepath.Join(s.Spool, "maildrop")
	u := s.Users[0]
	uid, _ := strconv.Atoi(u.Uid)
	if r := testbin.Run(testbin.As(u, s.Cmd("sendmail", "-i", "good@example.org")), "Message-ID: <good@example.org>\nSubject: good\n\nfine\n"); r.Code != 0 {
		t.Fatal(r)
	}
	for _, name := range []string{"adir", "emptydir"} {
		dir := filepath.Join(maildrop, name)
		os.Mkdir(dir, 0o700)
		if name == "adir" {
			os.WriteFile(filepath.Join(dir, "inside"), []byte("x"), 0o600)
			os.Lchown(filepath.Join(dir, "inside"), uid, -1)
		}
		os.Lchown(dir, uid, -1)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(maildrop, "asocket"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	long := "L" + strings.Repeat("x", 249)
	os.WriteFile(filepath.Join(maildrop, long), []byte("not a drop\n"), 0o640)

	r := testbin.Run(s.Cmd("relay", "queue", "run"), "")
	if r.Code != 0 {
		t.Errorf("relay queue run: %+v", r)
	}
	refused := func(log, name, why string) int {
		re := regexp.MustCompile(`(?m)^maildrop=` + name + ` status=refused reason=".*` + regexp.QuoteMeta(why))
		return len(re.FindAllString(log, -1))
	}
	for name, why := range map[string]string{"adir": "a directory", "emptydir": "a directory", "asocket": "a socket", long: "corrupt"} {
		if n := refused(r.Stderr, name, why); n != 1 {
			t.Errorf("%.20s: refused %d times for %q, want once:\n%.3000s", name, n, why, r.Stderr)
		}
	}
	if n := strings.Count(r.Stderr, "\n"); n > 10 {
		t.Errorf("%d log lines for one good message and four bad entries:\n%.3000s", n, r.Stderr)
	}
	if left, _ := os.ReadDir(maildrop); len(left) != 1 || left[0].Name() != "adir" {
		t.Errorf("maildrop after pickup: %v, want only the directory relay may not touch", left)
	}
	if _, err := os.Stat(filepath.Join(maildrop, "adir", "inside")); err != nil {
		t.Errorf("the directory's content was touched: %v", err)
	}
	corrupt, _ := os.ReadDir(filepath.Join(s.Spool, "corrupt"))
	if len(corrupt) != 1 || !strings.HasPrefix(corrupt[0].Name(), "maildrop-Lxxx") || len(corrupt[0].Name()) > 255 {
		t.Errorf("corrupt/ holds %v, want the long name", corrupt)
	}
	if sink.Count("good@example.org") != 1 {
		t.Errorf("the good drop was not delivered once: %v", sink.Snapshot())
	}
	// A second run reports the directory once again, and nothing else.
	r = testbin.Run(s.Cmd("relay", "queue", "run"), "")
	if r.Code != 0 || refused(r.Stderr, "adir", "a directory") != 1 || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("second run: %+v", r)
	}
}

// SIGKILLs of relay queue run at random moments while it picks up
// hundreds of drops: every drop ends up queued exactly once (a crash
// between the commit of a message and the removal of its drop does not
// queue the drop again), none is lost.
func TestSystemInstall_SIGKILLDuringPickup(t *testing.T) {
	s := testbin.NewSysEnv(t)
	// No smarthost: a run only picks up.
	sp, err := spool.Open(s.Spool)
	if err != nil {
		t.Fatal(err)
	}
	const drops = 400
	for i := range drops {
		d, err := sp.NewDrop()
		if err != nil {
			t.Fatal(err)
		}
		env := &spool.Envelope{Sender: "alice@example.org", Recipients: []spool.Recipient{{Address: "bob@example.org", Status: spool.Pending}}}
		if err := d.WriteEnvelope(env); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(d, "Message-ID: <drop%d@example.org>\nSubject: %d\n\nbody\n", i, i)
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	maildrop := filepath.Join(s.Spool, "maildrop")
	kills := 0
	for kills < 150 {
		left, _ := os.ReadDir(maildrop)
		if len(left) == 0 {
			break
		}
		c := s.Cmd("relay", "queue", "run")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(10+rand.IntN(40)) * time.Millisecond)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		kills++
	}
	testbin.Run(s.Cmd("relay", "queue", "run"), "")
	if left, _ := os.ReadDir(maildrop); len(left) != 0 {
		t.Fatalf("%d drops left after %d kills and a last run", len(left), kills)
	}
	seen := map[string]int{}
	re := regexp.MustCompile(`Message-ID: <(drop\d+)@`)
	for id := range s.Messages() {
		m := re.FindStringSubmatch(s.Content(id))
		if m == nil {
			t.Fatalf("%s: no Message-ID", id)
		}
		seen[m[1]]++
	}
	dups := 0
	for i := range drops {
		switch n := seen["drop"+strconv.Itoa(i)]; {
		case n == 0:
			t.Errorf("drop%d lost", i)
		case n > 1:
			dups++
			t.Errorf("drop%d queued %d times", i, n)
		}
	}
	t.Logf("%d kills, %d duplicates", kills, dups)
}
