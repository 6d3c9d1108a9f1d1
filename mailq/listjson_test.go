package mailq_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/mailq"
	"github.com/relaymail/relay/spool"
)

// listJSON returns ListJSON's objects by queue ID, each as its raw fields,
// checking that every line is one object.
func listJSON(t *testing.T, sp *spool.Spool) (map[string]map[string]json.RawMessage, []string) {
	t.Helper()
	var out, warn bytes.Buffer
	if err := mailq.ListJSON(&out, &warn, sp); err != nil {
		t.Fatal(err)
	}
	if warn.Len() != 0 {
		t.Errorf("warnings: %s", warn.String())
	}
	objs := map[string]map[string]json.RawMessage{}
	var order []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %q is no JSON object: %v", sc.Text(), err)
		}
		var id string
		if err := json.Unmarshal(obj["queue_id"], &id); err != nil {
			t.Fatalf("line %q: queue_id: %v", sc.Text(), err)
		}
		objs[id] = obj
		order = append(order, id)
	}
	return objs, order
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// postqueueFields are the fields of postqueue -j, plus relay's attempts
// and next_attempt.
var postqueueFields = []string{"arrival_time", "attempts", "message_size", "next_attempt", "queue_id", "queue_name", "recipients", "sender"}

type jsonRecipient struct {
	Address     string `json:"address"`
	DelayReason string `json:"delay_reason"`
	Status      string `json:"status"`
}

type jsonEntry struct {
	QueueName   string          `json:"queue_name"`
	QueueID     string          `json:"queue_id"`
	ArrivalTime int64           `json:"arrival_time"`
	MessageSize int64           `json:"message_size"`
	Sender      string          `json:"sender"`
	Recipients  []jsonRecipient `json:"recipients"`
	Attempts    int             `json:"attempts"`
	NextAttempt int64           `json:"next_attempt"`
	RateWait    *struct {
		Smarthost string `json:"smarthost"`
		Limit     string `json:"limit"`
		Until     int64  `json:"until"`
	} `json:"rate_wait"`
}

func decodeEntry(t *testing.T, obj map[string]json.RawMessage) jsonEntry {
	t.Helper()
	b, _ := json.Marshal(obj)
	var e jsonEntry
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestListJSON_PostqueueFields(t *testing.T) {
	sp := testqueue.NewSpool(t)
	next := arrival.Add(30 * time.Minute)
	until := arrival.Add(time.Hour)

	incoming := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(321))
	deferred := enqueue(t, sp, envelope("", "carol@example.org", "dave@example.org", "erin@example.org"), content(654))
	update(t, sp, deferred, func(e *spool.Envelope) {
		e.Attempts = 3
		e.NextAttempt = next
		recordFailure(e, 0, "451 4.3.0 try\nagain later", false, false)
		e.Recipients[1].Status = spool.Delivered
		recordFailure(e, 2, "550 5.1.1 no such user", true, false)
	})
	held := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	update(t, sp, held, func(e *spool.Envelope) { e.Attempts = 1; e.Held = true })
	active := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	holdLock(t, sp, active)
	waiting := enqueue(t, sp, envelope("alice@example.com", "bob@example.org"), content(100))
	update(t, sp, waiting, func(e *spool.Envelope) {
		e.Attempts = 1
		e.RateWait = &spool.RateWait{Smarthost: "main", Limit: "100/h", Until: until}
	})

	objs, order := listJSON(t, sp)
	if want := []string{incoming, deferred, held, active, waiting}; !slices.Equal(order, want) {
		t.Fatalf("ListJSON lists %v, want arrival order %v", order, want)
	}
	for id, obj := range objs {
		want := postqueueFields
		if id == waiting {
			want = append(slices.Clone(want), "rate_wait")
			want = slices.Sorted(slices.Values(want))
		}
		if got := keys(obj); !slices.Equal(got, want) {
			t.Errorf("%s has the fields %v, want %v", id, got, want)
		}
	}

	names := map[string]string{incoming: "incoming", deferred: "deferred", held: "hold", active: "active", waiting: "deferred"}
	for id, name := range names {
		if e := decodeEntry(t, objs[id]); e.QueueName != name {
			t.Errorf("%s is in queue %q, want %q", id, e.QueueName, name)
		}
	}

	in := decodeEntry(t, objs[incoming])
	if in.ArrivalTime != arrival.Unix() || in.MessageSize != 321 || in.Sender != "alice@example.com" ||
		in.Attempts != 0 || in.NextAttempt != arrival.Unix() {
		t.Errorf("incoming message: %+v", in)
	}
	if len(in.Recipients) != 1 || in.Recipients[0] != (jsonRecipient{Address: "bob@example.org", Status: "pending"}) {
		t.Errorf("incoming recipients: %+v", in.Recipients)
	}
	// A recipient without a reason has no delay_reason at all.
	var rcpts []map[string]json.RawMessage
	json.Unmarshal(objs[incoming]["recipients"], &rcpts)
	if got := keys(rcpts[0]); !slices.Equal(got, []string{"address", "status"}) {
		t.Errorf("a recipient without a reason has the fields %v", got)
	}

	de := decodeEntry(t, objs[deferred])
	if de.Sender != "" || de.MessageSize != 654 || de.Attempts != 3 || de.NextAttempt != next.Unix() {
		t.Errorf("deferred message: %+v", de)
	}
	wantRcpts := []jsonRecipient{
		// JSON keeps the reply as it was; only the listing folds it.
		{Address: "carol@example.org", DelayReason: "451 4.3.0 try\nagain later", Status: "pending"},
		{Address: "erin@example.org", DelayReason: "refused permanently: 550 5.1.1 no such user", Status: "failed"},
	}
	if !slices.Equal(de.Recipients, wantRcpts) {
		t.Errorf("deferred recipients (the delivered one left out):\n%+v\nwant\n%+v", de.Recipients, wantRcpts)
	}

	wa := decodeEntry(t, objs[waiting])
	if wa.RateWait == nil || wa.RateWait.Smarthost != "main" || wa.RateWait.Limit != "100/h" || wa.RateWait.Until != until.Unix() {
		t.Errorf("rate_wait: %+v", wa.RateWait)
	}
	if len(wa.Recipients) != 1 || !strings.HasPrefix(wa.Recipients[0].DelayReason, "waiting for the rate limit of smarthost main (100/h) until ") {
		t.Errorf("recipients of a message waiting for a rate limit: %+v", wa.Recipients)
	}
}
