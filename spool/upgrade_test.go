package spool_test

import (
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/spool"
)

// scanAll is every message Scan gives, by ID, failing on any error.
func scanAll(t *testing.T, s *spool.Spool) (ids []string, msgs map[string]*spool.Message) {
	t.Helper()
	msgs = map[string]*spool.Message{}
	err := s.Scan(func(id string, m *spool.Message, err error) error {
		if err != nil {
			t.Fatalf("Scan %s: %v", id, err)
		}
		ids = append(ids, id)
		msgs[id] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, msgs
}

// TestUpgrade_SpoolWithoutIndex: the spool of the relay before the
// envelope index (commit a0b0368, testdata/format2-a0b0368) is read as
// it is, gets its index from the first Clean (what every runner does
// first), is read the same from the index, and takes changes after.
func TestUpgrade_SpoolWithoutIndex(t *testing.T) {
	s := testqueue.OldSpool(t)
	index := filepath.Join(s.Dir, "index")
	if _, err := os.Stat(index); !os.IsNotExist(err) {
		t.Fatalf("the old spool has an index: %v", err)
	}
	ids, before := scanAll(t, s)
	if !slices.Equal(ids, testqueue.OldSpoolIDs) {
		t.Fatalf("Scan of the old spool: %v, want %v", ids, testqueue.OldSpoolIDs)
	}
	for _, id := range ids {
		m, err := s.Read(id)
		if err != nil || !reflect.DeepEqual(m, before[id]) {
			t.Errorf("%s: Read %+v (%v), Scan %+v", id, m, err, before[id])
		}
	}
	if !before[testqueue.OldSpoolHeld].Held || before[ids[0]].LastFailure == nil || before[ids[4]].Attempts != 0 {
		t.Errorf("the old envelopes were not read as written: %+v", before)
	}

	if _, err := s.Clean(time.Now()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(index)
	if err != nil {
		t.Fatalf("Clean made no index: %v", err)
	}
	for _, id := range ids {
		if n := bytes.Count(b, []byte(" "+id+" ")); n != 1 {
			t.Errorf("the index has %d records of %s, want 1:\n%s", n, id, b)
		}
	}
	if _, after := scanAll(t, s); !reflect.DeepEqual(after, before) {
		t.Errorf("Scan from the index differs from the files:\n%+v\n%+v", after, before)
	}
	// Proof that the index is what is read: a record that names the
	// current inode is believed when its checksum is right, never when
	// it is not (a torn or damaged line).
	for _, sum := range []bool{false, true} {
		var out [][]byte
		for _, line := range bytes.Split(b, []byte("\n")) {
			if f := bytes.SplitN(line, []byte(" "), 8); len(f) == 8 && string(f[2]) == ids[0] {
				f[7] = bytes.ReplaceAll(f[7], []byte(`"bob@example.org"`), []byte(`"bobby@example.org"`))
				if sum {
					f[6] = []byte(strconv.FormatUint(uint64(crc32.ChecksumIEEE(f[7])), 16))
				}
				line = bytes.Join(f, []byte(" "))
			}
			out = append(out, line)
		}
		if err := os.WriteFile(index, bytes.Join(out, []byte("\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, m := scanAll(t, s); (m[ids[0]].Recipients[0].Address == "bobby@example.org") != sum {
			t.Errorf("checksum right %v: Scan read %s", sum, m[ids[0]].Recipients[0].Address)
		}
	}
	if err := os.WriteFile(index, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// A change after the upgrade: the index follows it.
	if err := s.Change(testqueue.OldSpoolHeld, time.Second, func(e *spool.Envelope) bool { e.Held = false; return true }); err != nil {
		t.Fatal(err)
	}
	if _, m := scanAll(t, s); m[testqueue.OldSpoolHeld].Held {
		t.Error("released message still listed as held")
	}
	if err := s.Remove(ids[1], time.Second); err != nil {
		t.Fatal(err)
	}
	if got, _ := scanAll(t, s); slices.Contains(got, ids[1]) || len(got) != 4 {
		t.Errorf("after a delete Scan lists %v", got)
	}
}
