package spool

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/failure"
)

// sameAsJSON fails unless decodeEnvelopeJSON gives what encoding/json
// gives for b: the same envelope, or an error for the same input.
func sameAsJSON(t *testing.T, b []byte) {
	t.Helper()
	var want, got Envelope
	werr := json.Unmarshal(b, &want)
	gerr := decodeEnvelopeJSON(b, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s:\nencoding/json: %v\nfast: %v", b, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%s:\nencoding/json: %+v\nfast:          %+v", b, want, got)
	}
}

// TestDecodeEnvelope_SameAsEncodingJSON: the envelopes relay writes, and
// lines it does not write (nulls, keys in other case, other number
// forms, escapes, broken JSON), decode exactly as encoding/json decodes
// them.
func TestDecodeEnvelope_SameAsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 5, 13, 42, 27, 586189920, time.UTC)
	full := &Envelope{
		ID: "1K1WCGRPQTB6TEA", Sender: "a@example.test", UID: 1000, User: "robot", Arrival: at, Attempts: 3,
		NextAttempt: at.Add(time.Hour),
		Recipients: []Recipient{
			{Address: "b@example.test", Original: "b", Status: Pending, Notified: true,
				Failure: &failure.Failure{Stage: failure.StageRcpt, Code: 451, Enhanced: "4.7.1", Text: "later \"please\"", Time: at,
					Cause: &failure.Failure{Stage: failure.StageConnect, Text: "refused"}}},
			{Address: "c@example.test", Status: Delivered, Reply: "250 2.0.0 Ok: queued as X"},
			{Address: "d@example.test", Status: Failed, Failure: &failure.Failure{Code: 550, GaveUpAfter: "5d"}},
		},
		LastFailure: &failure.Failure{Stage: failure.StageConnect, Text: "dial tcp: connection refused", Time: at},
		DSN:         DSN{Notify: []string{"SUCCESS", "FAILURE"}, Ret: "HDRS", EnvID: "e1"},
		Body:        "8BITMIME", MessageID: "<x@y>", Held: true, Bounce: true, Warned: true,
		RateWait:   &RateWait{Smarthost: "main", Limit: "100/h", Until: at},
		RateWaited: 90 * time.Second, Source: "smtp",
		Drop:      &DropOrigin{Name: "1K1", Dev: 2049, Ino: 77, Size: 300, MTime: 1, CTime: 2},
		Smarthost: "relay2",
	}
	var lines []string
	for _, e := range []*Envelope{full, {ID: "1K1WCGRPQTB6TEA", Recipients: []Recipient{{Address: "x@y", Status: Pending}}}} {
		b, err := json.Marshal(envelopeFile{Envelope: e, QueueFileSize: 2211})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	base := lines[0]
	for _, edit := range [][2]string{
		{`"held":true`, `"held":null`},
		{`"held":true`, `"Held":true`},
		{`"attempts":3`, `"attempts":3.0`},
		{`"attempts":3`, `"attempts":"3"`},
		{`"uid":1000`, `"uid":-1`},
		{`"sender":"a@example.test"`, `"sender":"a\u0040example.test"`},
		{`"sender":"a@example.test"`, `"sender":"a@ex` + "\xff" + `ample.test"`},
		{`"last_failure":{`, `"last_failure":null,"x":{`},
		{`"cause":{`, `"cause":null,"y":{`},
		{`"recipients":[`, `"recipients":[],"recipients":[`},
		{`"arrival":"2026-12-05T13:42:27.58618992Z"`, `"arrival":"2026-12-05T24:42:27Z"`},
		{`"arrival":"2026-12-05T13:42:27.58618992Z"`, `"arrival":"2026-12-05T13:42:27+01:00"`},
		{`"rate_waited":90000000000`, `"rate_waited":9e10`},
		{`"dsn":{`, `"dsn":null,"z":{`},
		{`"code":451`, `"code":451,"extra":[1,{"a":null},"s",true]`},
		{`}`, `,}`},
		{`"id"`, ` "id" `},
	} {
		if !strings.Contains(base, edit[0]) {
			t.Fatalf("%q not in %s", edit[0], base)
		}
		lines = append(lines, strings.Replace(base, edit[0], edit[1], 1))
	}
	// And every envelope of the test data: format 2 envelope files.
	files, _ := filepath.Glob(filepath.Join("testdata", "format2-a0b0368", "queue", "*.env"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(b), "\n")
		lines = append(lines, strings.TrimSuffix(rest, "\n"))
	}
	for _, l := range lines {
		sameAsJSON(t, []byte(l))
	}
}

// FuzzDecodeEnvelope: for any line, the fast decoder and encoding/json
// agree (bench/fuzz.sh runs it longer).
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"id":"1K1WCGRPQTB6TEA","sender":"","recipients":[{"address":"a@b","status":"pending","failure":{"stage":"rcpt","code":450,"cause":{"text":"x"}}}],"arrival":"2026-12-05T13:42:27Z","queue_file_size":5}`,
		`{"id":"x","dsn":{"notify":["NEVER"]},"rate_wait":{"smarthost":"m","limit":"1/h","until":"2026-12-05T13:42:27Z"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsJSON(t, b) })
}
