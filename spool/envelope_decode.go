package spool

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/relaymail/relay/failure"
)

// decodeEnvelopeJSON decodes an envelope line of format 2 or later into
// env (zero on entry). Like decodeSummary it reads the fields itself and
// hands anything it does not expect (a null, a key in other case, a
// number of another form, malformed JSON) to encoding/json, whose result
// is then the answer: a listing of 100,000 deferred messages spent half
// its time in encoding/json's reflection.
func decodeEnvelopeJSON(b []byte, env *Envelope) error {
	d := summaryDecoder{b: b}
	if d.envelope(env) && d.end() {
		return nil
	}
	*env = Envelope{}
	return json.Unmarshal(b, env)
}

var (
	envelopeKeys = []string{"id", "sender", "recipients", "uid", "user", "arrival", "attempts", "next_attempt",
		"last_failure", "dsn", "body", "message_id", "held", "bounce", "warned", "rate_wait", "rate_waited",
		"source", "drop", "smarthost"}
	envRecipientKeys = []string{"address", "original", "status", "reply", "failure", "notified"}
	failureKeys      = []string{"stage", "code", "enhanced", "text", "time", "gave_up_after", "cause"}
)

func (d *summaryDecoder) int(v *int) bool {
	s, ok := d.number()
	if ok {
		*v, ok = atoiOK(s)
	}
	return ok
}

// jsonTime reads a time as time.Time's UnmarshalJSON does (it is the
// answer: the same strictness), from the string's own bytes.
func (d *summaryDecoder) jsonTime(t *time.Time) bool {
	if d.peek() != '"' {
		return false
	}
	start := d.i
	if _, ok := d.str(); !ok {
		return false
	}
	return t.UnmarshalJSON(d.b[start:d.i]) == nil
}

// raw decodes the next value, whatever it is, with encoding/json (rare
// fields).
func (d *summaryDecoder) raw(v any) bool {
	start := d.i
	d.ws()
	if d.peek() == 'n' {
		return false // null: encoding/json's own rules
	}
	return d.skip() && json.Unmarshal(d.b[start:d.i], v) == nil
}

func (d *summaryDecoder) envelope(e *Envelope) bool {
	return d.members(func(key string) bool {
		var ok bool
		switch key {
		case "id":
			e.ID, ok = d.str()
		case "sender":
			e.Sender, ok = d.str()
		case "recipients":
			e.Recipients = []Recipient{} // "[]" is an empty list, not none
			ok = d.elements(func() bool {
				var r Recipient
				good := d.recipient(&r)
				e.Recipients = append(e.Recipients, r)
				return good
			})
		case "uid":
			ok = d.int(&e.UID)
		case "user":
			e.User, ok = d.str()
		case "arrival":
			ok = d.jsonTime(&e.Arrival)
		case "attempts":
			ok = d.int(&e.Attempts)
		case "next_attempt":
			ok = d.jsonTime(&e.NextAttempt)
		case "last_failure":
			e.LastFailure, ok = d.failure()
		case "body":
			e.Body, ok = d.str()
		case "message_id":
			e.MessageID, ok = d.str()
		case "source":
			e.Source, ok = d.str()
		case "smarthost":
			e.Smarthost, ok = d.str()
		case "held":
			e.Held, ok = d.bool()
		case "bounce":
			e.Bounce, ok = d.bool()
		case "warned":
			e.Warned, ok = d.bool()
		case "rate_waited":
			var s string
			if s, ok = d.number(); ok {
				var n int64
				n, ok = atoi64OK(s)
				e.RateWaited = time.Duration(n)
			}
		case "dsn":
			e.DSN = DSN{}
			ok = d.raw(&e.DSN)
		case "rate_wait":
			e.RateWait = nil
			ok = d.raw(&e.RateWait)
		case "drop":
			e.Drop = nil
			ok = d.raw(&e.Drop)
		default:
			// Unknown keys (queue_file_size) are skipped, as encoding/json
			// skips them; one that matches a field in other case is not.
			ok = !foldsTo(key, envelopeKeys) && d.skip()
		}
		return ok
	})
}

func (d *summaryDecoder) recipient(r *Recipient) bool {
	return d.members(func(key string) bool {
		var ok bool
		switch key {
		case "address":
			r.Address, ok = d.str()
		case "original":
			r.Original, ok = d.str()
		case "status":
			var s string
			s, ok = d.str()
			r.Status = Status(s)
		case "reply":
			r.Reply, ok = d.str()
		case "failure":
			r.Failure, ok = d.failure()
		case "notified":
			r.Notified, ok = d.bool()
		default:
			ok = !foldsTo(key, envRecipientKeys) && d.skip()
		}
		return ok
	})
}

// failure reads a failure object (not null: encoding/json decides that).
func (d *summaryDecoder) failure() (*failure.Failure, bool) {
	if d.peek() != '{' {
		return nil, false
	}
	f := new(failure.Failure)
	ok := d.members(func(key string) bool {
		var ok bool
		switch key {
		case "stage":
			var s string
			s, ok = d.str()
			f.Stage = failure.Stage(s)
		case "code":
			ok = d.int(&f.Code)
		case "enhanced":
			f.Enhanced, ok = d.str()
		case "text":
			f.Text, ok = d.str()
		case "time":
			ok = d.jsonTime(&f.Time)
		case "gave_up_after":
			f.GaveUpAfter, ok = d.str()
		case "cause":
			f.Cause, ok = d.failure()
		default:
			ok = !foldsTo(key, failureKeys) && d.skip()
		}
		return ok
	})
	return f, ok
}

func atoi64OK(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
