package daemon_test

// The detached runner sendmail starts, seen from outside: it is started
// while the message is committed (BeginDelivery), so it may begin its
// pass before the message exists; it must deliver it all the same, alone
// and in a burst.

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testbin"
	"github.com/relaymail/relay/internal/testsmtp"
)

func detachedConf(port int) string {
	return strings.Replace(daemonConf(port), "detached_delivery = false", "detached_delivery = true", 1)
}

// Submissions far enough apart that each starts a runner of its own (the
// last one has left): each message is delivered by the runner its
// sendmail started, although that runner may have started before the
// message was committed.
func TestDetached_EachSubmissionDelivered(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := testbin.NewEnv(t, detachedConf(s.Port))
	for i := range 3 {
		id := fmt.Sprintf("alone-%d-%d", i, rand.Int64())
		submitMail(t, e, id, "alone\n")
		if !testsmtp.WaitFor(30*time.Second, func() bool { return s.Count(id) == 1 }) {
			t.Fatalf("message %d not delivered by a detached runner: %v", i, s.Snapshot())
		}
		// Until the runner has left (it lingers half a second).
		if !testsmtp.WaitFor(30*time.Second, func() bool { return !e.Open().RunnerActive() }) {
			t.Fatal("the detached runner did not leave")
		}
	}
}

// A burst of sendmails in a row: every message is delivered once, and the
// queue is empty after.
func TestDetached_BurstDelivered(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := testbin.NewEnv(t, detachedConf(s.Port))
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("burst-%d-%d", i, rand.Int64())
		ids = append(ids, id)
		submitMail(t, e, id, "burst\n")
	}
	for _, id := range ids {
		if !testsmtp.WaitFor(60*time.Second, func() bool { return s.Count(id) == 1 }) {
			t.Fatalf("%s not delivered: %v", id, s.Snapshot())
		}
	}
	if !testsmtp.WaitFor(30*time.Second, func() bool { return queued(t, e) == 0 }) {
		t.Errorf("queue not empty: %d", queued(t, e))
	}
	for _, id := range ids {
		if n := s.Count(id); n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
}

// sendmail -bs (Symfony Mailer's default transport) starts delivery after
// each message it queues, as sendmail does: the message is delivered
// while the session is still open (a PHP worker may keep it for hours),
// and a second message in the same session too.
func TestDetached_SendmailBSDeliversWhileTheSessionIsOpen(t *testing.T) {
	s := testsmtp.NewSink(t, 0, 0)
	e := testbin.NewEnv(t, detachedConf(s.Port))
	cmd := e.Cmd("sendmail", "-bs")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out testsmtp.LockedBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	io.WriteString(stdin, "EHLO app.example\r\n")
	for i := range 2 {
		id := fmt.Sprintf("bs-%d-%d", i, rand.Int64())
		io.WriteString(stdin, "MAIL FROM:<app@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"+
			strings.ReplaceAll(testMessage(id, "via -bs\n"), "\n", "\r\n")+".\r\n")
		if !testsmtp.WaitFor(30*time.Second, func() bool { return s.Count(id) == 1 }) {
			t.Fatalf("message %d not delivered while the -bs session is open:\n%s", i, out.String())
		}
	}
	io.WriteString(stdin, "QUIT\r\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("sendmail -bs: %v\n%s", err, out.String())
	}
}
