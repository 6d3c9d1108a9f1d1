package bounce_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/bounce"
)

var (
	arrival = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	now     = time.Date(2025, 3, 1, 10, 5, 0, 0, time.UTC)
)

const original = "From: Alice <alice@example.org>\n" +
	"To: bob@example.net, carol@example.net\n" +
	"Subject: lunch\n" +
	"Message-ID: <m1@example.org>\n" +
	"\n" +
	"Shall we meet at noon?\n" +
	"From the office, I mean.\n" +
	".\n" +
	"..and bring the report.\n"

const diagBob = "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table"

func failureReport(orig string) *bounce.Report {
	return &bounce.Report{
		Kind:         bounce.Failure,
		ReportingMTA: "server1.example.com",
		From:         "MAILER-DAEMON@server1.example.com",
		FromName:     "Mail Delivery System",
		To:           "alice@example.org",
		QueueID:      "4Xq7abc123",
		EnvID:        "env-42",
		Arrival:      arrival,
		Recipients: []bounce.Recipient{
			{
				Address:     "bob@example.net",
				Status:      "5.1.1",
				Diagnostic:  diagBob,
				RemoteMTA:   "smtp.example.com",
				Explanation: "The receiving server says this mailbox does not exist. Check the address for typing mistakes.",
				LastAttempt: now,
			},
			{
				Address:     "carol@example.net",
				Original:    "team@example.org",
				Status:      "5.7.1",
				Diagnostic:  "554 5.7.1 Message rejected as spam",
				RemoteMTA:   "smtp.example.com",
				Explanation: "The server took your message for spam.",
				LastAttempt: now,
			},
		},
		FullLimit:       100 << 10,
		Original:        strings.NewReader(orig),
		OriginalSize:    int64(len(orig)),
		Now:             now,
		MessageIDDomain: "example.com",
	}
}

type part struct {
	header textproto.MIMEHeader
	body   []byte
}

// build runs Build and checks properties every report must have: CRLF
// line ends only, no line over 998 octets.
func build(t *testing.T, r *bounce.Report) ([]byte, bool) {
	t.Helper()
	var buf bytes.Buffer
	eight, err := bounce.Build(&buf, r)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	out := buf.Bytes()
	checkLines(t, out)
	return out, eight
}

func checkLines(t *testing.T, out []byte) {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Errorf("report does not end with CRLF")
	}
	for i, line := range bytes.Split(out, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if len(line) > 998 {
			t.Fatalf("line %d is %d octets long", i+1, len(line))
		}
	}
}

// parse parses a report into its top-level message and parts.
func parse(t *testing.T, out []byte) (*mail.Message, []part) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if mt != "multipart/report" || params["report-type"] != "delivery-status" || params["boundary"] == "" {
		t.Fatalf("Content-Type = %q", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts []part
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("reading part: %v", err)
		}
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			// NextRawPart leaves the encoding alone: check it is 7-bit, then decode.
			if bytes.ContainsFunc(body, func(r rune) bool { return r >= 0x80 }) {
				t.Errorf("quoted-printable part has 8-bit data")
			}
			if body, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body))); err != nil {
				t.Fatalf("decoding quoted-printable: %v", err)
			}
		}
		parts = append(parts, part{p.Header, body})
	}
	return msg, parts
}

// statusBlocks parses a message/delivery-status body: the per-message
// block, then one block per recipient.
func statusBlocks(t *testing.T, body []byte) []textproto.MIMEHeader {
	t.Helper()
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
	var blocks []textproto.MIMEHeader
	for {
		h, err := tr.ReadMIMEHeader()
		if len(h) > 0 {
			blocks = append(blocks, h)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("delivery-status block %d: %v\n%s", len(blocks)+1, err, body)
		}
	}
	return blocks
}

