package sendmailcompat_test

// Fuzz targets of the intake parsers: the sendmail command line and the
// message a caller pipes in (header parsing and fix-ups, through Enqueue
// into a spool). Seeds: testdata/fuzz/; bench/fuzz.sh runs them longer.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// argv splits a fuzzed command line at NUL, which no real argument can
// hold.
func argv(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// FuzzParseArgs checks, for any command line: a refusal is exit 64 with
// a one-line message; an accepted one has no line break in any value
// that reaches a header, recipients that are the trailing arguments and
// none beginning with "-", and the Options rebuilt as a command line
// parse again to the same Options.
func FuzzParseArgs(f *testing.F) {
	for _, args := range [][]string{
		{"-oi", "-t"}, // mutt, PHP's mail()
		{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"}, // cronie
		{"-i", "-FCronDaemon", "-B8BITMIME", "-oem", "-oi", "-t"},
		{"-t", "-oi", "-f", "root@h.example", "--", "a@b"},
		{"-bs"}, {"-bp"}, {"-bi"}, {"-bv", "root"}, {"-q"}, {"-q30m"},
		{"-N", "success,delay", "-R", "hdrs", "-V", "env-1", "a@b"},
		{"-f", "<>", "a@b"}, {"-f", "Name <a@b>", "-F", "Müller, Hans", "a@b"},
		{"--wait=30s", "-v", "a@b"}, {"--config", "relay.toml", "a@b"}, {"-C/etc/relay/relay.toml", "a@b"},
		{"-odi", "-Am", "-G", "-U", "-x", "a@b, c@d"}, {"-f", "a@b\nBcc: x@y", "c@d"},
		{"-Ac"}, {"--wait"}, {"-f"}, {"--", "-oops"}, {"-Z"}, {"a@b", "-t"},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := argv(line)
		o, err := sendmailcompat.ParseArgs(args)
		if err != nil {
			if o != nil {
				t.Fatalf("ParseArgs(%q) = %+v and error %v", args, o, err)
			}
			if code := sysexits.Code(err, -1); code != sysexits.Usage {
				t.Fatalf("ParseArgs(%q): exit %d for %v, want 64", args, code, err)
			}
			return
		}
		for _, v := range append([]string{o.Sender, o.FullName}, o.Recipients...) {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("ParseArgs(%q) accepted %q", args, v)
			}
		}
		if len(o.Recipients) > len(args) || !slices.Equal(o.Recipients, args[len(args)-len(o.Recipients):]) {
			t.Fatalf("ParseArgs(%q): recipients %q are not the trailing arguments", args, o.Recipients)
		}
		for _, r := range o.Recipients {
			if strings.HasPrefix(r, "-") {
				t.Fatalf("ParseArgs(%q): recipient %q begins with -", args, r)
			}
		}
		_ = o.Mode.String()
		again, err := sendmailcompat.ParseArgs(commandLine(o))
		if err != nil {
			t.Fatalf("ParseArgs(%q) = %+v, rebuilt as %q, refused: %v", args, o, commandLine(o), err)
		}
		if !reflect.DeepEqual(o, again) {
			t.Fatalf("ParseArgs(%q) = %+v, rebuilt as %q, parses as %+v", args, o, commandLine(o), again)
		}
	})
}

// commandLine writes o back as arguments, each flag separate.
func commandLine(o *sendmailcompat.Options) []string {
	args := []string{[]string{"-bm", "-bp", "-bs", "-bv", "-bi", "-q"}[o.Mode]}
	for _, b := range []struct {
		on   bool
		flag string
	}{{o.Extract, "-t"}, {o.IgnoreDots, "-i"}, {o.Verbose, "-v"}} {
		if b.on {
			args = append(args, b.flag)
		}
	}
	if o.SenderSet {
		args = append(args, "-f", o.Sender)
	}
	if o.FullName != "" {
		args = append(args, "-F", o.FullName)
	}
	if o.Notify != nil {
		args = append(args, "-N", strings.Join(o.Notify, ","))
	}
	if o.Ret != "" {
		args = append(args, "-R", o.Ret)
	}
	if o.EnvID != "" {
		args = append(args, "-V", o.EnvID)
	}
	if o.Body != "" {
		args = append(args, "-B", o.Body)
	}
	if o.Config != "" {
		args = append(args, "-C", o.Config)
	}
	if o.WaitSet {
		args = append(args, "--wait="+o.Wait.String())
	}
	return append(append(args, "--"), o.Recipients...)
}

