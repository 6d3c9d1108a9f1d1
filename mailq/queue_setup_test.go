package mailq_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
)

// The tests build real spools in a temporary directory through package
// spool's public API, the way sendmail (a draft committed to the queue)
// and a runner (a locked message whose envelope is updated) do, and look
// at them only through mailq.

// arrival is the arrival time of the test messages: the listing shows it
// in local time, so the expected text is formatted from it too.
var arrival = time.Date(2025, time.March, 7, 9, 5, 2, 0, time.UTC)

// shortLockWait keeps commands that meet a busy message from waiting the
// production ten seconds.
func shortLockWait(t *testing.T, d time.Duration) {
	t.Helper()
	old := mailq.LockWait
	mailq.LockWait = d
	t.Cleanup(func() { mailq.LockWait = old })
}

// envelope is a fresh arrival envelope from sender to rcpts.
func envelope(sender string, rcpts ...string) *spool.Envelope {
	env := &spool.Envelope{Sender: sender, UID: 1000, User: "alice", Arrival: arrival, NextAttempt: arrival}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Address: r, Status: spool.Pending})
	}
	return env
}

// content is a message of exactly size bytes: a header, then a body
// padded with x.
func content(size int) string {
	head := "Subject: test message\r\nFrom: alice@example.com\r\n\r\n"
	if size < len(head) {
		panic("content: size below the header's")
	}
	return head + strings.Repeat("x", size-len(head))
}

// enqueue commits a message as sendmail does and returns its queue ID.
func enqueue(t *testing.T, sp *spool.Spool, env *spool.Envelope, body string) string {
	t.Helper()
	d, err := sp.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteEnvelope(env); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// update changes a queued message's envelope as a runner does after an
// attempt: under the message's lock, written back durably.
func update(t *testing.T, sp *spool.Spool, id string, fn func(*spool.Envelope)) {
	t.Helper()
	l, err := sp.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fn(l.Env)
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
}

// recordFailure stores the failure of recipient i as delivery does after
// an attempt: reply is the smarthost's answer (or the error) the user
// sees; permanent marks the recipient refused for good (5xx) instead of
// deferred; ownSide says the attempt failed on relay's or the account's
// side (connect, TLS, AUTH, MAIL FROM) rather than on the recipient.
//
// This is the ONE place the tests know how a failure is stored in the
// envelope: when that storage changes, only this function changes.
func recordFailure(env *spool.Envelope, i int, reply string, permanent, ownSide bool) {
	// A failure on relay's side or the account's comes before RCPT (MAIL
	// FROM here); a recipient's own comes at RCPT.
	stage := failure.StageRcpt
	if ownSide {
		stage = failure.StageMail
	}
	r := &env.Recipients[i]
	r.Failure = failure.ParseFormat1Reason(stage, reply)
	if permanent {
		r.Status = spool.Failed
	}
	// The envelope's last error as format 1 kept it: the line without a
	// stage, which is what these tests were written against.
	env.LastFailure = failure.ParseFormat1Error(reply)
}

// holdLock takes message id's lock as a runner delivering it does, until
// the test ends or the returned release is called.
func holdLock(t *testing.T, sp *spool.Spool, id string) (release func()) {
	t.Helper()
	l, err := sp.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return func() { l.Close() }
}

// writeQueueFile puts raw bytes in the queue under a fresh valid ID, as a
// damaged disk or a newer relay would leave them.
func writeQueueFile(t *testing.T, sp *spool.Spool, data string) string {
	t.Helper()
	id := spool.NewID(time.Now())
	if err := os.WriteFile(filepath.Join(sp.Dir, "queue", id), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}

// read returns message id's snapshot, failing the test if it is gone.
func read(t *testing.T, sp *spool.Spool, id string) *spool.Message {
	t.Helper()
	m, err := sp.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// nobody is the user (and group) a denied reader acts as.
const nobody = 65534

// withoutAccess runs fn as a local user outside the spool's group would:
// the spool's directories (0700, the tester's) are closed to it. Root
// opens any file whatever its mode, so as root fn runs on a thread of its
// own whose file system uid and gid are nobody's (which also drops the
// thread's power to override file modes); the thread is never given back
// to other goroutines, so nothing else runs with those ids. fn must not
// call t.Fatal: it does not run on the test's goroutine.
func withoutAccess(t *testing.T, sp *spool.Spool, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		// The tester owns the spool: take the access from the owner too.
		queue := filepath.Join(sp.Dir, "queue")
		if err := os.Chmod(queue, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(queue, 0o700)
		fn()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the goroutine's end ends the thread, with its ids.
		runtime.LockOSThread()
		unix.Setfsgid(nobody)
		unix.Setfsuid(nobody)
		fn()
	}()
	<-done
}
