package spool

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// decodeSummary fills m from one envelope line. It reads the few fields
// a Summary has and skips the rest without building them, which is most
// of the cost of a count of 100,000 messages; anything it does not expect
// (malformed JSON, a field of another type) makes it hand the line to
// encoding/json instead, whose result (or error) is then the answer.
func decodeSummary(b []byte, m *Summary) error {
	d := summaryDecoder{b: b}
	if d.object(m) && d.end() {
		return nil
	}
	*m = Summary{}
	return json.Unmarshal(b, m)
}

var errSyntax = errors.New("summary: unexpected JSON")

type summaryDecoder struct {
	b []byte
	i int
}

func (d *summaryDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *summaryDecoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// peek returns the next byte after white space (0 at the end).
func (d *summaryDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *summaryDecoder) expect(c byte) bool {
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

// str reads a string; one with an escape is decoded by encoding/json.
func (d *summaryDecoder) str() (string, bool) {
	if !d.expect('"') {
		return "", false
	}
	start := d.i
	escaped := false
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '\\':
			escaped = true
			d.i += 2
			continue
		case c == '"':
			raw := d.b[start:d.i]
			d.i++
			if !escaped && utf8.Valid(raw) {
				return string(raw), true
			}
			// Escapes, or bytes encoding/json replaces with U+FFFD.
			var s string
			if json.Unmarshal(d.b[start-1:d.i], &s) != nil {
				return "", false
			}
			return s, true
		case c < 0x20:
			return "", false
		}
		d.i++
	}
	return "", false
}

// literal reads true, false or null.
func (d *summaryDecoder) literal() (val, ok bool) {
	d.ws()
	for _, lit := range []string{"true", "false", "null"} {
		if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
			d.i += len(lit)
			return lit == "true", true
		}
	}
	return false, false
}

// number reads a JSON number's text.
func (d *summaryDecoder) number() (string, bool) {
	d.ws()
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	s := string(d.b[start:d.i])
	return s, validNumber(s)
}

// validNumber checks JSON's number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// skip passes over any value.
func (d *summaryDecoder) skip() bool {
	switch c := d.peek(); {
	case c == '"':
		_, ok := d.str()
		return ok
	case c == '{':
		return d.members(func(string) bool { return d.skip() })
	case c == '[':
		return d.elements(d.skip)
	case c == 't' || c == 'f' || c == 'n':
		_, ok := d.literal()
		return ok
	default:
		_, ok := d.number()
		return ok
	}
}

// members reads an object, calling member for each key with the decoder
// at its value.
func (d *summaryDecoder) members(member func(key string) bool) bool {
	if !d.expect('{') {
		return false
	}
	if d.expect('}') {
		return true
	}
	for {
		key, ok := d.str()
		if !ok || !d.expect(':') || !member(key) {
			return false
		}
		if d.expect('}') {
			return true
		}
		if !d.expect(',') {
			return false
		}
	}
}

func (d *summaryDecoder) elements(elem func() bool) bool {
	if !d.expect('[') {
		return false
	}
	if d.expect(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.expect(']') {
			return true
		}
		if !d.expect(',') {
			return false
		}
	}
}

func (d *summaryDecoder) time(t *time.Time) bool {
	s, ok := d.str()
	if !ok {
		return false
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	*t = v
	return err == nil
}

func (d *summaryDecoder) object(m *Summary) bool {
	return d.members(func(key string) bool {
		var ok bool
		switch key {
		case "id":
			m.ID, ok = d.str()
		case "sender":
			m.Sender, ok = d.str()
		case "arrival":
			ok = d.time(&m.Arrival)
		case "next_attempt":
			ok = d.time(&m.NextAttempt)
		case "attempts":
			var s string
			if s, ok = d.number(); ok {
				m.Attempts, ok = atoiOK(s)
			}
		case "smarthost":
			m.Smarthost, ok = d.str()
		case "queue_file_size":
			var s string
			if s, ok = d.number(); ok {
				var n int
				n, ok = atoiOK(s)
				m.QueueFileSize = int64(n)
			}
		case "held":
			m.Held, ok = d.bool()
		case "bounce":
			m.Bounce, ok = d.bool()
		case "recipients":
			m.Recipients = m.Recipients[:0]
			ok = d.elements(func() bool {
				var r SummaryRecipient
				good := d.members(func(k string) bool {
					var ok bool
					switch k {
					case "address":
						r.Address, ok = d.str()
					case "status":
						var s string
						s, ok = d.str()
						r.Status = Status(s)
					default:
						ok = !foldsTo(k, recipientKeys) && d.skip()
					}
					return ok
				})
				m.Recipients = append(m.Recipients, r)
				return good
			})
		case "rate_wait":
			// Rare: the standard decoder.
			start := d.i
			if ok = d.skip(); ok {
				m.RateWait = nil
				ok = json.Unmarshal(d.b[start:d.i], &m.RateWait) == nil
			}
		default:
			// encoding/json matches keys without regard to case: one
			// spelled otherwise is left to it.
			ok = !foldsTo(key, summaryKeys) && d.skip()
		}
		return ok
	})
}

var (
	summaryKeys   = []string{"id", "sender", "arrival", "next_attempt", "attempts", "held", "bounce", "recipients", "rate_wait", "smarthost", "queue_file_size"}
	recipientKeys = []string{"address", "status"}
)

func foldsTo(key string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}

func (d *summaryDecoder) bool() (bool, bool) {
	if c := d.peek(); c != 't' && c != 'f' {
		return false, false
	}
	return d.literal()
}

func atoiOK(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil
}
