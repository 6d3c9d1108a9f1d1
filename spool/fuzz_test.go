package spool_test

// A fuzz target of the spool's reader: queue files and envelope files as
// a crash, a full disk, an older or newer relay or a hostile hand may
// leave them. Seeds: testdata/fuzz/ (the format-1 and format-2 files of
// testdata/); bench/fuzz.sh runs it longer.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/relaymail/relay/spool"
)

const fuzzID = "1K1VS7Z0X9MXR8Y"

// FuzzQueueFile writes fuzzed bytes as queue/ID (and, when env is not
// empty, queue/ID.env) and reads them as mailq, a runner and queue show
// do. Read and Scan agree and either refuse the message (corrupt, or
// written by a newer relay) or give an envelope of that ID with
// recipients; Lock then either moves a corrupt message to corrupt/ (out
// of the queue) or gives the same envelope and content that is the
// file's end, and an Update reads back unchanged.
func FuzzQueueFile(f *testing.F) {
	for _, name := range []string{"1K1VS7Z0X9MXR8Y", "1K1VS7Z2Z9XYPY4"} {
		q, _ := os.ReadFile(filepath.Join("testdata/format1/queue", name))
		env, _ := os.ReadFile(filepath.Join("testdata/format1/queue", name+".env"))
		// Each as queue/ID of the one ID the target writes.
		f.Add(bytes.ReplaceAll(q, []byte(name), []byte(fuzzID)), bytes.ReplaceAll(env, []byte(name), []byte(fuzzID)))
	}
	f.Add([]byte("relay-spool 2\n{\"id\":\""+fuzzID+"\",\"sender\":\"\",\"recipients\":[{\"address\":\"a@b.example\",\"status\":\"pending\"}],\"uid\":0,\"user\":\"root\",\"arrival\":\"2026-01-01T00:00:00Z\",\"attempts\":0,\"next_attempt\":\"2026-01-01T00:00:00Z\"}\nSubject: x\n\nbody\n"), []byte(nil))
	f.Add([]byte("relay-spool 3\n{}\n"), []byte(nil))
	f.Add([]byte("relay-spool 2\n{\"id\":\"OTHER\"}"), []byte("{\"id\":\"1K1VS7Z2Z9XYPY5\",\"recipients\":[{}]}"))
	f.Add([]byte(""), []byte("relay-spool 2\n"))
	f.Fuzz(func(t *testing.T, queue, env []byte) {
		dir := filepath.Join(t.TempDir(), "spool")
		sp, err := spool.Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		qpath := filepath.Join(dir, "queue", fuzzID)
		if err := os.WriteFile(qpath, queue, 0o600); err != nil {
			t.Fatal(err)
		}
		if len(env) > 0 {
			if err := os.WriteFile(qpath+".env", env, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		m, rerr := sp.Read(fuzzID)
		var scanned *spool.Message
		var serr error
		calls := 0
		if err := sp.Scan(func(id string, m *spool.Message, err error) error {
			calls++
			scanned, serr = m, err
			return nil
		}); err != nil || calls != 1 {
			t.Fatalf("Scan: %v after %d messages", err, calls)
		}
		if (rerr == nil) != (serr == nil) || !reflect.DeepEqual(m, scanned) {
			t.Fatalf("Read gives %+v, %v; Scan %+v, %v", m, rerr, scanned, serr)
		}
		if rerr != nil {
			if !errors.Is(rerr, spool.ErrCorrupt) && !errors.Is(rerr, spool.ErrNewer) {
				t.Fatalf("Read: %v, neither corrupt nor newer", rerr)
			}
		} else if m.ID != fuzzID || len(m.Recipients) == 0 || m.Size < 0 || m.Size > int64(len(queue)) {
			t.Fatalf("Read gives %+v of %d bytes", m.Envelope, m.Size)
		}

		l, lerr := sp.Lock(fuzzID)
		if lerr != nil {
			_, stillQueued := os.Stat(qpath)
			switch {
			case errors.Is(lerr, spool.ErrCorrupt):
				if stillQueued == nil {
					t.Fatalf("Lock: %v, but the file is still in the queue", lerr)
				}
				if _, err := os.Stat(filepath.Join(dir, "corrupt", fuzzID)); err != nil {
					t.Fatalf("Lock: %v, but the file is not in corrupt/: %v", lerr, err)
				}
			case errors.Is(lerr, spool.ErrNewer):
				if stillQueued != nil {
					t.Fatalf("Lock: %v, and the file left the queue", lerr)
				}
			default:
				t.Fatalf("Lock: %v, neither corrupt nor newer", lerr)
			}
			if rerr == nil {
				t.Fatalf("Read gave %+v, Lock refuses: %v", m.Envelope, lerr)
			}
			return
		}
		defer l.Close()
		if rerr != nil || !reflect.DeepEqual(*l.Env, m.Envelope) || l.Size != m.Size {
			t.Fatalf("Lock gives %+v (%d bytes), Read %+v, %v", *l.Env, l.Size, m, rerr)
		}
		content, err := io.ReadAll(l.Content())
		if err != nil || !bytes.HasSuffix(queue, content) || int64(len(content)) != l.Size {
			t.Fatalf("content %q is not the end of the queue file", content)
		}
		if err := l.Update(); err != nil {
			t.Fatalf("Update: %v", err)
		}
		again, err := sp.Read(fuzzID)
		if err != nil || !reflect.DeepEqual(again.Envelope, *l.Env) {
			t.Fatalf("after Update, Read gives %+v, %v; want %+v", again, err, *l.Env)
		}
	})
}
