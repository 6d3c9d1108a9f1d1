package relay

import (
	"testing"
	"unicode/utf8"

	"github.com/xdg-go/stringprep"
)

// RFC 4013 section 3, the examples.
func TestSASLprep_RFC4013Examples(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"I\u00ADX", "IX"},  // SOFT HYPHEN mapped to nothing
		{"user", "user"},    // no transformation
		{"USER", "USER"},    // case preserved, will not match #2
		{"\u00AA", "a"},     // output is NFKC, input in ISO 8859-1
		{"\u2168", "IX"},    // output is NFKC, will match #1
		{"a\u00A0b", "a b"}, // non-ASCII space mapped to SPACE
		{"p\u00E4ss", "p\u00E4ss"},
	} {
		if got, err := saslprep(c.in); err != nil || got != c.want {
			t.Errorf("saslprep(%+q) = %+q, %v; want %+q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"\u0007",       // prohibited character
		"\u0627\u0031", // bidirectional check
		"a\x00b", "tab\there", "del\x7f",
		"\u0221",        // unassigned in Unicode 3.2
		"\uE000",        // private use
		"\u0627a\u0627", // RandALCat with LCat
	} {
		if got, err := saslprep(in); err == nil {
			t.Errorf("saslprep(%+q) = %+q, want an error", in, got)
		}
	}
}

// The tables were transcribed from github.com/xdg-go/stringprep, which
// relay used before: for every code point of the BMP and some beyond,
// alone and between ASCII letters, both say the same (U+1806 aside, which
// that transcription of table B.1 lost).
func TestSASLprep_SameAsXdgStringprep(t *testing.T) {
	check := func(s string) {
		got, err := saslprep(s)
		want, werr := stringprep.SASLprep.Prepare(s)
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("saslprep(%+q) = %+q, %v; stringprep: %+q, %v", s, got, err, want, werr)
		}
	}
	for r := rune(0); r < 0x30000; r++ {
		if r == 0x1806 || !utf8.ValidRune(r) {
			continue
		}
		check(string(r))
		check("a" + string(r) + "b")
	}
}
