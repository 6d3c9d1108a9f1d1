package bounce_test

// What a built report says: the failure and delay reports, their
// human-readable part and per-recipient status blocks, how much of the
// original they quote, and headers that stay safe whatever the input.

import (
	"bytes"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/bounce"
)

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

func TestUniqueMessageID(t *testing.T) {
	a, _ := build(t, failureReport(original))
	b, _ := build(t, failureReport(original))
	ma, _ := parse(t, a)
	mb, _ := parse(t, b)
	if ma.Header.Get("Message-ID") == mb.Header.Get("Message-ID") {
		t.Errorf("two reports share Message-ID %s", ma.Header.Get("Message-ID"))
	}
}
