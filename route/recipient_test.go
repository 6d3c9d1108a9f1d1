package route_test

import (
	"slices"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/route"
)

// TestRecipient_RecipientsTablesWinThenTheSendersRoute: the order of
// decisions of SPEC §5 with recipients: a table whose recipients match
// (and whose senders allow the sender) carries the recipient, before the
// sender's own route; other recipients take the sender's route, without
// the recipients tables.
func TestRecipient_RecipientsTablesWinThenTheSendersRoute(t *testing.T) {
	cfg := &config.Config{Smarthosts: []config.Smarthost{
		{Name: "alice", Senders: []string{"alice@example.com"}},
		{Name: "corp", Recipients: []string{"*@corp.example.com", "@.corp.example.com"}},
		{Name: "corp-alice", Senders: []string{"alice@example.com"}, Recipients: []string{"@corp.example.com"}},
		{Name: "lab", Senders: []string{"@lab.example.com"}, Recipients: []string{"@corp.example.com"}},
		{Name: "provider"},
		{Name: "backup"},
	}}
	for _, tt := range []struct {
		sender, rcpt string
		want         []string
	}{
		// A sender without a route of its own: corp for corp's domain
		// and subdomains, the catch-all tables for the rest.
		{"bob@example.com", "a@corp.example.com", []string{"corp"}},
		{"bob@example.com", "a@mx.corp.example.com", []string{"corp"}},
		{"bob@example.com", "a@A.B.CORP.example.COM", []string{"corp"}},
		{"bob@example.com", "b@example.net", []string{"provider", "backup"}},
		{"bob@example.com", "b@notcorp.example.com", []string{"provider", "backup"}},
		// Alice's own recipients table first, alone; her own route for
		// the rest (never the catch-all ones).
		{"alice@example.com", "a@corp.example.com", []string{"corp-alice"}},
		{"alice@example.com", "a@x.corp.example.com", []string{"corp"}},
		{"alice@example.com", "b@example.net", []string{"alice"}},
		// lab's senders allow only lab: others never use it.
		{"x@lab.example.com", "a@corp.example.com", []string{"lab"}},
		{"x@lab.example.com", "b@example.net", []string{"provider", "backup"}},
		// The null sender routes as a sender without a route.
		{"", "a@corp.example.com", []string{"corp"}},
		{"", "b@example.net", []string{"provider", "backup"}},
	} {
		if got := names(route.Recipient(cfg, tt.sender, tt.rcpt)); !slices.Equal(got, tt.want) {
			t.Errorf("Recipient(%q, %q) = %v, want %v", tt.sender, tt.rcpt, got, tt.want)
		}
	}
	// The sender's route leaves out the tables with recipients.
	if got := names(route.Route(cfg, "bob@example.com")); !slices.Equal(got, []string{"provider", "backup"}) {
		t.Errorf("Route(bob) = %v", got)
	}

	// Only recipients tables: any other recipient has no route.
	cfg.Smarthosts = cfg.Smarthosts[1:2]
	if got := route.Recipient(cfg, "bob@example.com", "b@example.net"); len(got) != 0 {
		t.Errorf("Recipient(b@example.net) = %v, want none", names(got))
	}
}

func TestAddressMatches_Patterns(t *testing.T) {
	for _, tt := range []struct {
		pattern, addr string
		want          bool
	}{
		{"*", "", true},
		{"*", "a@b.example", true},
		{"@example.org", "a@example.org", true},
		{"@example.org", "a@sub.example.org", false},
		{"*@example.org", "a@EXAMPLE.org", true},
		{"@.example.org", "a@sub.example.org", true},
		{"@.example.org", "a@x.y.example.org", true},
		{"@.example.org", "a@example.org", false},
		{"@.example.org", "a@badexample.org", false},
		{"*@.example.org", "a@sub.example.org", true},
		{"alice@example.org", "Alice@Example.org", true},
		{"alice@example.org", "bob@example.org", false},
		{"@example.org", "", false},
	} {
		if got := route.AddressMatches([]string{tt.pattern}, tt.addr); got != tt.want {
			t.Errorf("AddressMatches(%q, %q) = %v, want %v", tt.pattern, tt.addr, got, tt.want)
		}
	}
}

func TestPinned_NameAndSenders(t *testing.T) {
	cfg := &config.Config{Smarthosts: []config.Smarthost{
		{Name: "work", Senders: []string{"@work.example"}, Recipients: []string{"@corp.example"}},
		{Name: "home"},
	}}
	if sh := route.Pinned(cfg, "work", "me@work.example"); sh == nil || sh.Name != "work" {
		t.Errorf("Pinned(work, me@work.example) = %v", sh)
	}
	if sh := route.Pinned(cfg, "work", "me@home.example"); sh != nil {
		t.Errorf("Pinned(work, me@home.example) = %v, want nil: its senders do not allow it", sh.Name)
	}
	if sh := route.Pinned(cfg, "home", "me@home.example"); sh == nil || sh.Name != "home" {
		t.Errorf("Pinned(home) = %v", sh)
	}
	if sh := route.Pinned(cfg, "nope", "me@home.example"); sh != nil {
		t.Errorf("Pinned(nope) = %v", sh.Name)
	}
}
