package sendmailcompat_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// smtpClient drives one session of ServeConn through in-memory pipes, the
// way a program drives `sendmail -bs` through its stdin and stdout.
type smtpClient struct {
	t     *testing.T
	send  chan string // what the client writes, written in order by a goroutine
	lines chan string // what the server writes, line by line; closed at its end
	done  chan error  // ServeConn's result
}

// startSMTP runs a session of s with the given idle timeout (0: default).
func startSMTP(t *testing.T, s *sendmailcompat.Submitter, timeout time.Duration) *smtpClient {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &smtpClient{t: t, send: make(chan string, 100), lines: make(chan string, 100), done: make(chan error, 1)}
	srv := &sendmailcompat.SMTPServer{Submitter: s, Timeout: timeout}
	go func() {
		err := srv.ServeConn(sendmailcompat.NewStdioConn(inR, outW))
		outW.Close()
		c.done <- err
	}()
	// Reads never hang the test: reply gives up after a while.
	go func() {
		defer close(c.lines)
		br := bufio.NewReader(outR)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				c.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	// Writes never block the test: with PIPELINING the server may be
	// writing replies while the client still writes commands.
	go func() {
		for s := range c.send {
			if s == "\x00EOF" {
				inW.Close()
				return
			}
			if _, err := io.WriteString(inW, s); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	return c
}

// write sends raw text (several commands at once: pipelining).
func (c *smtpClient) write(s string) { c.send <- s }

// cmd sends one command line and checks the reply's code.
func (c *smtpClient) cmd(line string, code int) string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.expect(code, line)
}

// closeInput is the client's end of input (EOF on stdin).
func (c *smtpClient) closeInput() { c.send <- "\x00EOF" }

// reply reads one (possibly multi-line) reply: its code and its lines
// without the code.
func (c *smtpClient) reply() (int, []string) {
	c.t.Helper()
	var lines []string
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-c.lines:
			if !ok {
				c.t.Fatalf("reading a reply: the server closed (so far %q)", lines)
			}
		case <-time.After(10 * time.Second):
			c.t.Fatalf("no reply after 10s (so far %q)", lines)
		}
		if !strings.HasSuffix(line, "\r\n") || len(line) < 6 {
			c.t.Fatalf("malformed reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			c.t.Fatalf("malformed reply line %q", line)
		}
		lines = append(lines, line[4:len(line)-2])
		if line[3] == ' ' {
			return code, lines
		}
		if line[3] != '-' {
			c.t.Fatalf("malformed reply line %q", line)
		}
	}
}

// expect reads one reply and fails unless it has code; it returns the
// last line's text.
func (c *smtpClient) expect(code int, after string) string {
	c.t.Helper()
	got, lines := c.reply()
	if got != code {
		c.t.Fatalf("after %q: reply %d %q, want %d", after, got, lines, code)
	}
	return lines[len(lines)-1]
}

// end waits for ServeConn to return and gives its error.
func (c *smtpClient) end() error {
	c.t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(10 * time.Second):
		c.t.Fatal("the session did not end")
		return nil
	}
}

// expectEOF checks that the server wrote nothing more and closed.
func (c *smtpClient) expectEOF() {
	c.t.Helper()
	for line := range c.lines {
		c.t.Errorf("after the end of the session: %q", line)
	}
}

var queuedAs = regexp.MustCompile(`^2\.0\.0 Ok: queued as ([0-9A-Z]+)$`)

// queued checks a 250 after DATA and returns the queue ID it names.
func queuedID(t *testing.T, text string) string {
	t.Helper()
	m := queuedAs.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("250 after DATA says %q, want \"2.0.0 Ok: queued as ID\"", text)
	}
	return m[1]
}

