package smtpd_test

import (
	"errors"
	"github.com/relaymail/relay/internal/testqueue"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/smtpd"
	"github.com/relaymail/relay/sysexits"
)

// End of input in the middle of DATA: the half message is not queued
// (there was no final dot), and the session ends without error.
func TestSMTP_EOFDuringData(t *testing.T) {
	s := testqueue.NewSubmitter(t)
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
	if ids := testqueue.IDs(t, s.Spool); len(ids) != 0 {
		t.Fatalf("queued %v from an interrupted DATA", ids)
	}
}

// A silent client is told 421 and the session ends, at a command and in
// the middle of DATA (then nothing is queued).
func TestSMTP_IdleTimeout(t *testing.T) {
	t.Run("command", func(t *testing.T) {
		s := testqueue.NewSubmitter(t)
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
		s := testqueue.NewSubmitter(t)
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
		if ids := testqueue.IDs(t, s.Spool); len(ids) != 0 {
			t.Fatalf("queued %v from a stalled DATA", ids)
		}
	})
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("input/output error") }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("bad file descriptor") }

// Standard input or output that cannot be used: exit 75, nothing queued.
func TestSMTP_UnusableStdio(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	var out strings.Builder
	err := (&smtpd.Server{Submitter: s}).ServeStdio(failingReader{}, &out)
	if code := sysexits.Code(err, 0); code != sysexits.TempFail {
		t.Errorf("unreadable stdin: %v (code %d), want 75", err, code)
	}
	err = (&smtpd.Server{Submitter: s}).ServeStdio(strings.NewReader("EHLO x\r\nQUIT\r\n"), failingWriter{})
	if code := sysexits.Code(err, 0); code != sysexits.TempFail {
		t.Errorf("unwritable stdout: %v (code %d), want 75", err, code)
	}
	// End of input without QUIT is a normal end.
	if err := (&smtpd.Server{Submitter: s}).ServeStdio(strings.NewReader("EHLO x\r\n"), &out); err != nil {
		t.Errorf("EOF without QUIT: %v", err)
	}
}
