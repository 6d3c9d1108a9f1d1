package smtpd_test

import (
	"errors"
	"github.com/relaymail/relay/internal/testqueue"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/smtpd"
)

// One session, two messages, the replies checked code by code.
func TestSMTP_TwoMessages(t *testing.T) {
	s := testqueue.NewSubmitter(t)
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

	ids := testqueue.IDs(t, s.Spool)
	if len(ids) != 2 || !slices.Contains(ids, id1) || !slices.Contains(ids, id2) || id1 == id2 {
		t.Fatalf("spool holds %v, want exactly the two IDs of the replies %s and %s", ids, id1, id2)
	}
	m1, content1 := testqueue.Read(t, s.Spool, id1)
	if m1.Sender != "alice@server1.example.com" || !slices.Equal(testqueue.Addresses(m1), []string{"bob@example.org", "carol@example.org"}) {
		t.Errorf("first envelope: sender %q recipients %q", m1.Sender, testqueue.Addresses(m1))
	}
	if m1.UID != 1000 || m1.User != "alice" {
		t.Errorf("first envelope: submitted by uid %d user %q, want 1000 alice", m1.UID, m1.User)
	}
	if got, want := testqueue.BodyOf(content1), ".leading dot\r\n.\r\nmiddle\r\n"; got != want {
		t.Errorf("first body %q, want %q (dot-stuffing undone, nothing after the end)", got, want)
	}
	h := testqueue.HeaderOf(content1)
	for _, re := range []string{`(?m)^Subject: one\r$`, `(?m)^Received: by server1 \(relay, from userid 1000\)`, `(?m)^From: Alice Liddell <alice@server1\.example\.com>\r$`} {
		if !regexp.MustCompile(re).MatchString(h) {
			t.Errorf("first header lacks %s:\n%s", re, h)
		}
	}
	m2, content2 := testqueue.Read(t, s.Spool, id2)
	if m2.Sender != "root@server1.example.com" || !slices.Equal(testqueue.Addresses(m2), []string{"dave@example.net"}) {
		t.Errorf("second envelope: sender %q recipients %q", m2.Sender, testqueue.Addresses(m2))
	}
	if got := testqueue.BodyOf(content2); got != "second\r\n" {
		t.Errorf("second body %q", got)
	}
}

// A whole session as one transcript on stdin, as `sendmail -bs <file>`
// gets it: every reply still comes, in order.
func TestSMTP_Transcript(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	in := "HELO client\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: t\r\n\r\n.\r\n" +
		"MAIL FROM:<a@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\nSubject: u\r\n\r\nx\r\n.\r\nQUIT\r\nNOOP\r\n"
	var out strings.Builder
	if err := (&smtpd.Server{Submitter: s}).ServeStdio(strings.NewReader(in), &out); err != nil {
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
	if n := len(testqueue.IDs(t, s.Spool)); n != 2 {
		t.Fatalf("%d messages queued, want 2", n)
	}
}

// A real SMTP client implementation (go-smtp's) over a net.Conn, as the
// daemon's listener will serve it: extensions, DSN parameters, data.
func TestSMTP_GoSMTPClient(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	server, client := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- (&smtpd.Server{Submitter: s, FullName: "Robot"}).ServeConn(server) }()

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
	ids := testqueue.IDs(t, s.Spool)
	if len(ids) != 1 {
		t.Fatalf("spool %v", ids)
	}
	m, content := testqueue.Read(t, s.Spool, ids[0])
	if m.Sender != "robot@example.org" || !slices.Equal(testqueue.Addresses(m), []string{"x@example.org"}) ||
		m.Body != "8BITMIME" || m.DSN.Ret != "FULL" || m.DSN.EnvID != "id=1" || !slices.Equal(m.DSN.Notify, []string{"NEVER"}) {
		t.Errorf("envelope %+v", m.Envelope)
	}
	if got := testqueue.BodyOf(content); got != ".dot first\r\nend\r\n" {
		t.Errorf("body %q", got)
	}
	if !strings.Contains(testqueue.HeaderOf(content), "From: Robot <robot@example.org>\r\n") {
		t.Errorf("-F not used for the added From:\n%s", testqueue.HeaderOf(content))
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
	s := testqueue.NewSubmitter(t)
	var out recordingWriter
	in := "EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n\r\nx\r\n.\r\nNOOP\r\nQUIT\r\n"
	if err := (&smtpd.Server{Submitter: s}).ServeStdio(strings.NewReader(in), &out); err != nil {
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
			s := testqueue.NewSubmitter(t)
			var logBuf strings.Builder
			s.Log = maillog.New(&logBuf)
			done := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					done <- err
					return
				}
				done <- (&smtpd.Server{Submitter: s}).ServeConn(conn)
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
			ids := testqueue.IDs(t, s.Spool)
			if len(ids) != 1 {
				t.Fatalf("spool %v", ids)
			}
			_, content := testqueue.Read(t, s.Spool, ids[0])
			want := "Received: from app?1??x?.example (" + tc.literal + ")\r\n\tby server1 (relay) with ESMTP id " + ids[0] + ";\r\n\t" + testqueue.Now.Format(time.RFC1123Z) + "\r\n"
			if !strings.HasPrefix(content, want) {
				t.Errorf("content begins\n%q\nwant\n%q", content[:min(len(content), len(want)+40)], want)
			}
			if strings.Contains(content, "userid") || !strings.Contains(testqueue.HeaderOf(content), "From: app@example.org\r\n") {
				t.Errorf("header:\n%s", testqueue.HeaderOf(content))
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
