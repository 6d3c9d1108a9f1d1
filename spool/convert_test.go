package spool_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/spool"
)

// format1Spool copies the spool that relay wrote with format 1
// (testdata/format1, see testdata/README) into a new spool directory.
func format1Spool(t *testing.T) *spool.Spool {
	t.Helper()
	return testqueue.SpoolFrom(t, "format1")
}

// format1Want is every envelope of testdata/format1 as this relay must
// read it: the text reasons, last errors and own-side flags of format 1
// become failure structures, nothing lost.
func format1Want() map[string]*spool.Envelope {
	arrival := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	pending := spool.Pending
	return map[string]*spool.Envelope{
		// Delivered, deferred, failed and given up.
		"1K1VS7Z0X9MXR8Y": {
			ID: "1K1VS7Z0X9MXR8Y", Sender: "alice@example.org", UID: 1000, User: "alice",
			Arrival: arrival, Attempts: 3, NextAttempt: arrival.Add(4 * time.Hour),
			Recipients: []spool.Recipient{
				{Address: "a@example.net", Status: spool.Delivered, Reply: "250 2.0.0 Ok: queued as 4XyZ12"},
				{Address: "b@example.net", Original: "bee", Status: pending,
					Failure: &failure.Failure{Stage: failure.StageRcpt, Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"}},
				{Address: "c@example.net", Status: spool.Failed, Notified: true,
					Failure: &failure.Failure{Stage: failure.StageRcpt, Code: 550, Enhanced: "5.1.1", Text: "<c@example.net>: Recipient address rejected: User unknown"}},
				{Address: "d@example.net", Status: spool.Failed,
					Failure: &failure.Failure{Stage: failure.StageRcpt, Code: 451, Enhanced: "4.3.0", Text: "Temporary local problem; try again later", GaveUpAfter: "5d"}},
			},
			LastFailure: &failure.Failure{Stage: failure.StageRcpt, Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"},
			DSN:         spool.DSN{Notify: []string{"FAILURE", "DELAY"}, Ret: "HDRS", EnvID: "env-1"},
			Body:        "8BITMIME", MessageID: "m1@example.org", Warned: true,
		},
		// relay's own side: AUTH refused, held.
		"1K1VS7Z1T1VDBVP": {
			ID: "1K1VS7Z1T1VDBVP", Sender: "root@server1.lan", UID: 0, User: "root",
			Arrival: arrival, Attempts: 12, NextAttempt: arrival, Held: true,
			Recipients: []spool.Recipient{
				{Address: "ops@example.net", Status: pending,
					Failure: &failure.Failure{Stage: failure.StageAuth, Code: 535, Enhanced: "5.7.8", Text: "Error: authentication failed: Invalid user or password"}},
				{Address: "dev@example.net", Status: pending,
					Failure: &failure.Failure{Stage: failure.StageAuth, Code: 535, Enhanced: "5.7.8", Text: "Error: authentication failed: Invalid user or password"}},
			},
			LastFailure: &failure.Failure{Stage: failure.StageAuth, Code: 535, Enhanced: "5.7.8", Text: "Error: authentication failed: Invalid user or password"},
		},
		// relay's own side without a reply: a smarthost remembered as down.
		"1K1VS7Z2P9DDFQK": {
			ID: "1K1VS7Z2P9DDFQK", Sender: "", UID: -1, User: "MAILER-DAEMON", Bounce: true,
			Arrival: arrival, Attempts: 1, NextAttempt: arrival.Add(5 * time.Minute),
			Recipients: []spool.Recipient{
				{Address: "postmaster@example.org", Status: pending,
					Failure: &failure.Failure{Stage: failure.StageConnect, Text: "primary is down until 2025-03-01T10:05:00Z (dial tcp 192.0.2.1:587: connect: connection refused)",
						Cause: &failure.Failure{Text: "dial tcp 192.0.2.1:587: connect: connection refused"}}},
			},
			LastFailure: &failure.Failure{Stage: failure.StageConnect, Text: "primary is down until 2025-03-01T10:05:00Z (dial tcp 192.0.2.1:587: connect: connection refused)",
				Cause: &failure.Failure{Text: "dial tcp 192.0.2.1:587: connect: connection refused"}},
		},
		// The arrival envelope alone (no .env): an alias failed at
		// submission, stage not known; RCPT as mailq assumed.
		"1K1VS7Z2Z9XYPY4": {
			ID: "1K1VS7Z2Z9XYPY4", Sender: "bob@example.org", UID: 1001, User: "bob",
			Arrival: arrival, NextAttempt: arrival,
			Recipients: []spool.Recipient{
				{Address: "pipe", Status: spool.Failed,
					Failure: &failure.Failure{Stage: failure.StageRcpt, Code: 550, Enhanced: "5.1.1", Text: "<pipe>: delivery to a command is not supported"}},
				{Address: "carol@example.net", Original: "carol", Status: pending},
			},
		},
		// Waiting for a rate limit after greylisting.
		"1K1VS7Z372D9KM7": {
			ID: "1K1VS7Z372D9KM7", Sender: "alice@example.org", UID: 1000, User: "alice",
			Arrival: arrival, Attempts: 1, NextAttempt: arrival,
			Recipients: []spool.Recipient{
				{Address: "e@example.net", Status: pending,
					Failure: &failure.Failure{Stage: failure.StageRcpt, Code: 451, Enhanced: "4.7.1", Text: "Greylisted, see https://example.net/greylist"}},
			},
			LastFailure: &failure.Failure{Stage: failure.StageRcpt, Code: 451, Enhanced: "4.7.1", Text: "Greylisted, see https://example.net/greylist"},
			RateWait:    &spool.RateWait{Smarthost: "primary", Limit: "100/h", Until: arrival.Add(10 * time.Minute)},
			RateWaited:  3 * time.Minute,
		},
	}
}

// format1Text is what format 1 stored as text for each message: the
// reasons, the last error and own_side, which the converted envelope must
// give back unchanged.
var format1Text = map[string]struct {
	reasons   []string
	lastError string
	ownSide   bool
}{
	"1K1VS7Z0X9MXR8Y": {[]string{"250 2.0.0 Ok: queued as 4XyZ12", "452 4.2.2 Mailbox full",
		"550 5.1.1 <c@example.net>: Recipient address rejected: User unknown",
		"gave up after 5d: 451 4.3.0 Temporary local problem; try again later"}, "rcpt: 452 4.2.2 Mailbox full", false},
	"1K1VS7Z1T1VDBVP": {[]string{"535 5.7.8 Error: authentication failed: Invalid user or password",
		"535 5.7.8 Error: authentication failed: Invalid user or password"},
		"auth: 535 5.7.8 Error: authentication failed: Invalid user or password", true},
	"1K1VS7Z2P9DDFQK": {[]string{"primary is down until 2025-03-01T10:05:00Z (dial tcp 192.0.2.1:587: connect: connection refused)"},
		"connect: primary is down until 2025-03-01T10:05:00Z (dial tcp 192.0.2.1:587: connect: connection refused)", true},
	"1K1VS7Z2Z9XYPY4": {[]string{"550 5.1.1 <pipe>: delivery to a command is not supported", ""}, "", false},
	"1K1VS7Z372D9KM7": {[]string{"451 4.7.1 Greylisted, see https://example.net/greylist"},
		"rcpt: 451 4.7.1 Greylisted, see https://example.net/greylist", false},
}

func checkFormat1(t *testing.T, when string, id string, got *spool.Envelope) {
	t.Helper()
	want := format1Want()[id]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: %s read as\n%+v\nwant\n%+v", when, id, got, want)
		for i := range min(len(got.Recipients), len(want.Recipients)) {
			if g, w := got.Recipients[i], want.Recipients[i]; !reflect.DeepEqual(g, w) {
				t.Errorf("  recipient %d: %+v (failure %+v), want %+v (failure %+v)", i, g, g.Failure, w, w.Failure)
			}
		}
	}
	text := format1Text[id]
	for i, r := range got.Recipients {
		if r.Reason() != text.reasons[i] {
			t.Errorf("%s: %s recipient %s: reason %q, format 1 stored %q", when, id, r.Address, r.Reason(), text.reasons[i])
		}
	}
	if got.LastError() != text.lastError || got.OwnSide() != text.ownSide {
		t.Errorf("%s: %s: last error %q, own side %v; format 1 stored %q, %v", when, id, got.LastError(), got.OwnSide(), text.lastError, text.ownSide)
	}
}

// TestFormat1_ReadConverted: a spool written by format 1 is read by this
// relay, by Scan, Read and Lock alike, with every field of every envelope.
func TestFormat1_ReadConverted(t *testing.T) {
	s := format1Spool(t)
	seen := 0
	err := s.Scan(func(id string, m *spool.Message, err error) error {
		if err != nil {
			t.Errorf("Scan %s: %v", id, err)
			return nil
		}
		seen++
		if m.Size != int64(len("Subject: test\r\n\r\nhello\r\n")) {
			t.Errorf("Scan %s: size %d", id, m.Size)
		}
		checkFormat1(t, "Scan", id, &m.Envelope)
		return nil
	})
	if err != nil || seen != len(format1Want()) {
		t.Fatalf("Scan saw %d messages (%v), want %d", seen, err, len(format1Want()))
	}
	for id := range format1Want() {
		m, err := s.Read(id)
		if err != nil {
			t.Fatal(err)
		}
		checkFormat1(t, "Read", id, &m.Envelope)
		l, err := s.Lock(id)
		if err != nil {
			t.Fatal(err)
		}
		checkFormat1(t, "Lock", id, l.Env)
		l.Close()
	}
}

// TestFormat1_ConvertedOnUpdate: reading changes nothing on disk; the next
// update of a message writes its envelope file in the current format, and
// the message reads back the same. The queue file keeps its format 1
// arrival envelope: it is never rewritten.
func TestFormat1_ConvertedOnUpdate(t *testing.T) {
	s := format1Spool(t)
	queue := filepath.Join(s.Dir, "queue")
	before := map[string][]byte{}
	names, _ := os.ReadDir(queue)
	for _, n := range names {
		before[n.Name()], _ = os.ReadFile(filepath.Join(queue, n.Name()))
	}
	for id := range format1Want() {
		if _, err := s.Read(id); err != nil {
			t.Fatal(err)
		}
		l, err := s.Lock(id)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	for name, b := range before {
		if after, _ := os.ReadFile(filepath.Join(queue, name)); string(after) != string(b) {
			t.Errorf("reading changed %s", name)
		}
	}

	for id := range format1Want() {
		l, err := s.Lock(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Update(); err != nil {
			t.Fatal(err)
		}
		l.Close()
		env, err := os.ReadFile(filepath.Join(queue, id+".env"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(env), "relay-spool 2\n{") || strings.Contains(string(env), `"reason"`) || strings.Contains(string(env), `"last_error"`) {
			t.Errorf("%s.env after the update: %q, want format 2 without text reasons", id, env)
		}
		if q, _ := os.ReadFile(filepath.Join(queue, id)); string(q) != string(before[id]) {
			t.Errorf("the update rewrote queue file %s", id)
		}
		m, err := s.Read(id)
		if err != nil {
			t.Fatal(err)
		}
		checkFormat1(t, "after update", id, &m.Envelope)
	}
}

// TestFormat_NewerEnvelopeFileRefused: an envelope file of a newer format
// is left alone and reported, as a newer queue file is.
func TestFormat_NewerEnvelopeFileRefused(t *testing.T) {
	s := format1Spool(t)
	const id = "1K1VS7Z0X9MXR8Y"
	envPath := filepath.Join(s.Dir, "queue", id+".env")
	newer := []byte("relay-spool 3\n{\"id\":\"" + id + "\",\"recipients\":[{\"address\":\"a@example.net\",\"status\":\"pending\"}]}\n")
	if err := os.WriteFile(envPath, newer, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(id); !errors.Is(err, spool.ErrNewer) {
		t.Errorf("Read: %v, want ErrNewer", err)
	}
	if _, err := s.Lock(id); !errors.Is(err, spool.ErrNewer) {
		t.Errorf("Lock: %v, want ErrNewer", err)
	}
	if b, err := os.ReadFile(envPath); err != nil || string(b) != string(newer) {
		t.Errorf("the newer envelope file was changed or moved: %v", err)
	}
}

// TestFormat_WrittenWithVersion: new queue files and envelope files carry
// the current format line, and a failure survives the round trip as a
// structure.
func TestFormat_WrittenWithVersion(t *testing.T) {
	s := testqueue.NewSpool(t)
	id := enqueue(t, s, "Subject: x\n\nbody\n", "a@example.org", "b@example.org")
	q, _ := os.ReadFile(filepath.Join(s.Dir, "queue", id))
	if !strings.HasPrefix(string(q), "relay-spool 2\n") {
		t.Errorf("queue file starts %.20q, want format 2", q)
	}
	l, err := s.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	f := &failure.Failure{Stage: failure.StageMail, Code: 553, Enhanced: "5.7.1", Text: "Sender address rejected: not owned by auth user", Time: at}
	l.Env.Recipients[0].Failure = f
	l.Env.Recipients[1].Status, l.Env.Recipients[1].Reply = spool.Delivered, "250 2.0.0 Ok"
	l.Env.LastFailure = f
	if err := l.Update(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	m, err := s.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Recipients[0].Failure; got == nil || *got != *f {
		t.Errorf("failure read back as %+v, want %+v", got, f)
	}
	if m.Recipients[1].Reason() != "250 2.0.0 Ok" || m.LastError() != "mail: 553 5.7.1 Sender address rejected: not owned by auth user" || !m.OwnSide() {
		t.Errorf("reply %q, last error %q, own side %v", m.Recipients[1].Reason(), m.LastError(), m.OwnSide())
	}
}

// TestFormat1_HostState: a smarthost's down state written by format 1
// kept the failure as its reply line; it is read back as the structure,
// and a state without any failure is no state.
func TestFormat1_HostState(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "hosts"), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, "hosts", name+".json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("old", `{"addr":"smtp.example.org:587/starttls","down_until":"2025-03-01T10:05:00Z","reason":"421 4.3.2 Service not available","failures":2}`)
	write("empty", `{"addr":"smtp.example.org:587/starttls","down_until":"2025-03-01T10:05:00Z","failures":2}`)

	got := sp.Host("old")
	want := failure.Failure{Code: 421, Enhanced: "4.3.2", Text: "Service not available"}
	if got.Failure != want || got.Failures != 2 || got.Addr != "smtp.example.org:587/starttls" {
		t.Errorf("format-1 host state read as %+v, want failure %+v", got, want)
	}
	if got := sp.Host("empty"); got != (spool.HostState{}) {
		t.Errorf("a host state without a failure read as %+v, want none", got)
	}

	// Written back, it is format 2's structure.
	if err := sp.SetHost("old", got); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "hosts", "old.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"failure":{"code":421,"enhanced":"4.3.2","text":"Service not available"}`) || strings.Contains(string(b), `"reason"`) {
		t.Errorf("host state written as %s", b)
	}
	if again := sp.Host("old"); again != got {
		t.Errorf("read back as %+v, want %+v", again, got)
	}
}
