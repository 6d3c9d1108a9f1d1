package relay

// Re-encoding (encode.go): each decision on its own, and the proof that
// matters: decoding what goes out gives back the original bytes of every
// part, and nothing not re-encoded changes at all.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"runtime"
	"strings"
	"testing"
)

// reencode runs the plan and the write as Send does; nil plan: as is.
func reencode(t *testing.T, msg string, eightBitOK bool) (string, *encodePlan) {
	t.Helper()
	plan, err := planEncoding(strings.NewReader(msg), eightBitOK)
	if err != nil {
		t.Fatal(err)
	}
	if plan == nil {
		return msg, nil
	}
	var b bytes.Buffer
	n, err := plan.write(&b, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) {
		t.Errorf("write counted %d octets, wrote %d", n, b.Len())
	}
	return b.String(), plan
}

// wantSMTPClean checks that out has no 8-bit octet (unless allowed) and no
// line over 998 octets.
func wantSMTPClean(t *testing.T, out string, eightBitOK bool) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if len(strings.TrimSuffix(l, "\r")) > maxLineOctets {
			t.Errorf("line %d has %d octets", i+1, len(l))
		}
		if !eightBitOK {
			for _, c := range []byte(l) {
				if c >= 0x80 {
					t.Fatalf("line %d has an 8-bit octet: %q", i+1, l)
				}
			}
		}
	}
}

// decodePart decodes a body by its Content-Transfer-Encoding.
func decodePart(t *testing.T, cte string, body io.Reader) []byte {
	t.Helper()
	var r io.Reader = body
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", cte, err)
	}
	return b
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// pad is n octets of short lines.
func pad(n int) string {
	k := (n - 10) / 4
	return strings.Repeat("cc\r\n", k) + strings.Repeat("x", n-4*k-2) + "\r\n"
}

func TestScanMessage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		msg       string
		eight, lg bool
	}{
		{"ascii", crlf("Subject: x\n\nhello\n"), false, false},
		{"8bit", "Subject: x\r\n\r\nh\xe9\r\n", true, false},
		{"998 with CRLF", "S: x\r\n\r\n" + strings.Repeat("a", 998) + "\r\n", false, false},
		{"998 with LF", "S: x\n\n" + strings.Repeat("a", 998) + "\n", false, false},
		{"999", "S: x\r\n\r\n" + strings.Repeat("a", 999) + "\r\n", false, true},
		{"999 unterminated", "S: x\r\n\r\n" + strings.Repeat("a", 999), false, true},
		// The CRLF split across two reads of 64 KiB.
		{"998 across a read", pad(64<<10-999) + strings.Repeat("a", 998) + "\r\n", false, false},
		{"999 across a read", pad(64<<10-1000) + strings.Repeat("a", 999) + "\r\n", false, true},
		{"long across a read", "S: x\r\n\r\n" + strings.Repeat("a", 200<<10) + "\r\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := scanMessage(strings.NewReader(tc.msg))
			if err != nil {
				t.Fatal(err)
			}
			if res.EightBit != tc.eight || res.LongLine != tc.lg {
				t.Errorf("got %+v, want 8bit %v long %v", res, tc.eight, tc.lg)
			}
		})
	}
}