func spoolIDs(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	ids, err := sp.IDs()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func readQueued(t *testing.T, sp *spool.Spool, id string) (*spool.Message, string) {
	t.Helper()
	m, err := sp.Read(id)
	if err != nil {
		t.Fatalf("queue ID %s named in the reply: %v", id, err)
	}
	f, err := sp.OpenContent(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return m, string(b)
}

// One session, two messages, the replies checked code by code.
func TestSMTP_TwoMessages(t *testing.T) {
	s := newSubmitter(t)
	c := startSMTP(t, s, 0)

	code, greeting := c.reply()
	if code != 220 || !strings.HasPrefix(greeting[0], "server1 ") {
		t.Fatalf("greeting %d %q, want 220 naming server1", code, greeting)
	}
	c.write("EHLO client.example\r\n")
	code, ehlo := c.reply()
	if code != 250 {
		t.Fatalf("EHLO: %d %q", code, ehlo)
	}
	if ehlo[0] != "server1" {
		t.Errorf("EHLO's first line %q, want the host name", ehlo[0])
	}
	for _, ext := range []string{"PIPELINING", "SIZE 1048576", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES"} {
		if !slices.Contains(ehlo[1:], ext) {
			t.Errorf("EHLO does not offer %s: %q", ext, ehlo)
		}
	}
	for _, ext := range []string{"SMTPUTF8", "STARTTLS", "AUTH", "CHUNKING"} {
		for _, l := range ehlo[1:] {
			if strings.HasPrefix(l, ext) {
				t.Errorf("EHLO offers %s, which relay does not do: %q", l, ehlo)
			}
		}
	}

	c.cmd("MAIL FROM:<alice@server1.example.com>", 250)
	c.cmd("RCPT TO:<bob@example.org>", 250)
	c.cmd("RCPT TO:<Carol <carol@example.org>>", 501) // not a path
	c.cmd("RCPT TO:<carol@example.org>", 250)
	c.cmd("DATA", 354)
	c.write("Subject: one\r\nTo: bob@example.org\r\n\r\n..leading dot\r\n..\r\nmiddle\r\n.\r\n")
	id1 := queuedID(t, c.expect(250, "end of DATA"))
	c.cmd("RSET", 250)
	c.cmd("NOOP", 250)
	c.cmd("VRFY bob", 252)
	// The second message pipelined as one write, as PIPELINING allows up
	// to DATA; the text only after 354.
	c.write("MAIL FROM:<root@server1.example.com>\r\nRCPT TO:<dave@example.net>\r\nDATA\r\n")
	c.expect(250, "MAIL")
	c.expect(250, "RCPT")
	c.expect(354, "DATA")
	c.write("Subject: two\r\n\r\nsecond\r\n.\r\n")
	id2 := queuedID(t, c.expect(250, "end of DATA"))
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatalf("ServeConn after QUIT: %v", err)
	}
	c.expectEOF()

	ids := spoolIDs(t, s.Spool)
	if len(ids) != 2 || !slices.Contains(ids, id1) || !slices.Contains(ids, id2) || id1 == id2 {
		t.Fatalf("spool holds %v, want exactly the two IDs of the replies %s and %s", ids, id1, id2)
	}
	m1, content1 := readQueued(t, s.Spool, id1)
	if m1.Sender != "alice@server1.example.com" || !slices.Equal(addresses(m1), []string{"bob@example.org", "carol@example.org"}) {
		t.Errorf("first envelope: sender %q recipients %q", m1.Sender, addresses(m1))
	}
	if m1.UID != 1000 || m1.User != "alice" {
		t.Errorf("first envelope: submitted by uid %d user %q, want 1000 alice", m1.UID, m1.User)
	}
	if got, want := bodyOf(content1), ".leading dot\r\n.\r\nmiddle\r\n"; got != want {
		t.Errorf("first body %q, want %q (dot-stuffing undone, nothing after the end)", got, want)
	}
	h := headerOf(content1)
	for _, re := range []string{`(?m)^Subject: one\r$`, `(?m)^Received: by server1 \(relay, from userid 1000\)`, `(?m)^From: Alice Liddell <alice@server1\.example\.com>\r$`} {
		if !regexp.MustCompile(re).MatchString(h) {
			t.Errorf("first header lacks %s:\n%s", re, h)
		}
	}
	m2, content2 := readQueued(t, s.Spool, id2)
	if m2.Sender != "root@server1.example.com" || !slices.Equal(addresses(m2), []string{"dave@example.net"}) {
		t.Errorf("second envelope: sender %q recipients %q", m2.Sender, addresses(m2))
	}
	if got := bodyOf(content2); got != "second\r\n" {
		t.Errorf("second body %q", got)
	}
}

// A whole session as one transcript on stdin, as `sendmail -bs <file>`
// gets it: every reply still comes, in order.
func TestSMTP_Transcript(t *testing.T) {
	s := newSubmitter(t)
	in := "HELO client\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: t\r\n\r\n.\r\n" +
		"MAIL FROM:<a@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\nSubject: u\r\n\r\nx\r\n.\r\nQUIT\r\nNOOP\r\n"
	var out strings.Builder
	if err := s.ServeSMTP(strings.NewReader(in), &out, nil); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, l := range strings.SplitAfter(out.String(), "\r\n") {
		if l != "" {
			codes = append(codes, l[:3])
		}
	}
	if want := []string{"220", "250", "250", "250", "354", "250", "250", "250", "354", "250", "221"}; !slices.Equal(codes, want) {
		t.Fatalf("reply codes %v, want %v\n%s", codes, want, out.String())
	}
	if n := len(spoolIDs(t, s.Spool)); n != 2 {
		t.Fatalf("%d messages queued, want 2", n)
	}
}

// The null sender, bare names qualified as on the command line, quoted
// local parts kept, BODY and the DSN parameters recorded.
func TestSMTP_EnvelopeParameters(t *testing.T) {
	s := newSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<> BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 SIZE=100", 250)
	c.cmd("RCPT TO:<bob> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob", 250)
	c.cmd(`RCPT TO:<"john doe"@example.org> NOTIFY=failure,success`, 250)
	c.cmd("DATA", 354)
	c.write("Subject: dsn\r\n\r\nhi\r\n.\r\n")
	id := queuedID(t, c.expect(250, "end of DATA"))
	// Unqualified sender; RFC 5321 source route dropped; no NOTIFY.
	c.cmd("MAIL FROM:<root> BODY=7bit", 250)
	c.cmd("RCPT TO:<@relay.example:eve@example.org>", 250)
	c.cmd("DATA", 354)
	c.write("Subject: plain\r\n\r\nhi\r\n.\r\n")
	id2 := queuedID(t, c.expect(250, "end of DATA"))
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatal(err)
	}

	m, _ := readQueued(t, s.Spool, id)
	if m.Sender != "" {
		t.Errorf("sender %q, want the null sender", m.Sender)
	}
	if got, want := addresses(m), []string{"bob@server1.example.com", `"john doe"@example.org`}; !slices.Equal(got, want) {
		t.Errorf("recipients %q, want %q", got, want)
	}
	if m.Recipients[0].Original != "bob" {
		t.Errorf("bob's original address %q, want \"bob\"", m.Recipients[0].Original)
	}
	if m.Body != "8BITMIME" {
		t.Errorf("body %q, want 8BITMIME", m.Body)
	}
	if want := (spool.DSN{Notify: []string{"SUCCESS", "FAILURE"}, Ret: "HDRS", EnvID: "QQ+1"}); !slices.Equal(m.DSN.Notify, want.Notify) || m.DSN.Ret != want.Ret || m.DSN.EnvID != want.EnvID {
		t.Errorf("DSN %+v, want %+v", m.DSN, want)
	}
	m2, _ := readQueued(t, s.Spool, id2)
	if m2.Sender != "root@server1.example.com" || !slices.Equal(addresses(m2), []string{"eve@example.org"}) {
		t.Errorf("second envelope: sender %q recipients %q", m2.Sender, addresses(m2))
	}
	if m2.Body != "7BIT" || m2.DSN.Notify != nil || m2.DSN.Ret != "" || m2.DSN.EnvID != "" {
		t.Errorf("second envelope: body %q DSN %+v, want 7BIT and no DSN", m2.Body, m2.DSN)
	}
}

