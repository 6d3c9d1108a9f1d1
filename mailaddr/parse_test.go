package mailaddr_test

import (
	"strings"
	"testing"

	"github.com/relaymail/relay/mailaddr"
)

// parseListTests: Start/End are the byte offsets of Addr in the input.
var parseListTests = []struct {
	desc string
	in   string
	want []mailaddr.Address
}{
	{"addr-spec", "a@b.example", []mailaddr.Address{{"", "a@b.example", 0, 11}}},
	{"angle address", "<a@b.example>", []mailaddr.Address{{"", "a@b.example", 1, 12}}},
	{"display name", "Alice Example <alice@example.org>", []mailaddr.Address{{"Alice Example", "alice@example.org", 15, 32}}},
	{"display name without space", "Alice<a@x.example>", []mailaddr.Address{{"Alice", "a@x.example", 6, 17}}},
	{"spaces inside angle brackets", "Name < a@b.example >", []mailaddr.Address{{"Name", "a@b.example", 7, 18}}},
	{"quoted display name with comma and <", `"Doe, John <boss>" <john@example.com>`, []mailaddr.Address{{"Doe, John <boss>", "john@example.com", 20, 36}}},
	{"quoted-pairs in display name", `"Bob \"the builder\" \\ B" <bob@x.example>`, []mailaddr.Address{{`Bob "the builder" \ B`, "bob@x.example", 28, 41}}},
	{"quoted and bare words mixed", `Jane "J." Doe <jd@x.example>`, []mailaddr.Address{{"Jane J. Doe", "jd@x.example", 15, 27}}},
	{"obs-phrase with dot", "John Q. Public <jqp@example.com>", []mailaddr.Address{{"John Q. Public", "jqp@example.com", 16, 31}}},
	{"comment in display name", "John (Johnny) Smith <js@x.example>", []mailaddr.Address{{"John Smith", "js@x.example", 21, 33}}},
	{"addr (comment)", "a@b.example (Alice Example)", []mailaddr.Address{{"Alice Example", "a@b.example", 0, 11}}},
	{"comment before addr", "(Alice) a@b.example", []mailaddr.Address{{"Alice", "a@b.example", 8, 19}}},
	{"comment containing @ and comma", "a@b.example (c@d.example, x)", []mailaddr.Address{{"c@d.example, x", "a@b.example", 0, 11}}},
	{"nested comment with quoted-pair", `a@b.example (Alice \) (nested (deeper)) x)`, []mailaddr.Address{{"Alice ) (nested (deeper)) x", "a@b.example", 0, 11}}},
	{"comment after angle address", "<a@b.example> (Alice)", []mailaddr.Address{{"Alice", "a@b.example", 1, 12}}},
	{"comments inside angle brackets", "Name <(c) a@b.example (d)>", []mailaddr.Address{{"Name", "a@b.example", 10, 21}}},
	{"UTF-8 display name", "Jörg Müller <joerg@example.de>", []mailaddr.Address{{"Jörg Müller", "joerg@example.de", 15, 31}}},
	{"Latin-1 display name", "J\xf6rg <j@x.example>", []mailaddr.Address{{"J\xf6rg", "j@x.example", 6, 17}}},
	{"RFC 2047 word left encoded", "=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>", []mailaddr.Address{{"=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=", "joerg@example.de", 35, 51}}},
	{"RFC 2047 word in quotes", `"=?utf-8?B?SsO2cmc=?=" <j@x.example>`, []mailaddr.Address{{"=?utf-8?B?SsO2cmc=?=", "j@x.example", 24, 35}}},
	{"unquoted @ in display name", "info@site.example <info@site.example>", []mailaddr.Address{{"info@site.example", "info@site.example", 19, 36}}},
	{"brackets in display name", "[Bug 123] Tracker <bugs@x.example>", []mailaddr.Address{{"[Bug 123] Tracker", "bugs@x.example", 19, 33}}},
	{"list", `a@x.example, B <b@y.example>, "C" <c@z.example>`, []mailaddr.Address{{"", "a@x.example", 0, 11}, {"B", "b@y.example", 16, 27}, {"C", "c@z.example", 35, 46}}},
	{"list without spaces", "a@x,b@y", []mailaddr.Address{{"", "a@x", 0, 3}, {"", "b@y", 4, 7}}},
	{"empty elements", ",a@b,,c@d,", []mailaddr.Address{{"", "a@b", 1, 4}, {"", "c@d", 6, 9}}},
	{"semicolon as separator", "a@b.example; c@d.example", []mailaddr.Address{{"", "a@b.example", 0, 11}, {"", "c@d.example", 13, 24}}},
	{"comment-only element", "(nobody), a@b", []mailaddr.Address{{"", "a@b", 10, 13}}},
	{"empty group", "undisclosed-recipients:;", nil},
	{"empty group with spaces", "Undisclosed recipients: ;", nil},
	{"group of two", "Team: a@x.example, b@y.example;", []mailaddr.Address{{"", "a@x.example", 6, 17}, {"", "b@y.example", 19, 30}}},
	{"group then address", "Team: a@x, B <b@y>;, c@z", []mailaddr.Address{{"", "a@x", 6, 9}, {"B", "b@y", 14, 17}, {"", "c@z", 21, 24}}},
	{"group without closing semicolon", "Team: a@x, b@y", []mailaddr.Address{{"", "a@x", 6, 9}, {"", "b@y", 11, 14}}},
	{"group with empty name", ": a@x;", []mailaddr.Address{{"", "a@x", 2, 5}}},
	{"two groups", "A: a@x; B: ;C:c@z;", []mailaddr.Address{{"", "a@x", 3, 6}, {"", "c@z", 14, 17}}},
	{"obsolete route", "<@r1.example,@r2.example:a@b.example>", []mailaddr.Address{{"", "a@b.example", 25, 36}}},
	{"obsolete route with name", "Bob <@r1:bob@x.example>", []mailaddr.Address{{"Bob", "bob@x.example", 9, 22}}},
	{"domain literal", "a@[127.0.0.1]", []mailaddr.Address{{"", "a@[127.0.0.1]", 0, 13}}},
	{"IPv6 literal in angle", "<postmaster@[IPv6:::1]>", []mailaddr.Address{{"", "postmaster@[IPv6:::1]", 1, 22}}},
	{"quoted local part", `"x y"@z.example`, []mailaddr.Address{{"", `"x y"@z.example`, 0, 15}}},
	{"quoted local part with @ and <", `N <"a@b <c>"@z.example>`, []mailaddr.Address{{"N", `"a@b <c>"@z.example`, 3, 22}}},
	{"quoted local part with comma", `"x,y"@z.example, w@v`, []mailaddr.Address{{"", `"x,y"@z.example`, 0, 15}, {"", "w@v", 17, 20}}},
	{"obs-local-part", `"x y".z@w.example`, []mailaddr.Address{{"", `"x y".z@w.example`, 0, 17}}},
	{"null path", "<>", []mailaddr.Address{{"", "", 1, 1}}},
	{"null path with name", "Mailer <>", []mailaddr.Address{{"Mailer", "", 8, 8}}},
	{"trailing dot in domain", "a@b.example.", []mailaddr.Address{{"", "a@b.example.", 0, 12}}},
	{"bare local part", "root", []mailaddr.Address{{"", "root", 0, 4}}},
	{"bare local part in angle", "<root>", []mailaddr.Address{{"", "root", 1, 5}}},
	{"bare quoted local part", `"x y"`, []mailaddr.Address{{"", `"x y"`, 0, 5}}},
	{"bare local part with comment no space", "root(Cron)", []mailaddr.Address{{"Cron", "root", 0, 4}}},
	{"folded CRLF", "a@b,\r\n c@d,\r\n\tE <e@f>", []mailaddr.Address{{"", "a@b", 0, 3}, {"", "c@d", 7, 10}, {"E", "e@f", 17, 20}}},
	{"folded LF between name and angle", "Alice\n <a@b.example>", []mailaddr.Address{{"Alice", "a@b.example", 8, 19}}},
	{"folded inside quoted name", "\"Long\r\n Name\" <a@b.example>", []mailaddr.Address{{"Long Name", "a@b.example", 15, 26}}},
	{"folded inside comment", "a@b (Long\r\n\tComment)", []mailaddr.Address{{"Long\tComment", "a@b", 0, 3}}},
	{"trailing CRLF", "root\r\n", []mailaddr.Address{{"", "root", 0, 4}}},
	{"empty", "", nil},
	{"blank", " \t\r\n ", nil},
	{"only commas", ", ,", nil},
	{"only a comment", "(nothing here)", nil},
	{"Debian cron From", "root (Cron Daemon)", []mailaddr.Address{{"Cron Daemon", "root", 0, 4}}},
	{"Debian cron To", "root", []mailaddr.Address{{"", "root", 0, 4}}},
	{"Debian cron MAILTO list", "alice@example.org,bob", []mailaddr.Address{{"", "alice@example.org", 0, 17}, {"", "bob", 18, 21}}},
	{"cronie From", `"(Cron Daemon)" <root>`, []mailaddr.Address{{"(Cron Daemon)", "root", 17, 21}}},
	{"cronie From qualified", `"(Cron Daemon)" <root@h.example>`, []mailaddr.Address{{"(Cron Daemon)", "root@h.example", 17, 31}}},
	{"anacron From", "Anacron <root>", []mailaddr.Address{{"Anacron", "root", 9, 13}}},
	{"bsd-mailx To", "alice, bob@x.example", []mailaddr.Address{{"", "alice", 0, 5}, {"", "bob@x.example", 7, 20}}},
	{"bsd-mailx folded Cc", "alice, bob@x.example,\n\tcarol", []mailaddr.Address{{"", "alice", 0, 5}, {"", "bob@x.example", 7, 20}, {"", "carol", 23, 28}}},
	{"mutt To", "\"Doe, Jane\" <jane@example.net>, Bob <bob@example.com>,\n\t=?iso-8859-1?Q?J=F6rg?= <j@example.de>", []mailaddr.Address{{"Doe, Jane", "jane@example.net", 13, 29}, {"Bob", "bob@example.com", 37, 52}, {"=?iso-8859-1?Q?J=F6rg?=", "j@example.de", 81, 93}}},
	{"mutt From", "Alice Example <alice@example.org>", []mailaddr.Address{{"Alice Example", "alice@example.org", 15, 32}}},
	{"PHP bare From", "webmaster@example.com", []mailaddr.Address{{"", "webmaster@example.com", 0, 21}}},
	{"PHP quoted From", `"My Site" <noreply@site.example>`, []mailaddr.Address{{"My Site", "noreply@site.example", 11, 31}}},
	{"PHP address as name", "info@site.example <info@site.example>", []mailaddr.Address{{"info@site.example", "info@site.example", 19, 36}}},
	{"PHP semicolon list", "user@example.com; other@example.com;", []mailaddr.Address{{"", "user@example.com", 0, 16}, {"", "other@example.com", 18, 35}}},
	{"PHP UTF-8 name unquoted", "Müller GmbH <info@mueller.example>", []mailaddr.Address{{"Müller GmbH", "info@mueller.example", 14, 34}}},
	{"git send-email To", "A U Thor <author@example.com>", []mailaddr.Address{{"A U Thor", "author@example.com", 10, 28}}},
	{"anacron To with MAILTO list", "ops, dev@example.org", []mailaddr.Address{{"", "ops", 0, 3}, {"", "dev@example.org", 5, 20}}},
}

