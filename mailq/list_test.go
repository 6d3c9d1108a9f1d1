package mailq_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// The column layout of postqueue -p, which scripts parse: the ID and its
// mark in 16 columns, the size in 8, the arrival time in 20, then the
// sender; reasons indented by 8, recipients by 48.
const (
	listHeader      = "-Queue ID-       --Size-- ----Arrival Time----  -Sender/Recipient-------"
	reasonIndent    = "        "
	recipientIndent = "                                                "
)

// when is the arrival time as the listing writes it.
func when(t time.Time) string { return t.Local().Format("Mon Jan _2 15:04:05") }

func list(t *testing.T, sp *spool.Spool) (out, warn string) {
	t.Helper()
	var o, w bytes.Buffer
	if err := mailq.List(&o, &w, sp); err != nil {
		t.Fatalf("List: %v", err)
	}
	return o.String(), w.String()
}

func TestList_EmptyQueue(t *testing.T) {
	sp := testqueue.NewSpool(t)
	out, warn := list(t, sp)
	if out != "Mail queue is empty\n" || warn != "" {
		t.Errorf("List of an empty queue:\n%q\nwarnings %q", out, warn)
	}
	var js bytes.Buffer
	if err := mailq.ListJSON(&js, &js, sp); err != nil || js.Len() != 0 {
		t.Errorf("ListJSON of an empty queue: %v, %q", err, js.String())
	}
}

func TestList_PostqueueFormat(t *testing.T) {
	sp := testqueue.NewSpool(t)
	first := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(3000))
	env := envelope("", "carol@example.org", "dave@example.org", "erin@example.org", "frank@example.org")
	second := enqueue(t, sp, env, content(2000))
	update(t, sp, second, func(e *spool.Envelope) {
		e.Attempts = 2
		recordFailure(e, 0, "451 4.3.0 try again later", false, false)
		recordFailure(e, 1, "451 4.3.0 try again later", false, false)
		e.Recipients[2].Status = spool.Delivered
		recordFailure(e, 3, "550 5.1.1 <frank@example.org>: user unknown", true, false)
	})

	out, warn := list(t, sp)
	want := strings.Join([]string{
		listHeader,
		first + "      3000 " + when(arrival) + "   alice@example.com",
		recipientIndent + "bob@example.org",
		"",
		// The null sender is MAILER-DAEMON, as in Postfix; recipients
		// sharing a reason are listed under it once; the delivered one
		// is gone; the refused one says so and what it means.
		second + "      2000 " + when(arrival) + "   MAILER-DAEMON",
		reasonIndent + "(451 4.3.0 try again later)",
		recipientIndent + "carol@example.org",
		recipientIndent + "dave@example.org",
		reasonIndent + "(refused permanently: 550 5.1.1 <frank@example.org>: user unknown)",
		reasonIndent + "hint: The recipient's address does not exist at its domain: check it for typing mistakes.",
		recipientIndent + "frank@example.org",
		"",
		"-- 4 Kbytes in 2 Requests.",
		"",
	}, "\n")
	if out != want {
		t.Errorf("List:\n%s\nwant:\n%s", out, want)
	}
	if warn != "" {
		t.Errorf("warnings: %q", warn)
	}
}

func TestList_OneRequest(t *testing.T) {
	sp := testqueue.NewSpool(t)
	enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(1500))
	out, _ := list(t, sp)
	if !strings.HasSuffix(out, "\n-- 1 Kbytes in 1 Request.\n") {
		t.Errorf("List of one message of 1500 bytes ends:\n%s", out)
	}
}

func TestList_MarksActiveAndHeld(t *testing.T) {
	sp := testqueue.NewSpool(t)
	queued := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	held := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	active := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	update(t, sp, held, func(e *spool.Envelope) { e.Held = true })
	release := holdLock(t, sp, active)

	out, _ := list(t, sp)
	for _, want := range []string{queued + "  ", held + "! ", active + "* "} {
		if !strings.Contains(out, "\n"+want) {
			t.Errorf("List has no line starting %q:\n%s", want, out)
		}
	}
	// Listing tests the lock, never takes it: the runner still holds it.
	if _, err := sp.Lock(active); !errors.Is(err, spool.ErrBusy) {
		t.Errorf("after List, locking the active message: %v, want busy", err)
	}

	release()
	out, _ = list(t, sp)
	if strings.Contains(out, active+"*") {
		t.Errorf("a released message is still marked being delivered:\n%s", out)
	}
}

func TestList_MultiLineReasonOnOneLine(t *testing.T) {
	sp := testqueue.NewSpool(t)
	id := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	update(t, sp, id, func(e *spool.Envelope) {
		e.Attempts = 1
		recordFailure(e, 0, "451-4.3.0 first line\n451 4.3.0   second line", false, false)
	})
	out, _ := list(t, sp)
	if !strings.Contains(out, "\n"+reasonIndent+"(451-4.3.0 first line; 451 4.3.0 second line)\n") {
		t.Errorf("a multi-line reply is not listed on one line:\n%s", out)
	}
}