// Recipients asking for different notifications: the queue keeps one
// NOTIFY per message, and nobody loses a notice they asked for.
func TestSMTP_NotifyMerged(t *testing.T) {
	for _, tt := range []struct {
		notify []string // per recipient; "" for none
		want   []string
	}{
		{[]string{"NEVER", "NEVER"}, []string{"NEVER"}},
		{[]string{"", ""}, nil},
		{[]string{"SUCCESS", "NEVER"}, []string{"SUCCESS"}},
		{[]string{"SUCCESS", ""}, []string{"SUCCESS", "DELAY", "FAILURE"}},
		{[]string{"NEVER", "FAILURE"}, []string{"FAILURE"}},
	} {
		s := newSubmitter(t)
		c := startSMTP(t, s, 0)
		c.expect(220, "connect")
		c.cmd("EHLO client", 250)
		c.cmd("MAIL FROM:<a@example.org>", 250)
		for i, n := range tt.notify {
			line := "RCPT TO:<r" + strconv.Itoa(i) + "@example.org>"
			if n != "" {
				line += " NOTIFY=" + n
			}
			c.cmd(line, 250)
		}
		c.cmd("DATA", 354)
		c.write("\r\nx\r\n.\r\n")
		m, _ := readQueued(t, s.Spool, queuedID(t, c.expect(250, "end of DATA")))
		if !slices.Equal(m.DSN.Notify, tt.want) {
			t.Errorf("NOTIFY %q: queued %q, want %q", tt.notify, m.DSN.Notify, tt.want)
		}
		c.cmd("QUIT", 221)
		c.end()
	}
}

