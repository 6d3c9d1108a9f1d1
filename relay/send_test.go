package relay_test

// Message-level delivery (send.go, encode.go, the DATA budget of dial.go):
// 452 "too many recipients", the DATA budget against a server that reads
// slowly, DSN parameters, re-encoding for a server without 8BITMIME, SIZE
// and SMTPUTF8 — each against a server that offers, or does not offer,
// the extension.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// optServer is go-smtp's server with its extensions switched by setup
// (EnableDSN, EnableSMTPUTF8, MaxMessageBytes), recording the parameters
// of every MAIL FROM and RCPT TO.
type optServer struct {
	Port int

	mu     sync.Mutex
	mails  []smtp.MailOptions
	froms  []string
	rcpts  []string
	ropts  []smtp.RcptOptions
	bodies [][]byte
}

func newOptServer(t *testing.T, setup func(*smtp.Server)) *optServer {
	t.Helper()
	s := &optServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &optSession{s: s}, nil }))
	srv.Domain = "opt.test"
	srv.ErrorLog = testsmtp.BufLogger{W: io.Discard}
	srv.ReadTimeout = 10 * time.Second
	if setup != nil {
		setup(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s
}

func (s *optServer) Mails() ([]string, []smtp.MailOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.froms), slices.Clone(s.mails)
}

func (s *optServer) Rcpts() ([]string, []smtp.RcptOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rcpts), slices.Clone(s.ropts)
}

func (s *optServer) Bodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

type optSession struct{ s *optServer }

func (se *optSession) Mail(from string, o *smtp.MailOptions) error {
	se.s.mu.Lock()
	defer se.s.mu.Unlock()
	se.s.froms = append(se.s.froms, from)
	se.s.mails = append(se.s.mails, *o)
	return nil
}

func (se *optSession) Rcpt(to string, o *smtp.RcptOptions) error {
	se.s.mu.Lock()
	defer se.s.mu.Unlock()
	se.s.rcpts = append(se.s.rcpts, to)
	se.s.ropts = append(se.s.ropts, *o)
	return nil
}

func (se *optSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.s.mu.Lock()
	defer se.s.mu.Unlock()
	se.s.bodies = append(se.s.bodies, b)
	return nil
}

func (se *optSession) Reset()        {}
func (se *optSession) Logout() error { return nil }

// dial connects to a test server on 127.0.0.1 without TLS or AUTH.
func dial(t *testing.T, port int) *relay.Conn {
	t.Helper()
	sh := smarthost(port, "none")
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *relay.Conn, env *spool.Envelope, msg string) (map[string]*relay.Failure, error) {
	t.Helper()
	out, err := c.Send(env, env.Sender, strings.NewReader(msg), int64(len(msg)))
	got := map[string]*relay.Failure{}
	for _, r := range out.Results {
		got[r.Rcpt.Address] = r.Err
	}
	if len(out.Results) != len(env.Pending()) {
		t.Errorf("%d results for %d pending recipients", len(out.Results), len(env.Pending()))
	}
	return got, err
}

// ehloOnly makes a testsmtp.RawServer's EHLO reply offer exactly these keywords
// (testsmtp.SMTPReplies always offers 8BITMIME).
func ehloOnly(over map[string]func(string) string, keywords ...string) map[string]func(string) string {
	if over == nil {
		over = map[string]func(string) string{}
	}
	over["EHLO"] = func(string) string {
		return strings.Join(append([]string{"250-raw.test"}, testsmtp.PrefixAll("250-", keywords)...), "\n") + "\n250 PIPELINING"
	}
	return over
}

