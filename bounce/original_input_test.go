package bounce_test

// Reading the original message: any line ends, a reader that cannot seek,
// 8-bit text, a large message streamed instead of held, a read error.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/relaymail/relay/bounce"
)

// onlyReader hides every method of a reader but Read (no io.Seeker).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestLineEnds(t *testing.T) {
	orig := "Subject: x\n\nFrom here on\r\n.\n..\nbare\rCR\nno final newline"
	want := "Subject: x\r\n\r\nFrom here on\r\n.\r\n..\r\nbare\r\nCR\r\nno final newline\r\n"
	for _, tc := range []struct {
		name string
		src  io.Reader
	}{
		{"seekable", strings.NewReader(orig)},
		{"not seekable", onlyReader{strings.NewReader(orig)}},
		{"one octet at a time", onlyReader{iotestOneByte(strings.NewReader(orig))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := failureReport(orig)
			r.Ret, r.Original = "FULL", tc.src
			out, eight := build(t, r)
			if eight {
				t.Errorf("eightBit = true for a 7-bit message")
			}
			_, parts := parse(t, out)
			if got := string(parts[2].body); got != want {
				t.Errorf("quoted:\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// unseekable is an io.Seeker that cannot seek, like a pipe.
type unseekable struct{ io.Reader }

func (unseekable) Seek(int64, int) (int64, error) { return 0, errors.New("illegal seek") }

func TestUnseekableSeeker(t *testing.T) {
	r := failureReport(original)
	r.Ret, r.Original = "FULL", unseekable{strings.NewReader(original)}
	out, eight := build(t, r)
	if eight {
		t.Errorf("eightBit = true for a 7-bit message")
	}
	msg, parts := parse(t, out)
	if !strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "8bit") ||
		!strings.EqualFold(parts[2].header.Get("Content-Transfer-Encoding"), "8bit") {
		t.Errorf("not labelled 8bit though its content could not be checked in advance")
	}
	if string(parts[2].body) != crlf(original) {
		t.Errorf("quoted original = %q", parts[2].body)
	}
}

func iotestOneByte(r io.Reader) io.Reader { return &oneByte{r} }

type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestEightBit(t *testing.T) {
	body8 := "Subject: =?utf-8?q?caf=C3=A9?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nCafé crème\n"
	head8 := "Subject: café\n\nplain body\n"
	for _, tc := range []struct {
		name      string
		orig      string
		ret       string
		seekable  bool
		wantEight bool
		wantLabel bool // Content-Transfer-Encoding: 8bit on the quoted part and the whole
	}{
		{"8-bit body, quoted", body8, "FULL", true, true, true},
		{"8-bit body, header only", body8, "HDRS", true, false, false},
		{"8-bit header", head8, "HDRS", true, true, true},
		{"7-bit", original, "FULL", true, false, false},
		{"8-bit body, not seekable", body8, "FULL", false, true, true},
		// Unknown in advance: labelled 8bit, which 7-bit data satisfies.
		{"7-bit, not seekable", original, "FULL", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := failureReport(tc.orig)
			r.Ret = tc.ret
			if !tc.seekable {
				r.Original = onlyReader{r.Original}
			}
			out, eight := build(t, r)
			if eight != tc.wantEight {
				t.Errorf("eightBit = %v, want %v", eight, tc.wantEight)
			}
			if has := bytes.ContainsFunc(out, func(r rune) bool { return r >= 0x80 }); has != eight {
				t.Errorf("eightBit = %v but the report has 8-bit data: %v", eight, has)
			}
			msg, parts := parse(t, out)
			label := func(h string) bool { return strings.EqualFold(h, "8bit") }
			if got := label(msg.Header.Get("Content-Transfer-Encoding")); got != tc.wantLabel {
				t.Errorf("top-level 8bit label %v, want %v", got, tc.wantLabel)
			}
			if got := label(parts[2].header.Get("Content-Transfer-Encoding")); got != tc.wantLabel {
				t.Errorf("part 3 8bit label %v, want %v", got, tc.wantLabel)
			}
			if tc.ret == "FULL" && string(parts[2].body) != crlf(tc.orig) {
				t.Errorf("quoted original changed: %q", parts[2].body)
			}
		})
	}
}

// genReader produces size octets of a message without holding it: a
// header, then 8-bit text lines. It records the largest read.
type genReader struct {
	size, off int64
	maxRead   int
	reads     int
}

const genHeader = "From: a@example.org\nSubject: big\n\n"

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	g.reads++
	g.maxRead = max(g.maxRead, len(p))
	n := 0
	for n < len(p) && g.off < g.size {
		p[n] = g.at(g.off)
		n++
		g.off++
	}
	return n, nil
}

func (g *genReader) at(off int64) byte {
	if off < int64(len(genHeader)) {
		return genHeader[off]
	}
	if off%64 == 63 {
		return '\n'
	}
	return "abcdefghé"[off%10] // é is two octets: 8-bit data
}

type countWriter struct {
	n    int64
	tail []byte
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.tail = append(c.tail, p...)
	if len(c.tail) > 256 {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-256:]...)
	}
	return len(p), nil
}

// TestLargeOriginalStreamed quotes a 5 MB message and checks that Build
// neither asks for it in one read nor allocates anything like its size.
func TestLargeOriginalStreamed(t *testing.T) {
	const size = 5 << 20
	run := func(t *testing.T, r *bounce.Report) *countWriter {
		t.Helper()
		var cw countWriter
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		eight, err := bounce.Build(&cw, r)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if !eight {
			t.Errorf("eightBit = false for an 8-bit message")
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
			t.Errorf("Build allocated %d bytes for a %d-byte message", alloc, size)
		}
		if cw.n < size {
			t.Errorf("report is %d bytes, the message %d", cw.n, size)
		}
		if !bytes.HasSuffix(cw.tail, []byte("--\r\n")) {
			t.Errorf("report ends with %q", cw.tail)
		}
		return &cw
	}
	t.Run("reader", func(t *testing.T) {
		g := &genReader{size: size}
		r := failureReport("")
		r.Ret, r.Original, r.OriginalSize = "FULL", g, size
		run(t, r)
		if g.off != size {
			t.Errorf("read %d of %d bytes", g.off, size)
		}
		if g.maxRead > 64<<10 {
			t.Errorf("largest read %d bytes", g.maxRead)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "msg")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, &genReader{size: size}); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		f, err = os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := failureReport("")
		r.Ret, r.Original, r.OriginalSize = "", io.NewSectionReader(f, 0, size), size
		r.FullLimit = 10 << 20
		run(t, r)
	})
}

func TestBuildErrors(t *testing.T) {
	r := failureReport(original)
	r.Recipients = nil
	if _, err := bounce.Build(io.Discard, r); !errors.Is(err, bounce.ErrNoRecipients) {
		t.Errorf("no recipients: %v", err)
	}
	r = failureReport(original)
	r.To = " \r\n"
	if _, err := bounce.Build(io.Discard, r); !errors.Is(err, bounce.ErrNoTo) {
		t.Errorf("no To: %v", err)
	}
	r = failureReport(original)
	r.Original = io.MultiReader(strings.NewReader("Subject: x\n"), errReader{})
	r.Ret = "FULL"
	if _, err := bounce.Build(io.Discard, r); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }
