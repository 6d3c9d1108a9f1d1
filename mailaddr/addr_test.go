package mailaddr_test

import (
	"strings"
	"testing"

	"github.com/relaymail/relay/mailaddr"
)

func TestParseSender(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a@b.example", "a@b.example"},
		{"Name <a@b.example>", "a@b.example"},
		{`"Cron Daemon" <root>`, "root"},
		{"<a@b.example>", "a@b.example"},
		{"<>", ""},
		{"Mailer <>", ""},
		{"", ""},
		{"  ", ""},
		{"a@b.example (comment)", "a@b.example"},
		{" a@b.example ", "a@b.example"},
		{"root", "root"},
		{"<@r1.example:a@b.example>", "a@b.example"},
		{`"x y"@z.example`, `"x y"@z.example`},
		{"bounce+123@lists.example", "bounce+123@lists.example"},
	}
	for _, tt := range tests {
		got, err := mailaddr.ParseSender(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSender(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSenderErrors(t *testing.T) {
	tests := []struct{ in, err string }{
		{"a@b.example\r\nBcc: victim@x.example", "line break"},
		{"a@b.example\nBcc: victim@x.example", "line break"},
		{"a@b.example\r", "line break"},
		{"\n", "line break"},
		{"a\x00@b.example", "NUL"},
		{"a@b.example, c@d.example", "more than one address"},
		{"a@b.example c@d.example", "not an address"},
		{"<a@b.example> <c@d.example>", `unexpected "<"`},
		{"a@b@c", `more than one "@"`},
		{"<a@b.example", "unterminated angle address"},
		{"undisclosed-recipients:;", "no address"},
		{"(just a comment)", "no address"},
	}
	for _, tt := range tests {
		got, err := mailaddr.ParseSender(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseSender(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.err)
		}
	}
}

func TestValid(t *testing.T) {
	valid := []string{
		"a@b.example",
		"a.b+tag@x-y.example",
		"a_b@c_d.example",
		"postmaster@localhost",
		"!#$%&'*+-/=?^_`{|}~@x.example",
		`"x y"@z.example`,
		`"a@b <c>"@z.example`,
		`"x\"y"@z.example`,
		"a@[127.0.0.1]",
		"a@[IPv6:2001:db8::1]",
		"a@[x-tag:some-text]",
		"jörg@bücher.example",
		strings.Repeat("l", 63) + "@" + strings.Repeat("d", 63) + ".example",
	}
	for _, a := range valid {
		if err := mailaddr.Valid(a); err != nil {
			t.Errorf("Valid(%q) = %v, want nil", a, err)
		}
	}
	invalid := []struct{ in, err string }{
		{"", "empty address"},
		{"root", "has no domain"},
		{`"a@b"`, "has no domain"},
		{"a@", "empty domain"},
		{"@b.example", "empty local part"},
		{"a b@c.example", "white space outside quotes"},
		{"a@c .example", "white space outside quotes"},
		{"a\t@c.example", "white space outside quotes"},
		{"<a@b.example>", `'<' outside quotes`},
		{"a@b.example>", `'>' outside quotes`},
		{"a@b.example\r\n", "control character"},
		{"a@b.example\nBcc: x@y", "control character"},
		{"a\x00@b.example", "control character"},
		{"\"a\r\n b\"@c.example", "control character"},
		{"\"a\x01\"@c.example", "control character"},
		{"\xff@b.example", "not valid UTF-8"},
		{"a..b@c.example", "empty dot-separated part"},
		{".a@c.example", "empty dot-separated part"},
		{"a.@c.example", "empty dot-separated part"},
		{"a@b..example", "empty label"},
		{"a@b.example.", "empty label"},
		{"a@.example", "empty label"},
		{"a@b@c.example", `contains '@'`},
		{"a(b)@c.example", `contains '('`},
		{"a@b,c.example", `contains ','`},
		{`"x"y@z.example`, "text after quoted local part"},
		{`""@z.example`, "empty quoted local part"},
		{"a@[1.2.3]", "bad IPv4 address literal"},
		{"a@[IPv6:zz::1]", "bad IPv6 address literal"},
		{"a@[IPv6:1.2.3.4]", "bad IPv6 address literal"},
		{"a@[1.2.3.4", "unterminated domain literal"},
		{"a@[1.2.3.4 ]", "contains ' '"},
		{"a@[:x]", "bad address literal"},
		{"a@" + strings.Repeat("d", 64) + ".example", "longer than 63 bytes"},
		{"a@" + strings.Repeat("d.", 128) + "example", "longer than 255 bytes"},
	}
	for _, tt := range invalid {
		err := mailaddr.Valid(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Valid(%q) = %v, want an error containing %q", tt.in, err, tt.err)
		}
	}
}

func TestQualify(t *testing.T) {
	tests := []struct{ addr, domain, want string }{
		{"root", "h.example", "root@h.example"},
		{"a@b.example", "h.example", "a@b.example"},
		{"", "h.example", ""},
		{"root", "", "root"},
		{`"x y"`, "h.example", `"x y"@h.example`},
		{`"a@b"`, "h.example", `"a@b"@h.example`},
		{`"x\"@"`, "h.example", `"x\"@"@h.example`},
		{`"a@b"@c.example`, "h.example", `"a@b"@c.example`},
		{"a@[127.0.0.1]", "h.example", "a@[127.0.0.1]"},
		{"root", "[192.0.2.1]", "root@[192.0.2.1]"},
	}
	for _, tt := range tests {
		if got := mailaddr.Qualify(tt.addr, tt.domain); got != tt.want {
			t.Errorf("Qualify(%q, %q) = %q, want %q", tt.addr, tt.domain, got, tt.want)
		}
	}
}

func TestDomainLocal(t *testing.T) {
	tests := []struct {
		addr      string
		hasDomain bool
		local     string
		domain    string
	}{
		{"a@b.example", true, "a", "b.example"},
		{"root", false, "root", ""},
		{"", false, "", ""},
		{`"a@b"`, false, `"a@b"`, ""},
		{`"a@b"@c.example`, true, `"a@b"`, "c.example"},
		{`"a\"@b"@c.example`, true, `"a\"@b"`, "c.example"},
		{"a@b@c.example", true, "a@b", "c.example"},
		{"a@[x@y]", true, "a", "[x@y]"},
		{"a@", true, "a", ""},
		{"@b", true, "", "b"},
		{`a\@b`, true, `a\`, "b"}, // a backslash quotes only inside quotes, as in ParseList
	}
	for _, tt := range tests {
		if got := mailaddr.HasDomain(tt.addr); got != tt.hasDomain {
			t.Errorf("HasDomain(%q) = %v, want %v", tt.addr, got, tt.hasDomain)
		}
		if got := mailaddr.Local(tt.addr); got != tt.local {
			t.Errorf("Local(%q) = %q, want %q", tt.addr, got, tt.local)
		}
		if got := mailaddr.Domain(tt.addr); got != tt.domain {
			t.Errorf("Domain(%q) = %q, want %q", tt.addr, got, tt.domain)
		}
	}
}

func TestFormatMailbox(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"", "a@b.example"},
		{"CronDaemon", "CronDaemon <a@b.example>"},
		{"Mail Delivery System", "Mail Delivery System <a@b.example>"},
		{"Doe, John", `"Doe, John" <a@b.example>`},
		{`Say "hi"`, `"Say \"hi\"" <a@b.example>`},
		{" padded", `" padded" <a@b.example>`},
		{"two  spaces", `"two  spaces" <a@b.example>`},
		{"=?utf-8?q?x?=", `"=?utf-8?q?x?=" <a@b.example>`},
		{"Jürgen", "=?utf-8?q?J=C3=BCrgen?= <a@b.example>"},
	} {
		if got := mailaddr.FormatMailbox(tt.name, "a@b.example"); got != tt.want {
			t.Errorf("FormatMailbox(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
