package bounce_test

// IsAutoSubmitted: which messages are never answered with a report.

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"testing"

	"github.com/relaymail/relay/bounce"
)

func TestIsAutoSubmitted(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"Subject: hi", false},
		{"Auto-Submitted: no", false},
		{"Auto-Submitted: No (a person wrote this)", false},
		{"Auto-Submitted: no; x=y", false},
		{"Auto-Submitted:", false},
		{"Auto-Submitted: auto-replied", true},
		{"Auto-Submitted: auto-generated", true},
		{"auto-submitted: Auto-Replied; owner-email=\"x@y\"", true},
		{"Auto-Submitted: (vacation) auto-replied", true},
		{"Auto-Submitted: auto-notified", true},
		{"Auto-Submitted: no\r\nAuto-Submitted: auto-generated", true},
		{"Content-Type: multipart/report; report-type=delivery-status; boundary=x", true},
		{"Content-Type: Multipart/Report; Report-Type=\"Delivery-Status\"; boundary=\"x\"", true},
		{"Content-Type: multipart/report; report-type=global-delivery-status; boundary=x", true},
		{"Content-Type: multipart/report; report-type=disposition-notification; boundary=x", true},
		{"Content-Type: multipart/report; report-type=delivery-status; boundary=x; boundary=y", true},
		{"Content-Type: multipart/report; report-type=feedback-report; boundary=x", false},
		{"Content-Type: multipart/mixed; boundary=x", false},
		{"Content-Type: text/plain; report-type=delivery-status", false},
	} {
		h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(tc.header + "\r\n\r\n"))).ReadMIMEHeader()
		if err != nil {
			t.Fatalf("%q: %v", tc.header, err)
		}
		if got := bounce.IsAutoSubmitted(h); got != tc.want {
			t.Errorf("IsAutoSubmitted(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
	// relay's own reports are recognized.
	out, _ := build(t, failureReport(original))
	hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(out))).ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	if !bounce.IsAutoSubmitted(hdr) {
		t.Errorf("a report is not recognized as one")
	}
	delete(hdr, "Auto-Submitted")
	if !bounce.IsAutoSubmitted(hdr) {
		t.Errorf("a report without Auto-Submitted is not recognized by its Content-Type")
	}
}
