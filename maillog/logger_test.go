package maillog_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/relaymail/relay/maillog"
)

func TestNew_ExactLines(t *testing.T) {
	var buf bytes.Buffer
	l := maillog.New(&buf)
	l.Info("id", "4bX9", "to", "<ann@example.org>", "relay", "smtp.yandex.ru[77.88.21.158]:465",
		"status", "sent", "reply", "250 2.0.0 Ok: queued as 1A2B")
	l.Warning("alias", "|/usr/bin/procmail", "status", "ignored")
	l.Error("id", "4bX9", "status", "deferred", "reply", "535 5.7.8 Error: authentication failed\r\n",
		"hint", `the "password" is wrong`)
	l.Log(maillog.Info, "id", "4bX9", "status", "queued")
	want := `id=4bX9 to=<ann@example.org> relay=smtp.yandex.ru[77.88.21.158]:465 status=sent reply="250 2.0.0 Ok: queued as 1A2B"
warning: alias=|/usr/bin/procmail status=ignored
error: id=4bX9 status=deferred reply="535 5.7.8 Error: authentication failed" hint="the \"password\" is wrong"
id=4bX9 status=queued
`
	if got := buf.String(); got != want {
		t.Errorf("lines:\n%s\nwant:\n%s", got, want)
	}
}

func TestNew_OddAndOddities(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(l *maillog.Logger)
		want string
	}{
		{"odd count: last key gets the empty value", func(l *maillog.Logger) { l.Info("id", "4bX9", "reason") }, "id=4bX9 reason=\"\"\n"},
		{"a single key", func(l *maillog.Logger) { l.Error("oops") }, "error: oops=\"\"\n"},
		{"no pairs: no line", func(l *maillog.Logger) { l.Error() }, ""},
		{"empty value", func(l *maillog.Logger) { l.Info("msgid", "") }, "msgid=\"\"\n"},
		{"bad key characters become _", func(l *maillog.Logger) { l.Info("a b=c\n", "1") }, "a_b_c_=1\n"},
		{"empty key", func(l *maillog.Logger) { l.Info("", "1") }, "_=1\n"},
		{"unknown high level is an error", func(l *maillog.Logger) { l.Log(maillog.Level(9), "k", "v") }, "error: k=v\n"},
		{"unknown low level is info", func(l *maillog.Logger) { l.Log(maillog.Level(-1), "k", "v") }, "k=v\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(maillog.New(&buf))
			if got := buf.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLevel_String(t *testing.T) {
	for lv, want := range map[maillog.Level]string{maillog.Info: "info", maillog.Warning: "warning", maillog.Error: "error"} {
		if got := lv.String(); got != want {
			t.Errorf("Level(%d).String() = %q, want %q", int(lv), got, want)
		}
	}
}

func TestNilAndDiscard_DoNothing(t *testing.T) {
	var nilLog *maillog.Logger
	for name, l := range map[string]*maillog.Logger{"nil": nilLog, "Discard": maillog.Discard, "New(nil)": maillog.New(nil)} {
		t.Run(name, func(t *testing.T) {
			l.Info("k", "v")
			l.Warning("k", "v")
			l.Error("k", "v")
			l.Log(maillog.Error, "k", "v")
			l.AddSecrets("x")
			if err := l.Reopen(); err != nil {
				t.Errorf("Reopen: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			l.Info("after", "close")
		})
	}
}

func TestAddSecrets_MasksKeysAndValues(t *testing.T) {
	// A masked key shows as ____: keys keep to [A-Za-z0-9_.-].
	var buf bytes.Buffer
	l := maillog.New(&buf)
	l.AddSecrets(`hun"ter2`, "", "tok3n")
	l.Error("id", "4bX9", "reply", `535 bad credentials user:hun"ter2`, "tok3n", "proxy=socks5://u:tok3n@h:1")
	want := `error: id=4bX9 reply="535 bad credentials user:****" ____="proxy=socks5://u:****@h:1"` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if strings.Contains(buf.String(), "hun") || strings.Contains(buf.String(), "tok3n") {
		t.Errorf("a secret leaked: %q", buf.String())
	}
}

func TestClose_KeepsCallersWriter(t *testing.T) {
	var buf bytes.Buffer
	l := maillog.New(&buf)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Info("k", "v")
	if buf.String() != "k=v\n" {
		t.Errorf("after Close, New's logger wrote %q, want k=v", buf.String())
	}
}

func TestOpenStderr_JournalPriorityPrefix(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dev, ino := devIno(t, f)

	t.Setenv("JOURNAL_STREAM", "")
	l, err := maillog.Open("stderr", f)
	if err != nil {
		t.Fatal(err)
	}
	l.Error("k", "plain")

	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", dev, ino+1)) // another stream
	l, _ = maillog.Open("stderr", f)
	l.Error("k", "other")

	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", dev, ino))
	l, _ = maillog.Open("", f)
	l.Info("k", "i")
	l.Warning("k", "w")
	l.Error("k", "e")

	got, _ := os.ReadFile(f.Name())
	want := "error: k=plain\nerror: k=other\n<6>k=i\n<4>warning: k=w\n<3>error: k=e\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// ExampleNew shows the stderr line format.
func ExampleNew() {
	l := maillog.New(os.Stdout)
	l.Info("id", "4bX9", "from", "<root@server1.example.org>", "size", "1234", "nrcpt", "1", "status", "queued")
	l.Error("id", "4bX9", "to", "<ann@example.org>", "status", "deferred",
		"reply", "535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 Learn more", "hint", `check "password_file"`)
	// Output:
	// id=4bX9 from=<root@server1.example.org> size=1234 nrcpt=1 status=queued
	// error: id=4bX9 to=<ann@example.org> status=deferred reply="535-5.7.8 Username and Password not accepted.; 535 5.7.8 Learn more" hint="check \"password_file\""
}
