package listener

import (
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// BenchmarkServe_Message: one small message per iteration over one
// loopback session, queued durably (fsync, rename, directory fsync: the
// disk sets the pace). Numbers are printed, never asserted.
func BenchmarkServe_Message(b *testing.B) {
	f := newFixture(b, Options{})
	cl, err := smtp.Dial(f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Hello("bench.example"); err != nil {
		b.Fatal(err)
	}
	body := "Subject: bench\r\n\r\n" + strings.Repeat("a line of a small message body\r\n", 60)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := cl.Mail("app@example.org", nil); err != nil {
			b.Fatal(err)
		}
		if err := cl.Rcpt("bob@example.org", nil); err != nil {
			b.Fatal(err)
		}
		w, err := cl.Data()
		if err != nil {
			b.Fatal(err)
		}
		io.WriteString(w, body)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
