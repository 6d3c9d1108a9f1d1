package relay_test

// Dial and (*Conn).Send called directly, without the runner: which
// failures Dial reports, the result per recipient of Send, and a pass cut
// short by its context.

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// TestDial_FailuresAreNeverPermanent: every failure of Dial is a
// *relay.Failure of relay's own side that never fails a recipient.
func TestDial_FailuresAreNeverPermanent(t *testing.T) {
	shortTimeouts(t, 2*time.Second, 2*time.Second, 2*time.Second, 2*time.Second)
	failingCmd := writeScript(t, "exit 1\n")
	for _, tc := range []struct {
		name  string
		sh    func(t *testing.T) config.Smarthost
		stage relay.Stage
		code  int
	}{
		{"ConnectRefused", func(t *testing.T) config.Smarthost { return withAuth(smarthost(testsmtp.ClosedPort(t), "none")) }, relay.StageConnect, 0},
		{"EHLO554", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(plainAuthServer(t, testsmtp.ServerConfig{EHLO: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "no")}).Port, "none"))
		}, relay.StageEHLO, 554},
		{"NoStartTLS", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(plainAuthServer(t, testsmtp.ServerConfig{}).Port, "starttls"))
		}, relay.StageTLS, 0},
		{"ImplicitTLSToPlainServer", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(plainAuthServer(t, testsmtp.ServerConfig{}).Port, "implicit"))
		}, relay.StageTLS, 0},
		{"Auth535", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(plainAuthServer(t, testsmtp.ServerConfig{Password: "other"}).Port, "none"))
		}, relay.StageAuth, 535},
		{"PasswordCommandFails", func(t *testing.T) config.Smarthost {
			sh := smarthost(plainAuthServer(t, testsmtp.ServerConfig{}).Port, "none")
			sh.Username = testUser
			sh.PasswordCommand = []string{failingCmd}
			return sh
		}, relay.StageLocal, 0},
		{"BadCAFile", func(t *testing.T) config.Smarthost {
			sh := withAuth(smarthost(testsmtp.ClosedPort(t), "starttls"))
			sh.TLSCAFile = filepath.Join(t.TempDir(), "missing.pem")
			return sh
		}, relay.StageLocal, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := tc.sh(t)
			c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			var f *relay.Failure
			if !errors.As(err, &f) {
				t.Fatalf("error %T %v is not a *relay.Failure", err, err)
			}
			if f.Stage != tc.stage || f.Code != tc.code {
				t.Errorf("failure stage %q code %d, want %q %d (%v)", f.Stage, f.Code, tc.stage, tc.code, err)
			}
			if f.Permanent() || !f.OwnSide() {
				t.Errorf("Permanent() = %v, OwnSide() = %v for %v", f.Permanent(), f.OwnSide(), err)
			}
		})
	}
}

// TestDial_ReportsTLSVersionAndSaysQUIT: an open connection knows its TLS
// version, and Close ends the session with QUIT.
func TestDial_ReportsTLSVersionAndSaysQUIT(t *testing.T) {
	srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true, AuthMechs: []string{"PLAIN"}, Password: testPass})
	sh := withAuth(smarthost(srv.Port, "starttls"))
	sh.TLSCAFile = srv.Cert.CAFile(t)
	var debug bytes.Buffer
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test", Debug: &debug})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS != "TLSv1.3" || !c.Usable() {
		t.Errorf("TLS %q usable %v", c.TLS, c.Usable())
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !strings.Contains(debug.String(), "QUIT") {
		t.Errorf("no QUIT in the dialogue:\n%s", debug.String())
	}
	if !strings.Contains(debug.String(), "EHLO relay.test") {
		t.Errorf("EHLO does not use HeloName:\n%s", debug.String())
	}
}

func sendEnv(rcpts ...string) *spool.Envelope {
	env := &spool.Envelope{ID: "0000000000ABCDE", Sender: sender}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Address: r, Status: spool.Pending})
	}
	return env
}

