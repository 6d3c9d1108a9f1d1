package rewrite

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/spool"
)

// deliver runs Content for a message from user through a smarthost and
// returns what goes out.
func deliver(t *testing.T, r *Rules, sender, msg string) string {
	t.Helper()
	env := &spool.Envelope{Sender: sender, User: "root"}
	sh := &config.Smarthost{Name: "mail", Username: "robot@example.com"}
	out, err := io.ReadAll(r.Content(env, sh, sender, iotest.OneByteReader(strings.NewReader(msg))))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

const cronMsg = "Received: by server1 (relay, from userid 0)\n\tid 1; Mon, 23 Nov 2026 00:00:01 +0000\n" +
	"From: root@server1.example.com (Cron Daemon)\n" +
	"To: root@server1.example.com\n" +
	"Subject: Cron <root@server1> /usr/local/bin/backup\n" +
	"Reply-To: ops@example.org\n" +
	"X-Mailer: cron\n" +
	"\n" +
	"body line 1\nFrom: not a header\n"

func TestFromRewrite(t *testing.T) {
	r := rulesWith(t, "", "", "")
	r.Config.Rewrite.FromHeader = "rewrite"
	tests := []struct{ name, from, want string }{
		{"comment as name", "From: root@server1.example.com (Cron Daemon)\n",
			"From: \"Cron Daemon (root on server1)\" <robot@example.com>\nX-Original-From: root@server1.example.com (Cron Daemon)\n"},
		{"no name", "From: www-data@server1.example.com\n",
			"From: www-data on server1 <robot@example.com>\nX-Original-From: www-data@server1.example.com\n"},
		{"display name kept", "From: \"Backup, nightly\" <backup@server1.example.com>\n",
			"From: \"Backup, nightly\" <robot@example.com>\nX-Original-From: \"Backup, nightly\" <backup@server1.example.com>\n"},
		{"foreign address", "From: <shop@customer.example>\n",
			"From: \"shop@customer.example on server1\" <robot@example.com>\nX-Original-From: <shop@customer.example>\n"},
		{"folded", "From: Alice\n\t<alice@server1.example.com>\n",
			"From: Alice <robot@example.com>\nX-Original-From: Alice\n\t<alice@server1.example.com>\n"},
		{"already the sender", "From: Robot <Robot@Example.com>\n", "From: Robot <Robot@Example.com>\n"},
		{"unparseable", "From: a@b@c\n", "From: robot@example.com\nX-Original-From: a@b@c\n"},
	}
	for _, tt := range tests {
		in := "To: x@example.org\n" + tt.from + "Subject: s\n\nbody\n"
		got := deliver(t, r, "robot@example.com", in)
		want := "To: x@example.org\n" + tt.want + "Subject: s\n\nbody\n"
		if got != want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, got, want)
		}
	}
	// CRLF messages get CRLF fields; the body is untouched.
	got := deliver(t, r, "robot@example.com", "From: root@server1.example.com\r\nTo: y\r\n\r\nFrom: body\r\n")
	if want := "From: root on server1 <robot@example.com>\r\nX-Original-From: root@server1.example.com\r\nTo: y\r\n\r\nFrom: body\r\n"; got != want {
		t.Errorf("CRLF:\ngot  %q\nwant %q", got, want)
	}
	// The null sender and relay's own reports leave From alone.
	if got := deliver(t, r, "", cronMsg); got != cronMsg {
		t.Errorf("null sender changed the message:\n%s", got)
	}
}

func TestFromKeep(t *testing.T) {
	r := rulesWith(t, "", "", "")
	env := &spool.Envelope{Sender: "app@shop.example"}
	in := strings.NewReader(cronMsg)
	if out := r.Content(env, &config.Smarthost{}, "robot@example.com", in); out != io.Reader(in) {
		t.Error("from_header = keep without header rules must hand the content through as it is")
	}
}