func TestParseList(t *testing.T) {
	for _, tt := range parseListTests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := mailaddr.ParseList(tt.in)
			if err != nil {
				t.Fatalf("ParseList(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseList(%q) = %d addresses %+v, want %d %+v", tt.in, len(got), got, len(tt.want), tt.want)
			}
			for i, a := range got {
				if a != tt.want[i] {
					t.Errorf("ParseList(%q)[%d] = %+v, want %+v", tt.in, i, a, tt.want[i])
				}
				if a.Start < 0 || a.End > len(tt.in) || a.Start > a.End || tt.in[a.Start:a.End] != a.Addr {
					t.Errorf("ParseList(%q)[%d]: s[%d:%d] != Addr %q", tt.in, i, a.Start, a.End, a.Addr)
				}
			}
		})
	}
}

var parseListErrorTests = []struct {
	desc, in, err string
}{
	{"unterminated quoted string", `"unterminated <a@b>`, `mailaddr: unterminated quoted string: "\"unterminated <a@b>"`},
	{"unterminated quote later in list", `a@b, "Bob <bob@x>`, `mailaddr: unterminated quoted string: "\"Bob <bob@x>"`},
	{"unterminated angle address", "Name <a@b", `mailaddr: unterminated angle address: "Name <a@b"`},
	{"unterminated empty angle", "a@b, Name <", `mailaddr: unterminated angle address: "Name <"`},
	{"unterminated route", "<@r1,@r2", `mailaddr: unterminated angle address: "<@r1,@r2"`},
	{"unterminated comment", "root (Cron Daemon", `mailaddr: unterminated comment: "(Cron Daemon"`},
	{"unterminated domain literal", "a@[127.0.0.1", `mailaddr: unterminated domain literal: "[127.0.0.1"`},
	{"two @", "a@b@c", `mailaddr: more than one "@": "a@b@c" (offset 0)`},
	{"two @ in angle", "x@y, N <a@b@c>", `mailaddr: more than one "@": "N <a@b@c" (offset 8)`},
	{"text between angle addresses", "<a@b> extra <c@d>", `mailaddr: unexpected "extra" after <a@b>: "<a@b> extra" (offset 6)`},
	{"two angle addresses", "A <a@b> <c@d>", `mailaddr: unexpected "<" after <a@b>: "A <a@b> <" (offset 8)`},
	{"two words without angle", "x@y, John Smith", `mailaddr: not an address: "John Smith" (offset 5)`},
	{"space inside addr-spec", "a @b", `mailaddr: not an address: "a @b" (offset 0)`},
	{"two addresses without comma", "a@b c@d", `mailaddr: not an address: "a@b c@d" (offset 0)`},
	{"two addresses in angle brackets", "<a@b c@d>", `mailaddr: unexpected "c" in angle address: "<a@b c" (offset 5)`},
	{"comma in angle brackets", "<a@b, c@d>", `mailaddr: unexpected "," in angle address: "<a@b," (offset 4)`},
	{"empty angle contents", "<(x) , a@b>", `mailaddr: unexpected "," in angle address: "<(x) ," (offset 5)`},
	{"missing domain", "a@", `mailaddr: missing domain: "a@" (offset 0)`},
	{"missing local part", "@b.example", `mailaddr: missing local part: "@b.example" (offset 0)`},
	{"quoted domain", `a@"b"`, `mailaddr: bad domain "\"b\"": "a@\"b\"" (offset 0)`},
	{"literal local part", "[x]@b", `mailaddr: bad local part "[x]": "[x]@b" (offset 0)`},
	{"stray >", "a@b>", `mailaddr: unexpected ">": "a@b>" (offset 3)`},
	{"colon after address", "a@b:c", `mailaddr: unexpected ":" after an address: "a@b:" (offset 3)`},
	{"nested group", "A: B: c@d;;", `mailaddr: nested group: "B:" (offset 4)`},
	{"route without domain", "<@,@r:a@b>", `mailaddr: bad route: "@" without a domain: "<@" (offset 1)`},
	{"route not ended by colon", "<@r1 a@b>", `mailaddr: bad route: unexpected "a": "<@r1 a" (offset 5)`},
	{"long element is shortened", "x " + strings.Repeat("y", 70) + "@z",
		`mailaddr: not an address: "x ` + strings.Repeat("y", 58) + `"... (offset 0)`},
}

