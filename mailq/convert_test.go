package mailq_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
)

// TestFormat1_SameOutput: a queue written by spool format 1 (text reasons,
// "gave up after" reasons, last errors, own-side flags; package spool's
// testdata) is listed, listed as JSON and shown exactly as the relay that
// wrote it listed and showed it (the golden files next to it, made by that
// relay).
func TestFormat1_SameOutput(t *testing.T) {
	// The golden files were written in UTC.
	loc := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = loc })

	testdata := filepath.Join("..", "spool", "testdata")
	s, err := spool.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(testdata, "format1", "queue")
	names, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Dir, "queue", n.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(n.Name(), ".env") {
			ids = append(ids, n.Name())
		}
	}
	golden := func(name string) string {
		b, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var list, js, show, warn bytes.Buffer
	if err := mailq.List(&list, &warn, s); err != nil {
		t.Fatal(err)
	}
	if err := mailq.ListJSON(&js, &warn, s); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := mailq.Show(&show, s, id); err != nil {
			t.Fatal(err)
		}
	}
	if warn.Len() > 0 {
		t.Errorf("warnings: %s", warn.String())
	}
	for _, c := range []struct{ name, got string }{
		{"format1-mailq.txt", list.String()},
		{"format1-mailq.json", js.String()},
		{"format1-show.txt", show.String()},
	} {
		if want := golden(c.name); c.got != want {
			t.Errorf("%s differs from what format 1's relay printed:\n%s\nwant:\n%s", c.name, c.got, want)
		}
	}
}
