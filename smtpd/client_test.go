package smtpd_test

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/smtpd"
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
	srv := &smtpd.Server{Submitter: s, Timeout: timeout}
	go func() {
		err := srv.ServeConn(smtpd.NewStdioConn(inR, outW))
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