func TestParseListErrors(t *testing.T) {
	for _, tt := range parseListErrorTests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := mailaddr.ParseList(tt.in)
			if err == nil {
				t.Fatalf("ParseList(%q) = %+v, want error %q", tt.in, got, tt.err)
			}
			if err.Error() != tt.err {
				t.Errorf("ParseList(%q) error:\n got %s\nwant %s", tt.in, err, tt.err)
			}
			if got != nil {
				t.Errorf("ParseList(%q) returned addresses %+v with an error", tt.in, got)
			}
		})
	}
}

var qualifyHeaderTests = []struct {
	desc, in, want string
}{
	{"Debian cron From", "root (Cron Daemon)", "root@h.example (Cron Daemon)"},
	{"Debian cron To", "root", "root@h.example"},
	{"cronie From", `"(Cron Daemon)" <root>`, `"(Cron Daemon)" <root@h.example>`},
	{"anacron From", "Anacron <root>", "Anacron <root@h.example>"},
	{"bsd-mailx list", "alice, bob@x.example", "alice@h.example, bob@x.example"},
	{"no spaces", "alice,bob,c@d", "alice@h.example,bob@h.example,c@d"},
	{"folded CRLF value with comments",
		"alice,\r\n\tbob (Bob, <the> @builder),\r\n carol@x.example\r\n",
		"alice@h.example,\r\n\tbob@h.example (Bob, <the> @builder),\r\n carol@x.example\r\n"},
	{"folded LF value", "Ops Team\n <ops>,\n\tdev", "Ops Team\n <ops@h.example>,\n\tdev@h.example"},
	{"comment containing @", "root (root@elsewhere.example)", "root@h.example (root@elsewhere.example)"},
	{"comment without space", "root(Cron)", "root@h.example(Cron)"},
	{"quoted display names with comma and <",
		`"Doe, <John>" <john>, "a@b, c <d>" <x@y.example>`,
		`"Doe, <John>" <john@h.example>, "a@b, c <d>" <x@y.example>`},
	{"group", "Team: alice, bob@x.example;, carol", "Team: alice@h.example, bob@x.example;, carol@h.example"},
	{"group without semicolon", "Team:alice", "Team:alice@h.example"},
	{"spaces kept", "  root  ,  <admin >  ", "  root@h.example  ,  <admin@h.example >  "},
	{"comment inside angle brackets", "<root (c)>", "<root@h.example (c)>"},
	{"obsolete route", "<@r1.example:root>", "<@r1.example:root@h.example>"},
	{"quoted local part", `"x y"`, `"x y"@h.example`},
	{"quoted @ is not a domain", `"a@b" <"a@b">`, `"a@b" <"a@b"@h.example>`},
	{"8-bit display name", "J\xf6rg <joerg>", "J\xf6rg <joerg@h.example>"},
	{"UTF-8 display name", "Jörg Müller <joerg>", "Jörg Müller <joerg@h.example>"},
	{"RFC 2047 name", "=?UTF-8?Q?J=C3=B6rg?= <joerg>", "=?UTF-8?Q?J=C3=B6rg?= <joerg@h.example>"},
	{"mixed with null path", "<>, root", "<>, root@h.example"},
}