// Refusals at each step: the code, and nothing queued for the refused.
func TestSMTP_Refusals(t *testing.T) {
	s := newSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("MAIL FROM:<a@example.org>", 250) // HELO is not required (Postfix neither)
	c.cmd("RSET", 250)
	c.cmd("EHLO client", 250)
	c.cmd("RCPT TO:<b@example.org>", 503) // no MAIL
	c.cmd("DATA", 503)
	c.cmd("MAIL FROM:<a@b@c>", 501)
	c.cmd("MAIL FROM:<a@example.org (comment)>", 501)
	c.cmd("MAIL FROM:a@example.org BODY=BINARYMIME", 501)
	c.cmd("MAIL FROM:<a@example.org> SMTPUTF8", 555)
	c.cmd("MAIL FROM:<a@example.org> ENVID=a+2", 501)
	c.cmd("MAIL FROM:<a@example.org> SIZE=2000000", 552) // over max_message_size
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("MAIL FROM:<a@example.org>", 503) // nested
	c.cmd("DATA", 503)                      // no RCPT: go-smtp would say 502
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatal(err)
	}

	// A new session: 20 errors end one.
	c = startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	for _, bad := range []string{"<a@b@c>", "<a b@example.org>", "<>", "<-oQ/tmp@example.org>", "<-x>", "<a@example.org", "<a@example.org>junk", "<a@exa mple.org>", "<b@example.org (comment)>", "<b@example.org, c@example.org>"} {
		c.cmd("RCPT TO:"+bad, 501)
	}
	c.cmd("RCPT TO:<b@example.org> NOTIFY=NEVER,SUCCESS", 501)
	c.cmd("RCPT TO:<b@example.org> FOO=1", 555)
	c.cmd("RCPT TO:<b@example.org>", 250)
	c.cmd("DATA extra", 501)
	c.cmd("AUTH PLAIN AGFsaWNlAHg=", 502)
	c.cmd("STARTTLS", 502)
	c.cmd("BDAT 10 LAST", 502)
	c.cmd("FROB", 500)
	c.cmd("DATA", 354) // the transaction survived the errors
	c.write("Subject: ok\r\n\r\nfine\r\n.\r\n")
	id := queuedID(t, c.expect(250, "end of DATA"))
	c.cmd("RCPT TO:<b@example.org>", 503) // DATA ended the transaction
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	if ids := spoolIDs(t, s.Spool); !slices.Equal(ids, []string{id}) {
		t.Fatalf("spool %v, want only %s", ids, id)
	}
}