func contentType(t *testing.T, p part) string {
	t.Helper()
	mt, _, err := mime.ParseMediaType(p.header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("part Content-Type %q: %v", p.header.Get("Content-Type"), err)
	}
	return mt
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// words normalizes white space, for text that the report wraps.
func words(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestFailureReport(t *testing.T) {
	out, eight := build(t, failureReport(original))
	if eight {
		t.Errorf("eightBit = true for an ASCII report")
	}
	msg, parts := parse(t, out)

	h := msg.Header
	for k, want := range map[string]string{
		"Auto-Submitted":   "auto-replied",
		"Subject":          "Undelivered Mail Returned to Sender",
		"MIME-Version":     "1.0",
		"X-Relay-Queue-Id": "4Xq7abc123",
		"Date":             "Sat, 01 Mar 2025 10:05:00 +0000",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "alice@example.org" {
		t.Errorf("To = %q (%v)", h.Get("To"), err)
	}
	from, err := mail.ParseAddress(h.Get("From"))
	if err != nil || from.Name != "Mail Delivery System" || from.Address != "MAILER-DAEMON@server1.example.com" {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q", id)
	}

	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	for i, want := range []string{"text/plain", "message/delivery-status", "message/rfc822"} {
		if got := contentType(t, parts[i]); got != want {
			t.Errorf("part %d: Content-Type %q, want %q", i+1, got, want)
		}
	}

	// The human-readable part.
	human := string(parts[0].body)
	for _, want := range []string{
		"<bob@example.net>", diagBob, "smtp.example.com",
		"<carol@example.net>", "<team@example.org>", "554 5.7.1 Message rejected as spam",
	} {
		if !strings.Contains(human, want) {
			t.Errorf("human-readable part lacks %q:\n%s", want, human)
		}
	}
	for _, want := range []string{
		"The receiving server says this mailbox does not exist. Check the address for typing mistakes.",
		"The server took your message for spam.",
	} {
		if !strings.Contains(words(human), want) {
			t.Errorf("human-readable part lacks the explanation %q:\n%s", want, human)
		}
	}

	// The delivery-status part.
	blocks := statusBlocks(t, parts[1].body)
	if len(blocks) != 3 {
		t.Fatalf("%d delivery-status blocks, want 3:\n%s", len(blocks), parts[1].body)
	}
	msgFields := blocks[0]
	for k, want := range map[string]string{
		"Reporting-Mta":        "dns; server1.example.com",
		"Original-Envelope-Id": "env-42",
		"Arrival-Date":         "Sat, 01 Mar 2025 10:00:00 +0000",
	} {
		if got := msgFields.Get(k); got != want {
			t.Errorf("per-message %s = %q, want %q", k, got, want)
		}
	}
	wantRcpt := []map[string]string{
		{
			"Final-Recipient":    "rfc822;bob@example.net",
			"Action":             "failed",
			"Status":             "5.1.1",
			"Remote-Mta":         "dns; smtp.example.com",
			"Diagnostic-Code":    "smtp; " + diagBob,
			"Last-Attempt-Date":  "Sat, 01 Mar 2025 10:05:00 +0000",
			"Original-Recipient": "",
			"Will-Retry-Until":   "",
		},
		{
			"Original-Recipient": "rfc822;team@example.org",
			"Final-Recipient":    "rfc822;carol@example.net",
			"Action":             "failed",
			"Status":             "5.7.1",
			"Diagnostic-Code":    "smtp; 554 5.7.1 Message rejected as spam",
		},
	}
	for i, want := range wantRcpt {
		for k, v := range want {
			if got := blocks[i+1].Get(k); got != v {
				t.Errorf("recipient %d: %s = %q, want %q", i+1, k, got, v)
			}
		}
	}

	// The original, whole, with CRLF line ends and nothing else changed.
	if got := string(parts[2].body); got != crlf(original) {
		t.Errorf("quoted original:\n%q\nwant\n%q", got, crlf(original))
	}
}

func TestQuoteChoice(t *testing.T) {
	headerOnly := crlf(original[:strings.Index(original, "\n\n")+1])
	for _, tc := range []struct {
		name      string
		ret       string
		fullLimit int64
		full      bool
	}{
		{"FULL", "FULL", 10, true},
		{"full lower case", "full", 10, true},
		{"HDRS", "HDRS", 1 << 20, false},
		{"default, small message", "", 1 << 20, true},
		{"default, message at the limit", "", int64(len(original)), true},
		{"default, large message", "", int64(len(original)) - 1, false},
		{"default, no limit", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := failureReport(original)
			r.Ret, r.FullLimit = tc.ret, tc.fullLimit
			out, _ := build(t, r)
			_, parts := parse(t, out)
			if len(parts) != 3 {
				t.Fatalf("%d parts", len(parts))
			}
			ct, body := contentType(t, parts[2]), string(parts[2].body)
			if tc.full {
				if ct != "message/rfc822" || body != crlf(original) {
					t.Errorf("got %s %q, want the whole message", ct, body)
				}
			} else {
				if ct != "text/rfc822-headers" || body != headerOnly {
					t.Errorf("got %s %q, want the header %q", ct, body, headerOnly)
				}
			}
		})
	}
	t.Run("no original", func(t *testing.T) {
		r := failureReport(original)
		r.Original = nil
		out, _ := build(t, r)
		if _, parts := parse(t, out); len(parts) != 2 {
			t.Errorf("%d parts, want 2", len(parts))
		}
	})
	t.Run("message without body", func(t *testing.T) {
		orig := "Subject: only a header\nX-A: b\n"
		r := failureReport(orig)
		r.Ret = "HDRS"
		out, _ := build(t, r)
		if _, parts := parse(t, out); string(parts[2].body) != crlf(orig) {
			t.Errorf("header part = %q", parts[2].body)
		}
	})
}

func TestDelayReport(t *testing.T) {
	r := failureReport(original)
	r.Kind = bounce.Delay
	r.Ret = "FULL" // a delay warning quotes the header only all the same
	r.RetryUntil = arrival.Add(5 * 24 * time.Hour)
	r.Recipients = []bounce.Recipient{{
		Address:     "bob@example.net",
		Status:      "4.4.1",
		RemoteMTA:   "smtp.example.com",
		Explanation: "The mail server could not be reached.",
		LastAttempt: now,
	}}
	out, _ := build(t, r)
	msg, parts := parse(t, out)
	if got := msg.Header.Get("Subject"); got != "Delayed Mail (still being retried)" {
		t.Errorf("Subject = %q", got)
	}
	if got := msg.Header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	if ct := contentType(t, parts[2]); ct != "text/rfc822-headers" {
		t.Errorf("third part is %s, want text/rfc822-headers", ct)
	}
	if strings.Contains(string(parts[2].body), "noon") {
		t.Errorf("delay warning quotes the body")
	}
	blocks := statusBlocks(t, parts[1].body)
	if len(blocks) != 2 {
		t.Fatalf("%d blocks", len(blocks))
	}
	rc := blocks[1]
	for k, want := range map[string]string{
		"Action":           "delayed",
		"Status":           "4.4.1",
		"Will-Retry-Until": "Thu, 06 Mar 2025 10:00:00 +0000",
		"Diagnostic-Code":  "",
	} {
		if got := rc.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	human := words(string(parts[0].body))
	for _, want := range []string{"WARNING ONLY", "Thu, 06 Mar 2025 10:00:00 +0000", "The mail server could not be reached."} {
		if !strings.Contains(human, want) {
			t.Errorf("human-readable part lacks %q:\n%s", want, parts[0].body)
		}
	}
}

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

func TestHeaderInjection(t *testing.T) {
	r := failureReport(original)
	r.FromName = "Mail\r\nBcc: x@y"
	r.QueueID = "ID\nBcc: x@y"
	r.EnvID = "env\r\nBcc: x@y"
	r.To = "alice@example.org\r\nBcc: x@y"
	r.Recipients[0].Diagnostic = "550 5.1.1 no\r\nBcc: x@y"
	r.Recipients[0].RemoteMTA = "smtp.example.com\rBcc: x@y"
	r.Recipients[0].Address = "bob@example.net\nAction: delivered"
	r.Recipients[1].Original = "team@example.org\r\n\r\nFinal-Recipient: rfc822;evil@example.com"
	out, _ := build(t, r)
	for i, line := range strings.Split(string(out), "\r\n") {
		if strings.HasPrefix(line, "Bcc:") || strings.HasPrefix(line, "Action: delivered") ||
			strings.HasPrefix(line, "Final-Recipient: rfc822;evil") {
			t.Errorf("line %d injected: %q", i+1, line)
		}
	}
	msg, parts := parse(t, out)
	if v := msg.Header["Bcc"]; v != nil {
		t.Errorf("report has a Bcc header: %q", v)
	}
	blocks := statusBlocks(t, parts[1].body)
	if len(blocks) != 3 {
		t.Fatalf("%d delivery-status blocks, want 3:\n%s", len(blocks), parts[1].body)
	}
	for i, b := range blocks {
		if b.Get("Bcc") != "" {
			t.Errorf("block %d has a Bcc field", i+1)
		}
	}
	if got, want := blocks[1].Get("Diagnostic-Code"), "smtp; 550 5.1.1 no  Bcc: x@y"; got != want {
		t.Errorf("Diagnostic-Code = %q, want %q", got, want)
	}
	if got := blocks[1].Values("Action"); len(got) != 1 || got[0] != "failed" {
		t.Errorf("Action = %q", got)
	}
}

func TestLongDiagnosticFolded(t *testing.T) {
	spaced := "550 5.7.1" + strings.Repeat(" word", 600) // 3009 octets
	unspaced := "550 " + strings.Repeat("x", 2500)
	// Folding at one of two spaces would lose it on unfolding.
	doubled := "550  5.2.2" + strings.Repeat("  mailbox full", 20) + " " + strings.Repeat("y", 200)
	r := failureReport(original)
	r.Recipients[0].Diagnostic = spaced
	r.Recipients[1].Diagnostic = unspaced
	r.Recipients = append(r.Recipients, bounce.Recipient{Address: "dave@example.net", Status: "5.2.2", Diagnostic: doubled})
	out, _ := build(t, r) // checks every line is at most 998 octets
	_, parts := parse(t, out)
	blocks := statusBlocks(t, parts[1].body)
	if got := blocks[1].Get("Diagnostic-Code"); got != "smtp; "+spaced {
		t.Errorf("folded Diagnostic-Code does not unfold to the reply:\n%q", got)
	}
	if got := blocks[3].Get("Diagnostic-Code"); got != "smtp; "+doubled {
		t.Errorf("folded Diagnostic-Code does not unfold to the reply:\n%q", got)
	}
	if got := strings.ReplaceAll(blocks[2].Get("Diagnostic-Code"), " ", ""); got != "smtp;550"+strings.Repeat("x", 2500) {
		t.Errorf("broken Diagnostic-Code lost text: %q", got)
	}
	// The human-readable part keeps the reply on one line (quoted-printable
	// when too long for SMTP).
	if !strings.Contains(string(parts[0].body), "        "+spaced+"\r\n") {
		t.Errorf("human-readable part lacks the reply verbatim")
	}
}

func TestNonASCII(t *testing.T) {
	diag := "550 5.1.1 Почтовый ящик не существует (user unknown)"
	r := failureReport(original)
	r.FromName = "Служба доставки"
	r.Recipients[0].Address = "борис+a=b@пример.рф"
	r.Recipients[0].Diagnostic = diag
	r.Recipients[0].Explanation = "Адрес не существует."
	out, eight := build(t, r)
	if eight {
		t.Errorf("eightBit = true: only the report's own text is non-ASCII, and it is encoded")
	}
	msg, parts := parse(t, out)
	from, err := (&mail.AddressParser{}).Parse(msg.Header.Get("From"))
	if err != nil || from.Name != "Служба доставки" {
		t.Errorf("From = %q: %v", msg.Header.Get("From"), err)
	}
	human := string(parts[0].body)
	for _, want := range []string{diag, "<борис+a=b@пример.рф>", "Адрес не существует."} {
		if !strings.Contains(human, want) {
			t.Errorf("human-readable part lacks %q:\n%s", want, human)
		}
	}
	if bytes.ContainsFunc(parts[1].body, func(r rune) bool { return r >= 0x80 }) {
		t.Errorf("delivery-status part is not 7-bit:\n%s", parts[1].body)
	}
	b := statusBlocks(t, parts[1].body)[1]
	if got, want := b.Get("Final-Recipient"), `utf-8;\x{431}\x{43E}\x{440}\x{438}\x{441}\x{2B}a\x{3D}b@\x{43F}\x{440}\x{438}\x{43C}\x{435}\x{440}.\x{440}\x{444}`; got != want {
		t.Errorf("Final-Recipient = %q, want %q", got, want)
	}
	dec, err := new(mime.WordDecoder).DecodeHeader(b.Get("Diagnostic-Code"))
	if err != nil || dec != "smtp; "+diag {
		t.Errorf("Diagnostic-Code decodes to %q (%v), want %q", dec, err, "smtp; "+diag)
	}

	// A non-ASCII envelope sender is written as it is (RFC 6532): 8-bit.
	r = failureReport(original)
	r.To = "алиса@пример.рф"
	out, eight = build(t, r)
	if !eight {
		t.Errorf("eightBit = false with a UTF-8 To header")
	}
	if msg, _ := parse(t, out); msg.Header.Get("To") != "алиса@пример.рф" {
		t.Errorf("To = %q", msg.Header.Get("To"))
	}
}

func TestBadStatusDefaults(t *testing.T) {
	r := failureReport(original)
	r.Recipients[0].Status = ""
	r.Recipients[1].Status = "5.1.1\r\nX: y"
	out, _ := build(t, r)
	_, parts := parse(t, out)
	blocks := statusBlocks(t, parts[1].body)
	for i := 1; i <= 2; i++ {
		if got := blocks[i].Get("Status"); got != "5.0.0" {
			t.Errorf("recipient %d: Status = %q, want 5.0.0", i, got)
		}
	}
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

func TestUniqueMessageID(t *testing.T) {
	a, _ := build(t, failureReport(original))
	b, _ := build(t, failureReport(original))
	ma, _ := parse(t, a)
	mb, _ := parse(t, b)
	if ma.Header.Get("Message-ID") == mb.Header.Get("Message-ID") {
		t.Errorf("two reports share Message-ID %s", ma.Header.Get("Message-ID"))
	}
}

func TestIsAutoSubmitted(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"Subject: hi", false},
		{"Auto-Submitted: no", false},
		{"Auto-Submitted: No (a person wrote this)", false},
		{"Auto-Submitted: no; x=y", false},
		{"Auto-Submitted:", false},
		{"Auto-Submitted: auto-replied", true},
		{"Auto-Submitted: auto-generated", true},
		{"auto-submitted: Auto-Replied; owner-email=\"x@y\"", true},
		{"Auto-Submitted: (vacation) auto-replied", true},
		{"Auto-Submitted: auto-notified", true},
		{"Auto-Submitted: no\r\nAuto-Submitted: auto-generated", true},
		{"Content-Type: multipart/report; report-type=delivery-status; boundary=x", true},
		{"Content-Type: Multipart/Report; Report-Type=\"Delivery-Status\"; boundary=\"x\"", true},
		{"Content-Type: multipart/report; report-type=global-delivery-status; boundary=x", true},
		{"Content-Type: multipart/report; report-type=disposition-notification; boundary=x", true},
		{"Content-Type: multipart/report; report-type=delivery-status; boundary=x; boundary=y", true},
		{"Content-Type: multipart/report; report-type=feedback-report; boundary=x", false},
		{"Content-Type: multipart/mixed; boundary=x", false},
		{"Content-Type: text/plain; report-type=delivery-status", false},
	} {
		h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(tc.header + "\r\n\r\n"))).ReadMIMEHeader()
		if err != nil {
			t.Fatalf("%q: %v", tc.header, err)
		}
		if got := bounce.IsAutoSubmitted(h); got != tc.want {
			t.Errorf("IsAutoSubmitted(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
	// relay's own reports are recognized.
	out, _ := build(t, failureReport(original))
	hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(out))).ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	if !bounce.IsAutoSubmitted(hdr) {
		t.Errorf("a report is not recognized as one")
	}
	delete(hdr, "Auto-Submitted")
	if !bounce.IsAutoSubmitted(hdr) {
		t.Errorf("a report without Auto-Submitted is not recognized by its Content-Type")
	}
}
