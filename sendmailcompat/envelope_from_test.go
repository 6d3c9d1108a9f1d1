package sendmailcompat_test

// The envelope sender from the From header (envelope_from_header,
// --read-envelope-from) and the smarthost named with -a: what PHP's
// mail() ("sendmail -t -i", the sender only in From) and scripts written
// for msmtp need.

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/sysexits"
)

func TestParseArgs_MsmtpAccountAndReadEnvelopeFrom(t *testing.T) {
	type S = sendmailcompat.Submission
	for _, tt := range []struct {
		args []string
		want S
	}{
		{[]string{"-a", "work", "-t"}, S{Smarthost: "work", Extract: true}},
		{[]string{"-awork", "x@y"}, S{Smarthost: "work", Recipients: []string{"x@y"}}},
		{[]string{"-ti", "-a", "work"}, S{Smarthost: "work", Extract: true, IgnoreDots: true}},
		{[]string{"--read-envelope-from", "-t"}, S{ReadEnvelopeFrom: true, Extract: true}},
	} {
		o, err := sendmailcompat.ParseArgs(tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(o.Submission, tt.want) {
			t.Errorf("%q: %+v, want %+v", tt.args, o.Submission, tt.want)
		}
	}
	for _, args := range [][]string{{"-a"}, {"-a", ""}, {"-a", "two words"}, {"--read-envelope-from=yes"}} {
		if _, err := sendmailcompat.ParseArgs(args); sysexits.Code(err, -1) != sysexits.Usage {
			t.Errorf("%q: err %v, want exit 64", args, err)
		}
	}
}

const phpMessage = "From: Shop <orders@shop.example>\nTo: customer@example.net\nSubject: Your order\n\nThanks.\n"

// TestEnqueue_EnvelopeFromHeader: with envelope_from_header, -t without
// -f takes the sender from From; -f still wins; without -t (or without
// the key) the sender stays the user's; --read-envelope-from does it for
// one submission; a From with several mailboxes uses Sender.
func TestEnqueue_EnvelopeFromHeader(t *testing.T) {
	s := testqueue.NewSubmitter(t) // user alice, domain server1.example.com
	for _, tt := range []struct {
		name   string
		key    bool
		args   []string
		header string
		want   string
	}{
		{"key, -t", true, []string{"-t", "-i"}, phpMessage, "orders@shop.example"},
		{"key, -t -f", true, []string{"-t", "-i", "-f", "bounce@shop.example"}, phpMessage, "bounce@shop.example"},
		{"key, no -t", true, []string{"-i", "customer@example.net"}, phpMessage, "alice@server1.example.com"},
		{"no key", false, []string{"-t", "-i"}, phpMessage, "alice@server1.example.com"},
		{"flag", false, []string{"--read-envelope-from", "-i", "customer@example.net"}, phpMessage, "orders@shop.example"},
		{"bare name qualified", true, []string{"-t"}, "From: www-data\nTo: x@example.net\n\nx\n", "www-data@server1.example.com"},
		{"cron's From", true, []string{"-t"}, "From: root (Cron Daemon)\nTo: x@example.net\n\nx\n", "root@server1.example.com"},
		{"several From, Sender", true, []string{"-t"}, "From: a@shop.example, b@shop.example\nSender: c@shop.example\nTo: x@example.net\n\nx\n", "c@shop.example"},
		{"no From", true, []string{"-t"}, "To: x@example.net\n\nx\n", "alice@server1.example.com"},
	} {
		s.EnvelopeFromHeader = tt.key
		m, _, err := submit(t, s, tt.args, tt.header)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if m.Sender != tt.want {
			t.Errorf("%s: envelope sender %q, want %q", tt.name, m.Sender, tt.want)
		}
	}
}

// TestEnqueue_EnvelopeFromHeader_SenderLoginMap: a sender taken from From
// is checked as -f would be: a user may not choose any account by
// writing a From.
func TestEnqueue_EnvelopeFromHeader_SenderLoginMap(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	testqueue.WithRewrite(t, s, "alice: @shop.example\n")
	s.EnvelopeFromHeader = true
	if m, _, err := submit(t, s, []string{"-t"}, phpMessage); err != nil || m.Sender != "orders@shop.example" {
		t.Errorf("allowed From: %v", err)
	}
	_, _, err := submit(t, s, []string{"-t"}, "From: ceo@bank.example\nTo: x@example.net\n\nx\n")
	if sysexits.Code(err, -1) != sysexits.NoPerm {
		t.Errorf("From refused by sender_login_map: err %v, want exit 77", err)
	}
}

// TestEnqueue_PinnedSmarthost: -a NAME is recorded in the envelope; an
// unknown name is exit 64 naming the configured ones; a smarthost whose
// senders do not allow the sender is exit 77; nothing is queued then.
func TestEnqueue_PinnedSmarthost(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	testqueue.WithRewrite(t, s, "")
	s.Rewrite.Config.Smarthosts = []config.Smarthost{
		{Name: "shop", Senders: []string{"@shop.example"}},
		{Name: "home"},
	}
	m, _, err := submit(t, s, []string{"-t", "-a", "home"}, phpMessage)
	if err != nil || m.Smarthost != "home" {
		t.Fatalf("-a home: %v, envelope smarthost %q", err, m.Smarthost)
	}
	before := len(testqueue.IDs(t, s.Spool))
	_, _, err = submit(t, s, []string{"-t", "-a", "nope"}, phpMessage)
	if sysexits.Code(err, -1) != sysexits.Usage || !strings.Contains(err.Error(), "configured: shop, home") {
		t.Errorf("-a nope: %v, want exit 64 naming shop and home", err)
	}
	_, _, err = submit(t, s, []string{"-t", "-a", "shop"}, phpMessage)
	if sysexits.Code(err, -1) != sysexits.NoPerm {
		t.Errorf("-a shop for alice@server1.example.com: %v, want exit 77", err)
	}
	s.EnvelopeFromHeader = true
	if m, _, err := submit(t, s, []string{"-t", "-a", "shop"}, phpMessage); err != nil || m.Smarthost != "shop" || m.Sender != "orders@shop.example" {
		t.Errorf("-a shop with the From's sender: %v", err)
	}
	if n := len(testqueue.IDs(t, s.Spool)); n != before+1 {
		t.Errorf("%d messages queued, want %d: a refused submission leaves nothing", n, before+1)
	}
}

// TestPickup_KeepsTheNamedSmarthostAndTheFromSender: a user of a system
// install submits through the maildrop: -a's smarthost and the sender
// taken from From survive the pickup.
func TestPickup_KeepsTheNamedSmarthostAndTheFromSender(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	if err := os.Mkdir(filepath.Join(s.Spool.Dir, "maildrop"), 0o733); err != nil {
		t.Fatal(err)
	}
	s.Drop = true
	o, err := sendmailcompat.ParseArgs([]string{"-t", "-i", "-a", "shop", "--read-envelope-from"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(o.Message(), strings.NewReader(phpMessage)); err != nil {
		t.Fatal(err)
	}
	p := &sendmailcompat.Pickup{Spool: s.Spool, Hostname: "server1", MaxMessageSize: 1 << 20, Now: s.Now,
		User: func(int) string { return "alice" }, Log: func(kv ...string) { t.Log(kv) }}
	if n, err := p.Run(); err != nil || n != 1 {
		t.Fatalf("pickup took %d, err %v", n, err)
	}
	ids := testqueue.IDs(t, s.Spool)
	if len(ids) != 1 {
		t.Fatalf("queue %v", ids)
	}
	m, _ := testqueue.Read(t, s.Spool, ids[0])
	if m.Smarthost != "shop" || m.Sender != "orders@shop.example" {
		t.Errorf("after the pickup: smarthost %q, sender %q; want shop, orders@shop.example", m.Smarthost, m.Sender)
	}
}
