package spool

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/relaymail/relay/failure"
)

// FuzzDecodeSummary: the fast decoder of a count says what encoding/json
// says about the same line, for any input: the same Summary, or an error
// where it errs.
func FuzzDecodeSummary(f *testing.F) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC)
	full := &Envelope{ID: "1K1W1KK9HQBJZ60", Sender: `odd"<sender>@example.org`, UID: 1000, User: "alice",
		Arrival: now, NextAttempt: now.Add(time.Hour), Attempts: 3, Held: true, Bounce: true,
		Recipients: []Recipient{
			{Address: "a@example.org", Status: Delivered, Reply: "250 2.0.0 Ok"},
			{Address: "b\u00e9@example.org", Status: Pending, Failure: &failure.Failure{Stage: failure.StageRcpt, Code: 450, Text: "try \"later\"", Time: now}},
		},
		LastFailure: &failure.Failure{Stage: failure.StageRcpt, Code: 450},
		DSN:         DSN{Notify: []string{"FAILURE", "DELAY"}, Ret: "HDRS"},
		RateWait:    &RateWait{Smarthost: "main", Limit: "1/h", Until: now},
		RateWaited:  time.Minute, Source: "smtp", Smarthost: "relay2",
	}
	b, _ := json.Marshal(full)
	f.Add(b)
	b, _ = json.Marshal(&Envelope{ID: "1K1W1KK9HQBJZ61", Recipients: []Recipient{{Address: "x@y", Status: Pending}}})
	f.Add(b)
	for _, s := range []string{
		`{}`, `{"id":null}`, `{"attempts":1.5}`, `{"attempts":"2"}`, `{"recipients":null}`, `{"held":1}`,
		`{"id":"A","id":"B"}`, `{"recipients":[{"address":"a"}],"recipients":[]}`, `{"ID":"x"}`,
		`{"sender":"\u0041\n"}`, `{"arrival":"yesterday"}`, `{"rate_wait":{"until":5}}`, `[1]`, `{"a":[{"b":[true,false,null,-1e5]}]}`,
		`{"id":"x"} trailing`, `{"id":"x",}`, "{\"id\":\"a\tb\"}",
		`{"queue_file_size":1234}`, `{"queue_file_size":-1}`, `{"queue_file_size":1e3}`, `{"queue_file_size":"5"}`, `{"Queue_File_Size":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, std Summary
		errFast := decodeSummary(b, &fast)
		errStd := json.Unmarshal(b, &std)
		if (errFast == nil) != (errStd == nil) {
			t.Fatalf("%q: fast error %v, encoding/json error %v", b, errFast, errStd)
		}
		if errStd != nil {
			return
		}
		if len(fast.Recipients) == 0 && len(std.Recipients) == 0 {
			fast.Recipients, std.Recipients = nil, nil
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("%q:\nfast %s\nstd  %s", b, dump(fast), dump(std))
		}
	})
}

func dump(s Summary) string { return fmt.Sprintf("%+v rate_wait=%+v", s, s.RateWait) }