// TestSend_ResultPerRecipient: Send reports each recipient's outcome with
// its stage and reply, and the server's answer to the message.
func TestSend_ResultPerRecipient(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{
		rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user"),
		rcptC: smtpErr(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full"),
	}})
	sh := withAuth(smarthost(srv.Port, "none"))
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := sendEnv(rcptA, rcptB, rcptC)
	env.Recipients = append(env.Recipients, spool.Recipient{Address: "done@example.test", Status: spool.Delivered})
	out, err := c.Send(env, env.Sender, strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	if out.Reply != "250 2.0.0 OK: queued" {
		t.Errorf("reply %q", out.Reply)
	}
	got := map[string]*relay.Failure{}
	for _, r := range out.Results {
		got[r.Rcpt.Address] = r.Err
	}
	if len(out.Results) != 3 {
		t.Errorf("%d results, want one per pending recipient (3)", len(out.Results))
	}
	if got[rcptA] != nil {
		t.Errorf("a: %v, want delivered", got[rcptA])
	}
	if f := got[rcptB]; f == nil || f.Stage != relay.StageRcpt || f.Code != 550 || f.Enhanced != "5.1.1" || !f.Permanent() || f.OwnSide() || f.DSN() != "5.1.1" {
		t.Errorf("b: %#v, want a permanent RCPT failure 550 5.1.1", f)
	}
	if f := got[rcptC]; f == nil || f.Code != 552 || f.Permanent() {
		t.Errorf("c: %#v, want a temporary 552", f)
	}
	if !c.Usable() {
		t.Error("connection unusable after an ordinary transaction")
	}
	if srv.DeliveredTo("done@example.test") != 0 {
		t.Error("a delivered recipient was sent again")
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestSend_SpoolReadError_NeverEndsData: when the queued message cannot be
// read to its end, the final dot is never sent (the server must not get
// half a message) and the recipients are deferred with a local failure.
func TestSend_SpoolReadError_NeverEndsData(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	sh := withAuth(smarthost(srv.Port, "none"))
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &failingReader{data: "Subject: half\r\n\r\nfirst half\r\n", err: errors.New("disk read error")}
	out, err := c.Send(sendEnv(rcptA, rcptB), sender, r, 1000)
	if err == nil || c.Usable() {
		t.Errorf("Send error %v, usable %v: the connection must be dropped", err, c.Usable())
	}
	for _, res := range out.Results {
		if res.Err == nil || res.Err.Permanent() || res.Err.Stage != relay.StageLocal {
			t.Errorf("%s: %v, want deferred at stage local", res.Rcpt.Address, res.Err)
		}
	}
	c.Close()
	time.Sleep(50 * time.Millisecond) // let the server see the end
	if m := srv.Messages(); len(m) != 0 {
		t.Errorf("the server accepted half a message: %q", m[0].Body)
	}
}

// TestSend_ResultsInEnvelopeOrder: Outcome.Results is documented to be in
// envelope order.
func TestSend_ResultsInEnvelopeOrder(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptB: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}})
	sh := withAuth(smarthost(srv.Port, "none"))
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Send(sendEnv(rcptA, rcptB, rcptC), sender, strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range out.Results {
		order = append(order, r.Rcpt.Address)
	}
	if !slices.Equal(order, []string{rcptA, rcptB, rcptC}) {
		t.Errorf("results in order %q, want envelope order", order)
	}
}

// TestSend_ConnectionLostAtRcpt_KeepsEarlierRefusal: a recipient refused
// with 550 stays failed when the connection is lost at a later RCPT; the
// others are deferred.
func TestSend_ConnectionLostAtRcpt_KeepsEarlierRefusal(t *testing.T) {
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, map[string]func(string) string{
		"RCPT": func(l string) string {
			switch {
			case strings.Contains(l, rcptA):
				return "550 5.1.1 No such user"
			case strings.Contains(l, rcptB):
				return "250 2.1.5 Ok"
			}
			return testsmtp.RawClose
		},
	}))
	sh := smarthost(srv.Port, "none")
	c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Send(sendEnv(rcptA, rcptB, rcptC), sender, strings.NewReader(content), int64(len(content)))
	if err == nil {
		t.Error("Send returned no error for a lost connection")
	}
	if c.Usable() {
		t.Error("connection still usable after it was lost")
	}
	got := map[string]*relay.Failure{}
	for _, r := range out.Results {
		got[r.Rcpt.Address] = r.Err
	}
	if f := got[rcptA]; f == nil || f.Code != 550 || !f.Permanent() {
		t.Errorf("a (refused with 550 before the loss): %v, want failed with the 550", f)
	}
	for _, a := range []string{rcptB, rcptC} {
		if f := got[a]; f == nil || f.Permanent() {
			t.Errorf("%s: %v, want deferred", a, f)
		}
	}
}

// TestRun_Cancel_CutsDataAndKeepsMessageAsItWas: cancelling a pass (the
// daemon's SIGTERM) in the middle of a DATA that the server stopped
// reading closes the connection at once, without the final dot, and
// leaves the message queued exactly as it was: no attempt counted, still
// due, the host not marked down.
func TestRun_Cancel_CutsDataAndKeepsMessageAsItWas(t *testing.T) {
	const long = 20 * time.Second
	shortTimeouts(t, long, long, long, long)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 998)+"\r\n", 16<<10) // 16 MB
	dataSeen := make(chan struct{})
	var once sync.Once
	srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, map[string]func(string) string{
		"DATA": func(string) string {
			once.Do(func() { close(dataSeen) })
			return testsmtp.RawStall + "354 go ahead"
		},
	}))
	h := newHarness(t, smarthost(srv.Port, "none"))
	id := h.enqueue(big, rcptA)
	before := h.mustRead(id)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan relay.Stats)
	go func() {
		st, err := h.runner.Run(ctx)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- st
	}()
	select {
	case <-dataSeen:
	case <-time.After(long):
		t.Fatal("the server never saw DATA")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(long):
		t.Fatal("the cancelled pass did not return: the DATA was not cut")
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "")
	if env.Attempts != before.Attempts || !env.NextAttempt.Equal(before.NextAttempt) {
		t.Errorf("attempts %d next %v, want %d %v: a stop is no attempt", env.Attempts, env.NextAttempt, before.Attempts, before.NextAttempt)
	}
	if n := len(srv.Bodies()); n != 0 {
		t.Errorf("%d bodies ended at the server", n)
	}
	if hs := h.sp.Host(h.cfg.Smarthosts[0].Name); !hs.DownUntil.IsZero() {
		t.Errorf("host remembered as down until %v after a stop", hs.DownUntil)
	}
	if l := h.logLines(rcptA); len(l) != 1 || !strings.Contains(l[0], "relay is stopping") {
		t.Errorf("log %q, want one deferred line saying relay is stopping", l)
	}
}
