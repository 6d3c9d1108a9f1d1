package sendmailcompat_test

import (
	"github.com/relaymail/relay/internal/testqueue"
	"strings"
	"testing"

	"github.com/relaymail/relay/sysexits"
)

func TestVerify(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	var out strings.Builder
	if err := s.Verify([]string{"root", "a@example.org, B <b@example.org>"}, &out); err != nil {
		t.Fatal(err)
	}
	want := "root@server1.example.com\n  <-- root\na@example.org\nb@example.org\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	out.Reset()
	err := s.Verify([]string{"a@b@c"}, &out)
	if sysexits.Code(err, -1) != sysexits.Usage || !strings.Contains(out.String(), "undeliverable") {
		t.Errorf("bad address: %v, %q", err, out.String())
	}
}

func TestVerifyRewrite(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	testqueue.WithRewrite(t, s, "")
	var out strings.Builder
	err := s.Verify([]string{"root", "pipe"}, &out)
	if sysexits.Code(err, -1) != sysexits.NoUser {
		t.Errorf("exit %v, want 67 for pipe", err)
	}
	for _, want := range []string{
		"root\n  envelope recipient: alice@example.org (alias ",
		"                      ops@example.org (alias ",
		"  envelope sender:    root@server1.example.com (no smarthost serves this sender",
		"pipe\n  envelope recipient: undeliverable: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
}