// A message over max_message_size: 552 after the data, nothing queued, and
// the session goes on.
func TestSMTP_TooLarge(t *testing.T) {
	s := newSubmitter(t)
	s.MaxMessageSize = 1000
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	c.cmd("DATA", 354)
	c.write("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 100) + ".\r\n")
	if text := c.expect(552, "end of a large DATA"); !strings.HasPrefix(text, "5.3.4 ") {
		t.Errorf("552 %q, want enhanced code 5.3.4", text)
	}
	if ids := spoolIDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v after 552", ids)
	}
	// Exactly the limit is accepted, as with sendmail on the command line.
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	c.cmd("DATA", 354)
	head := "Subject: fits\r\n\r\n"
	c.write(head + strings.Repeat("y", 1000-len(head)-2) + "\r\n.\r\n")
	id := queuedID(t, c.expect(250, "end of DATA of exactly the limit"))
	c.cmd("QUIT", 221)
	c.end()
	if ids := spoolIDs(t, s.Spool); !slices.Equal(ids, []string{id}) {
		t.Fatalf("spool %v, want %s", ids, id)
	}
}

// A spool without room: 452 at MAIL when it is already full, 451 at the
// end of DATA when it fills during the transaction, and nothing queued.
func TestSMTP_SpoolFull(t *testing.T) {
	s := newSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	// The disk fills now (the server reads the field only after our next
	// write: the pipes order it).
	s.MinFreeSpace = 1 << 62
	c.cmd("DATA", 354)
	c.write("Subject: full\r\n\r\n" + strings.Repeat("z\r\n", 1000) + ".\r\n")
	if text := c.expect(451, "end of DATA on a full spool"); !strings.HasPrefix(text, "4.3.0 ") || !strings.Contains(text, "min_free_space") {
		t.Errorf("451 %q, want 4.3.0 and the reason", text)
	}
	c.cmd("MAIL FROM:<a@example.org>", 452)
	c.cmd("RCPT TO:<b@example.org>", 503)
	c.cmd("QUIT", 221)
	if err := c.end(); err != nil {
		t.Fatalf("a refused message is no failure of the session: %v", err)
	}
	if ids := spoolIDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v on a full spool", ids)
	}
}

// relay's own failure to write the queue is temporary: 451, never 5xx.
func TestSMTP_SpoolBroken(t *testing.T) {
	s := newSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("EHLO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	if err := os.RemoveAll(filepath.Join(s.Spool.Dir, "tmp")); err != nil {
		t.Fatal(err)
	}
	c.cmd("DATA", 354)
	c.write("Subject: x\r\n\r\nx\r\n.\r\n")
	c.expect(451, "end of DATA with the spool's tmp/ gone")
	c.cmd("QUIT", 221)
	c.end()
	if ids := spoolIDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v", ids)
	}
}

// End of input in the middle of DATA: the half message is not queued
// (there was no final dot), and the session ends without error.
func TestSMTP_EOFDuringData(t *testing.T) {
	s := newSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("HELO client", 250)
	c.cmd("MAIL FROM:<a@example.org>", 250)
	c.cmd("RCPT TO:<b@example.org>", 250)
	c.cmd("DATA", 354)
	c.write("Subject: cut\r\n\r\nhalf a mess")
	c.closeInput()
	if err := c.end(); err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
	c.expectEOF()
	if ids := spoolIDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v from an interrupted DATA", ids)
	}
}

// A silent client is told 421 and the session ends, at a command and in
// the middle of DATA (then nothing is queued).
func TestSMTP_IdleTimeout(t *testing.T) {
	t.Run("command", func(t *testing.T) {
		s := newSubmitter(t)
		c := startSMTP(t, s, 200*time.Millisecond)
		c.expect(220, "connect")
		c.cmd("EHLO client", 250)
		start := time.Now()
		if text := c.expect(421, "silence"); !strings.HasPrefix(text, "4.4.2 ") {
			t.Errorf("421 %q, want 4.4.2", text)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("timed out after %v, want about 200ms", d)
		}
		if err := c.end(); err != nil {
			t.Fatalf("ServeConn: %v", err)
		}
	})
	t.Run("data", func(t *testing.T) {
		s := newSubmitter(t)
		c := startSMTP(t, s, 200*time.Millisecond)
		c.expect(220, "connect")
		c.cmd("EHLO client", 250)
		c.cmd("MAIL FROM:<a@example.org>", 250)
		c.cmd("RCPT TO:<b@example.org>", 250)
		c.cmd("DATA", 354)
		// Slow but alive: each line well within the timeout, the whole
		// longer than it.
		for i := 0; i < 4; i++ {
			c.write("line " + strconv.Itoa(i) + "\r\n")
			time.Sleep(100 * time.Millisecond)
		}
		c.write("Subject: stalled\r\n")
		c.expect(421, "silence during DATA")
		if err := c.end(); err != nil {
			t.Fatalf("ServeConn: %v", err)
		}
		if ids := spoolIDs(t, s.Spool); len(ids) != 0 {
			t.Fatalf("queued %v from a stalled DATA", ids)
		}
	})
}

