package e2e_test

// Re-encoding at delivery against the real Postfix: port 2527 is 2587
// without 8BITMIME (smtpd_discard_ehlo_keywords). An 8-bit body, a
// multipart with 8-bit text parts (mostly ASCII: quoted-printable;
// Cyrillic: base64) and a part of binary octets, and a
// line of 2,000 octets arrive 7-bit, no line over 998 octets, and every
// part decodes to the octets submitted. The same 8-bit message through
// 2587 (8BITMIME offered) arrives as it was, not re-encoded.

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"
)

// mimeMsg is a message with its own MIME header lines (LF line ends, as
// callers of sendmail write them).
func mimeMsg(t *testing.T, from, to, mimeHeader, body string) msg {
	tok := token()
	id := tok + "@e2e.relay.test"
	text := fmt.Sprintf("From: %s\nTo: %s\nSubject: relay e2e %s %s\nMessage-ID: <%s>\n%s\n%s",
		from, to, t.Name(), tok, id, mimeHeader, body)
	return msg{ID: id, Body: []byte(text)}
}

// lf makes line ends LF: Postfix's Maildir has LF, what was submitted too.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// decodeBody decodes a body by its Content-Transfer-Encoding.
func decodeBody(t *testing.T, cte string, r io.Reader) []byte {
	t.Helper()
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", cte, err)
	}
	return b
}

// wantSevenBit checks a delivered file: no 8-bit octet, no line over 998.
func wantSevenBit(t *testing.T, name string, file []byte) {
	t.Helper()
	for i, l := range bytes.Split(file, []byte("\n")) {
		if len(bytes.TrimSuffix(l, []byte("\r"))) > 998 {
			t.Errorf("%s: line %d has %d octets", name, i+1, len(l))
		}
		for _, c := range l {
			if c >= 0x80 {
				t.Errorf("%s: line %d has an 8-bit octet: %.80q", name, i+1, l)
				break
			}
		}
	}
}

