package mailq_test

import (
	"bytes"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

func TestShow_EnvelopeAndHeader(t *testing.T) {
	sp := testqueue.NewSpool(t)
	next := arrival.Add(time.Hour)
	env := envelope("alice@example.com", "bob@example.org", "carol@example.org", "dave@example.org")
	env.Recipients[0].Original = "bob"
	env.DSN = spool.DSN{Notify: []string{"SUCCESS", "FAILURE"}, Ret: "HDRS", EnvID: "env-42"}
	env.Body = "8BITMIME"
	body := "Subject: hello\r\nFrom: Alice <alice@example.com>\r\n\r\nthe secret body\r\n"
	id := enqueue(t, sp, env, body)
	update(t, sp, id, func(e *spool.Envelope) {
		e.Attempts = 2
		e.NextAttempt = next
		recordFailure(e, 2, "550-5.1.1 no such user\n550 5.1.1 see the docs", true, false)
		recordFailure(e, 0, "451 4.3.0 try again later", false, false)
		e.Recipients[1].Status = spool.Delivered
	})

	var out bytes.Buffer
	if err := mailq.Show(&out, sp, id); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"Queue ID:     " + id,
		"State:        queued",
		"Arrival:      " + arrival.Local().Format(time.RFC3339),
		"Size:         " + strconv.Itoa(len(body)) + " bytes",
		"Sender:       <alice@example.com>",
		"Submitted by: alice (uid 1000)",
		"Attempts:     2",
		"Next attempt: " + next.Local().Format(time.RFC3339),
		"Last error:   451 4.3.0 try again later",
		"DSN:          NOTIFY=SUCCESS,FAILURE RET=HDRS ENVID=env-42",
		"Body:         8BITMIME",
		"Recipients:",
		"  <bob@example.org> pending (given as bob): 451 4.3.0 try again later",
		"  <carol@example.org> delivered",
		"  <dave@example.org> failed: 550-5.1.1 no such user; 550 5.1.1 see the docs",
		"Header:",
		"  Subject: hello",
		"  From: Alice <alice@example.com>",
		"",
	}, "\n")
	if out.String() != want {
		t.Errorf("Show:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestShow_States(t *testing.T) {
	sp := testqueue.NewSpool(t)
	until := arrival.Add(time.Hour)
	held := enqueue(t, sp, envelope("", "bob@example.org"), "Subject: x\n\nbody\n")
	update(t, sp, held, func(e *spool.Envelope) { e.Held = true })
	active := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), "Subject: x\n\nbody\n")
	holdLock(t, sp, active)
	waiting := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), "Subject: x\n\nbody\n")
	update(t, sp, waiting, func(e *spool.Envelope) {
		e.RateWait = &spool.RateWait{Smarthost: "main", Limit: "100/h", Until: until}
	})

	for _, tc := range []struct {
		id   string
		want []string
		not  []string
	}{
		// The null sender shows as <>; no DSN, body or last error lines
		// when there is nothing to say.
		{held, []string{"State:        on hold\n", "Sender:       <>\n"}, []string{"DSN:", "Body:", "Last error:", "Rate limit:"}},
		{active, []string{"State:        being delivered\n"}, nil},
		{waiting, []string{"State:        queued\n",
			"Rate limit:   waiting for the rate limit of smarthost main (100/h) until " + until.Local().Format(time.RFC3339) + "\n"}, nil},
	} {
		var out bytes.Buffer
		if err := mailq.Show(&out, sp, tc.id); err != nil {
			t.Fatalf("Show %s: %v", tc.id, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("Show %s has no %q:\n%s", tc.id, w, out.String())
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out.String(), n) {
				t.Errorf("Show %s has %q:\n%s", tc.id, n, out.String())
			}
		}
		// The header ends at the blank line: the body is never shown.
		if !strings.HasSuffix(out.String(), "Header:\n  Subject: x\n") {
			t.Errorf("Show %s does not end with the header:\n%s", tc.id, out.String())
		}
	}
}

func TestShow_UnknownIDIsNoInput(t *testing.T) {
	sp := testqueue.NewSpool(t)
	enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	for _, id := range []string{spool.NewID(time.Now()), "../../etc/passwd"} {
		var out bytes.Buffer
		err := mailq.Show(&out, sp, id)
		if !errors.Is(err, spool.ErrNotFound) || sysexits.Code(err, 1) != sysexits.NoInput {
			t.Errorf("Show %q: %v (exit %d), want not found (66)", id, err, sysexits.Code(err, 1))
		}
		if out.Len() != 0 {
			t.Errorf("Show %q wrote %q", id, out.String())
		}
	}
}

func TestShow_CorruptFile(t *testing.T) {
	sp := testqueue.NewSpool(t)
	id := writeQueueFile(t, sp, "relay-spool 1\n{\"id\":\n")
	err := mailq.Show(&bytes.Buffer{}, sp, id)
	if !errors.Is(err, spool.ErrCorrupt) || sysexits.Code(err, 1) == sysexits.NoInput {
		t.Errorf("Show of a corrupt file: %v (exit %d), want corrupt, not 66", err, sysexits.Code(err, 1))
	}
}

func TestShow_PermissionDenied(t *testing.T) {
	sp := testqueue.NewSpool(t)
	id := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	var err error
	withoutAccess(t, sp, func() { err = mailq.Show(&bytes.Buffer{}, sp, id) })
	if !errors.Is(err, fs.ErrPermission) || sysexits.Code(err, 1) != sysexits.NoPerm {
		t.Errorf("Show without access: %v (exit %d), want permission denied (77)", err, sysexits.Code(err, 1))
	}
}
