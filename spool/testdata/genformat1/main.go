// Throwaway: writes a format-1 spool with the code of commit 435c419.
package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func enqueue(s *spool.Spool, env *spool.Envelope, body string) string {
	d, err := s.NewDraft()
	must(err)
	must(d.WriteEnvelope(env))
	_, err = d.Write([]byte(body))
	must(err)
	must(d.Commit())
	time.Sleep(2 * time.Millisecond)
	return d.ID
}

func update(s *spool.Spool, id string, fn func(*spool.Envelope)) {
	l, err := s.Lock(id)
	must(err)
	fn(l.Env)
	must(l.Update())
	l.Close()
}

func main() {
	s, err := spool.Create(os.Args[1])
	must(err)
	arrival := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	body := "Subject: test\r\n\r\nhello\r\n"
	pend := func(a ...string) []spool.Recipient {
		var out []spool.Recipient
		for _, x := range a {
			out = append(out, spool.Recipient{Address: x, Status: spool.Pending})
		}
		return out
	}
	lifetime := config.Duration(5 * 24 * time.Hour)

	// 1. Recipient-side outcomes: delivered, deferred, failed, gave up.
	mixed := enqueue(s, &spool.Envelope{Sender: "alice@example.org", Recipients: pend("a@example.net", "b@example.net", "c@example.net", "d@example.net"),
		UID: 1000, User: "alice", Arrival: arrival, NextAttempt: arrival, DSN: spool.DSN{Notify: []string{"FAILURE", "DELAY"}, Ret: "HDRS", EnvID: "env-1"},
		Body: "8BITMIME", MessageID: "m1@example.org"}, body)
	update(s, mixed, func(e *spool.Envelope) {
		deferred := &relay.Failure{Stage: relay.StageRcpt, Code: 452, Enhanced: "4.2.2", Reply: "Mailbox full"}
		failed := &relay.Failure{Stage: relay.StageRcpt, Code: 550, Enhanced: "5.1.1", Reply: "<c@example.net>: Recipient address rejected: User unknown"}
		gaveUp := &relay.Failure{Stage: relay.StageData, Code: 451, Enhanced: "4.3.0", Reply: "Temporary local problem; try again later"}
		e.Attempts = 3
		e.NextAttempt = arrival.Add(4 * time.Hour)
		e.Recipients[0].Status, e.Recipients[0].Reason = spool.Delivered, "250 2.0.0 Ok: queued as 4XyZ12"
		e.Recipients[1].Reason = deferred.ReplyLine()
		e.Recipients[1].Original = "bee"
		e.Recipients[2].Status, e.Recipients[2].Reason, e.Recipients[2].Notified = spool.Failed, failed.ReplyLine(), true
		e.Recipients[3].Status, e.Recipients[3].Reason = spool.Failed, "gave up after "+lifetime.String()+": "+gaveUp.ReplyLine()
		e.LastError = deferred.Error()
		e.Warned = true
	})

	// 2. Own side: AUTH refused, past the lifetime: held.
	auth := enqueue(s, &spool.Envelope{Sender: "root@server1.lan", Recipients: pend("ops@example.net", "dev@example.net"),
		UID: 0, User: "root", Arrival: arrival, NextAttempt: arrival}, body)
	update(s, auth, func(e *spool.Envelope) {
		f := &relay.Failure{Stage: relay.StageAuth, Code: 535, Enhanced: "5.7.8", Reply: "Error: authentication failed: Invalid user or password"}
		e.Attempts = 12
		for i := range e.Recipients {
			e.Recipients[i].Reason = f.ReplyLine()
		}
		e.LastError, e.OwnSide, e.Held = f.Error(), true, true
	})

	// 3. Own side without a reply: a smarthost remembered as down.
	down := enqueue(s, &spool.Envelope{Sender: "", Recipients: pend("postmaster@example.org"),
		UID: -1, User: "MAILER-DAEMON", Arrival: arrival, NextAttempt: arrival, Bounce: true}, body)
	update(s, down, func(e *spool.Envelope) {
		f := &relay.Failure{Stage: relay.StageConnect, Err: errors.New("primary is down until 2025-03-01T10:05:00Z (dial tcp 192.0.2.1:587: connect: connection refused)")}
		e.Attempts = 1
		e.NextAttempt = arrival.Add(5 * time.Minute)
		e.Recipients[0].Reason = f.ReplyLine()
		e.LastError, e.OwnSide = f.Error(), true
	})

	// 4. Arrival envelope only: an alias nobody can serve, failed at
	// submission (package rewrite), and a pending recipient.
	alias := enqueue(s, &spool.Envelope{Sender: "bob@example.org", Recipients: []spool.Recipient{
		{Address: "pipe", Status: spool.Failed, Reason: "550 5.1.1 <pipe>: delivery to a command is not supported"},
		{Address: "carol@example.net", Original: "carol", Status: spool.Pending}},
		UID: 1001, User: "bob", Arrival: arrival, NextAttempt: arrival}, body)

	// 5. Waiting for a rate limit after a greylisting deferral.
	rate := enqueue(s, &spool.Envelope{Sender: "alice@example.org", Recipients: pend("e@example.net"),
		UID: 1000, User: "alice", Arrival: arrival, NextAttempt: arrival}, body)
	update(s, rate, func(e *spool.Envelope) {
		f := &relay.Failure{Stage: relay.StageRcpt, Code: 451, Enhanced: "4.7.1", Reply: "Greylisted, see https://example.net/greylist"}
		e.Attempts = 1
		e.Recipients[0].Reason = f.ReplyLine()
		e.LastError = f.Error()
		e.RateWait = &spool.RateWait{Smarthost: "primary", Limit: "100/h", Until: arrival.Add(10 * time.Minute)}
		e.RateWaited = 3 * time.Minute
	})
	fmt.Println(mixed, auth, down, alias, rate)
}