func TestSMTP_TooManyErrors(t *testing.T) {
	s := newSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.write(strings.Repeat("BOGUS\r\n", 25))
	for i := 0; i < 20; i++ {
		c.expect(500, "BOGUS")
	}
	c.expect(421, "too many errors")
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	c.expectEOF()
}

// A line longer than any command is refused without ending the session.
func TestSMTP_LongCommandLine(t *testing.T) {
	s := newSubmitter(t)
	c := startSMTP(t, s, 0)
	c.expect(220, "connect")
	c.cmd("NOOP "+strings.Repeat("x", 100<<10), 500)
	c.cmd("NOOP", 250)
	c.cmd("QUIT", 221)
	c.end()
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("input/output error") }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("bad file descriptor") }

// Standard input or output that cannot be used: exit 75, nothing queued.
func TestSMTP_UnusableStdio(t *testing.T) {
	s := newSubmitter(t)
	var out strings.Builder
	err := s.ServeSMTP(failingReader{}, &out, nil)
	if code := sysexits.Code(err, 0); code != sysexits.TempFail {
		t.Errorf("unreadable stdin: %v (code %d), want 75", err, code)
	}
	err = s.ServeSMTP(strings.NewReader("EHLO x\r\nQUIT\r\n"), failingWriter{}, nil)
	if code := sysexits.Code(err, 0); code != sysexits.TempFail {
		t.Errorf("unwritable stdout: %v (code %d), want 75", err, code)
	}
	// End of input without QUIT is a normal end.
	if err := s.ServeSMTP(strings.NewReader("EHLO x\r\n"), &out, nil); err != nil {
		t.Errorf("EOF without QUIT: %v", err)
	}
}

// A real SMTP client implementation (go-smtp's) over a net.Conn, as the
// daemon's listener will serve it: extensions, DSN parameters, data.
func TestSMTP_GoSMTPClient(t *testing.T) {
	s := newSubmitter(t)
	server, client := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- (&sendmailcompat.SMTPServer{Submitter: s, FullName: "Robot"}).ServeConn(server) }()

	cl := smtp.NewClient(client)
	if err := cl.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES", "SIZE"} {
		if ok, _ := cl.Extension(ext); !ok {
			t.Errorf("go-smtp's client sees no %s", ext)
		}
	}
	if max, ok := cl.MaxMessageSize(); !ok || max != 1<<20 {
		t.Errorf("SIZE %d %v, want 1048576", max, ok)
	}
	if err := cl.Mail("robot@example.org", &smtp.MailOptions{Return: smtp.DSNReturnFull, EnvelopeID: "id=1"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Rcpt("x@example.org", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyNever}}); err != nil {
		t.Fatal(err)
	}
	err := cl.Rcpt("bad@@example.org", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 501 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 3}) {
		t.Errorf("bad recipient: %v, want 501 5.1.3", err)
	}
	w, err := cl.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: via go-smtp\r\n\r\n.dot first\r\nend\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ids := spoolIDs(t, s.Spool)
	if len(ids) != 1 {
		t.Fatalf("spool %v", ids)
	}
	m, content := readQueued(t, s.Spool, ids[0])
	if m.Sender != "robot@example.org" || !slices.Equal(addresses(m), []string{"x@example.org"}) ||
		m.Body != "8BITMIME" || m.DSN.Ret != "FULL" || m.DSN.EnvID != "id=1" || !slices.Equal(m.DSN.Notify, []string{"NEVER"}) {
		t.Errorf("envelope %+v", m.Envelope)
	}
	if got := bodyOf(content); got != ".dot first\r\nend\r\n" {
		t.Errorf("body %q", got)
	}
	if !strings.Contains(headerOf(content), "From: Robot <robot@example.org>\r\n") {
		t.Errorf("-F not used for the added From:\n%s", headerOf(content))
	}
}