// delivery reads the one delivered copy of m.
func deliveredFile(t *testing.T, copies map[string][]delivered, m msg) []byte {
	t.Helper()
	cs := copies[m.ID]
	if len(cs) != 1 {
		t.Fatalf("%s: %d copies in the Maildir, want 1", m.ID, len(cs))
	}
	b, err := os.ReadFile(cs[0].path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncoding_8BitToServerWithout8BITMIME(t *testing.T) {
	dir := dirFor(t)
	sh := okSmarthost(t, dir)
	sh.Port = envInt(t, "SMARTHOST_PORT_NO8BITMIME")
	c := newCase(t, sh, "")
	from, to := env["SMARTHOST_USER"], "enc-"+token()[:8]+"@example.test"

	// 1. A plain message, no MIME header at all, 8-bit UTF-8 text.
	plainBody := "Hello from the build server in K\u00f6ln,\n" +
		"the nightly job finished; the report is attached below as usual.\n" +
		"A line with = and trailing space \nGr\u00fc\u00dfe, the robot.\n"
	plain := mimeMsg(t, from, to, "", plainBody)

	// 2. A multipart: 8-bit text, binary octets declared 8bit, ASCII.
	var bin []byte
	for i := 0; i < 4; i++ {
		for c := 0; c < 256; c++ {
			if c != '\r' && c != '\n' {
				bin = append(bin, byte(c))
			}
		}
	}
	text := "Summer at the beach: a caf\u00e9 and a cr\u00e8me br\u00fbl\u00e9e, then back to work.\nMostly ASCII text.\n"
	cyrillic := "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0442\u0435\u0441\u0442.\n"
	ascii := "Only ASCII here.\n"
	multi := mimeMsg(t, from, to, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"=_b1\"\n",
		"This is a multi-part message in MIME format.\n"+
			"--=_b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"+text+"\n"+
			"--=_b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: 8bit\n\n"+string(bin)+"\n"+
			"--=_b1\nContent-Type: text/plain; charset=us-ascii\n\n"+ascii+"\n"+
			"--=_b1\nContent-Type: text/plain; charset=utf-8\n\n"+cyrillic+"\n"+
			"--=_b1--\n")

	// 3. A line of 2,000 octets (ASCII): over SMTP's 998 whatever the
	// server offers.
	long := strings.Repeat("0123456789", 200)
	longBody := "before\n" + long + "\nafter\n"
	longMsg := mimeMsg(t, from, to, "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n", longBody)

	mark := logMark(t)
	for _, m := range []msg{plain, multi, longMsg} {
		c.submit(m, from, to)
	}
	r, lines := c.queueRun()
	if r.Code != 0 {
		t.Fatalf("queue run: %v", r)
	}
	for _, l := range recipientLines(lines) {
		if l.kv["status"] != "sent" {
			t.Errorf("not sent: %s", l.raw)
		}
	}
	c.expectEmptyQueue()
	copies := waitCopies(t, 30*time.Second, plain.ID, multi.ID, longMsg.ID)
	ss := sessions(t, mark, "no8bit-"+env["SMARTHOST_PORT_NO8BITMIME"])
	if len(ss) == 0 {
		t.Errorf("no session on the port without 8BITMIME")
	}

	// 1.
	f := deliveredFile(t, copies, plain)
	wantSevenBit(t, "plain", f)
	m, err := mail.ReadMessage(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if v, cte := m.Header.Get("MIME-Version"), m.Header.Get("Content-Transfer-Encoding"); v != "1.0" || cte != "quoted-printable" {
		t.Errorf("plain: MIME-Version %q, Content-Transfer-Encoding %q", v, cte)
	}
	if got := lf(decodeBody(t, m.Header.Get("Content-Transfer-Encoding"), m.Body)); string(got) != plainBody {
		t.Errorf("plain: decoded %q, want %q", got, plainBody)
	}

	// 2.
	f = deliveredFile(t, copies, multi)
	wantSevenBit(t, "multipart", f)
	m, err = mail.ReadMessage(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	want := []struct {
		body []byte
		cte  string
	}{{[]byte(text), "quoted-printable"}, {bin, "base64"}, {[]byte(ascii), ""}, {[]byte(cyrillic), "base64"}}
	for i, w := range want {
		p, err := mr.NextRawPart()
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		cte := p.Header.Get("Content-Transfer-Encoding")
		if cte != w.cte {
			t.Errorf("part %d: Content-Transfer-Encoding %q, want %q", i+1, cte, w.cte)
		}
		got := decodeBody(t, cte, p)
		if i != 1 { // text: Postfix stores LF line ends
			got = lf(got)
		}
		if !bytes.Equal(got, w.body) {
			t.Errorf("part %d: decoded %d octets %.60q, want %d octets %.60q", i+1, len(got), got, len(w.body), w.body)
		}
	}
	if _, err := mr.NextRawPart(); err != io.EOF {
		t.Errorf("more parts than sent: %v", err)
	}
	if !bytes.Contains(f, []byte("\n\nOnly ASCII here.\n\n--=_b1\n")) {
		t.Error("the ASCII part was not left as it was")
	}

	// 3.
	f = deliveredFile(t, copies, longMsg)
	wantSevenBit(t, "long line", f)
	m, err = mail.ReadMessage(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if got := lf(decodeBody(t, m.Header.Get("Content-Transfer-Encoding"), m.Body)); string(got) != longBody {
		t.Errorf("long line: decoded %d octets, want %d", len(got), len(longBody))
	}
}

// TestEncoding_8BitToServerWith8BITMIME: through 2587, which offers
// 8BITMIME, the same kind of 8-bit message arrives untouched.
func TestEncoding_8BitToServerWith8BITMIME(t *testing.T) {
	dir := dirFor(t)
	c := newCase(t, okSmarthost(t, dir), "")
	from, to := env["SMARTHOST_USER"], "enc8-"+token()[:8]+"@example.test"
	body := "Gr\u00fc\u00dfe, \u043f\u0440\u0438\u0432\u0435\u0442.\n"
	m := mimeMsg(t, from, to, "", body)
	c.submit(m, from, to)
	if r, _ := c.queueRun(); r.Code != 0 {
		t.Fatalf("queue run: %v", r)
	}
	f := deliveredFile(t, waitCopies(t, 30*time.Second, m.ID), m)
	if bytes.Contains(f, []byte("Content-Transfer-Encoding")) || !bytes.HasSuffix(f, []byte("\n\n"+body)) {
		t.Errorf("the message changed on its way:\n%s", f)
	}
}
