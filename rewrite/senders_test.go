package rewrite

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSenderMap(t *testing.T) {
	const file = `# sender map
root: robot@example.com
www-data@server1.example.com: web@example.com
@server1.example.com: @example.com
@old.example: robot@example.com
ADMIN@Other.Example: boss@example.com
*: fallback@example.com
`
	r := rulesWith(t, "", file, "")
	tests := []struct{ in, want, rule string }{
		{"root@server1.example.com", "robot@example.com", ":2 root"},                           // local name
		{"root@server1", "robot@example.com", ":2 root"},                                       // the short host name is local too
		{"www-data@server1.example.com", "web@example.com", ":3 www-data@server1.example.com"}, // full address before local name and @domain
		{"alice@server1.example.com", "alice@example.com", ":4 @server1.example.com"},          // @domain: keep the local part
		{"bob@OLD.example", "robot@example.com", ":5 @old.example"},
		{"admin@other.example", "boss@example.com", ":6 ADMIN@Other.Example"}, // case-insensitive keys
		{"root@other.example", "fallback@example.com", ":7 *"},                // root is no local name here
		{"", "", ""}, // the null sender stays
	}
	for _, tt := range tests {
		got, rule := r.MapSender(tt.in)
		if got != tt.want || !strings.HasSuffix(rule, tt.rule) || (tt.rule == "") != (rule == "") {
			t.Errorf("%q: got %q (%s), want %q (…%s)", tt.in, got, rule, tt.want, tt.rule)
		}
	}
	// Without "*", an unmatched sender passes unchanged.
	r = rulesWith(t, "", "root: robot@example.com\n", "")
	if got, rule := r.MapSender("app@shop.example"); got != "app@shop.example" || rule != "" {
		t.Errorf("unmatched: %q %q", got, rule)
	}
}

func TestSenderMapProblems(t *testing.T) {
	p := writeFile(t, "senders", `root: a@example.com, b@example.com
www: not-an-address
@bad..domain: a@example.com
app: @bad..domain
root: again@example.com
ok: ok@example.com
`)
	m, probs, err := ParseSenderMap(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pr := range probs {
		got = append(got, strings.TrimPrefix(pr.String(), p))
	}
	want := []string{
		":1: root: one address, not 2: the envelope has one sender",
		`:2: www: "not-an-address" is not a complete address (local@domain)`,
		":3: @bad..domain: not a domain",
		`:4: app: "@bad..domain" is not a domain`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// root's first entry was bad, so the second one counts.
	if v, _ := m.Lookup("root@h.example", func(string) bool { return true }); v != "again@example.com" {
		t.Errorf("root: %q", v)
	}
}

func TestLoginMap(t *testing.T) {
	const file = `root: *
alice: @example.com, alice.other@example.org
daemon: <>, bounces
*: noreply@example.com
`
	r := rulesWith(t, "", "", file)
	tests := []struct {
		user, sender string
		ok           bool
	}{
		{"root", "anything@anywhere.example", true},
		{"alice", "alice@server1.example.com", true}, // the own address, always
		{"alice", "sales@example.com", true},         // @domain
		{"alice", "sales@EXAMPLE.com", true},
		{"alice", "alice.other@example.org", true},
		{"alice", "bob@example.org", false},
		{"alice", "", false},
		{"daemon", "", true},                            // <>
		{"daemon", "bounces@server1.example.com", true}, // a bare name is at the mail domain
		{"daemon", "bounces@example.com", false},
		{"mallory", "noreply@example.com", true}, // "*"
		{"mallory", "root@server1.example.com", false},
		{"mallory", "mallory@server1.example.com", true},
	}
	for _, tt := range tests {
		err := r.AllowSender(tt.user, tt.sender)
		if (err == nil) != tt.ok {
			t.Errorf("%s as %q: %v, want allowed=%v", tt.user, tt.sender, err, tt.ok)
		}
	}
	err := r.AllowSender("alice", "bob@example.org")
	if err == nil || !strings.Contains(err.Error(), "user alice may not send as bob@example.org (sender_login_map "+r.Files().Logins.File+":2)") {
		t.Errorf("message: %v", err)
	}
	// Without a "*" entry, a user without an entry has only the own address.
	r = rulesWith(t, "", "", "root: *\n")
	if err := r.AllowSender("bob", "x@example.org"); err == nil || !strings.Contains(err.Error(), "no entry for bob") {
		t.Errorf("bob: %v", err)
	}
	if err := r.AllowSender("bob", "bob@server1.example.com"); err != nil {
		t.Errorf("bob's own: %v", err)
	}
	// No map: everybody may send as anybody.
	r = rulesWith(t, "", "", "")
	if err := r.AllowSender("bob", "x@example.org"); err != nil {
		t.Errorf("no map: %v", err)
	}
}

// TestReloadChangedFiles: a long-lived Rules (the daemon's) sees a
// corrected sender map without a restart.
func TestReloadChangedFiles(t *testing.T) {
	r := rulesWith(t, "root: alice@example.org\n", "root: old@example.com\n", "")
	if got, _ := r.MapSender("root@server1.example.com"); got != "old@example.com" {
		t.Fatalf("before: %q", got)
	}
	p := r.Files().Senders.File
	if err := os.WriteFile(p, []byte("root: robot@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Unchanged until the next look (at most once a second).
	r.checked.Store(time.Now().Add(time.Hour).UnixNano())
	if got, _ := r.MapSender("root@server1.example.com"); got != "old@example.com" {
		t.Errorf("looked again at once: %q", got)
	}
	r.checked.Store(0) // as if a second had passed
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.MapSender("root@server1.example.com")
			r.Expand("root")
		}()
	}
	wg.Wait()
	if got, _ := r.MapSender("root@server1.example.com"); got != "robot@example.com" {
		t.Errorf("after the change: %q", got)
	}
	if got := expansions(r, "root"); got != "alice@example.org" {
		t.Errorf("aliases after the reload: %q", got)
	}
	// A removed file: its rules are gone.
	os.Remove(p)
	r.checked.Store(0)
	if got, _ := r.MapSender("root@server1.example.com"); got != "root@server1.example.com" {
		t.Errorf("after removal: %q", got)
	}
}
