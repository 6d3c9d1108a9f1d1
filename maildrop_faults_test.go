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

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// sysDeliver points the system install's configuration at a sink, with no
// detached runner: relay queue run alone moves the mail.
func (s *sysEnv) sysDeliver(port int) {
	s.t.Helper()
	b, err := os.ReadFile(s.conf)
	if err != nil {
		s.t.Fatal(err)
	}
	text := string(b) + fmt.Sprintf("\n[daemon]\ndetached_delivery = false\n\n[[smarthost]]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\n", port)
	if err := os.WriteFile(s.conf, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// A Message-ID that holds a NUL, a CR, a line break (a folded value) or
// is over 998 octets: what sendmail accepts in a system install is
// delivered by the pickup, never moved to corrupt/; or sendmail refuses
// it (65, one line).
func TestSystemInstall_OddMessageIDsDeliveredOrRefused(t *testing.T) {
	s := newSysEnv(t)
	sink := testsmtp.NewSink(t, 0, 0)
	s.sysDeliver(sink.Port)
	u := s.users[0]
	cases := map[string]string{
		"nul":  "Message-ID: <nul\x00x@example.org>\n",
		"cr":   "Message-ID: <cr\rx@example.org>\n",
		"fold": "Message-ID: <fold@\n example.org>\n",
		"long": "Message-ID: <long" + strings.Repeat("a", 1200) + "@example.org>\n",
	}
	accepted := map[string]bool{}
	for tag, field := range cases {
		r := run(as(u, s.cmd("sendmail", "-i", "bob@example.org")), field+"Subject: "+tag+"\n\nbody\n")
		switch {
		case r.code == 0 && r.stderr == "":
			accepted[tag] = true
		case r.code == 65 && strings.Count(r.stderr, "\n") == 1:
			t.Logf("%s: refused at sendmail: %s", tag, r.stderr)
		default:
			t.Errorf("%s: sendmail: %+v (want 0, or 65 with one line)", tag, r)
		}
	}
	r := run(s.cmd("relay", "queue", "run"), "")
	if r.code != 0 {
		t.Errorf("relay queue run: %+v", r)
	}
	if bad, _ := filepath.Glob(filepath.Join(s.spool, "corrupt", "*")); len(bad) != 0 {
		t.Errorf("moved to corrupt/: %v\n%s", bad, r.stderr)
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
			t.Errorf("%s: accepted by sendmail, delivered %d times (sink saw %v)\n%s", tag, n, got, r.stderr)
		}
	}
	if left := s.messages(); len(left) != 0 {
		t.Errorf("%d messages still queued\n%s", len(left), r.stderr)
	}
}

// Maildrop entries that are no message and cannot simply be unlinked (a
// directory, a unix socket, a name too long to get the corrupt/ prefix):
// one relay queue run deals with each once, in one pass, and delivers the
// good drop beside them. A user's directory with something in it cannot
// be removed nor moved by relay (renaming a directory needs write access
// to it): it stays, reported once per run.
func TestSystemInstall_UndeletableDropsOnePass(t *testing.T) {
	s := newSysEnv(t)
	sink := testsmtp.NewSink(t, 0, 0)
	s.sysDeliver(sink.Port)
	maildrop := filepath.Join(s.spool, "maildrop")
	u := s.users[0]
	uid, _ := strconv.Atoi(u.Uid)
	if r := run(as(u, s.cmd("sendmail", "-i", "good@example.org")), "Message-ID: <good@example.org>\nSubject: good\n\nfine\n"); r.code != 0 {
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

	r := run(s.cmd("relay", "queue", "run"), "")
	if r.code != 0 {
		t.Errorf("relay queue run: %+v", r)
	}
	refused := func(log, name, why string) int {
		re := regexp.MustCompile(`(?m)^maildrop=` + name + ` status=refused reason=".*` + regexp.QuoteMeta(why))
		return len(re.FindAllString(log, -1))
	}
	for name, why := range map[string]string{"adir": "a directory", "emptydir": "a directory", "asocket": "a socket", long: "corrupt"} {
		if n := refused(r.stderr, name, why); n != 1 {
			t.Errorf("%.20s: refused %d times for %q, want once:\n%.3000s", name, n, why, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "\n"); n > 10 {
		t.Errorf("%d log lines for one good message and four bad entries:\n%.3000s", n, r.stderr)
	}
	if left, _ := os.ReadDir(maildrop); len(left) != 1 || left[0].Name() != "adir" {
		t.Errorf("maildrop after pickup: %v, want only the directory relay may not touch", left)
	}
	if _, err := os.Stat(filepath.Join(maildrop, "adir", "inside")); err != nil {
		t.Errorf("the directory's content was touched: %v", err)
	}
	corrupt, _ := os.ReadDir(filepath.Join(s.spool, "corrupt"))
	if len(corrupt) != 1 || !strings.HasPrefix(corrupt[0].Name(), "maildrop-Lxxx") || len(corrupt[0].Name()) > 255 {
		t.Errorf("corrupt/ holds %v, want the long name", corrupt)
	}
	if sink.Count("good@example.org") != 1 {
		t.Errorf("the good drop was not delivered once: %v", sink.Snapshot())
	}
	// A second run reports the directory once again, and nothing else.
	r = run(s.cmd("relay", "queue", "run"), "")
	if r.code != 0 || refused(r.stderr, "adir", "a directory") != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("second run: %+v", r)
	}
}

// SIGKILLs of relay queue run at random moments while it picks up
// hundreds of drops: every drop ends up queued exactly once (a crash
// between the commit of a message and the removal of its drop does not
// queue the drop again), none is lost.
func TestSystemInstall_SIGKILLDuringPickup(t *testing.T) {
	s := newSysEnv(t)
	// No smarthost: a run only picks up.
	sp, err := spool.Open(s.spool)
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
	maildrop := filepath.Join(s.spool, "maildrop")
	kills := 0
	for kills < 150 {
		left, _ := os.ReadDir(maildrop)
		if len(left) == 0 {
			break
		}
		c := s.cmd("relay", "queue", "run")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(10+rand.IntN(70)) * time.Millisecond)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		kills++
	}
	run(s.cmd("relay", "queue", "run"), "")
	if left, _ := os.ReadDir(maildrop); len(left) != 0 {
		t.Fatalf("%d drops left after %d kills and a last run", len(left), kills)
	}
	seen := map[string]int{}
	re := regexp.MustCompile(`Message-ID: <(drop\d+)@`)
	for id := range s.messages() {
		m := re.FindStringSubmatch(s.content(id))
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
