package mailaddr_test

import (
	"mime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/relaymail/relay/mailaddr"
)

// FuzzParseSender checks the -f / -r / MAIL FROM parser: a value with CR,
// LF or NUL is always refused; an accepted sender is "" (the null sender)
// or one address that reads back the same, alone, in angle brackets and
// as the only element of a list.
func FuzzParseSender(f *testing.F) {
	for _, s := range []string{
		"root", "alice@example.org", "Alice <alice@example.org>", "<>", "", " ",
		"root (Cron Daemon)", `"a b"@example.org`, "<@r1,@r2:a@b.example>",
		"a@[192.0.2.1]", "a@b, c@d", "a@b\nBcc: x@y", "x@y\x00", "undisclosed-recipients:;",
		"Müller <m@exämple.org>", "a@b@c", "<a@b", "=?utf-8?q?x?= <a@b>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := mailaddr.ParseSender(s)
		if strings.ContainsAny(s, "\r\n\x00") && err == nil {
			t.Fatalf("ParseSender(%q) = %q, want a refusal of CR, LF, NUL", s, a)
		}
		if err != nil {
			if a != "" {
				t.Fatalf("ParseSender(%q) = %q and error %v", s, a, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseSender(%q): error of more than one line: %q", s, err)
			}
			return
		}
		if a == "" {
			return
		}
		for _, again := range []string{a, "<" + a + ">"} {
			b, err := mailaddr.ParseSender(again)
			if err != nil || b != a {
				t.Fatalf("ParseSender(%q) = %q, but ParseSender(%q) = %q, %v", s, a, again, b, err)
			}
		}
		list, err := mailaddr.ParseList(a)
		if err != nil || len(list) != 1 || list[0].Addr != a {
			t.Fatalf("ParseSender(%q) = %q, which ParseList reads as %+v, %v", s, a, list, err)
		}
		q := mailaddr.Qualify(a, "h.example")
		if !mailaddr.HasDomain(q) {
			t.Fatalf("Qualify(%q) = %q has no domain", a, q)
		}
	})
}

// FuzzFormatMailbox checks the From field relay writes for a message
// without one (sendmail -F, the password database's full name, the
// rewriter's "root on server1"): for any name without a line break and
// any valid address, the result parses as exactly one mailbox with that
// address, and its name decodes back to the name given.
func FuzzFormatMailbox(f *testing.F) {
	for _, tt := range []struct{ name, addr string }{
		{"Cron Daemon", "root@server1.example"},
		{"Müller, Hans", "root@server1.example"},
		{"Ärger <x@y>", "root@server1.example"},
		{`"quoted" \ name`, "a@b.example"},
		{"root on server1", "robot@example.org"},
		{"=?utf-8?q?x?=", "a@b.example"},
		{"  spaced  ", "a@b.example"},
		{"", "a@b.example"},
		{"(comment)", `"x y"@b.example`},
	} {
		f.Add(tt.name, tt.addr)
	}
	dec := new(mime.WordDecoder)
	f.Fuzz(func(t *testing.T, name, addr string) {
		if strings.ContainsAny(name, "\r\n\x00") || !utf8.ValidString(name) || mailaddr.Valid(addr) != nil {
			return // refused before a From is made (-F, Valid)
		}
		s := mailaddr.FormatMailbox(name, addr)
		list, err := mailaddr.ParseList(s)
		if err != nil || len(list) != 1 || list[0].Addr != addr {
			t.Fatalf("FormatMailbox(%q, %q) = %q, which parses as %+v, %v", name, addr, s, list, err)
		}
		got := list[0].Name
		if !strings.HasPrefix(s, `"`) { // an encoded word in quotes is text
			got, err = dec.DecodeHeader(got)
		}
		if err != nil {
			t.Fatalf("FormatMailbox(%q, %q) = %q: name %q does not decode: %v", name, addr, s, list[0].Name, err)
		}
		if strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(name), " ") {
			t.Fatalf("FormatMailbox(%q, %q) = %q: name reads back as %q", name, addr, s, got)
		}
	})
}
