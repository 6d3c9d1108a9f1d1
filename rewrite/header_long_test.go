package rewrite

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/spool"
)

// A header line of 70 KiB before From once made the rewriter pass the whole
// header through: the From and a secret field went out unchanged (issue
// #21 item 14). Every header up to 1 MiB is processed, whatever its line
// lengths, CRLF or LF, and a line that is no field ends it as intake does.
func TestRewriteHeader_LongLineBeforeFrom(t *testing.T) {
	r := rulesWith(t, "", "", "")
	r.Config.Rewrite.FromHeader = "rewrite"
	r.Config.Rewrite.Header = []config.HeaderRule{{Action: "remove", Name: "X-Internal-Secret"}}
	long := "X-Long: " + strings.Repeat("x", 70<<10)
	folded := "X-Folded: a\n " + strings.Repeat("y", 70<<10) + "\n " + strings.Repeat("z", 200<<10)
	tests := []struct{ name, in, want string }{
		{"long line", long + "\nFrom: CEO <ceo@bank.example>\nX-Internal-Secret: 42\nSubject: s\n\nbody\n",
			long + "\nFrom: CEO <robot@example.com>\nX-Original-From: CEO <ceo@bank.example>\nSubject: s\n\nbody\n"},
		{"long continuations", folded + "\nX-Internal-Secret: 42\nFrom: CEO <ceo@bank.example>\n\nbody\n",
			folded + "\nFrom: CEO <robot@example.com>\nX-Original-From: CEO <ceo@bank.example>\n\nbody\n"},
		{"long line, CRLF", long + "\r\nFrom: CEO <ceo@bank.example>\r\nX-Internal-Secret: 42\r\n\r\nbody\r\n",
			long + "\r\nFrom: CEO <robot@example.com>\r\nX-Original-From: CEO <ceo@bank.example>\r\n\r\nbody\r\n"},
		{"a line that is no field", "From: CEO <ceo@bank.example>\nX-Internal-Secret: 42\nno field here\nX-Internal-Secret: body\n",
			"From: CEO <robot@example.com>\nX-Original-From: CEO <ceo@bank.example>\n\nno field here\nX-Internal-Secret: body\n"},
	}
	for _, tt := range tests {
		if got := deliver(t, r, "robot@example.com", tt.in); got != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, short(got), short(tt.want))
		}
	}
}

// short writes the long runs of a test message as "x…".
func short(s string) string {
	for _, c := range []string{"x", "y", "z"} {
		s = strings.ReplaceAll(s, strings.Repeat(c, 1000), c+"…")
		s = strings.ReplaceAll(s, c+"…"+c+"…", c+"…")
	}
	return s
}

// A header over 1 MiB (header_size_limit allows at most that at intake)
// is never sent unchanged: the delivery gets an error that says why.
func TestRewriteHeader_OverOneMiBRefused(t *testing.T) {
	r := rulesWith(t, "", "", "")
	r.Config.Rewrite.FromHeader = "rewrite"
	msg := "From: CEO <ceo@bank.example>\n" + strings.Repeat("X-Filler: "+strings.Repeat("f", 1000)+"\n", 1100) + "\nbody\n"
	env := &spool.Envelope{Sender: "robot@example.com", User: "root"}
	out, err := io.ReadAll(r.Content(env, &config.Smarthost{Name: "mail"}, "robot@example.com", strings.NewReader(msg)))
	if !errors.Is(err, ErrHeaderTooLarge) || len(out) != 0 {
		t.Fatalf("read %d octets, error %v; want none and ErrHeaderTooLarge", len(out), err)
	}
}
