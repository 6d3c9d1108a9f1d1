package mailq_test

import (
	"testing"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
)

// The per-smarthost counts follow the runners' routing: recipients
// patterns send a recipient to their smarthost (a message split between
// two counts under both), sendmail -a pins a message to the smarthost it
// named (or to none, when that one does not serve the sender), and a
// recipient no smarthost serves counts the message as without a route.
func TestStats_SmarthostsAsTheRunnersRoute(t *testing.T) {
	sp := testqueue.NewSpool(t)
	now := time.Now()
	add := func(sender string, pinned string, rcpts ...string) string {
		env := envelope(sender, rcpts...)
		env.Arrival, env.Smarthost = now.Add(-time.Minute), pinned
		return enqueue(t, sp, env, content(100))
	}
	size := func(ids ...string) int64 { return queueBytes(t, sp, ids...) }
	internal := add("app@corp.example", "", "ann@corp.example")                     // recipients table
	split := add("app@corp.example", "", "bob@corp.example", "someone@example.net") // both
	outside := add("app@corp.example", "", "x@example.net")                         // the sender's route
	pinned := add("app@corp.example", "backup", "y@example.net", "cid@corp.example")
	refused := add("app@corp.example", "partners", "z@example.net") // its senders do not allow app@
	lost := add("nobody@example.org", "", "w@example.net")          // partners only serves partners
	delivered := add("app@corp.example", "", "dee@corp.example", "v@example.net")
	update(t, sp, delivered, func(e *spool.Envelope) { e.Recipients[0].Status = spool.Delivered })

	cfg := &config.Config{Spool: sp.Dir, Smarthosts: []config.Smarthost{
		{Name: "internal", Host: "mx.corp.example", Recipients: []string{"@corp.example"}},
		{Name: "main", Host: "main.example", Senders: []string{"@corp.example"}},
		{Name: "backup", Host: "backup.example", Senders: []string{"@corp.example"}},
		{Name: "partners", Host: "partners.example", Senders: []string{"@partner.example"}},
	}}
	st, err := mailq.CollectStats(cfg, sp, 0, now, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"internal": {internal, split},
		"main":     {split, outside, delivered},
		"backup":   {pinned},
		"partners": nil,
	}
	for _, h := range st.Smarthosts {
		w := want[h.Name]
		if h.Messages != len(w) || h.Bytes != size(w...) {
			t.Errorf("%s: %d messages, %d bytes; want %d, %d", h.Name, h.Messages, h.Bytes, len(w), size(w...))
		}
	}
	if st.NoRoute != 2 {
		t.Errorf("%d messages without a route, want 2 (%s pinned to a smarthost that refuses the sender, %s from a sender no smarthost serves)", st.NoRoute, refused, lost)
	}
}
