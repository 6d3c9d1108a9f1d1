package relay

import (
	"errors"
	"github.com/relaymail/relay/rewrite"
	"mime"
	"net/mail"
	"strings"
	"testing"
)

// unfold joins a field's lines as RFC 5322 2.2.3 says: the line breaks
// removed, nothing else.
func unfold(s string) string {
	return strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t").Replace(s)
}

// A header line over 998 octets is folded at its own white space, so
// that unfolding gives back the very same field; an unstructured one
// without white space becomes encoded words that decode to its value; a
// structured one without white space is refused (issue #21 item 16).
func TestFoldHeader(t *testing.T) {
	words := strings.TrimSpace(strings.Repeat("word ", 400))
	rcpts := strings.TrimSuffix(strings.Repeat("someone@example.org, ", 100), ", ")
	run := strings.Repeat("ä", 1200) + " tail"
	body := "\r\nbody\r\n"
	for _, tc := range []struct{ name, field string }{
		{"subject with spaces", "Subject: " + words},
		{"address list", "To: " + rcpts},
		{"tabs", "X-Tabbed: " + strings.Repeat("a\t", 800)},
		{"continuation line too long", "X-Folded: start\r\n " + words},
	} {
		out, plan := reencode(t, "From: a@example.org\r\n"+tc.field+"\r\n"+body, true)
		if plan == nil || !strings.Contains(plan.encodings(), "folded header") {
			t.Fatalf("%s: plan %+v", tc.name, plan)
		}
		wantSMTPClean(t, out, true)
		if want := unfold("From: a@example.org\r\n" + tc.field + "\r\n" + body); unfold(out) != want {
			t.Errorf("%s: unfolds to\n%.200q…, want\n%.200q…", tc.name, unfold(out), want)
		}
	}

	for _, value := range []string{strings.Repeat("x", 2000), run, "lead " + strings.Repeat("=?_", 700)} {
		out, _ := reencode(t, "Subject: "+value+"\r\n"+body, false)
		wantSMTPClean(t, out, false)
		m, err := mail.ReadMessage(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil || got != value {
			t.Errorf("Subject %.40q… decodes to %.80q… (%v)", value, got, err)
		}
	}

	_, err := planEncoding(strings.NewReader("Message-ID: <"+strings.Repeat("m", 1200)+"@example.org>\r\n"+body), true)
	var uf *rewrite.UnfoldableError
	if !errors.As(err, &uf) || uf.Field != "Message-ID" || !strings.Contains(err.Error(), "Message-ID") {
		t.Errorf("a Message-ID of 1,200 octets: %v, want an UnfoldableError", err)
	}
}
