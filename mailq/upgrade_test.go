package mailq_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/mailq"
)

// TestUpgrade_SameOutput: the spool of the relay before the envelope
// index (commit a0b0368) is listed, and listed as JSON, exactly as that
// relay listed it: as found (no index), and from the index its first
// Clean makes.
func TestUpgrade_SameOutput(t *testing.T) {
	loc := time.Local
	time.Local = time.UTC // the golden files were written in UTC
	t.Cleanup(func() { time.Local = loc })
	sp := testqueue.OldSpool(t)
	dir := testqueue.OldSpoolTestdata()
	for _, stage := range []string{"without index", "with index"} {
		if stage == "with index" {
			if _, err := sp.Clean(time.Now()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(sp.Dir, "index")); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			golden string
			list   func(w, warn *bytes.Buffer) error
		}{
			{"format2-a0b0368-mailq.txt", func(w, warn *bytes.Buffer) error { return mailq.List(w, warn, sp) }},
			{"format2-a0b0368-mailq.json", func(w, warn *bytes.Buffer) error { return mailq.ListJSON(w, warn, sp) }},
		} {
			want, err := os.ReadFile(filepath.Join(dir, tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			var out, warn bytes.Buffer
			if err := tc.list(&out, &warn); err != nil || warn.Len() > 0 {
				t.Fatalf("%s, %s: %v %s", stage, tc.golden, err, warn.String())
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%s: %s differs:\n%s\nwant:\n%s", stage, tc.golden, out.String(), want)
			}
		}
	}
}
