package mailaddr_test

import (
	"testing"

	"github.com/relaymail/relay/mailaddr"
)

// FuzzParseList checks, for any input: ParseList does not panic; every
// Address it returns has s[Start:End] == Addr; QualifyHeader's output parses
// again to the same addresses (same names, Addr qualified) and every
// non-null Addr then has a domain; a value that does not parse is left
// unchanged.
func FuzzParseList(f *testing.F) {
	for _, tt := range parseListTests {
		f.Add(tt.in)
	}
	for _, tt := range parseListErrorTests {
		f.Add(tt.in)
	}
	for _, tt := range qualifyHeaderTests {
		f.Add(tt.in)
	}
	const domain = "h.example"
	f.Fuzz(func(t *testing.T, s string) {
		list, err := mailaddr.ParseList(s)
		q, changed := mailaddr.QualifyHeader(s, domain)
		if err != nil {
			if list != nil {
				t.Fatalf("ParseList(%q) returned %+v and error %v", s, list, err)
			}
			if q != s || changed {
				t.Fatalf("QualifyHeader(%q) = %q, %v for a value that does not parse", s, q, changed)
			}
			return
		}
		want := 0 // addresses QualifyHeader must qualify
		for i, a := range list {
			if a.Start < 0 || a.Start > a.End || a.End > len(s) || s[a.Start:a.End] != a.Addr {
				t.Fatalf("ParseList(%q)[%d] = %+v: s[Start:End] != Addr", s, i, a)
			}
			if a.Addr != "" && !mailaddr.HasDomain(a.Addr) {
				want++
			}
			if mailaddr.HasDomain(a.Addr) && mailaddr.Local(a.Addr)+"@"+mailaddr.Domain(a.Addr) != a.Addr {
				t.Fatalf("Local+Domain of %q do not rebuild it", a.Addr)
			}
			_ = mailaddr.Valid(a.Addr) // must not panic
		}
		if changed != (want > 0) || (!changed && q != s) {
			t.Fatalf("QualifyHeader(%q) = %q, %v with %d bare local parts", s, q, changed, want)
		}
		if len(q) != len(s)+want*len("@"+domain) {
			t.Fatalf("QualifyHeader(%q) = %q: changed more than the inserted domains", s, q)
		}
		relist, err := mailaddr.ParseList(q)
		if err != nil {
			t.Fatalf("QualifyHeader(%q) = %q, which does not parse: %v", s, q, err)
		}
		if len(relist) != len(list) {
			t.Fatalf("QualifyHeader(%q) = %q: %d addresses, was %d", s, q, len(relist), len(list))
		}
		for i, a := range relist {
			if q[a.Start:a.End] != a.Addr {
				t.Fatalf("ParseList(%q)[%d] = %+v: s[Start:End] != Addr", q, i, a)
			}
			if a.Addr != "" && !mailaddr.HasDomain(a.Addr) {
				t.Fatalf("QualifyHeader(%q) = %q: %q still has no domain", s, q, a.Addr)
			}
			if a.Addr != mailaddr.Qualify(list[i].Addr, domain) || a.Name != list[i].Name {
				t.Fatalf("QualifyHeader(%q) = %q: address %d is %+v, was %+v", s, q, i, a, list[i])
			}
		}
		if s2, err := mailaddr.ParseSender(s); err == nil && len(list) == 1 && s2 != list[0].Addr {
			t.Fatalf("ParseSender(%q) = %q, ParseList gives %q", s, s2, list[0].Addr)
		}
	})
}
