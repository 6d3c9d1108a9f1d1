package rewrite

import (
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
)

func TestDescribe(t *testing.T) {
	r := rulesWith(t, "root: admin\nadmin: alice@example.com\npipe: |/bin/cat\n",
		"@server1.example.com: @example.com\n", "")
	r.Config.Smarthosts = []config.Smarthost{
		{Name: "yandex", Preset: "yandex", Username: "robot@example.com"},
		{Name: "shop", Username: "shop@shop.example", Senders: []string{"@shop.example"}},
	}
	r.Config.Rewrite.FromHeader = "rewrite"
	var b strings.Builder
	for _, a := range []string{"root", "app@shop.example", "pipe"} {
		WriteReport(&b, r.Describe(a))
	}
	al, sm := r.Files().Aliases.File, r.Files().Senders.File
	want := `root
  envelope recipient: alice@example.com via smarthost "yandex" (alias ` + al + `: root (line 1) -> admin (line 2))
  envelope sender:    robot@example.com via smarthost "yandex" (sender_map ` + sm + `:1 @server1.example.com; preset yandex: envelope sender = login of smarthost "yandex")
  From:               root on server1 <robot@example.com> (from_header = "rewrite", the old From kept in X-Original-From)
app@shop.example
  envelope recipient: app@shop.example via smarthost "shop" (unchanged)
  envelope sender:    app@shop.example via smarthost "shop" (unchanged)
  From:               app@shop.example (unchanged)
pipe
  envelope recipient: undeliverable: ` + al + `:3: pipe: "|/bin/cat" is a command; relay only hands mail to its smarthost and runs no commands
  envelope sender:    robot@example.com via smarthost "yandex" (sender_map ` + sm + `:1 @server1.example.com; preset yandex: envelope sender = login of smarthost "yandex")
  From:               pipe on server1 <robot@example.com> (from_header = "rewrite", the old From kept in X-Original-From)
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if !r.Describe("pipe").Undeliverable() || r.Describe("root").Undeliverable() {
		t.Error("Undeliverable")
	}
	// No smarthost for a sender: said so.
	r.Config.Smarthosts = r.Config.Smarthosts[1:]
	b.Reset()
	WriteReport(&b, r.Describe("root"))
	if !strings.Contains(b.String(), "no smarthost serves this sender") {
		t.Errorf("no route:\n%s", b.String())
	}
}

// TestDescribe_RouteOfEachRecipient: with routing by recipient, each
// recipient of an alias shows its own smarthost; one that none serves
// says so.
func TestDescribe_RouteOfEachRecipient(t *testing.T) {
	r := rulesWith(t, "ops: a@corp.example.com, b@example.net, c@lab.example.org\n", "", "")
	r.Config.Smarthosts = []config.Smarthost{
		{Name: "corp", Recipients: []string{"@corp.example.com", "@.corp.example.com"}},
		{Name: "lab", Recipients: []string{"@lab.example.org"}, Senders: []string{"@lab.example.org"}},
		{Name: "provider"},
	}
	var b strings.Builder
	WriteReport(&b, r.Describe("ops"))
	for _, want := range []string{
		"  envelope recipient: a@corp.example.com via smarthost \"corp\" (alias ",
		"                      b@example.net via smarthost \"provider\" (alias ",
		// lab's senders do not allow ops: the sender's route.
		"                      c@lab.example.org via smarthost \"provider\" (alias ",
		"  envelope sender:    ops@server1.example.com via smarthost \"provider\" (qualified with the mail domain)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
	r.Config.Smarthosts = r.Config.Smarthosts[:2]
	b.Reset()
	WriteReport(&b, r.Describe("ops"))
	if want := "                      b@example.net (no smarthost serves this recipient: its mail would wait in the queue) (alias "; !strings.Contains(b.String(), want) {
		t.Errorf("missing %q in:\n%s", want, b.String())
	}
}
