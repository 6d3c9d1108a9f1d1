package testsmtp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Sink is a plain SMTP smarthost on 127.0.0.1 (no TLS, no AUTH) that
// accepts everything and counts, per Message-ID, the transactions it
// completed (returned from DATA to answer 250).
type Sink struct {
	Port int
	// DataRx counts the DATA bytes read, all transactions; Aborted the
	// transactions cut before their final dot.
	DataRx, Aborted atomic.Int64
	// inData counts the DATA phases in progress (read, not yet counted
	// or aborted).
	inData atomic.Int64
	// Down makes it refuse every session (421 greeting) and every MAIL.
	Down atomic.Bool

	slow time.Duration // a pause after every 64 KiB of DATA (a slow link)
	srv  *smtp.Server
	mu   sync.Mutex
	got  map[string]int
}

// NewSink starts a sink on port (0: any free port), closed by the test's
// cleanup. slow, when positive, is a pause after every 64 KiB of DATA
// read.
func NewSink(t testing.TB, port int, slow time.Duration) *Sink {
	t.Helper()
	s := &Sink{slow: slow, got: map[string]int{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		if s.Down.Load() {
			return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "sink is down"}
		}
		return &sinkSession{s: s}, nil
	}))
	srv.Domain = "sink.test"
	srv.MaxMessageBytes = 200 << 20
	srv.ReadTimeout = time.Minute
	srv.ErrorLog = nopLogger{}
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ { // the port of a sink just closed may linger
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.srv = srv
	go srv.Serve(ln)
	t.Cleanup(s.Close)
	return s
}

// Close stops the sink; its port is free again.
func (s *Sink) Close() { s.srv.Close() }

// Count is how many times the message with Message-ID msgID was accepted.
func (s *Sink) Count(msgID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[msgID]
}

// Snapshot returns the counts of every Message-ID accepted so far.
func (s *Sink) Snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.got))
	for k, v := range s.got {
		out[k] = v
	}
	return out
}

// Settle waits up to d for a moment with no DATA in progress, and
// reports whether it came. A client killed after sending its final dot
// leaves the sink still reading what the kernel buffered: once Settle
// returns true, every DATA begun before the call is counted or aborted.
func (s *Sink) Settle(d time.Duration) bool {
	return WaitFor(d, func() bool { return s.inData.Load() == 0 })
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

type sinkSession struct{ s *Sink }

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	if ss.s.Down.Load() {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "sink is down"}
	}
	return nil
}

func (*sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*sinkSession) Reset()                               {}
func (*sinkSession) Logout() error                        { return nil }

func (ss *sinkSession) Data(r io.Reader) error {
	s := ss.s
	s.inData.Add(1)
	defer s.inData.Add(-1) // after the count below
	br := bufio.NewReaderSize(r, 64<<10)
	msgID := ""
	for {
		line, err := br.ReadString('\n')
		s.DataRx.Add(int64(len(line)))
		if err != nil {
			s.Aborted.Add(1)
			return err
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Message-ID") {
			msgID = strings.Trim(strings.TrimSpace(v), "<>")
		}
		if strings.TrimSpace(line) == "" {
			break
		}
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := br.Read(buf)
		s.DataRx.Add(int64(n))
		if err == io.EOF {
			break
		}
		if err != nil {
			s.Aborted.Add(1)
			return err
		}
		if s.slow > 0 {
			time.Sleep(s.slow)
		}
	}
	s.mu.Lock()
	s.got[msgID]++
	s.mu.Unlock()
	return nil
}
