package bounce_test

// The fixtures of the bounce tests and the parser they read a built report
// back with: its MIME parts, status blocks and content types.

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
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