// linesWith returns the lines received that start with prefix.
func linesWith(s *testsmtp.RawServer, prefix string) []string {
	var out []string
	for _, l := range s.Lines() {
		if strings.HasPrefix(strings.ToUpper(l), prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestSend_TooManyRecipients_ContinuesInNewTransaction: a server that
// takes two recipients per transaction answers 452 to the third; Send
// delivers to those accepted and goes on in new transactions on the same
// connection until every recipient has its own result. A recipient whose
// 452 is its own (the first of a transaction) is deferred with it.
func TestSend_TooManyRecipients_ContinuesInNewTransaction(t *testing.T) {
	const bad, full = "bad@example.test", "full@example.test"
	r := func(i int) string { return "r" + string(rune('0'+i)) + "@example.test" }
	inTxn := 0
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, map[string]func(string) string{
		"MAIL": func(string) string { inTxn = 0; return "250 2.1.0 Ok" },
		"RCPT": func(l string) string {
			switch {
			case strings.Contains(l, bad):
				return "550 5.1.1 No such user"
			case strings.Contains(l, full):
				return "452 4.2.2 Mailbox full"
			case inTxn == 2:
				return "452 4.5.3 Error: too many recipients"
			}
			inTxn++
			return "250 2.1.5 Ok"
		},
	}))
	c := dial(t, srv.Port)
	env := sendEnv(r(1), r(2), bad, r(3), full, r(4))
	got, err := send(t, c, env, content)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{r(1), r(2), r(3), r(4)} {
		if got[a] != nil {
			t.Errorf("%s: %v, want delivered", a, got[a])
		}
	}
	if f := got[bad]; f == nil || f.Code != 550 || !f.Permanent() {
		t.Errorf("%s: %v, want refused with its 550", bad, f)
	}
	if f := got[full]; f == nil || f.Code != 452 || f.Enhanced != "4.2.2" || f.Permanent() {
		t.Errorf("%s: %v, want deferred with its own 452 4.2.2", full, f)
	}
	// r1 r2 | r3 (full moves on) | r4 (full refused first).
	if n := len(linesWith(srv, "MAIL FROM")); n != 3 {
		t.Errorf("%d transactions, want 3", n)
	}
	bodies := srv.Bodies()
	if len(bodies) != 3 {
		t.Fatalf("%d messages sent, want 3", len(bodies))
	}
	for i, b := range bodies {
		if b != strings.ReplaceAll(content, "\r\n.", "\r\n..") {
			t.Errorf("message %d: %q", i+1, b)
		}
	}
	if srv.Conns() != 1 || !c.Usable() {
		t.Errorf("%d connections, usable %v: want one, still usable", srv.Conns(), c.Usable())
	}
}

// trickleServer accepts one message at a time and reads its DATA slowly:
// chunk octets every pause, so that the writes never stall for long but
// the whole takes long.
type trickleServer struct {
	Port      int
	mu        sync.Mutex
	delivered int
}

func newTrickleServer(t *testing.T, chunk int, pause time.Duration) *trickleServer {
	t.Helper()
	s := &trickleServer{}
	stop := make(chan struct{})
	s.Port = testsmtp.ServeLoopback(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		s.serve(c, chunk, pause, stop)
	})
	// Registered after ServeLoopback's, so it runs first: serve ends
	// before the wait for it.
	t.Cleanup(func() { close(stop) })
	return s
}

func (s *trickleServer) serve(c net.Conn, chunk int, pause time.Duration, stop chan struct{}) {
	br := bufio.NewReader(c)
	say := func(l string) { io.WriteString(c, l+"\r\n") }
	say("220 trickle.test ESMTP")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(line)), " "); verb {
		case "EHLO":
			say("250-trickle.test\r\n250 8BITMIME")
		case "DATA":
			say("354 go ahead, slowly")
			var tail []byte
			buf := make([]byte, chunk)
			for !bytes.HasSuffix(tail, []byte("\r\n.\r\n")) {
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
				n, err := br.Read(buf)
				if err != nil {
					return
				}
				tail = append(tail, buf[:n]...)
				tail = tail[max(0, len(tail)-5):]
			}
			s.mu.Lock()
			s.delivered++
			s.mu.Unlock()
			say("250 2.0.0 Ok: queued")
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("250 2.0.0 Ok")
		}
	}
}

func (s *trickleServer) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// dataBudget sets the DATA budget for one test.
func dataBudget(t *testing.T, base time.Duration, rate int64) {
	t.Helper()
	ob, or := relay.DataBudgetBase, relay.DataMinRate
	relay.DataBudgetBase, relay.DataMinRate = base, rate
	t.Cleanup(func() { relay.DataBudgetBase, relay.DataMinRate = ob, or })
}