// TestEncode_PlainMessage: a non-MIME message with an 8-bit body goes out
// quoted-printable to a server without 8BITMIME, with MIME-Version added,
// its 8-bit header untouched; to a server with 8BITMIME it goes as it is.
func TestEncode_PlainMessage(t *testing.T) {
	body := "Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln,\r\nzweite Zeile mit = und Leerzeichen am Ende \r\n.dot\r\n"
	msg := "From: a@example.test\r\nSubject: \xc3\x9cbung\r\n\r\n" + body
	if out, plan := reencode(t, msg, true); plan != nil || out != msg {
		t.Errorf("with 8BITMIME the message changed: %q", out)
	}
	out, plan := reencode(t, msg, false)
	if plan == nil || plan.encodings() != "quoted-printable" {
		t.Fatalf("plan %+v, want quoted-printable", plan)
	}
	head, _, _ := strings.Cut(out, "\r\n\r\n")
	if want := "From: a@example.test\r\nSubject: \xc3\x9cbung\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable"; head != want {
		t.Errorf("header %q, want %q", head, want)
	}
	m, err := mail.ReadMessage(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodePart(t, m.Header.Get("Content-Transfer-Encoding"), m.Body); string(got) != body {
		t.Errorf("decoded %q, want %q", got, body)
	}
	// Only the header may hold 8-bit octets.
	_, outBody, _ := strings.Cut(out, "\r\n\r\n")
	wantSMTPClean(t, outBody, false)
}

// TestEncode_LongLine: a line of 2,000 octets is re-encoded even for a
// server with 8BITMIME, and decodes to itself; an 8-bit binary body goes
// base64.
func TestEncode_LongLine(t *testing.T) {
	long := strings.Repeat("0123456789", 200)
	body := "short\r\n" + long + "\r\nend\r\n"
	msg := "Content-Type: text/plain; charset=us-ascii\r\nMIME-Version: 1.0\r\n\r\n" + body
	out, plan := reencode(t, msg, true)
	if plan == nil || plan.encodings() != "quoted-printable" {
		t.Fatalf("plan %+v, want quoted-printable", plan)
	}
	wantSMTPClean(t, out, false)
	if strings.Count(out, "MIME-Version") != 1 {
		t.Errorf("MIME-Version twice:\n%s", out)
	}
	m, err := mail.ReadMessage(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodePart(t, m.Header.Get("Content-Transfer-Encoding"), m.Body); string(got) != body {
		t.Errorf("decoded %d octets, want the %d of the original", len(got), len(body))
	}

	bin := make([]byte, 3000)
	rand.Read(bin)
	msg = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + string(bin)
	out, plan = reencode(t, msg, false)
	if plan == nil || plan.encodings() != "base64" {
		t.Fatalf("plan %+v, want base64", plan)
	}
	if strings.Contains(out, "binary") {
		t.Errorf("the old Content-Transfer-Encoding is still there")
	}
	wantSMTPClean(t, out, false)
	m, _ = mail.ReadMessage(strings.NewReader(out))
	if got := decodePart(t, m.Header.Get("Content-Transfer-Encoding"), m.Body); !bytes.Equal(got, bin) {
		t.Errorf("binary body changed")
	}
}

// TestEncode_Multipart: in a nested multipart only the parts that need it
// are re-encoded; every part decodes to its original bytes; preamble,
// epilogue, boundaries, an enclosed message's header and the parts left
// alone are byte for byte what they were.
func TestEncode_Multipart(t *testing.T) {
	textPart := "Pr\xc3\xbcfung der \xc3\x9cbertragung\r\nmit zwei Zeilen\r\n"
	asciiPart := "plain ascii\r\nnothing to do here\r\n"
	b64Part := "aGVsbG8gd29ybGQ=\r\n"
	bin := make([]byte, 5000)
	rand.Read(bin)
	innerText := "inner 8-bit: \xe2\x82\xac\r\n"
	long := strings.Repeat("x", 2000)
	msg := crlf(`From: a@example.test
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble, ascii.
--outer
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

`) + textPart + crlf(`
--outer
Content-Type: multipart/alternative;
	boundary=inner

--inner
Content-Type: text/plain

`) + asciiPart + crlf(`
--inner
Content-Type: text/plain
Content-Transfer-Encoding: base64

`) + b64Part + crlf(`
--inner--
inner epilogue
--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: 8bit

`) + string(bin) + crlf(`
--outer
Content-Type: message/rfc822

`) + "Subject: enclosed \xc3\xa9\r\n" + crlf(`Content-Type: text/plain; charset=utf-8

`) + innerText + crlf(`
--outer
Content-Type: text/plain

`) + long + crlf(`
--outer--
The epilogue.
`)
	out, plan := reencode(t, msg, false)
	if plan == nil {
		t.Fatal("no plan")
	}
	var enc []string
	for _, p := range plan.parts {
		enc = append(enc, p.encode)
	}
	if want := []string{"quoted-printable", "", "", "base64", "quoted-printable", "quoted-printable"}; strings.Join(enc, ",") != strings.Join(want, ",") {
		t.Errorf("encodings %q, want %q", enc, want)
	}
	// The header of the enclosed message keeps its 8-bit octets (headers
	// are never changed): everything else is 7-bit.
	wantSMTPClean(t, strings.Replace(out, "Subject: enclosed \xc3\xa9", "", 1), false)
	for _, keep := range []string{"This is the preamble, ascii.\r\n--outer\r\n", "--inner\r\nContent-Type: text/plain\r\n\r\n" + asciiPart + "\r\n--inner\r\n",
		"Content-Transfer-Encoding: base64\r\n\r\n" + b64Part + "\r\n--inner--\r\ninner epilogue\r\n--outer\r\n", "--outer--\r\nThe epilogue.\r\n", "Subject: enclosed \xc3\xa9\r\n"} {
		if !strings.Contains(out, keep) {
			t.Errorf("output lost %q:\n%s", keep, out)
		}
	}

	m, err := mail.ReadMessage(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	mr := multipart.NewReader(m.Body, params["boundary"])
	var got [][]byte
	var walk func(*multipart.Reader)
	walk = func(mr *multipart.Reader) {
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mt, ps, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			switch {
			case strings.HasPrefix(mt, "multipart/"):
				walk(multipart.NewReader(p, ps["boundary"]))
			case mt == "message/rfc822":
				inner, err := mail.ReadMessage(p)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, decodePart(t, inner.Header.Get("Content-Transfer-Encoding"), inner.Body))
			default:
				got = append(got, decodePart(t, p.Header.Get("Content-Transfer-Encoding"), p))
			}
		}
	}
	walk(mr)
	b64, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(b64Part))
	want := [][]byte{[]byte(textPart), []byte(asciiPart), b64, bin, []byte(innerText), []byte(long)}
	if len(got) != len(want) {
		t.Fatalf("%d parts decoded, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("part %d: decoded %d octets %.60q, want %d octets %.60q", i+1, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}

// TestEncode_NothingToDo: 8-bit only in a header, or a long line only in
// a part that is base64 already: the message goes as it is.
func TestEncode_NothingToDo(t *testing.T) {
	for _, msg := range []string{
		"Subject: \xc3\xa9t\xc3\xa9\r\n\r\nascii body\r\n",
		"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("QUFB", 600) + "\r\n",
		"",
		"no header at all, no blank line",
	} {
		if out, plan := reencode(t, msg, false); plan != nil || out != msg {
			t.Errorf("%.40q: re-encoded to %.80q", msg, out)
		}
	}
}

// TestEncode_LFLineEnds: a message queued with LF line ends (as sendmail
// may receive it) is re-encoded as well; the text decodes to the same
// lines.
func TestEncode_LFLineEnds(t *testing.T) {
	body := "caf\xc3\xa9\nline two\n"
	out, plan := reencode(t, "Subject: lf\n\n"+body, false)
	if plan == nil {
		t.Fatal("no plan")
	}
	m, err := mail.ReadMessage(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	got := decodePart(t, m.Header.Get("Content-Transfer-Encoding"), m.Body)
	if strings.ReplaceAll(string(got), "\r\n", "\n") != body {
		t.Errorf("decoded %q, want the lines of %q", got, body)
	}
}

// genReader yields a message of about size octets made up on the fly: a
// header, then lines of 8-bit text, without ever holding it.
type genReader struct {
	head string
	left int64
	line []byte
	pos  int
}

func newGen(size int64) *genReader {
	return &genReader{head: "Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", left: size,
		line: []byte(strings.Repeat("\xc3\xa9t\xc3\xa9 ", 30) + "\r\n")}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.head != "" {
		n := copy(p, g.head)
		g.head = g.head[n:]
		return n, nil
	}
	if g.left <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.left > 0 {
		k := copy(p[n:], g.line[g.pos:])
		g.pos = (g.pos + k) % len(g.line)
		n += k
		g.left -= int64(k)
	}
	return n, nil
}

// TestEncode_Streams: re-encoding a 64 MB message allocates a small
// fraction of it: nothing holds the message whole.
func TestEncode_Streams(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MB")
	}
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	plan, err := planEncoding(newGen(size), false)
	if err != nil || plan == nil {
		t.Fatalf("plan %v, %v", plan, err)
	}
	n, err := plan.write(io.Discard, newGen(size))
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n < size {
		t.Errorf("wrote %d octets, less than the %d read", n, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
		t.Errorf("allocated %d MB for a %d MB message", alloc>>20, size>>20)
	}
}

// TestEncode_HostileNesting: multiparts nested far deeper than anyone
// writes cost neither stack nor quadratic time: past the limit the rest
// goes as it is; the parts above it are still re-encoded.
func TestEncode_HostileNesting(t *testing.T) {
	var b strings.Builder
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n")
	b.WriteString("--b0\r\nContent-Type: text/plain\r\n\r\nshallow caf\xc3\xa9\r\n")
	const depth = 20000
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i+1)
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain\r\n\r\ndeep caf\xc3\xa9\r\n", depth)
	for i := depth; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	msg := b.String()
	out, plan := reencode(t, msg, false)
	if plan == nil {
		t.Fatal("no plan: the shallow part was not re-encoded")
	}
	if !strings.Contains(out, "shallow caf=C3=A9") || !strings.Contains(out, "deep caf\xc3\xa9") {
		t.Errorf("want the shallow part re-encoded and the deep one as it was")
	}
	if len(plan.parts) > maxNesting+2 {
		t.Errorf("%d parts planned", len(plan.parts))
	}
}

// BenchmarkScan and BenchmarkReencode: the cost of the scan every message
// pays, and of re-encoding a 16 MB 8-bit text (plan, count and write, as
// Send does).
func BenchmarkScan(b *testing.B) {
	const size = 16 << 20
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		if _, err := scanMessage(newGen(size)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReencode(b *testing.B) {
	const size = 16 << 20
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		plan, err := planEncoding(newGen(size), false)
		if err != nil || plan == nil {
			b.Fatal(plan, err)
		}
		if _, err := plan.write(io.Discard, newGen(size)); err != nil {
			b.Fatal(err)
		}
		if _, err := plan.write(io.Discard, newGen(size)); err != nil {
			b.Fatal(err)
		}
	}
}
