package main_test

// Crashes, concurrency and a full disk during sendmail's enqueue.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"

	"github.com/relaymail/relay/internal/testbin"
)

// SIGKILL sendmail at random moments while it enqueues a 4 MB message.
// Afterwards every file in the queue is a complete message, and every run
// that exited 0 left its message. This proves atomicity against a crash of
// the process (the kernel still writes what was written); it does not prove
// durability against power loss, which rests on the fsyncs.
func TestCrash_SIGKILLDuringEnqueue(t *testing.T) {
	runs := 300
	if testing.Short() {
		runs = 40
	}
	if s := os.Getenv("RELAY_CRASH_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	e := testbin.NewEnv(t, "")
	// 1 MB: long enough that kills land while it is written, short enough
	// that most of the kill moments fall in the commit (fsync, rename,
	// directory fsync), the part that must be atomic.
	body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 1<<20/64)
	input := append([]byte("Subject: big\n\n"), body...)
	inPath := filepath.Join(e.Dir, "input")
	os.WriteFile(inPath, input, 0o600)

	send := func(i int, kill time.Duration) (exited0 bool) {
		f, _ := os.Open(inPath)
		defer f.Close()
		c := e.Cmd("sendmail", "-i", fmt.Sprintf("run%d@example.org", i))
		c.Stdin = f
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			return err == nil
		case <-time.After(kill):
			c.Process.Signal(syscall.SIGKILL)
			return <-done == nil
		}
	}
	// How long one enqueue takes here decides the range of kill moments.
	start := time.Now()
	for i := 0; i < 3; i++ {
		if !send(-1-i, time.Minute) {
			t.Fatal("enqueue failed without a kill")
		}
	}
	typical := time.Since(start) / 3

	ok := map[string]bool{}
	for i := 0; i < runs; i++ {
		kill := time.Duration(rand.Int64N(int64(typical) * 5 / 4))
		if send(i, kill) {
			ok[fmt.Sprintf("run%d@example.org", i)] = true
		}
	}
	found := map[string]bool{}
	for id, m := range e.Messages() {
		if len(m.Recipients) != 1 {
			t.Fatalf("%s: %d recipients", id, len(m.Recipients))
		}
		if c := e.Content(id); !strings.HasSuffix(c, "\n\n"+string(body)) {
			t.Fatalf("%s: incomplete message (%d bytes)", id, len(c))
		}
		found[m.Recipients[0].Address] = true
	}
	for rcpt := range ok {
		if !found[rcpt] {
			t.Errorf("%s: sendmail exited 0 but its message is not in the queue", rcpt)
		}
	}
	tmp, _ := filepath.Glob(filepath.Join(e.Spool, "tmp", "*"))
	t.Logf("%d runs, typical enqueue %v: %d exited 0, %d complete messages queued, %d drafts left in tmp/ by killed writers",
		runs, typical, len(ok), len(found)-3, len(tmp))
	if len(ok) == 0 || len(ok) == runs {
		t.Errorf("the kills never (or always) landed during an enqueue: %d of %d exited 0", len(ok), runs)
	}
}

// 200 simultaneous sendmail runs give 200 distinct complete messages.
func TestConcurrentSubmissions(t *testing.T) {
	const n = 200
	e := testbin.NewEnv(t, "")
	var wg sync.WaitGroup
	results := make([]testbin.Result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = testbin.Run(e.Cmd("sendmail", "-i", fmt.Sprintf("r%d@example.org", i)), fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("run %d: %+v", i, r)
		}
	}
	msgs := e.Messages()
	var rcpts []string
	for id, m := range msgs {
		rcpts = append(rcpts, m.Recipients[0].Address)
		var i int
		fmt.Sscanf(m.Recipients[0].Address, "r%d@", &i)
		if !strings.HasSuffix(e.Content(id), fmt.Sprintf("\nbody %d\n", i)) {
			t.Errorf("%s: wrong or incomplete content", id)
		}
	}
	sort.Strings(rcpts)
	if len(msgs) != n || len(dedupe(rcpts)) != n {
		t.Errorf("%d messages for %d distinct recipients, want %d", len(msgs), len(dedupe(rcpts)), n)
	}
}

func dedupe(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// A spool on a full file system: exit 75 (try again later) and no partial
// file anywhere in the spool.
func TestDiskFull(t *testing.T) {
	e := testbin.NewEnv(t, "min_free_space = 0\n")
	testqueue.SmallFileSystem(t, e.Spool, "2m")

	small := testbin.Run(e.Cmd("sendmail", "-i", "a@example.org"), "Subject: fits\n\nsmall\n")
	if small.Code != 0 {
		t.Fatalf("small message: %+v", small)
	}
	big := testbin.Run(e.Cmd("sendmail", "-i", "b@example.org"), "Subject: too big\n\n"+strings.Repeat("x", 3<<20))
	if big.Code != 75 || strings.Count(big.Stderr, "\n") != 1 || !strings.Contains(big.Stderr, "no space left") {
		t.Errorf("disk full: %+v", big)
	}
	msgs := e.Messages()
	if len(msgs) != 1 {
		t.Errorf("%d messages queued, want the small one only", len(msgs))
	}
	if tmp, _ := filepath.Glob(filepath.Join(e.Spool, "tmp", "*")); len(tmp) != 0 {
		t.Errorf("partial files left: %v", tmp)
	}
	// And with min_free_space above what is left: refused before writing.
	e.WriteConf(fmt.Sprintf("spool = %q\nmin_free_space = \"1MB\"\n", e.Spool))
	full := testbin.Run(e.Cmd("sendmail", "-i", "c@example.org"), "Subject: s\n\nx\n")
	if full.Code != 0 {
		// 2 MB tmpfs with one small message still has over 1 MB free.
		t.Errorf("min_free_space 1MB on a nearly empty 2MB spool: %+v", full)
	}
	e.WriteConf(fmt.Sprintf("spool = %q\nmin_free_space = \"3MB\"\n", e.Spool))
	full = testbin.Run(e.Cmd("sendmail", "-i", "c@example.org"), "Subject: s\n\nx\n")
	if full.Code != 75 || !strings.Contains(full.Stderr, "min_free_space") {
		t.Errorf("below min_free_space: %+v", full)
	}
}