// TestSend_DataBudget_SlowReaderFails: a server that keeps reading, but
// too slowly for the message's budget, fails the delivery although no
// single write ever waits for WriteIdleTimeout; the final dot is never
// sent and the message is deferred. The same slow server gets a small
// message through within its budget.
func TestSend_DataBudget_SlowReaderFails(t *testing.T) {
	const long = 20 * time.Second
	shortTimeouts(t, long, long, long, long)
	dataBudget(t, 300*time.Millisecond, 1<<40) // the budget is the base alone
	srv := newTrickleServer(t, 16<<10, 5*time.Millisecond)

	small := "Subject: small\r\n\r\n" + strings.Repeat("s", 900) + "\r\n"
	c := dial(t, srv.Port)
	if got, err := send(t, c, sendEnv(rcptA), small); err != nil || got[rcptA] != nil {
		t.Fatalf("small message: %v, %v", got[rcptA], err)
	}

	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 998)+"\r\n", 16<<10) // 16 MB
	got, err := send(t, c, sendEnv(rcptA), big)
	if err == nil || c.Usable() {
		t.Errorf("Send error %v, usable %v: the connection must be dropped", err, c.Usable())
	}
	f := got[rcptA]
	if f == nil || f.Stage != relay.StageData || f.Permanent() || !strings.Contains(f.Error(), "too slowly") {
		t.Fatalf("result %v, want deferred at data for the budget", f)
	}
	if h := relay.Explain(f); !strings.Contains(h, "DATA budget") {
		t.Errorf("explanation %q", h)
	}
	c.Close()
	time.Sleep(50 * time.Millisecond)
	if n := srv.Delivered(); n != 1 {
		t.Errorf("%d messages ended at the server, want only the small one", n)
	}
}

// TestSend_DataBudget_HintInLog: through the runner, the deferral says
// what happened.
func TestSend_DataBudget_HintInLog(t *testing.T) {
	const long = 20 * time.Second
	shortTimeouts(t, long, long, long, long)
	dataBudget(t, 200*time.Millisecond, 1<<40)
	srv := newTrickleServer(t, 16<<10, 5*time.Millisecond)
	h := newHarness(t, smarthost(srv.Port, "none"))
	id := h.enqueue("Subject: big\r\n\r\n"+strings.Repeat(strings.Repeat("y", 998)+"\r\n", 16<<10), rcptA)
	h.run()
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "too slowly")
	wantHint(t, h, rcptA, "deferred", "DATA budget")
	r := rcpt(h.mustRead(id), rcptA).Reason()
	if e := relay.Explain(rcpt(h.mustRead(id), rcptA).Failure); !strings.Contains(e, "DATA budget") {
		t.Errorf("stored reason %q explained as %q", r, e)
	}
}

// TestSend_DSN_PassedWhenOffered: -N, -R, -V and the original recipient
// reach a server that offers DSN as NOTIFY, RET, ENVID and ORCPT; a value
// that may not go (a non-ASCII ENVID) is left out without failing the
// delivery.
func TestSend_DSN_PassedWhenOffered(t *testing.T) {
	srv := newOptServer(t, func(s *smtp.Server) { s.EnableDSN = true })
	c := dial(t, srv.Port)
	env := sendEnv(rcptA, rcptB)
	env.DSN = spool.DSN{Notify: []string{"SUCCESS", "delay"}, Ret: "HDRS", EnvID: "QUEUE-ID.42"}
	env.Recipients[0].Original = "alias@example.test"
	if got, err := send(t, c, env, content); err != nil || got[rcptA] != nil || got[rcptB] != nil {
		t.Fatalf("%v %v", got, err)
	}
	env2 := sendEnv(rcptC)
	env2.DSN = spool.DSN{Notify: []string{"NEVER"}, Ret: "FULL", EnvID: "caf\u00e9"}
	if got, err := send(t, c, env2, content); err != nil || got[rcptC] != nil {
		t.Fatalf("%v %v", got, err)
	}
	_, mails := srv.Mails()
	rcpts, ropts := srv.Rcpts()
	if len(mails) != 2 || len(ropts) != 3 {
		t.Fatalf("%d MAIL, %d RCPT", len(mails), len(ropts))
	}
	if mails[0].Return != smtp.DSNReturnHeaders || mails[0].EnvelopeID != "QUEUE-ID.42" {
		t.Errorf("MAIL options %+v, want RET=HDRS ENVID=QUEUE-ID.42", mails[0])
	}
	if mails[1].Return != smtp.DSNReturnFull || mails[1].EnvelopeID != "" {
		t.Errorf("MAIL options %+v, want RET=FULL and no ENVID", mails[1])
	}
	if !slices.Equal(rcpts, []string{rcptA, rcptB, rcptC}) {
		t.Errorf("RCPT %q", rcpts)
	}
	if o := ropts[0]; !slices.Equal(o.Notify, []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyDelayed}) ||
		o.OriginalRecipient != "alias@example.test" || o.OriginalRecipientType != smtp.DSNAddressTypeRFC822 {
		t.Errorf("RCPT options of a: %+v", o)
	}
	if o := ropts[1]; o.OriginalRecipient != "" {
		t.Errorf("ORCPT %q for a recipient without an original address", o.OriginalRecipient)
	}
	if o := ropts[2]; !slices.Equal(o.Notify, []smtp.DSNNotify{smtp.DSNNotifyNever}) {
		t.Errorf("RCPT options of c: %+v", o)
	}
}