// recordingWriter keeps each Write separately.
type recordingWriter struct{ writes []string }

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// PIPELINING: the replies to a group of commands go out together, not one
// write (one packet, on a socket) each.
func TestSMTP_PipelinedRepliesBatched(t *testing.T) {
	s := newSubmitter(t)
	var out recordingWriter
	in := "EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n\r\nx\r\n.\r\nNOOP\r\nQUIT\r\n"
	if err := s.ServeSMTP(strings.NewReader(in), &out, nil); err != nil {
		t.Fatal(err)
	}
	var codes [][]string
	for _, w := range out.writes {
		var c []string
		for _, l := range strings.SplitAfter(w, "\r\n") {
			if len(l) > 4 && l[3] == ' ' {
				c = append(c, l[:3])
			}
		}
		codes = append(codes, c)
	}
	want := [][]string{{"220"}, {"250", "250", "250", "250", "354"}, {"250", "250", "221"}}
	if !slices.EqualFunc(codes, want, slices.Equal) {
		t.Errorf("replies written as %q, want %q", codes, want)
	}
}

// A session over TCP records its client: a Received field as Postfix's
// smtpd writes one (HELO name, address literal, protocol, queue ID) and
// client=[IP]:port instead of uid= in the log line; a From added for it
// carries no local user's full name.
func TestSMTP_TCPClientRecorded(t *testing.T) {
	for _, tc := range []struct{ network, addr, literal, logged string }{
		{"tcp4", "127.0.0.1:0", "[127.0.0.1]", "[127.0.0.1]"},
		{"tcp6", "[::1]:0", "[IPv6:::1]", "[::1]"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				t.Skipf("no %s loopback here: %v", tc.network, err)
			}
			defer ln.Close()
			s := newSubmitter(t)
			var logBuf strings.Builder
			s.Log = maillog.New(&logBuf)
			done := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					done <- err
					return
				}
				done <- (&sendmailcompat.SMTPServer{Submitter: s}).ServeConn(conn)
			}()
			cl, err := smtp.Dial(ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Hello("app(1);x\x01.example"); err != nil {
				t.Fatal(err)
			}
			if err := cl.SendMail("app@example.org", []string{"bob@example.org"}, strings.NewReader("Subject: tcp\r\n\r\nbody\r\n")); err != nil {
				t.Fatal(err)
			}
			if err := cl.Quit(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			ids := spoolIDs(t, s.Spool)
			if len(ids) != 1 {
				t.Fatalf("spool %v", ids)
			}
			_, content := readQueued(t, s.Spool, ids[0])
			want := "Received: from app?1??x?.example (" + tc.literal + ")\r\n\tby server1 (relay) with ESMTP id " + ids[0] + ";\r\n\t" + testNow.Format(time.RFC1123Z) + "\r\n"
			if !strings.HasPrefix(content, want) {
				t.Errorf("content begins\n%q\nwant\n%q", content[:min(len(content), len(want)+40)], want)
			}
			if strings.Contains(content, "userid") || !strings.Contains(headerOf(content), "From: app@example.org\r\n") {
				t.Errorf("header:\n%s", headerOf(content))
			}
			line := logBuf.String()
			if !regexp.MustCompile(`^id=` + ids[0] + ` client=` + regexp.QuoteMeta(tc.logged) + `:[0-9]+ from=<app@example.org> .*status=queued\n$`).MatchString(line) {
				t.Errorf("log line %q", line)
			}
			if strings.Contains(line, "uid=") {
				t.Errorf("log line names a uid for a network client: %q", line)
			}
		})
	}
}
