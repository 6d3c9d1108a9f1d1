package route_test

import (
	"slices"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/route"
)

func names(shs []*config.Smarthost) []string {
	var out []string
	for _, sh := range shs {
		out = append(out, sh.Name)
	}
	return out
}

func TestRoute_SendersThenCatchAllInConfigurationOrder(t *testing.T) {
	cfg := &config.Config{Smarthosts: []config.Smarthost{
		{Name: "any1"},
		{Name: "org", Senders: []string{"*@example.org"}},
		{Name: "alice", Senders: []string{"alice@example.com", "@example.net"}},
		{Name: "any2"},
		{Name: "org2", Senders: []string{"@Example.ORG"}},
		{Name: "star", Senders: []string{"*"}},
	}}
	for _, tt := range []struct {
		sender string
		want   []string
	}{
		// Matching tables first, in order; the catch-all ones are not
		// mixed in: a sender with its own route stays on it.
		{"bob@example.org", []string{"org", "org2", "star"}},
		{"BOB@EXAMPLE.org", []string{"org", "org2", "star"}},
		{"alice@example.com", []string{"alice", "star"}},
		{"Alice@Example.com", []string{"alice", "star"}},
		{"x@example.net", []string{"alice", "star"}},
		// "*" matches everyone, the null sender too.
		{"", []string{"star"}},
		// A subdomain is another domain.
		{"bob@sub.example.org", []string{"star"}},
	} {
		if got := names(route.Route(cfg, tt.sender)); !slices.Equal(got, tt.want) {
			t.Errorf("Route(%q) = %v, want %v", tt.sender, got, tt.want)
		}
	}

	// Without a "*" table, a sender that matches nothing goes to the
	// tables without senders; a table whose senders exclude it never
	// carries it.
	cfg.Smarthosts = cfg.Smarthosts[:5]
	for _, tt := range []struct {
		sender string
		want   []string
	}{
		{"bob@example.org", []string{"org", "org2"}},
		{"carol@example.com", []string{"any1", "any2"}},
		{"", []string{"any1", "any2"}},
	} {
		if got := names(route.Route(cfg, tt.sender)); !slices.Equal(got, tt.want) {
			t.Errorf("Route(%q) = %v, want %v", tt.sender, got, tt.want)
		}
	}

	// Every table restricted, none matching: no route.
	cfg.Smarthosts = []config.Smarthost{cfg.Smarthosts[1], cfg.Smarthosts[2]}
	if got := route.Route(cfg, "carol@example.com"); len(got) != 0 {
		t.Errorf("Route(carol) = %v, want none", names(got))
	}
}

func TestOutgoingSender_EnvelopeFromThenPresetRule(t *testing.T) {
	for _, tt := range []struct {
		name           string
		sh             config.Smarthost
		sender         string
		want, wantRule string
	}{
		{"plain", config.Smarthost{Username: "robot@example.com"}, "root@host.example", "root@host.example", ""},
		{"envelope_from", config.Smarthost{EnvelopeFrom: "robot@example.com"}, "root@host.example", "robot@example.com", "envelope_from"},
		{"envelope_from already", config.Smarthost{EnvelopeFrom: "robot@example.com"}, "robot@example.com", "robot@example.com", ""},
		{"yandex", config.Smarthost{Preset: "yandex", Username: "robot@yandex.ru"}, "root@host.example", "robot@yandex.ru", "preset yandex: envelope sender = login"},
		{"mailru", config.Smarthost{Preset: "mailru", Username: "robot@mail.ru"}, "root@host.example", "robot@mail.ru", "preset mailru: envelope sender = login"},
		{"yandex, the login itself", config.Smarthost{Preset: "yandex", Username: "robot@yandex.ru"}, "Robot@Yandex.ru", "Robot@Yandex.ru", ""},
		{"yandex, envelope_from wins", config.Smarthost{Preset: "yandex", Username: "robot@yandex.ru", EnvelopeFrom: "alias@yandex.ru"}, "root@host.example", "alias@yandex.ru", "envelope_from"},
		{"yandex, login not an address", config.Smarthost{Preset: "yandex", Username: "robot"}, "root@host.example", "root@host.example", ""},
		{"gmail keeps the sender", config.Smarthost{Preset: "gmail", Username: "robot@gmail.com"}, "root@host.example", "root@host.example", ""},
		{"null sender stays null", config.Smarthost{Preset: "yandex", Username: "robot@yandex.ru", EnvelopeFrom: "x@yandex.ru"}, "", "", ""},
	} {
		got, rule := route.OutgoingSender(&tt.sh, tt.sender)
		if got != tt.want || rule != tt.wantRule {
			t.Errorf("%s: OutgoingSender(%q) = %q, %q; want %q, %q", tt.name, tt.sender, got, rule, tt.want, tt.wantRule)
		}
	}
}