// TestSend_DSN_NotOffered: to a server without DSN the same message goes
// without the parameters, and is delivered.
func TestSend_DSN_NotOffered(t *testing.T) {
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, nil))
	c := dial(t, srv.Port)
	env := sendEnv(rcptA)
	env.DSN = spool.DSN{Notify: []string{"FAILURE"}, Ret: "FULL", EnvID: "X1"}
	env.Recipients[0].Original = "alias@example.test"
	if got, err := send(t, c, env, content); err != nil || got[rcptA] != nil {
		t.Fatalf("%v %v", got, err)
	}
	for _, l := range append(linesWith(srv, "MAIL"), linesWith(srv, "RCPT")...) {
		if strings.Contains(l, "RET=") || strings.Contains(l, "ENVID=") || strings.Contains(l, "NOTIFY=") || strings.Contains(l, "ORCPT=") {
			t.Errorf("DSN parameter sent to a server without DSN: %q", l)
		}
	}
	if len(srv.Bodies()) != 1 {
		t.Error("not delivered")
	}
}

// eightBitMessage is a multipart message with an 8-bit text part, a part
// of binary octets declared 8bit, an ASCII part and a line of 2,000
// octets; parts returns each part decoded as it must arrive.
func eightBitMessage(bin []byte) (msg string, parts [][]byte) {
	text := "Gr\xc3\xbc\xc3\x9fe, \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82!\r\nSecond line.\r\n"
	ascii := "Just ASCII.\r\n"
	long := strings.Repeat("L", 2000)
	msg = "From: robot@example.test\r\nTo: a@example.test\r\nSubject: 8-bit\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text + "\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + string(bin) + "\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\n" + ascii + "\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\n" + long + "\r\n" +
		"--b1--\r\n"
	return msg, [][]byte{[]byte(text), bin, []byte(ascii), []byte(long)}
}

// decodedParts parses a multipart message and decodes each part.
func decodedParts(t *testing.T, msg []byte) [][]byte {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var out [][]byte
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = p
		switch strings.ToLower(p.Header.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			r = quotedprintable.NewReader(p)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

// binaryOctets is every octet value but CR and LF, several times: a
// dot at a line start would be dot-stuffed, and testsmtp.RawServer keeps that.
func binaryOctets() []byte {
	var b []byte
	for i := 0; i < 3; i++ {
		for c := 0; c < 256; c++ {
			if c != '\r' && c != '\n' && c != '.' {
				b = append(b, byte(c))
			}
		}
	}
	return b
}

// TestSend_8Bit_ServerWithout8BITMIME: to a server that does not offer
// 8BITMIME the message goes 7-bit, without BODY=8BITMIME, no line over
// 998 octets, and every part decodes to its original octets; SIZE= is
// the size that went out.
func TestSend_8Bit_ServerWithout8BITMIME(t *testing.T) {
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, ehloOnly(nil, "SIZE 10000000")))
	c := dial(t, srv.Port)
	msg, want := eightBitMessage(binaryOctets())
	out, err := c.Send(sendEnv(rcptA), sender, strings.NewReader(msg), int64(len(msg)))
	if err != nil || out.Results[0].Err != nil {
		t.Fatalf("%v %v", out.Results[0].Err, err)
	}
	if out.Reencoded != "quoted-printable+base64" {
		t.Errorf("Reencoded %q", out.Reencoded)
	}
	bodies := srv.Bodies()
	if len(bodies) != 1 {
		t.Fatalf("%d messages", len(bodies))
	}
	body := bodies[0]
	for i, l := range strings.Split(body, "\r\n") {
		if len(l) > 998 {
			t.Errorf("line %d: %d octets", i+1, len(l))
		}
		for _, ch := range []byte(l) {
			if ch >= 0x80 {
				t.Fatalf("line %d has an 8-bit octet", i+1)
			}
		}
	}
	mailLine := linesWith(srv, "MAIL FROM")[0]
	if strings.Contains(mailLine, "BODY=") {
		t.Errorf("%q: BODY= sent to a server without 8BITMIME", mailLine)
	}
	if want := " SIZE=" + strconv.Itoa(len(body)); !strings.HasSuffix(mailLine, want) {
		t.Errorf("%q, want %s (the re-encoded size)", mailLine, want)
	}
	got := decodedParts(t, []byte(body))
	if len(got) != len(want) {
		t.Fatalf("%d parts, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("part %d decodes to %.60q, want %.60q", i+1, got[i], want[i])
		}
	}
	// The ASCII part went as it was.
	if !strings.Contains(body, "--b1\r\nContent-Type: text/plain\r\n\r\nJust ASCII.\r\n\r\n--b1") {
		t.Error("the ASCII part changed")
	}
}

