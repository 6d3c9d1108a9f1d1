package testsmtp

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// RawServer is a scripted SMTP server over plain TCP for transcript tests.
// reply is called with "" for the greeting and then with every line the
// client sends (AUTH responses included), and returns the reply to write:
// one or more lines separated by "\n", without line ends; "" writes
// nothing (the server stays silent) and RawClose closes the connection.
// After a 354 reply, the server reads the message up to the final dot
// itself and calls reply with "." for the answer to it.
type RawServer struct {
	Port int

	mu     sync.Mutex
	conns  int
	lines  []string // every line received, in order, across connections
	bodies []string // every message received up to its final dot
	stop   chan struct{}
	// replyMu serializes the calls of reply, which may keep state.
	replyMu sync.Mutex
}

// Replies with an effect besides the text.
const (
	// RawClose closes the connection instead of replying.
	RawClose = "\x00close"
	// RawStall, prefixed to a reply, writes the reply and then stops
	// reading and answering until the end of the test (at most HangMax),
	// when it closes the connection.
	RawStall = "\x00stall"
)

// NewRawServer starts a server on 127.0.0.1 that plays reply and lives
// until the end of the test.
func NewRawServer(t *testing.T, reply func(line string) string) *RawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &RawServer{Port: ln.Addr().(*net.TCPAddr).Port, stop: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s.serve(c, reply)
			}()
		}
	}()
	t.Cleanup(func() {
		close(s.stop)
		ln.Close()
		mu.Lock()
		for _, c := range open {
			// Unblocks a serve waiting for the client; closing twice is
			// harmless.
			c.SetDeadline(time.Now())
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *RawServer) serve(c net.Conn, replyFn func(string) string) {
	reply := func(l string) string {
		s.replyMu.Lock()
		defer s.replyMu.Unlock()
		return replyFn(l)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	write := func(r string) bool {
		switch r {
		case "":
			return true
		case RawClose:
			return false
		}
		if rest, ok := strings.CutPrefix(r, RawStall); ok {
			io.WriteString(c, strings.ReplaceAll(rest, "\n", "\r\n")+"\r\n")
			select {
			case <-s.stop:
			case <-time.After(HangMax):
			}
			return false
		}
		_, err := io.WriteString(c, strings.ReplaceAll(r, "\n", "\r\n")+"\r\n")
		return err == nil
	}
	if !write(reply("")) {
		return
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.lines = append(s.lines, line)
		s.mu.Unlock()
		r := reply(line)
		if !write(r) {
			return
		}
		if strings.HasPrefix(r, "354") {
			var body strings.Builder
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				body.WriteString(l)
			}
			s.mu.Lock()
			s.bodies = append(s.bodies, body.String())
			s.mu.Unlock()
			if !write(reply(".")) {
				return
			}
		}
	}
}

// Lines returns every line received so far.
func (s *RawServer) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// Conns is the number of connections accepted so far.
func (s *RawServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Bodies returns the messages received up to their final dot.
func (s *RawServer) Bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// Commands returns the command verbs received (the first word of each line,
// upper-cased), AUTH responses and "*" included as they are.
func (s *RawServer) Commands() []string {
	var out []string
	for _, l := range s.Lines() {
		verb, _, _ := strings.Cut(l, " ")
		out = append(out, strings.ToUpper(verb))
	}
	return out
}

// SMTPReplies is a RawServer script for an ordinary smarthost that offers
// the given EHLO keywords and accepts everything; over overrides the reply
// to a command verb ("GREETING", "EHLO", "AUTH", "MAIL", "RCPT", "DATA",
// "." for the final dot). An AUTH exchange is left to the override.
func SMTPReplies(ehlo []string, over map[string]func(line string) string) func(string) string {
	return func(line string) string {
		verb := strings.ToUpper(line)
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		if line == "" {
			verb = "GREETING"
		}
		if f, ok := over[verb]; ok {
			return f(line)
		}
		switch verb {
		case "GREETING":
			return "220 raw.test ESMTP"
		case "EHLO":
			return strings.Join(append([]string{"250-raw.test"}, PrefixAll("250-", ehlo)...), "\n") + "\n250 8BITMIME"
		case "MAIL", "RCPT", "RSET", "NOOP":
			return "250 2.0.0 Ok"
		case "DATA":
			return "354 End data with <CR><LF>.<CR><LF>"
		case ".":
			return "250 2.0.0 Ok: queued as RAW1"
		case "QUIT":
			return "221 2.0.0 Bye"
		}
		if f, ok := over["*"]; ok {
			return f(line)
		}
		return "502 5.5.2 Error: command not recognized"
	}
}

// PrefixAll returns s with p before every element: the lines of a
// multi-line reply.
func PrefixAll(p string, s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = p + x
	}
	return out
}