// The hint depends on where the attempt failed: "over quota" from the
// recipient's side is its full mailbox, from relay's own side (MAIL FROM)
// the account's sending limit.
func TestList_HintDependsOnSide(t *testing.T) {
	for _, tc := range []struct {
		ownSide bool
		hint    string
	}{
		{false, "hint: The recipient's mailbox is full."},
		{true, "hint: The account reached the provider's sending limit"},
	} {
		sp := testqueue.NewSpool(t)
		id := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
		update(t, sp, id, func(e *spool.Envelope) {
			e.Attempts = 1
			recordFailure(e, 0, "450 4.5.0 over quota", false, tc.ownSide)
		})
		out, _ := list(t, sp)
		if !strings.Contains(out, "\n"+reasonIndent+"(450 4.5.0 over quota)\n"+reasonIndent+tc.hint) {
			t.Errorf("own side %v: no %q under the reason:\n%s", tc.ownSide, tc.hint, out)
		}
	}
}

func TestList_RateWait(t *testing.T) {
	sp := testqueue.NewSpool(t)
	until := time.Date(2025, time.March, 7, 10, 0, 0, 0, time.UTC)
	id := enqueue(t, sp, envelope("alice@example.com", "bob@example.org", "carol@example.org"), content(100))
	update(t, sp, id, func(e *spool.Envelope) {
		e.Attempts = 1
		recordFailure(e, 0, "451 4.3.0 try again later", false, false)
		recordFailure(e, 1, "550 5.1.1 no such user", true, false)
		e.RateWait = &spool.RateWait{Smarthost: "main", Limit: "100/h", Until: until}
	})
	out, _ := list(t, sp)
	wait := "(waiting for the rate limit of smarthost main (100/h) until " + until.Local().Format(time.RFC3339) + ")"
	// The pending recipient waits for the limit, not for its old reply;
	// a wait is no failure, so it gets no hint. The refused one stays
	// refused.
	want := reasonIndent + wait + "\n" + recipientIndent + "bob@example.org\n" +
		reasonIndent + "(refused permanently: 550 5.1.1 no such user)\n"
	if !strings.Contains(out, want) {
		t.Errorf("List of a message waiting for a rate limit:\n%s\nwant it to hold:\n%s", out, want)
	}
	if strings.Contains(out, "try again later") {
		t.Errorf("the stale reply is listed instead of the rate wait:\n%s", out)
	}
}

// One damaged file never hides the rest of the queue, and listing (read
// access only) leaves it where it is.
func TestList_CorruptFilesWarned(t *testing.T) {
	sp := testqueue.NewSpool(t)
	good := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	garbage := writeQueueFile(t, sp, "this is no queue file\n")
	newer := writeQueueFile(t, sp, "relay-spool 99\n{}\n")

	out, warn := list(t, sp)
	if !strings.Contains(out, "\n"+good+" ") || !strings.HasSuffix(out, "in 1 Request.\n") {
		t.Errorf("List with damaged files beside one good message:\n%s", out)
	}
	for _, w := range []struct{ id, what string }{
		{garbage, "corrupt queue file"},
		{newer, "queue file written by a newer relay"},
	} {
		if !strings.Contains(warn, "mailq: spool: "+w.id+": "+w.what) {
			t.Errorf("no warning that %s is %s:\n%s", w.id, w.what, warn)
		}
		if strings.Contains(out, w.id) {
			t.Errorf("the unreadable %s is listed:\n%s", w.id, out)
		}
		if _, err := os.Stat(filepath.Join(sp.Dir, "queue", w.id)); err != nil {
			t.Errorf("listing moved or removed %s: %v", w.id, err)
		}
	}
	if n := strings.Count(warn, "\n"); n != 2 {
		t.Errorf("%d warning lines, want 2:\n%s", n, warn)
	}

	var js, jsWarn bytes.Buffer
	if err := mailq.ListJSON(&js, &jsWarn, sp); err != nil {
		t.Fatal(err)
	}
	if strings.Count(js.String(), "\n") != 1 || !strings.Contains(js.String(), good) {
		t.Errorf("ListJSON with damaged files:\n%s", js.String())
	}
	if jsWarn.String() != warn {
		t.Errorf("ListJSON warns\n%s\nList warned\n%s", jsWarn.String(), warn)
	}
}

func TestList_PermissionDenied(t *testing.T) {
	sp := testqueue.NewSpool(t)
	enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	var out, warn, js bytes.Buffer
	var listErr, jsonErr error
	withoutAccess(t, sp, func() {
		listErr = mailq.List(&out, &warn, sp)
		jsonErr = mailq.ListJSON(&js, &warn, sp)
	})
	for name, err := range map[string]error{"List": listErr, "ListJSON": jsonErr} {
		if !errors.Is(err, fs.ErrPermission) || sysexits.Code(err, 1) != sysexits.NoPerm {
			t.Errorf("%s of an unreadable queue: %v (exit %d), want permission denied (77)", name, err, sysexits.Code(err, 1))
		}
	}
	if strings.Contains(out.String(), "Mail queue is empty") {
		t.Errorf("an unreadable queue is listed as empty:\n%s", out.String())
	}
}

// failingWriter refuses every write, as a closed pipe does.
type failingWriter struct{}

var errWrite = errors.New("write refused")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestList_WriteErrorReturned(t *testing.T) {
	sp := testqueue.NewSpool(t)
	enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	if err := mailq.List(failingWriter{}, &bytes.Buffer{}, sp); !errors.Is(err, errWrite) {
		t.Errorf("List to a failing writer: %v", err)
	}
	if err := mailq.ListJSON(failingWriter{}, &bytes.Buffer{}, sp); !errors.Is(err, errWrite) {
		t.Errorf("ListJSON to a failing writer: %v", err)
	}
}
