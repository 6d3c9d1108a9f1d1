package e2e_test

// What arrived: the messages in the smarthost's Maildir, found by their
// Message-ID, once Postfix has settled; and the checks on them.

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testsmtp"
)

// ---------------------------------------------------------- the Maildir --

type delivered struct {
	path, msgID, deliveredTo string
}

var (
	maildirMu    sync.Mutex
	maildirIndex = map[string]delivered{} // by file name (new/ or cur/)
)

// maildir rescans the shared Maildir (new/ and cur/) and returns every
// delivered message; files are read once (their header only).
func maildir(t testing.TB) []delivered {
	t.Helper()
	maildirMu.Lock()
	defer maildirMu.Unlock()
	var out []delivered
	for _, sub := range []string{"new", "cur"} {
		d := filepath.Join(env["SMARTHOST_MAILDIR"], sub)
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatalf("Maildir: %v", err)
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if m, ok := maildirIndex[p]; ok {
				out = append(out, m)
				continue
			}
			m, err := readDelivered(p)
			if err != nil {
				continue // moved or half-written: next scan
			}
			maildirIndex[p] = m
			out = append(out, m)
		}
	}
	return out
}

func readDelivered(p string) (delivered, error) {
	f, err := os.Open(p)
	if err != nil {
		return delivered{}, err
	}
	defer f.Close()
	m := delivered{path: p}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" || err != nil {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "message-id":
			m.msgID = strings.Trim(strings.TrimSpace(v), "<>")
		case "delivered-to":
			if m.deliveredTo == "" {
				m.deliveredTo = strings.TrimSpace(v)
			}
		}
	}
	if m.msgID == "" {
		return m, errors.New("no Message-ID yet")
	}
	return m, nil
}

// copiesOf returns the delivered copies of each Message-ID in ids.
func copiesOf(t testing.TB, ids ...string) map[string][]delivered {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[string][]delivered{}
	for _, m := range maildir(t) {
		if want[m.msgID] {
			out[m.msgID] = append(out[m.msgID], m)
		}
	}
	return out
}

// settle waits until Postfix has nothing left to deliver: every message
// relay handed over (Postfix queued it before its 250, and relay got that
// before `queue run` returned) is then in the Maildir, so counting
// afterwards counts duplicates too.
func settle(t testing.TB, timeout time.Duration) {
	t.Helper()
	qdir := postfixQueueDir(t)
	n := 0
	if !testsmtp.WaitFor(timeout, func() bool {
		n = 0
		// Not deferred/ or hold/: mail someone else left stuck there must
		// not stall the suite; what relay hands over goes through these.
		for _, sub := range []string{"maildrop", "incoming", "active"} {
			err := filepath.WalkDir(filepath.Join(qdir, sub), func(_ string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() {
					n++
				}
				return nil
			})
			if err != nil {
				t.Fatalf("reading Postfix's queue: %v", err)
			}
		}
		return n == 0
	}) {
		t.Fatalf("Postfix still holds %d message(s) in %s after %v", n, qdir, timeout)
	}
}

var (
	pfQueueOnce sync.Once
	pfQueueDir  string
	pfQueueErr  error
)

func postfixQueueDir(t testing.TB) string {
	pfQueueOnce.Do(func() {
		out, err := exec.Command("postconf", "-c", env["SMARTHOST_POSTFIX_CONFIG"], "-h", "queue_directory").Output()
		pfQueueDir, pfQueueErr = strings.TrimSpace(string(out)), err
	})
	if pfQueueErr != nil || pfQueueDir == "" {
		t.Fatalf("postconf queue_directory: %v", pfQueueErr)
	}
	return pfQueueDir
}

// waitCopies waits (up to timeout) until Postfix has delivered everything
// it accepted, then returns the copies of each id found in the Maildir.
func waitCopies(t testing.TB, timeout time.Duration, ids ...string) map[string][]delivered {
	t.Helper()
	settle(t, timeout)
	return copiesOf(t, ids...)
}

// ------------------------------------------------------------- checks --

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s: %q does not contain %q", what, s, sub)
		}
	}
}

// missingAndDuplicated waits up to timeout for the Message-IDs in the
// Maildir and counts those that never came and those there more than once.
func missingAndDuplicated(t *testing.T, timeout time.Duration, ids ...string) (missing, dup int) {
	t.Helper()
	copies := waitCopies(t, timeout, ids...)
	for _, id := range ids {
		switch n := len(copies[id]); {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
	}
	return missing, dup
}