// TestSend_LongLine_ServerWith8BITMIME: a server with 8BITMIME takes the
// 8-bit parts as they are, but a line of 2,000 octets is re-encoded all
// the same.
func TestSend_LongLine_ServerWith8BITMIME(t *testing.T) {
	srv := newOptServer(t, nil) // go-smtp's server offers 8BITMIME
	c := dial(t, srv.Port)
	msg, want := eightBitMessage(binaryOctets())
	if got, err := send(t, c, sendEnv(rcptA), msg); err != nil || got[rcptA] != nil {
		t.Fatalf("%v %v", got, err)
	}
	body := srv.Bodies()[0]
	for i, l := range bytes.Split(body, []byte("\r\n")) {
		if len(l) > 998 {
			t.Errorf("line %d: %d octets", i+1, len(l))
		}
	}
	if !bytes.Contains(body, want[0]) || !bytes.Contains(body, want[1]) {
		t.Error("the 8-bit parts did not go as they were")
	}
	got := decodedParts(t, body)
	if len(got) != 4 || !bytes.Equal(got[3], want[3]) {
		t.Errorf("the long line did not decode to itself")
	}
}

// TestSend_SizeLimit: a message larger than the SIZE the server announces
// is not sent: it fails with 552 5.3.4 (permanent) and the connection
// carries the next message. The size compared is the one that goes out,
// after re-encoding.
func TestSend_SizeLimit(t *testing.T) {
	srv := newOptServer(t, func(s *smtp.Server) { s.MaxMessageBytes = 2000 })
	c := dial(t, srv.Port)
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 400)
	got, err := send(t, c, sendEnv(rcptA, rcptB), big)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{rcptA, rcptB} {
		f := got[a]
		if f == nil || f.Code != 552 || f.Enhanced != "5.3.4" || !f.Permanent() || f.OwnSide() ||
			!strings.Contains(f.Text, "exceeds size limit 2000") {
			t.Errorf("%s: %v, want a permanent 552 5.3.4 naming the limit", a, f)
		}
	}
	if froms, _ := srv.Mails(); len(froms) != 0 {
		t.Errorf("MAIL FROM sent for a message over the limit")
	}
	if !c.Usable() {
		t.Fatal("connection unusable")
	}
	if got, err := send(t, c, sendEnv(rcptC), content); err != nil || got[rcptC] != nil {
		t.Errorf("the next message: %v %v", got[rcptC], err)
	}

	// 1,500 octets of 8-bit text fit under 1,800, but not once in base64.
	raw := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, ehloOnly(nil, "SIZE 1800")))
	c2 := dial(t, raw.Port)
	eight := "Subject: x\r\n\r\n" + strings.Repeat("\xc3\xa9", 750)
	got, err = send(t, c2, sendEnv(rcptA), eight)
	if f := got[rcptA]; err != nil || f == nil || f.Code != 552 || !strings.Contains(f.Text, "exceeds size limit 1800") {
		t.Errorf("re-encoded message over the limit: %v %v", f, err)
	}
}

// TestSend_SizeLimit_Bounces: through the runner the sender gets a bounce
// that explains the size.
func TestSend_SizeLimit_Bounces(t *testing.T) {
	srv := newOptServer(t, func(s *smtp.Server) { s.MaxMessageBytes = 1000 })
	h := newHarness(t, smarthost(srv.Port, "none"))
	h.enqueue("Subject: big\r\n\r\n"+strings.Repeat("0123456789\r\n", 200), rcptA)
	h.run()
	wantHint(t, h, rcptA, "bounced", "larger than the smarthost accepts")
}