// enqueue is the one call of the Submitter's API in this file.
func enqueue(s *sendmailcompat.Submitter, o *sendmailcompat.Options, in io.Reader) (string, error) {
	r, err := s.Enqueue(o.Message(), in)
	return r.ID, err
}

// FuzzEnqueue checks a submission as sendmail makes it (command line and
// message): Enqueue either refuses it with a sysexits code for bad input
// (64, 65), leaving nothing in the queue, or queues a message whose spool
// files read back: an envelope with the expected sender and qualified,
// valid recipients, and a header that parses again, with From, Date and
// the envelope's Message-ID, without Bcc, Resent-Bcc or Return-Path, and
// the body as given.
func FuzzEnqueue(f *testing.F) {
	seeds := []struct{ args, msg string }{
		// Debian cron
		{"-FCronDaemon\x00-i\x00-B8BITMIME\x00-oem\x00root",
			"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@server1> run-parts /etc/cron.daily\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\nX-Cron-Env: <SHELL=/bin/sh>\n\n/etc/cron.daily/logrotate: error\n"},
		// bsd-mailx with Bcc
		{"-i\x00-t", "To: alice@example.org\nCc: bob\nBcc: secret@example.org\nSubject: hello\n\nbody\n.\nmore\n"},
		// PHP mail() with CRLF
		{"-t\x00-i", "To: a@example.org\r\nSubject: php\r\nX-PHP-Originating-Script: 33:index.php\r\n\r\nline\r\n"},
		{"-f\x00<>\x00a@b.example", "Subject: bounce\n\nx"},
		{"-f\x00app@shop.example\x00-F\x00Müller, Hans\x00a@b.example", "Subject: no from\n\nx\n"},
		{"a@b.example", "From some@where Mon Jan  1 00:00:00 2024\nSubject: mbox\n\nbody\n"},
		{"a@b.example", "no header at all\n"},
		{"a@b.example", "Subject: folded\n value\n\tmore\nX-Long: " + strings.Repeat("y", 1200) + "\n\n"},
		{"-t", "Resent-To: r@x.example\nTo: t@x.example\n\n"},
		{"-t", "To: undisclosed-recipients:;\n\n"},
		{"a@b.example", "Message-ID: <a\x00b@x>\nSubject: nul\n\n"},
		{"a@b.example", "Subject: eof in header"},
		{"a@b.example", "Subject: dot\n\n.\nafter the dot\n"},
		{"-t\x00a@b.example", "To: \"x y\"@q.example, <@r:z@y.example>, g: m@n.example;\n\n"},
	}
	for _, s := range seeds {
		f.Add(s.args, []byte(s.msg))
	}
	now := time.Date(2026, 11, 22, 21, 42, 28, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line string, msg []byte) {
		o, err := sendmailcompat.ParseArgs(argv(line))
		if err != nil || o.Mode != sendmailcompat.ModeDeliver {
			return
		}
		sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"))
		if err != nil {
			t.Fatal(err)
		}
		s := &sendmailcompat.Submitter{
			Spool: sp, Domain: "server1.example.com", Hostname: "server1",
			UID: 1000, User: "alice", Gecos: "Alice Liddell",
			MaxMessageSize: 64 << 10,
			Now:            func() time.Time { return now },
		}
		id, err := enqueue(s, o, bytes.NewReader(msg))
		if err != nil {
			code := sysexits.Code(err, -1)
			if id != "" || (code != sysexits.Usage && code != sysexits.DataErr) {
				t.Fatalf("Enqueue(%q): id %q, exit %d: %v", argv(line), id, code, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("Enqueue(%q): error of more than one line: %q", argv(line), err)
			}
			if ids, _ := sp.IDs(); len(ids) != 0 {
				t.Fatalf("Enqueue(%q) refused (%v) but queued %q", argv(line), err, ids)
			}
			return
		}
		checkQueued(t, s, o, id, msg)
	})
}

