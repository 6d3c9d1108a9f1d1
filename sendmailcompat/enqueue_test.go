package sendmailcompat_test

import (
	"github.com/relaymail/relay/internal/testqueue"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// submit runs one sendmail invocation and returns what it queued.
func submit(t *testing.T, s *sendmailcompat.Submitter, args []string, input string) (*spool.Message, string, error) {
	t.Helper()
	o, err := sendmailcompat.ParseArgs(args)
	if err != nil {
		return nil, "", err
	}
	r, err := s.Enqueue(o.Message(), strings.NewReader(input))
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		return nil, "", err
	}
	id := r.ID
	m, err := s.Spool.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Spool.OpenContent(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return m, string(b), nil
}

// The exact command lines of the programs that call sendmail on real
// servers (shared/NOTES.md), each with the kind of message it writes.
func TestRealCallers(t *testing.T) {
	tests := []struct {
		caller string
		args   []string
		input  string
		sender string
		rcpts  []string
		has    []string // header lines (regexp, multi-line mode) that must be there
		hasNot []string // header lines that must not
		body   string
	}{
		{
			caller: "Debian cron",
			args:   []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			input: "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@server1> echo hi\nMIME-Version: 1.0\n" +
				"Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\nX-Cron-Env: <SHELL=/bin/sh>\n\nhi \xc3\xa9\n.\nafter dot\n",
			sender: "alice@server1.example.com",
			rcpts:  []string{"root@server1.example.com"},
			has: []string{`^From: root@server1\.example\.com \(Cron Daemon\)$`, `^To: root@server1\.example\.com$`,
				`^Date: Sun, 22 Nov 2026 21:42:28 \+0000$`, `^Message-ID: <20261122214228\.[0-9A-Z]{15}@server1\.example\.com>$`,
				`^X-Cron-Env: <SHELL=/bin/sh>$`},
			body: "hi \xc3\xa9\n.\nafter dot\n",
		},
		{
			caller: "cronie",
			args:   []string{"-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"},
			input:  "From: \"(Cron Daemon)\" <root>\nTo: root\nSubject: Cron <root@server1> date\n\nSun Nov 22\n",
			sender: "root@server1.example.com",
			rcpts:  []string{"root@server1.example.com"},
			has:    []string{`^From: "\(Cron Daemon\)" <root@server1\.example\.com>$`, `^To: root@server1\.example\.com$`},
			body:   "Sun Nov 22\n",
		},
		{
			caller: "anacron (no -i: a lone dot ends the input)",
			args:   []string{"-FAnacron", "-odi", "root"},
			input:  "From: Anacron <root>\nTo: root\nSubject: Anacron job 'cron.daily'\n\n..leading dots stay\n.\nnot part of the message\n",
			sender: "alice@server1.example.com",
			rcpts:  []string{"root@server1.example.com"},
			has:    []string{`^From: Anacron <root@server1\.example\.com>$`},
			body:   "..leading dots stay\n",
		},
		{
			caller: "bsd-mailx (Bcc in the header)",
			args:   []string{"-i", "-t", "-f", "alice@example.org"},
			input:  "To: bob@example.org\nCc: carol\nBcc: secret@example.org\nSubject: hi\n\nhello\n",
			sender: "alice@example.org",
			rcpts:  []string{"bob@example.org", "carol@server1.example.com", "secret@example.org"},
			has:    []string{`^Cc: carol@server1\.example\.com$`, `^From: Alice Liddell <alice@example\.org>$`},
			hasNot: []string{`(?i)^bcc:`, `secret@`},
			body:   "hello\n",
		},
		{
			caller: "s-nail",
			args:   []string{"-i", "-F", "Alice L", "-f", "alice@example.org", "--", "bob@example.org", "carol@example.org"},
			input:  "Date: Sun, 22 Nov 2026 10:00:00 +0100\nTo: bob@example.org, carol@example.org\nSubject: hi\nMessage-ID: <x1@example.org>\n\nbody\n",
			sender: "alice@example.org",
			rcpts:  []string{"bob@example.org", "carol@example.org"},
			has:    []string{`^From: Alice L <alice@example\.org>$`, `^Message-ID: <x1@example\.org>$`, `^Date: Sun, 22 Nov 2026 10:00:00 \+0100$`},
			hasNot: []string{`^Message-ID: <2026`},
			body:   "body\n",
		},
		{
			caller: "GNU mailutils",
			args:   []string{"-oi", "-f", "alice@example.org", "-t"},
			input:  "From: alice@example.org\nTo: \"Bob, the builder\" <bob@example.org>, dave@example.org\nSubject: x\n\n.\n",
			sender: "alice@example.org",
			rcpts:  []string{"bob@example.org", "dave@example.org"},
			body:   ".\n",
		},
		{
			caller: "mutt",
			args:   []string{"-oem", "-oi", "-B8BITMIME", "-f", "alice@example.org", "-N", "success,failure", "-R", "hdrs", "--", "bob@example.org"},
			input:  "From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: =?utf-8?q?caf=C3=A9?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9\n",
			sender: "alice@example.org",
			rcpts:  []string{"bob@example.org"},
			body:   "caf\xc3\xa9\n",
		},
		{
			caller: "git send-email",
			args:   []string{"-i", "-f", "alice@example.org", "bob@example.org", "carol@example.org"},
			input:  "From: Alice <alice@example.org>\nTo: bob@example.org\nCc: carol@example.org\nSubject: [PATCH] fix\nDate: Sun, 22 Nov 2026 09:00:00 +0000\nMessage-ID: <p1@example.org>\n\n---\n a | 1 +\n.\n--\n2.39.5\n",
			sender: "alice@example.org",
			rcpts:  []string{"bob@example.org", "carol@example.org"},
			body:   "---\n a | 1 +\n.\n--\n2.39.5\n",
		},
		{
			caller: "PHP mail()",
			args:   []string{"-t", "-i", "-f", "www@example.org"},
			input:  "To: customer@example.net\nSubject: Your order\nX-PHP-Originating-Script: 33:order.php\nFrom: shop@example.org\n\nThanks\n",
			sender: "www@example.org",
			rcpts:  []string{"customer@example.net"},
			has:    []string{`^X-PHP-Originating-Script: 33:order\.php$`},
			body:   "Thanks\n",
		},
		{
			caller: "unattended-upgrades (CRLF line ends)",
			args:   []string{"-oi", "-t"},
			input:  "Subject: unattended-upgrades result\r\nFrom: root\r\nTo: root\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\nAll upgrades installed\r\n",
			sender: "alice@server1.example.com",
			rcpts:  []string{"root@server1.example.com"},
			has:    []string{`^From: root@server1\.example\.com\r$`, `^Date: .*\r$`, `^Message-ID: .*\r$`},
			body:   "All upgrades installed\r\n",
		},
		{
			caller: "logwatch",
			args:   []string{"-t"},
			input:  "To: root\nFrom: Logwatch <root>\nSubject: Logwatch for server1\n\n ################### Logwatch ####\n",
			sender: "alice@server1.example.com",
			rcpts:  []string{"root@server1.example.com"},
			has:    []string{`^From: Logwatch <root@server1\.example\.com>$`},
			body:   " ################### Logwatch ####\n",
		},
		{
			caller: "sudo",
			args:   []string{"-t"},
			input:  "To: root\nFrom: root\nAuto-Submitted: auto-generated\nSubject: *** SECURITY information for server1 ***\n\nserver1 : Nov 22 : bob : user NOT in sudoers\n",
			sender: "alice@server1.example.com",
			rcpts:  []string{"root@server1.example.com"},
			has:    []string{`^Auto-Submitted: auto-generated$`},
			body:   "server1 : Nov 22 : bob : user NOT in sudoers\n",
		},
		{
			caller: "fail2ban",
			args:   []string{"-f", "fail2ban", "root@example.org"},
			input:  "Subject: [Fail2Ban] sshd: banned 192.0.2.1\nDate: Sun, 22 Nov 2026 21:00:00 +0000\nFrom: Fail2Ban <fail2ban>\nTo: root@example.org\n\nHi,\n",
			sender: "fail2ban@server1.example.com",
			rcpts:  []string{"root@example.org"},
			has:    []string{`^From: Fail2Ban <fail2ban@server1\.example\.com>$`},
			body:   "Hi,\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.caller, func(t *testing.T) {
			s := testqueue.NewSubmitter(t)
			m, content, err := submit(t, s, tt.args, tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if m.Sender != tt.sender {
				t.Errorf("sender = %q, want %q", m.Sender, tt.sender)
			}
			if got := testqueue.Addresses(m); !slices.Equal(got, tt.rcpts) {
				t.Errorf("recipients = %q, want %q", got, tt.rcpts)
			}
			hdr := testqueue.HeaderOf(content)
			// Every message gets the fix-ups.
			always := []string{`^Received: by server1 \(relay, from userid 1000\)\r?$`, `^From: `, `^Date: `, `^Message-ID: <`}
			for _, re := range append(always, tt.has...) {
				if !regexp.MustCompile(`(?m)` + re).MatchString(hdr) {
					t.Errorf("header lacks %s:\n%s", re, hdr)
				}
			}
			for _, re := range tt.hasNot {
				if regexp.MustCompile(`(?m)` + re).MatchString(hdr) {
					t.Errorf("header has %s:\n%s", re, hdr)
				}
			}
			if !strings.HasPrefix(content, "Received: ") {
				t.Errorf("Received is not the first field:\n%s", hdr)
			}
			if got := testqueue.BodyOf(content); got != tt.body {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
			if !strings.HasPrefix(m.MessageID, "<") {
				t.Errorf("envelope message_id = %q", m.MessageID)
			}
		})
	}
}

func TestExtract_ResentPrecedence(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	in := "To: original@example.org\nResent-To: new@example.org\nResent-Bcc: hidden@example.org\nSubject: fwd\n\nx\n"
	m, content, err := submit(t, s, []string{"-t", "extra@example.org"}, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"extra@example.org", "new@example.org", "hidden@example.org"}
	if got := testqueue.Addresses(m); !slices.Equal(got, want) {
		t.Errorf("recipients = %q, want %q", got, want)
	}
	if strings.Contains(content, "hidden@") || !strings.Contains(content, "To: original@example.org") {
		t.Errorf("header:\n%s", testqueue.HeaderOf(content))
	}
}

func TestBccRemovedWithoutT(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	in := "To: a@example.org\nBcc: b@example.org\nReturn-Path: <forged@example.org>\n\nx\n"
	m, content, err := submit(t, s, []string{"a@example.org"}, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := testqueue.Addresses(m); !slices.Equal(got, []string{"a@example.org"}) {
		t.Errorf("recipients = %q", got)
	}
	if strings.Contains(content, "Bcc") || strings.Contains(content, "Return-Path") {
		t.Errorf("Bcc or Return-Path kept:\n%s", content)
	}
}

func TestSenderForms(t *testing.T) {
	tests := []struct{ f, want string }{
		{"Name <a@b.example>", "a@b.example"},
		{"<a@b.example>", "a@b.example"},
		{"<>", ""},
		{"", ""},
		{"root", "root@server1.example.com"},
	}
	for _, tt := range tests {
		s := testqueue.NewSubmitter(t)
		m, content, err := submit(t, s, []string{"-f", tt.f, "x@example.org"}, "Subject: s\n\nx\n")
		if err != nil {
			t.Errorf("-f %q: %v", tt.f, err)
			continue
		}
		if m.Sender != tt.want {
			t.Errorf("-f %q: sender %q, want %q", tt.f, m.Sender, tt.want)
		}
		// With the null sender the generated From names the user.
		if tt.want == "" && !strings.Contains(content, "From: Alice Liddell <alice@server1.example.com>") {
			t.Errorf("-f %q: From:\n%s", tt.f, testqueue.HeaderOf(content))
		}
	}
}

// Input that sendmail must take as it is.
func TestInputForms(t *testing.T) {
	long := strings.Repeat("x", 200_000) // one line, longer than any buffer
	tests := []struct {
		name  string
		args  []string
		input string
		body  string
	}{
		{"mbox From line dropped", []string{"-i", "a@example.org"}, "From alice Sun Nov 22 10:00:00 2026\nSubject: s\n\nb\n", "b\n"},
		{"no header at all", []string{"-i", "a@example.org"}, "just a body line\nsecond\n", "just a body line\nsecond\n"},
		{"empty message", []string{"-i", "a@example.org"}, "", ""},
		{"lone dot at once", []string{"a@example.org"}, ".\nignored\n", ""},
		{"lone dot CRLF", []string{"a@example.org"}, "Subject: s\r\n\r\nline\r\n.\r\nignored\r\n", "line\r\n"},
		{"lone dot at EOF", []string{"a@example.org"}, "Subject: s\n\nline\n.", "line\n"},
		{"lone dot kept with -i", []string{"-i", "a@example.org"}, "Subject: s\n\nline\n.\nmore\n", "line\n.\nmore\n"},
		{"no final newline", []string{"-i", "a@example.org"}, "Subject: s\n\nline", "line"},
		{"header only, no newline", []string{"-i", "a@example.org"}, "Subject: s", ""},
		{"NUL bytes and 8-bit", []string{"-i", "a@example.org"}, "Subject: s\n\na\x00b\xff\xfe\n", "a\x00b\xff\xfe\n"},
		{"very long line", []string{"-i", "a@example.org"}, "Subject: s\n\n" + long + "\n", long + "\n"},
		{"dot after long line is no lone dot", []string{"a@example.org"}, "Subject: s\n\n" + long + ".\nend\n", long + ".\nend\n"},
		{"folded header", []string{"-i", "-t"}, "To: a@example.org,\n b\nSubject: s\n\nx\n", "x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testqueue.NewSubmitter(t)
			_, content, err := submit(t, s, tt.args, tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if got := testqueue.BodyOf(content); got != tt.body {
				if len(got) > 200 {
					got = got[:200] + "…"
				}
				t.Errorf("body = %q, want %q", got, tt.body)
			}
			for _, f := range []string{"\nFrom: ", "\nDate: ", "\nMessage-ID: "} {
				if !strings.Contains(testqueue.HeaderOf(content), f) {
					t.Errorf("header lacks %q:\n%q", f, testqueue.HeaderOf(content))
				}
			}
		})
	}
}

func TestFoldedRecipientsQualified(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	m, content, err := submit(t, s, []string{"-i", "-t"}, "To: a@example.org,\n b\nSubject: s\n\nx\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := testqueue.Addresses(m); !slices.Equal(got, []string{"a@example.org", "b@server1.example.com"}) {
		t.Errorf("recipients = %q", got)
	}
	if !strings.Contains(content, "To: a@example.org,\n b@server1.example.com\n") {
		t.Errorf("folding not kept:\n%s", testqueue.HeaderOf(content))
	}
}

// Bad input: each refused with its exit code and one line, nothing queued.
// TestLongHeaderLinesThatFold: a header line over 998 octets that
// delivery can fold (white space) or encode (an unstructured field) is
// accepted as it came; only delivery changes it.
func TestLongHeaderLinesThatFold(t *testing.T) {
	for _, field := range []string{
		"Subject: " + strings.TrimSpace(strings.Repeat("word ", 400)),
		"X-Blob: " + strings.Repeat("x", 2000),
	} {
		s := testqueue.NewSubmitter(t)
		_, content, err := submit(t, s, []string{"-i", "a@example.org"}, field+"\n\nbody\n")
		if err != nil {
			t.Fatalf("%.30s…: %v", field, err)
		}
		if !strings.Contains(content, field+"\n") {
			t.Errorf("%.30s…: not kept as it came", field)
		}
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		input string
		code  int
		msg   string
	}{
		{"no recipients", []string{"-i"}, "Subject: s\n\nx\n", sysexits.Usage, "no recipients given"},
		{"-t without any", []string{"-t"}, "Subject: s\n\nx\n", sysexits.DataErr, "no recipient addresses found"},
		{"-t with only a group", []string{"-t"}, "To: undisclosed-recipients:;\n\nx\n", sysexits.DataErr, "no recipient addresses found"},
		{"unparseable To with -t", []string{"-t"}, "To: <a@b\n\nx\n", sysexits.DataErr, "To header"},
		{"null recipient", []string{"<>"}, "x\n", sysexits.Usage, "null address"},
		{"bad recipient", []string{"a@b@c"}, "x\n", sysexits.Usage, `recipient "a@b@c"`},
		{"bad sender", []string{"-f", "a@b, c@d", "x@y.example"}, "x\n", sysexits.Usage, "-f"},
		{"too large", []string{"-i", "a@example.org"}, "Subject: s\n\n" + strings.Repeat("y", 2<<20), sysexits.DataErr, "max_message_size"},
		{"too large header", []string{"-i", "a@example.org"}, "Subject: " + strings.Repeat("y", 2<<20) + "\n\n", sysexits.DataErr, "header_size_limit (102400 bytes)"},
		{"header over the limit in many lines", []string{"-i", "a@example.org"}, strings.Repeat("X-Filler: "+strings.Repeat("y", 1000)+"\n", 110) + "\nbody\n", sysexits.DataErr, "header_size_limit"},
		// No server may take a line over 998 octets, and a Message-ID
		// cannot be folded without changing it: refused here rather than
		// bounced later (issue #21 items 12 and 16).
		{"unfoldable Message-ID", []string{"-i", "a@example.org"}, "Message-ID: <" + strings.Repeat("m", 1200) + "@example.org>\n\nbody\n", sysexits.DataErr, "the header field Message-ID has a line of 1226 octets without white space"},
		{"unfoldable To", []string{"-i", "a@example.org"}, "To: <" + strings.Repeat("t", 1200) + "@example.org>\n\nbody\n", sysexits.DataErr, "header field To"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testqueue.NewSubmitter(t)
			_, _, err := submit(t, s, tt.args, tt.input)
			if err == nil {
				t.Fatal("accepted")
			}
			if code := sysexits.Code(err, -1); code != tt.code {
				t.Errorf("exit %d, want %d (%v)", code, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q, want one line containing %q", err, tt.msg)
			}
			ids, _ := s.Spool.IDs()
			tmp, _ := filepath.Glob(filepath.Join(s.Spool.Dir, "tmp", "*"))
			if len(ids)+len(tmp) != 0 {
				t.Errorf("left behind: queue %v tmp %v", ids, tmp)
			}
		})
	}
}

func TestGeneratedFromName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"CronDaemon", "From: CronDaemon <alice@server1.example.com>"},
		{"Doe, John", `From: "Doe, John" <alice@server1.example.com>`},
		{`Say "hi"`, `From: "Say \"hi\"" <alice@server1.example.com>`},
		{"Jürgen", "From: =?utf-8?q?J=C3=BCrgen?= <alice@server1.example.com>"},
	}
	for _, tt := range tests {
		s := testqueue.NewSubmitter(t)
		_, content, err := submit(t, s, []string{"-F", tt.name, "x@example.org"}, "Subject: s\n\nx\n")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(content, "\n"+tt.want+"\n") {
			t.Errorf("-F %q: want %q in\n%s", tt.name, tt.want, testqueue.HeaderOf(content))
		}
	}
}

// --wait and -v: the submitter delivers the message itself, so other
// runners find it due only once the submitter has given up waiting.
func TestWaitHoldsTheMessage(t *testing.T) {
	for _, tt := range []struct {
		flags []string
		hold  time.Duration
	}{
		{nil, 0},
		{[]string{"--wait=5s"}, 5 * time.Second},
		{[]string{"--wait"}, sendmailcompat.DefaultWait},
		{[]string{"-v"}, sendmailcompat.DefaultWait},
	} {
		s := testqueue.NewSubmitter(t)
		m, _, err := submit(t, s, append(tt.flags, "bob@example.org"), "Subject: s\n\nx\n")
		if err != nil {
			t.Fatalf("%q: %v", tt.flags, err)
		}
		if want := testqueue.Now.Add(tt.hold); !m.NextAttempt.Equal(want) || !m.Arrival.Equal(testqueue.Now) {
			t.Errorf("%q: arrival %v, next attempt %v; want %v", tt.flags, m.Arrival, m.NextAttempt, want)
		}
	}
}
