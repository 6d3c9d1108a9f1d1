package relay_test

// Helpers for the tests of the retry queue and of bounces: the queue as a
// list, relay's reports in it, and a parser of delivery status
// notifications built on net/mail and mime/multipart only (not on package
// bounce), so that the reports are checked as a receiving program reads
// them.

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/relaymail/relay/spool"
)

const (
	testDomain = "example.test"
	postmaster = "postmaster@" + testDomain
	bounceAddr = "bounces@example.test"
)

// queued is one message of the queue.
type queued struct {
	ID      string
	Env     *spool.Envelope
	Content []byte
}

// queue returns every message in the queue, in arrival order.
func (h *harness) queue() []queued {
	h.t.Helper()
	ids, err := h.sp.IDs()
	if err != nil {
		h.t.Fatal(err)
	}
	var out []queued
	for _, id := range ids {
		env := h.read(id)
		if env == nil {
			continue
		}
		f, err := h.sp.OpenContent(id)
		if err != nil {
			h.t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, queued{ID: id, Env: env, Content: b})
	}
	return out
}

// reports returns the queued messages relay made itself (Envelope.Bounce).
func (h *harness) reports() []queued {
	var out []queued
	for _, q := range h.queue() {
		if q.Env.Bounce {
			out = append(out, q)
		}
	}
	return out
}

// change rewrites a queued envelope under its lock, as a runner would.
func (h *harness) change(id string, fn func(*spool.Envelope)) {
	h.t.Helper()
	if err := h.sp.Change(id, 0, func(e *spool.Envelope) bool { fn(e); return true }); err != nil {
		h.t.Fatal(err)
	}
}

// dsnReport is a parsed delivery status notification.
type dsnReport struct {
	Header mail.Header
	// Human is the text/plain first part, decoded.
	Human string
	// PerMessage holds the per-message fields of the delivery-status
	// part, Rcpts one set of fields per recipient.
	PerMessage textproto.MIMEHeader
	Rcpts      []textproto.MIMEHeader
	// ThirdType is the media type of the third part ("" without one).
	ThirdType string
	Third     []byte
}

// parseReport parses raw as an RFC 3464 report and fails the test when
// it is not a multipart/report; report-type=delivery-status with the
// human-readable and the delivery-status parts in that order.
func parseReport(t *testing.T, raw []byte) *dsnReport {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("report is not a message: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" || params["boundary"] == "" {
		t.Fatalf("report Content-Type %q (%v), want multipart/report; report-type=delivery-status", msg.Header.Get("Content-Type"), err)
	}
	r := &dsnReport{Header: msg.Header}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			if i < 2 {
				t.Fatalf("report has %d parts, want at least 2", i)
			}
			break
		}
		if err != nil {
			t.Fatalf("report part %d: %v", i+1, err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("report part %d: %v", i+1, err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch i {
		case 0:
			if ct != "text/plain" {
				t.Errorf("report part 1 is %q, want text/plain", ct)
			}
			r.Human = string(body)
		case 1:
			if ct != "message/delivery-status" {
				t.Fatalf("report part 2 is %q, want message/delivery-status", ct)
			}
			tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
			for j := 0; ; j++ {
				fields, err := tr.ReadMIMEHeader()
				if len(fields) > 0 {
					if j == 0 {
						r.PerMessage = fields
					} else {
						r.Rcpts = append(r.Rcpts, fields)
					}
				}
				if err != nil {
					break
				}
			}
		case 2:
			r.ThirdType, r.Third = ct, body
		default:
			t.Errorf("report has a part %d (%q)", i+1, ct)
		}
	}
	return r
}

// finalRecipient parses a Final-Recipient value (RFC 3464 2.3.2:
// address-type ";" generic-address, spaces optional); only rfc822
// addresses count.
func finalRecipient(v string) string {
	typ, a, ok := strings.Cut(v, ";")
	if !ok || !strings.EqualFold(strings.TrimSpace(typ), "rfc822") {
		return ""
	}
	return strings.TrimSpace(a)
}

// rcpt returns the per-recipient fields of addr (nil when the report does
// not name it).
func (r *dsnReport) rcpt(addr string) textproto.MIMEHeader {
	for _, f := range r.Rcpts {
		if strings.EqualFold(finalRecipient(f.Get("Final-Recipient")), addr) {
			return f
		}
	}
	return nil
}

// finalRecipients lists the Final-Recipient addresses, sorted ("" for one
// that is not an rfc822 address).
func (r *dsnReport) finalRecipients() []string {
	var out []string
	for _, f := range r.Rcpts {
		out = append(out, finalRecipient(f.Get("Final-Recipient")))
	}
	slices.Sort(out)
	return out
}

// wantBounce checks that the queue holds exactly one report when failed
// is not empty, and none when it is: a bounce (Envelope.Bounce) from
// from to the sender, whose delivery-status part names exactly the failed
// recipients, each with Action: failed and a Diagnostic-Code containing
// its reason. It returns the report (nil when none is wanted).
func wantBounce(t *testing.T, h *harness, from string, failed map[string]string) *dsnReport {
	t.Helper()
	reps := h.reports()
	if len(failed) == 0 {
		if len(reps) != 0 {
			t.Errorf("%d reports queued, want none", len(reps))
		}
		return nil
	}
	if len(reps) != 1 {
		t.Fatalf("%d reports queued, want one bounce naming %v (queue: %d messages)", len(reps), failed, len(h.queue()))
	}
	b := reps[0]
	if b.Env.Sender != from {
		t.Errorf("bounce envelope sender %q, want %q", b.Env.Sender, from)
	}
	if len(b.Env.Recipients) != 1 || b.Env.Recipients[0].Address != sender || b.Env.Recipients[0].Status != spool.Pending {
		t.Errorf("bounce recipients %+v, want the original sender %s, pending", b.Env.Recipients, sender)
	}
	rep := parseReport(t, b.Content)
	var want []string
	for a := range failed {
		want = append(want, a)
	}
	slices.Sort(want)
	if got := rep.finalRecipients(); !slices.Equal(got, want) {
		t.Errorf("bounce names %q, want %q", got, want)
	}
	for a, reason := range failed {
		f := rep.rcpt(a)
		if f == nil {
			continue
		}
		if f.Get("Action") != "failed" {
			t.Errorf("%s: Action %q, want failed", a, f.Get("Action"))
		}
		if d := f.Get("Diagnostic-Code"); !strings.HasPrefix(d, "smtp; ") || !strings.Contains(d, reason) {
			t.Errorf("%s: Diagnostic-Code %q, want smtp; …%s…", a, d, reason)
		}
	}
	return rep
}

// logFields splits a log line into its keys and values, in order, quoted
// values unquoted.
func logFields(t *testing.T, line string) (keys []string, vals map[string]string) {
	t.Helper()
	vals = map[string]string{}
	for s := line; s != ""; {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			t.Fatalf("log line %q: no = after %q", line, s)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				t.Fatalf("log line %q: unterminated quote", line)
			}
			v, s = b.String(), strings.TrimPrefix(rest[i+1:], " ")
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		if _, dup := vals[k]; dup {
			t.Errorf("log line %q: %s twice", line, k)
		}
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals
}