func checkQueued(t *testing.T, s *sendmailcompat.Submitter, o *sendmailcompat.Options, id string, msg []byte) {
	t.Helper()
	m, err := s.Spool.Read(id)
	if err != nil {
		t.Fatalf("queued %s does not read back: %v", id, err)
	}
	wantSender := "alice@server1.example.com"
	if o.SenderSet {
		p, _ := mailaddr.ParseSender(o.Sender)
		wantSender = ""
		if p != "" {
			wantSender = mailaddr.Qualify(p, s.Domain)
		}
	}
	if m.ID != id || m.Sender != wantSender || len(m.Recipients) == 0 {
		t.Fatalf("queued envelope %+v: want ID %s, sender %q, recipients", m.Envelope, id, wantSender)
	}
	seen := map[string]bool{}
	for _, r := range m.Recipients {
		if err := mailaddr.Valid(r.Address); err != nil || r.Status != spool.Pending {
			t.Fatalf("queued recipient %+v: %v", r, err)
		}
		if seen[strings.ToLower(r.Address)] {
			t.Fatalf("recipient %q queued twice", r.Address)
		}
		seen[strings.ToLower(r.Address)] = true
	}
	l, err := s.Spool.Lock(id)
	if err != nil {
		t.Fatalf("queued %s does not lock: %v", id, err)
	}
	defer l.Close()
	if !reflect.DeepEqual(*l.Env, m.Envelope) {
		t.Fatalf("Lock and Read of %s disagree: %+v, %+v", id, *l.Env, m.Envelope)
	}
	content, err := io.ReadAll(l.Content())
	if err != nil || int64(len(content)) != l.Size {
		t.Fatalf("content of %s: %d bytes of %d, %v", id, len(content), l.Size, err)
	}
	fields, body := splitMessage(t, content)
	count := map[string]int{}
	for _, fl := range fields {
		count[strings.ToLower(fl.name)]++
	}
	if fields[0].name != "Received" || count["from"] == 0 || count["date"] == 0 || count["message-id"] == 0 {
		t.Fatalf("queued header lacks Received first, From, Date or Message-ID:\n%s", content)
	}
	for _, gone := range []string{"bcc", "resent-bcc", "return-path"} {
		if count[gone] > 0 {
			t.Fatalf("queued header keeps %s:\n%s", gone, content)
		}
	}
	for _, fl := range fields {
		if strings.EqualFold(fl.name, "Message-ID") {
			if strings.TrimSpace(fl.value) != m.MessageID {
				t.Fatalf("envelope Message-ID %q, header %q", m.MessageID, fl.value)
			}
			break
		}
	}
	if !hasFrom(msg) {
		for _, fl := range fields {
			if strings.EqualFold(fl.name, "From") {
				list, err := mailaddr.ParseList(fl.value)
				if err != nil || len(list) != 1 {
					t.Fatalf("generated From %q parses as %+v, %v", fl.value, list, err)
				}
			}
		}
	}
	// The body is the input from where the header ended (a lone dot line
	// may end it early without -i).
	if o.IgnoreDots || !bytes.HasPrefix(msg, []byte(".")) && !bytes.Contains(msg, []byte("\n.")) {
		if !bytes.HasSuffix(normalize(msg), normalize(body)) {
			t.Fatalf("queued body %q is not the end of the input %q", body, msg)
		}
	}
}

// hasFrom reports whether the input's header (as readHeader reads it) has
// a From field.
func hasFrom(msg []byte) bool {
	h, _ := splitInput(msg)
	for _, l := range bytes.Split(h, []byte("\n")) {
		name, _, ok := bytes.Cut(l, []byte(":"))
		if ok && strings.EqualFold(strings.TrimRight(string(name), " \t"), "from") {
			return true
		}
	}
	return false
}

// splitInput cuts a message at its first empty line: header, and body
// (nil without an empty line).
func splitInput(msg []byte) (head, body []byte) {
	m := normalize(msg)
	if bytes.HasPrefix(m, []byte("\n")) {
		return nil, m[1:]
	}
	if i := bytes.Index(m, []byte("\n\n")); i >= 0 {
		return m[:i+1], m[i+2:]
	}
	return m, nil
}

func normalize(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

type hfield struct{ name, value string }

// splitMessage reads a queued message as a receiver would: header fields
// (a name of printable ASCII, optional blanks, a colon; continuation
// lines begin with a blank) up to an empty line, then the body. Every
// line before the empty line must be one of those.
func splitMessage(t *testing.T, content []byte) ([]hfield, []byte) {
	t.Helper()
	var fields []hfield
	br := bufio.NewReader(bytes.NewReader(content))
	off := 0
	for {
		line, err := br.ReadString('\n')
		off += len(line)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		text := strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			t.Fatalf("queued message without the empty line after its header:\n%q", content)
		case text == "" && strings.HasSuffix(line, "\n"):
			if len(fields) == 0 {
				t.Fatalf("queued message without a header:\n%q", content)
			}
			return fields, content[off:]
		case (line[0] == ' ' || line[0] == '\t') && len(fields) > 0:
			fields[len(fields)-1].value += line
		default:
			name, value, ok := strings.Cut(text, ":")
			name = strings.TrimRight(name, " \t")
			if !ok || name == "" || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
				t.Fatalf("queued header line %q is no field:\n%q", line, content)
			}
			fields = append(fields, hfield{name, value})
		}
	}
}