func TestQualifyHeader(t *testing.T) {
	for _, tt := range qualifyHeaderTests {
		t.Run(tt.desc, func(t *testing.T) {
			got, changed := mailaddr.QualifyHeader(tt.in, "h.example")
			if got != tt.want || !changed {
				t.Errorf("QualifyHeader(%q) = %q, %v\n                      want %q, true", tt.in, got, changed, tt.want)
			}
		})
	}
}

func TestQualifyHeaderUnchanged(t *testing.T) {
	tests := []struct{ desc, in, domain string }{
		{"already qualified", "Alice <alice@x.example>, bob@y.example (Bob)", "h.example"},
		{"null path", "<>", "h.example"},
		{"null path with name", "MAILER-DAEMON <>", "h.example"},
		{"empty group", "undisclosed-recipients:;", "h.example"},
		{"empty", "", "h.example"},
		{"domain literal", "a@[192.0.2.1]", "h.example"},
		{"unterminated quote", `root, "Bob <bob>`, "h.example"},
		{"not an address", "a@b@c, root", "h.example"},
		{"unterminated comment", "root (Cron Daemon", "h.example"},
		{"empty domain", "root", ""},
		{"domain with line break", "root", "h.example\r\nBcc: victim@x.example"},
		{"domain with space", "root", "h example"},
		{"domain with @", "root", "a@h.example"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, changed := mailaddr.QualifyHeader(tt.in, tt.domain)
			if got != tt.in || changed {
				t.Errorf("QualifyHeader(%q, %q) = %q, %v; want it unchanged, false", tt.in, tt.domain, got, changed)
			}
		})
	}
}

func TestQualifyHeaderLiteralDomain(t *testing.T) {
	got, changed := mailaddr.QualifyHeader("root", "[192.0.2.1]")
	if got != "root@[192.0.2.1]" || !changed {
		t.Errorf(`QualifyHeader("root", "[192.0.2.1]") = %q, %v`, got, changed)
	}
}
