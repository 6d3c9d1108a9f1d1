package spool_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/spool"
)

// A Summary says the same as the full read (Scan) about every field it
// has: on small and large messages (the size without fstat, and with),
// an envelope over 4 KiB, envelope files, a held message, format 1's
// spool, and an unreadable file.
func TestScanSummaries_AgreesWithScan(t *testing.T) {
	for name, sp := range map[string]*spool.Spool{"current": summarySpool(t), "format 1": format1Spool(t)} {
		t.Run(name, func(t *testing.T) {
			full := map[string]*spool.Message{}
			fullErr := map[string]bool{}
			sp.Scan(func(id string, m *spool.Message, err error) error {
				full[id], fullErr[id] = m, err != nil
				return nil
			})
			n := 0
			err := sp.ScanSummaries(func(id string, s *spool.Summary, err error) error {
				n++
				if fullErr[id] != (err != nil) {
					t.Errorf("%s: summary error %v, full read error %v", id, err, fullErr[id])
					return nil
				}
				if err != nil {
					return nil
				}
				m := full[id]
				var rcpts []string
				for _, r := range m.Recipients {
					rcpts = append(rcpts, r.Address+" "+string(r.Status))
				}
				var srcpts []string
				for _, r := range s.Recipients {
					srcpts = append(srcpts, r.Address+" "+string(r.Status))
				}
				got := fmt.Sprintf("%s %q %v %d %v %v %v %d %q %q", s.ID, s.Sender, s.Arrival.UTC(), s.Attempts, s.NextAttempt.UTC(), s.Held, s.Bounce, s.FileSize, srcpts, s.Smarthost)
				want := fmt.Sprintf("%s %q %v %d %v %v %v %d %q %q", m.ID, m.Sender, m.Arrival.UTC(), m.Attempts, m.NextAttempt.UTC(), m.Held, m.Bounce, fileSize(t, sp, id), rcpts, m.Smarthost)
				if got != want {
					t.Errorf("summary %s\n  full    %s", got, want)
				}
				if (s.RateWait == nil) != (m.RateWait == nil) {
					t.Errorf("%s: rate wait %v, full read %v", id, s.RateWait, m.RateWait)
				}
				return nil
			})
			if err != nil || n != len(full) {
				t.Errorf("%d summaries (err %v), %d full reads", n, err, len(full))
			}
		})
	}
}

// fileSize is the size of message id's queue file.
func fileSize(t *testing.T, sp *spool.Spool, id string) int64 {
	fi, err := os.Stat(filepath.Join(sp.Dir, "queue", id))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func summarySpool(t *testing.T) *spool.Spool {
	s := testqueue.NewSpool(t)
	enqueue(t, s, "Subject: small\r\n\r\nhi\r\n", "a@example.org")
	enqueue(t, s, "Subject: large\r\n\r\n"+strings.Repeat("x", 10000)+"\r\n", "b@example.org")
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("recipient-with-a-long-name-%03d@example.org", i))
	}
	enqueue(t, s, "Subject: long envelope\r\n\r\nhi\r\n", many...) // envelope over 4 KiB
	held := enqueue(t, s, "Subject: held\r\n\r\nhi\r\n", "c@example.org", "d@example.net")
	if err := s.Change(held, time.Second, func(e *spool.Envelope) bool {
		e.Held, e.Attempts = true, 3
		e.Smarthost = "relay2" // sendmail -a
		e.Recipients[0].Status = spool.Delivered
		e.RateWait = &spool.RateWait{Smarthost: "main", Limit: "1/h", Until: time.Now().Add(time.Hour)}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	bad := spool.NewID(time.Now())
	os.WriteFile(filepath.Join(s.Dir, "queue", bad), []byte("not a queue file\n"), 0o600)
	return s
}

// An envelope file records its queue file's size, and the count takes
// it from there (no stat per message): a recorded size that differs from
// the file's shows up in the Summary; the full read is not affected by
// the extra key.
func TestScanSummaries_SizeFromTheEnvelopeFile(t *testing.T) {
	s := testqueue.NewSpool(t)
	id := enqueue(t, s, "Subject: held\r\n\r\nhi\r\n", "c@example.org")
	if err := s.Change(id, time.Second, func(e *spool.Envelope) bool { e.Held = true; return true }); err != nil {
		t.Fatal(err)
	}
	envPath := filepath.Join(s.Dir, "queue", id+".env")
	b, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"queue_file_size":%d`, fileSize(t, s, id))
	if !strings.Contains(string(b), want) {
		t.Fatalf("the envelope file does not record %s:\n%s", want, b)
	}
	// The count believes the envelope file: proof that it did not stat.
	// Replaced as relay replaces it (a new file renamed over the old):
	// the index trusts an inode's content never to change.
	os.WriteFile(envPath+".new", []byte(strings.Replace(string(b), want, `"queue_file_size":12345`, 1)), 0o600)
	if err := os.Rename(envPath+".new", envPath); err != nil {
		t.Fatal(err)
	}
	var got int64
	s.ScanSummaries(func(_ string, m *spool.Summary, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		got = m.FileSize
		return nil
	})
	if got != 12345 {
		t.Errorf("FileSize %d, want the recorded 12345", got)
	}
	m, err := s.Read(id)
	if err != nil || !m.Held {
		t.Errorf("the full read after the count: %+v, %v", m, err)
	}
}
