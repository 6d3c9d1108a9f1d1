package smtpd_test

// A fuzz target of the SMTP server of sendmail -bs and the daemon's
// listener: any client input, over standard input and output, into a
// spool. Seeds: testdata/fuzz/FuzzSMTPSession; bench/fuzz.sh runs it
// longer.

import (
	"bytes"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/smtpd"
	"github.com/relaymail/relay/spool"
)

// serveSession is the one call of the server's API in this file (-bs).
func serveSession(s *sendmailcompat.Submitter, in io.Reader, out io.Writer) error {
	return (&smtpd.Server{Submitter: s}).ServeStdio(in, out)
}

var (
	sessionReply  = regexp.MustCompile(`^[2-5][0-9][0-9][ -][^\r\n]*\r\n`)
	sessionQueued = regexp.MustCompile(`(?m)^250 2\.0\.0 Ok: queued as ([0-9A-Z]+)\r$`)
)

// FuzzSMTPSession checks a whole session with any client input: it ends
// without error when the input ends; every reply is "ddd text" or
// "ddd-text" with CRLF, the first a 220 greeting; and exactly the
// messages the server answered "queued as ID" are in the spool, each
// reading back with valid recipients.
func FuzzSMTPSession(f *testing.F) {
	for _, s := range []string{
		// Symfony Mailer's SendmailTransport with -bs
		"EHLO [127.0.0.1]\r\nMAIL FROM:<app@shop.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nFrom: app@shop.example\r\nTo: alice@example.org\r\nSubject: Order\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThanks.\r\n..dot\r\n.\r\nQUIT\r\n",
		"HELO x\r\nMAIL FROM:<> BODY=8BITMIME RET=HDRS ENVID=a+2Bb\r\nRCPT TO:<root> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;root@x\r\nRCPT TO:<b@x.example> NOTIFY=NEVER\r\nDATA\r\nSubject: s\r\n\r\nx\r\n.\r\nRSET\r\nNOOP\r\nVRFY root\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<a@b> SIZE=100\r\nRCPT TO:<c@d>\r\nRCPT TO:<@r1,@r2:e@f>\r\nDATA\r\n.\r\nMAIL FROM:<a@b>\r\nDATA\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:a@b\r\nRCPT TO:c@d\r\nDATA\r\nno end of data",
		"EHLO a\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\nDATA\nSubject: lf only\n\nbody\n.\nQUIT\n",
		"STARTTLS\r\nAUTH PLAIN AGdsAHg=\r\nBDAT 10\r\nmail from:<x@y>\r\nrcpt to:<\"a b\"@c.example>\r\ndata x\r\nHELP\r\nEXPN x\r\nTURN\r\n\r\n",
		"EHLO a\r\nMAIL FROM:<a@b\r\nMAIL FROM:<a@b> BOGUS=1\r\nRCPT TO:<>\r\nRCPT TO:<-oQ/tmp/x>\r\nQUIT\r\n",
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 22, 21, 42, 28, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in []byte) {
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
		var out bytes.Buffer
		if err := serveSession(s, bytes.NewReader(in), &out); err != nil {
			t.Fatalf("session on %q: %v\n%s", in, err, out.Bytes())
		}
		replies := out.Bytes()
		if !bytes.HasPrefix(replies, []byte("220 ")) {
			t.Fatalf("session on %q: no 220 greeting:\n%s", in, replies)
		}
		for rest := replies; len(rest) > 0; {
			m := sessionReply.Find(rest)
			if m == nil {
				t.Fatalf("session on %q: bad reply line at %q", in, rest)
			}
			rest = rest[len(m):]
		}
		var said []string
		for _, m := range sessionQueued.FindAllStringSubmatch(string(replies), -1) {
			said = append(said, m[1])
		}
		ids, err := sp.IDs()
		if err != nil || strings.Join(ids, " ") != strings.Join(said, " ") {
			t.Fatalf("session on %q: queued %q, said %q (%v)", in, ids, said, err)
		}
		for _, id := range ids {
			m, err := sp.Read(id)
			if err != nil || len(m.Recipients) == 0 {
				t.Fatalf("queued %s does not read back: %+v, %v", id, m, err)
			}
			for _, r := range m.Recipients {
				if mailaddr.Valid(r.Address) != nil {
					t.Fatalf("queued %s for %q", id, r.Address)
				}
			}
			if m.Sender != "" && mailaddr.Valid(m.Sender) != nil {
				t.Fatalf("queued %s from %q", id, m.Sender)
			}
		}
	})
}
