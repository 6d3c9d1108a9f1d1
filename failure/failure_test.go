package failure_test

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymail/relay/failure"
)

// TestClassification: which failures bounce, which defer, which are
// relay's own side (package documentation, SPEC 6).
func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		name               string
		f                  failure.Failure
		permanent, ownSide bool
		dsn                string
	}{
		{"5xx at RCPT bounces", failure.Failure{Stage: failure.StageRcpt, Code: 550, Enhanced: "5.1.1", Text: "User unknown"}, true, false, "5.1.1"},
		{"552 at RCPT is 452", failure.Failure{Stage: failure.StageRcpt, Code: 552, Enhanced: "5.2.2", Text: "Mailbox full"}, false, false, "4.2.2"},
		{"5xx after DATA bounces", failure.Failure{Stage: failure.StageData, Code: 554, Enhanced: "5.7.1", Text: "Spam"}, true, false, "5.7.1"},
		{"4xx defers", failure.Failure{Stage: failure.StageRcpt, Code: 451, Text: "Greylisted"}, false, false, "4.0.0"},
		{"5xx at MAIL is own side", failure.Failure{Stage: failure.StageMail, Code: 553, Enhanced: "5.7.1", Text: "Sender address rejected: not owned by auth user"}, false, true, "4.7.1"},
		{"535 is own side", failure.Failure{Stage: failure.StageAuth, Code: 535, Text: "bad password"}, false, true, "4.0.0"},
		{"quota at RCPT is the account", failure.Failure{Stage: failure.StageRcpt, Code: 550, Enhanced: "5.4.6", Text: "Daily sending quota exceeded"}, false, true, "4.4.6"},
		{"mailbox quota is the recipient", failure.Failure{Stage: failure.StageRcpt, Code: 550, Text: "mailbox quota exceeded"}, true, false, "5.0.0"},
		{"connect without reply", failure.Failure{Stage: failure.StageConnect, Err: errors.New("connection refused")}, false, true, "4.0.0"},
		{"unknown stage defers", failure.Failure{Code: 550, Text: "no"}, false, true, "4.0.0"},
	} {
		if p, o, d := tc.f.Permanent(), tc.f.OwnSide(), tc.f.DSN(); p != tc.permanent || o != tc.ownSide || d != tc.dsn {
			t.Errorf("%s: Permanent %v, OwnSide %v, DSN %s; want %v, %v, %s", tc.name, p, o, d, tc.permanent, tc.ownSide, tc.dsn)
		}
	}
}

// TestStored: the failure the spool keeps has the error's text, the time,
// and nothing that does not survive the spool; it reads and prints as the
// live one did.
func TestStored(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	op := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25},
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	live := &failure.Failure{Stage: failure.StageConnect, Err: op, Addr: "127.0.0.1:25"}
	s := live.Stored(at)
	if s.Err != nil || s.Addr != "" || s.Text != op.Error() || !s.Time.Equal(at) || s.Stage != failure.StageConnect {
		t.Fatalf("stored %+v", s)
	}
	if s.Error() != live.Error() || s.ReplyLine() != live.ReplyLine() || s.OwnSide() != live.OwnSide() {
		t.Errorf("stored prints %q/%q, live %q/%q", s.Error(), s.ReplyLine(), live.Error(), live.ReplyLine())
	}
	// Explained alike, once by the error's type and once by its text.
	if e, want := failure.Explain(s), failure.Explain(live); e == "" || e != want {
		t.Errorf("stored explains as %q, live as %q", e, want)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"stage":"connect","text":"dial tcp 127.0.0.1:25: connect: connection refused","time":"2025-03-01T10:00:00Z"}`
	if string(b) != wantJSON {
		t.Errorf("JSON %s, want %s", b, wantJSON)
	}
	var back failure.Failure
	if err := json.Unmarshal(b, &back); err != nil || back != *s {
		t.Errorf("JSON read back as %+v (%v), want %+v", back, err, *s)
	}
}

// TestGaveUp: a recipient given up after the lifetime keeps the server's
// reply; its reason and bounce status say that relay gave up.
func TestGaveUp(t *testing.T) {
	f := failure.Failure{Stage: failure.StageRcpt, Code: 452, Enhanced: "4.2.2", Text: "Mailbox full", GaveUpAfter: "5d"}
	if got := f.Reason(); got != "gave up after 5d: 452 4.2.2 Mailbox full" {
		t.Errorf("Reason %q", got)
	}
	if f.ReplyLine() != "452 4.2.2 Mailbox full" || f.FailedStatus() != "5.4.7" {
		t.Errorf("ReplyLine %q, FailedStatus %q", f.ReplyLine(), f.FailedStatus())
	}
	if e := failure.Explain(&f); !strings.Contains(e, "mailbox is full") {
		t.Errorf("explained as %q: want the reply's explanation", e)
	}
	for _, tc := range []struct {
		f    failure.Failure
		want string
	}{
		{failure.Failure{Stage: failure.StageRcpt, Code: 550, Enhanced: "5.1.1"}, "5.1.1"},
		{failure.Failure{Stage: failure.StageRcpt, Code: 550}, "5.0.0"},
		{failure.Failure{Stage: failure.StageRcpt, Code: 550, Enhanced: "4.1.1"}, "5.0.0"},
	} {
		if got := tc.f.FailedStatus(); got != tc.want {
			t.Errorf("FailedStatus of %+v = %s, want %s", tc.f, got, tc.want)
		}
	}
}

// TestParseFormat1: every line format 1 stored reads back into the
// failure that printed it.
func TestParseFormat1(t *testing.T) {
	for _, f := range []failure.Failure{
		{Stage: failure.StageRcpt, Code: 550, Enhanced: "5.1.1", Text: "<a@example.net>: Recipient address rejected: User unknown"},
		{Stage: failure.StageRcpt, Code: 451, Enhanced: "4.3.0", Text: "Temporary local problem; try again later", GaveUpAfter: "5d"},
		{Stage: failure.StageAuth, Code: 535, Text: "Authentication failed: bad: password"},
		{Stage: failure.StageTLS, Text: "tls: first record does not look like a TLS handshake"},
		{Stage: failure.StageConnect, Text: "primary is down until 2025-03-01T10:05:00Z (dial tcp 192.0.2.1:587: connect: connection refused)",
			Cause: &failure.Failure{Text: "dial tcp 192.0.2.1:587: connect: connection refused"}},
		{Stage: failure.StageData, Code: 250, Text: "Ok"},
	} {
		if got := failure.ParseFormat1Reason(f.Stage, f.Reason()); got == nil || !reflect.DeepEqual(*got, f) {
			t.Errorf("ParseFormat1Reason(%q) = %+v, want %+v", f.Reason(), got, f)
		}
		if f.GaveUpAfter != "" {
			continue // never in a last error
		}
		if got := failure.ParseFormat1Error(f.Error()); got == nil || !reflect.DeepEqual(*got, f) {
			t.Errorf("ParseFormat1Error(%q) = %+v, want %+v", f.Error(), got, f)
		}
	}
	if got := failure.ParseFormat1Reason(failure.StageRcpt, ""); got != nil {
		t.Errorf("empty reason read as %+v", got)
	}
}