func TestHeaderRules(t *testing.T) {
	rule := func(action, name, value string) config.HeaderRule {
		return config.HeaderRule{Action: action, Name: name, Value: value}
	}
	tests := []struct {
		name  string
		rules []config.HeaderRule
		want  string // the header after the Received field
	}{
		{"append to Subject", []config.HeaderRule{rule("append", "subject", " [%h]")},
			"From: root@server1.example.com (Cron Daemon)\nTo: root@server1.example.com\nSubject: Cron <root@server1> /usr/local/bin/backup [server1.example.com]\nReply-To: ops@example.org\nX-Mailer: cron\n"},
		{"append to a missing field adds it", []config.HeaderRule{rule("append", "X-Tag", " %u")},
			"From: root@server1.example.com (Cron Daemon)\nTo: root@server1.example.com\nSubject: Cron <root@server1> /usr/local/bin/backup\nReply-To: ops@example.org\nX-Mailer: cron\nX-Tag: root\n"},
		{"add", []config.HeaderRule{rule("add", "X-Relay-Host", "%h (by %u, 100%%)")},
			"From: root@server1.example.com (Cron Daemon)\nTo: root@server1.example.com\nSubject: Cron <root@server1> /usr/local/bin/backup\nReply-To: ops@example.org\nX-Mailer: cron\nX-Relay-Host: server1.example.com (by root, 100%)\n"},
		{"add twice", []config.HeaderRule{rule("add", "X-Mailer", "relay")},
			"From: root@server1.example.com (Cron Daemon)\nTo: root@server1.example.com\nSubject: Cron <root@server1> /usr/local/bin/backup\nReply-To: ops@example.org\nX-Mailer: cron\nX-Mailer: relay\n"},
		{"replace in place", []config.HeaderRule{rule("replace", "TO", "ops@example.org")},
			"From: root@server1.example.com (Cron Daemon)\nTO: ops@example.org\nSubject: Cron <root@server1> /usr/local/bin/backup\nReply-To: ops@example.org\nX-Mailer: cron\n"},
		{"replace a missing field adds it", []config.HeaderRule{rule("replace", "Precedence", "bulk")},
			"From: root@server1.example.com (Cron Daemon)\nTo: root@server1.example.com\nSubject: Cron <root@server1> /usr/local/bin/backup\nReply-To: ops@example.org\nX-Mailer: cron\nPrecedence: bulk\n"},
		{"remove", []config.HeaderRule{rule("remove", "x-mailer", "")},
			"From: root@server1.example.com (Cron Daemon)\nTo: root@server1.example.com\nSubject: Cron <root@server1> /usr/local/bin/backup\nReply-To: ops@example.org\n"},
		{"in order", []config.HeaderRule{rule("remove", "Subject", ""), rule("add", "Subject", "new"), rule("append", "Subject", "!")},
			"From: root@server1.example.com (Cron Daemon)\nTo: root@server1.example.com\nReply-To: ops@example.org\nX-Mailer: cron\nSubject: new!\n"},
	}
	for _, tt := range tests {
		r := rulesWith(t, "", "", "")
		r.Config.Rewrite.Header = tt.rules
		got := deliver(t, r, "root@server1.example.com", cronMsg)
		head, body, _ := strings.Cut(got, "\n\n")
		_, head, _ = strings.Cut(head, "Mon, 23 Nov 2026 00:00:01 +0000\n")
		if head+"\n" != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, head+"\n", tt.want)
		}
		if body != "body line 1\nFrom: not a header\n" {
			t.Errorf("%s: body changed: %q", tt.name, body)
		}
	}
}

// TestContentStreams: the body of a large message is not held in memory
// and arrives unchanged.
func TestContentStreams(t *testing.T) {
	r := rulesWith(t, "", "", "")
	r.Config.Rewrite.Header = []config.HeaderRule{{Action: "add", Name: "X-Relay-Host", Value: "%h"}}
	body := bytes.Repeat([]byte("0123456789abcdef\n"), 1<<20/17*8) // 8 MB
	msg := io.MultiReader(strings.NewReader("Subject: big\n\n"), bytes.NewReader(body))
	out := r.Content(&spool.Envelope{}, &config.Smarthost{}, "a@example.com", msg)
	head := make([]byte, len("Subject: big\nX-Relay-Host: server1.example.com\n\n"))
	if _, err := io.ReadFull(out, head); err != nil || string(head) != "Subject: big\nX-Relay-Host: server1.example.com\n\n" {
		t.Fatalf("head %q %v", head, err)
	}
	rest, err := io.ReadAll(out)
	if err != nil || !bytes.Equal(rest, body) {
		t.Errorf("body: %d bytes, want %d (%v)", len(rest), len(body), err)
	}
}

// TestHeaderReadError: a spool read error reaches the delivery.
func TestHeaderReadError(t *testing.T) {
	r := rulesWith(t, "", "", "")
	r.Config.Rewrite.FromHeader = "rewrite"
	out := r.Content(&spool.Envelope{}, &config.Smarthost{}, "a@example.com", iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := io.ReadAll(out); err != io.ErrUnexpectedEOF {
		t.Errorf("err %v", err)
	}
}

// TestContentRewinds: over a seekable queued message (the spool's), the
// rewritten message can be read again from its start without a copy, and
// gives the same bytes: the delivery scans it before the DATA.
func TestContentRewinds(t *testing.T) {
	r := rulesWith(t, "", "", "")
	r.Config.Rewrite.FromHeader = "rewrite"
	r.Config.Rewrite.Header = []config.HeaderRule{{Action: "append", Name: "Subject", Value: " [%h]"}}
	queued := "ENVELOPE LINE\n" + cronMsg
	base := io.NewSectionReader(strings.NewReader(queued), 0, int64(len(queued)))
	base.Seek(int64(len("ENVELOPE LINE\n")), io.SeekStart)
	env := &spool.Envelope{Sender: "root@server1.example.com", User: "root"}
	out := r.Content(env, &config.Smarthost{Username: "robot@example.com"}, "robot@example.com", base)
	rs, ok := out.(io.ReadSeeker)
	if !ok {
		t.Fatalf("%T is not an io.ReadSeeker: the delivery would copy the message to read it twice", out)
	}
	if pos, err := rs.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
		t.Fatalf("Seek(0, current) = %d, %v before reading", pos, err)
	}
	first, err := io.ReadAll(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(first), "X-Original-From: root@server1.example.com") || !strings.Contains(string(first), "/usr/local/bin/backup [server1") {
		t.Fatalf("not rewritten:\n%s", first)
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	second, err := io.ReadAll(rs)
	if err != nil || !bytes.Equal(first, second) {
		t.Errorf("second read differs (%v):\n%s\n---\n%s", err, first, second)
	}
	if _, err := rs.Seek(5, io.SeekStart); err == nil {
		t.Error("a seek into the middle was accepted")
	}
}