// TestSend_SMTPUTF8: an address with a non-ASCII local part goes with
// SMTPUTF8 to a server that offers it; to one that does not, that
// recipient is deferred (own side: it waits for a smarthost that can carry
// it) while the others are delivered, and a non-ASCII domain goes as
// A-labels without needing SMTPUTF8.
func TestSend_SMTPUTF8(t *testing.T) {
	const utf = "\u0434\u0438\u043c\u0430@example.test" // дима@
	const idn = "user@b\u00fccher.test"                 // user@bücher.test

	srv := newOptServer(t, func(s *smtp.Server) { s.EnableSMTPUTF8 = true })
	c := dial(t, srv.Port)
	if got, err := send(t, c, sendEnv(utf, rcptA), content); err != nil || got[utf] != nil || got[rcptA] != nil {
		t.Fatalf("%v %v", got, err)
	}
	_, mails := srv.Mails()
	rcpts, _ := srv.Rcpts()
	if len(mails) != 1 || !mails[0].UTF8 || !slices.Equal(rcpts, []string{utf, rcptA}) {
		t.Errorf("MAIL %+v RCPT %q, want SMTPUTF8 and the address as it is", mails, rcpts)
	}

	raw := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, ehloOnly(nil)))
	c2 := dial(t, raw.Port)
	got, err := send(t, c2, sendEnv(utf, rcptA, idn), content)
	if err != nil {
		t.Fatal(err)
	}
	if f := got[utf]; f == nil || f.Permanent() || !f.OwnSide() || !strings.Contains(f.Error(), "needs SMTPUTF8") {
		t.Errorf("%s: %v, want deferred (own side) for SMTPUTF8", utf, f)
	}
	if got[rcptA] != nil || got[idn] != nil {
		t.Errorf("a: %v, %s: %v, want delivered", got[rcptA], idn, got[idn])
	}
	rl := linesWith(raw, "RCPT")
	if !slices.Equal(rl, []string{"RCPT TO:<" + rcptA + ">", "RCPT TO:<user@xn--bcher-kva.test>"}) {
		t.Errorf("RCPT lines %q", rl)
	}
	if ml := linesWith(raw, "MAIL"); len(ml) != 1 || strings.Contains(ml[0], "SMTPUTF8") {
		t.Errorf("MAIL lines %q", ml)
	}

	// A sender that needs it: nothing is sent.
	env := sendEnv(rcptA)
	env.Sender = utf
	got, err = send(t, c2, env, content)
	if f := got[rcptA]; err != nil || f == nil || f.Permanent() || !strings.Contains(f.Error(), "sender") {
		t.Errorf("non-ASCII sender: %v %v", f, err)
	}
	if n := len(linesWith(raw, "MAIL")); n != 1 {
		t.Errorf("%d MAIL FROM, want no new one", n)
	}
}

// TestSend_SMTPUTF8_HintInLog: the deferral is explained where an admin
// reads it.
func TestSend_SMTPUTF8_HintInLog(t *testing.T) {
	const utf = "j\u00f6rg@example.test"
	raw := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, ehloOnly(nil)))
	h := newHarness(t, smarthost(raw.Port, "none"))
	id := h.enqueue(content, utf)
	h.run()
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{utf: spool.Pending}, "SMTPUTF8")
	if !env.OwnSide() {
		t.Error("not marked own side: relay check would not report the stuck mail")
	}
	wantHint(t, h, utf, "deferred", "offering SMTPUTF8")
	// mailq and bounces explain the stored reason the same way.
	if e := relay.Explain(rcpt(env, utf).Failure); !strings.Contains(e, "offering SMTPUTF8") {
		t.Errorf("stored reason %q explained as %q", rcpt(env, utf).Reason(), e)
	}
}

// TestSend_NotSeekable_ReadsOnce: a message that can only be read once
// (a rewritten one), over the in-memory limit, is re-encoded all the same
// (through a spill file).
func TestSend_NotSeekable_ReadsOnce(t *testing.T) {
	relay.SpillDir = t.TempDir()
	t.Cleanup(func() { relay.SpillDir = "" })
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, ehloOnly(nil)))
	c := dial(t, srv.Port)
	text := strings.Repeat("caf\xc3\xa9 au lait\r\n", 200<<10) // 3.2 MB
	msg := "Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text
	out, err := c.Send(sendEnv(rcptA), sender, io.MultiReader(strings.NewReader(msg)), int64(len(msg)))
	if err != nil || out.Results[0].Err != nil {
		t.Fatalf("%v %v", out.Results[0].Err, err)
	}
	m, err := mail.ReadMessage(strings.NewReader(srv.Bodies()[0]))
	if err != nil {
		t.Fatal(err)
	}
	if cte := m.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	b, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
	if string(b) != text {
		t.Errorf("decoded %d octets, want %d", len(b), len(text))
	}
}
