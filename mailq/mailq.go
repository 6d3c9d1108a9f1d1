// Package mailq implements the queue commands: mailq (sendmail -bp,
// relay queue list) in the format of Postfix's postqueue -p and -j, and
// relay queue show, delete, hold, release and flush.
//
// Listing needs only read access to the spool and never locks a message:
// a message a runner is delivering is marked "*" by testing its lock.
// Changes take the message's lock, waiting a moment for a runner to finish
// with it.
package mailq

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// LockWait is how long changing commands wait for a runner to release a
// message.
var LockWait = 10 * time.Second

// Entry is one message as listed.
type Entry struct {
	QueueName   string      `json:"queue_name"` // incoming, active, deferred, hold
	QueueID     string      `json:"queue_id"`
	ArrivalTime int64       `json:"arrival_time"`
	MessageSize int64       `json:"message_size"`
	Sender      string      `json:"sender"`
	Recipients  []Recipient `json:"recipients"`
	Attempts    int         `json:"attempts"`
	NextAttempt int64       `json:"next_attempt"`
	// RateWait is relay's addition: the message waits for a smarthost's
	// rate limit (its recipients' delay_reason says so too).
	RateWait *RateWait `json:"rate_wait,omitempty"`
}

// RateWait says which smarthost's rate limit a message waits for, and
// until when (Unix time, like next_attempt).
type RateWait struct {
	Smarthost string `json:"smarthost"`
	Limit     string `json:"limit"`
	Until     int64  `json:"until"`
}

// rateWaitReason is the delay reason of a message waiting for a rate limit.
func rateWaitReason(w *spool.RateWait) string {
	return fmt.Sprintf("waiting for the rate limit of smarthost %s (%s) until %s", w.Smarthost, w.Limit, w.Until.Local().Format(time.RFC3339))
}

// Recipient is one undelivered recipient as listed.
type Recipient struct {
	Address     string `json:"address"`
	DelayReason string `json:"delay_reason,omitempty"`
	// Status is relay's addition: pending (not delivered yet) or failed
	// (refused for good, waiting for its bounce).
	Status string `json:"status"`
}

func entryOf(m *spool.Message) Entry {
	e := Entry{
		QueueID:     m.ID,
		ArrivalTime: m.Arrival.Unix(),
		MessageSize: m.Size,
		Sender:      m.Sender,
		Attempts:    m.Attempts,
		NextAttempt: m.NextAttempt.Unix(),
	}
	switch {
	case m.Active:
		e.QueueName = "active"
	case m.Held:
		e.QueueName = "hold"
	case m.Attempts > 0:
		e.QueueName = "deferred"
	default:
		e.QueueName = "incoming"
	}
	if w := m.RateWait; w != nil {
		e.RateWait = &RateWait{Smarthost: w.Smarthost, Limit: w.Limit, Until: w.Until.Unix()}
	}
	for _, r := range m.Recipients {
		if r.Status == spool.Delivered {
			continue
		}
		reason := r.Reason()
		switch {
		case r.Status == spool.Failed:
			reason = "refused permanently: " + reason
		case m.RateWait != nil:
			reason = rateWaitReason(m.RateWait)
		}
		e.Recipients = append(e.Recipients, Recipient{Address: r.Address, DelayReason: reason, Status: string(r.Status)})
	}
	return e
}

// Walk calls fn for every readable message in arrival order. Unreadable
// ones are reported on warn and skipped: one bad file never hides the rest.
func Walk(sp *spool.Spool, warn io.Writer, fn func(*spool.Message) error) error {
	return sp.Scan(func(id string, m *spool.Message, err error) error {
		if err != nil {
			fmt.Fprintf(warn, "mailq: %v\n", err)
			return nil
		}
		return fn(m)
	})
}

// List writes the queue as postqueue -p does.
func List(w, warn io.Writer, sp *spool.Spool) error {
	bw := bufio.NewWriter(w)
	var n int
	var total int64
	hints := hintCache{}
	err := Walk(sp, warn, func(m *spool.Message) error {
		if n == 0 {
			fmt.Fprintf(bw, "%-16s %8s %-20s  %s\n", "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")
		} else {
			bw.WriteString("\n")
		}
		n++
		total += m.Size
		e := entryOf(m)
		mark := ' '
		switch e.QueueName {
		case "active":
			mark = '*'
		case "hold":
			mark = '!'
		}
		sender := e.Sender
		if sender == "" {
			sender = "MAILER-DAEMON"
		}
		fmt.Fprintf(bw, "%-15s%c %8d %-20.20s  %s\n", e.QueueID, mark, e.MessageSize, m.Arrival.Local().Format("Mon Jan _2 15:04:05"), sender)
		// Recipients sharing a reason are listed under it, as Postfix does,
		// with what it means when relay knows.
		lastReason := ""
		for _, r := range e.Recipients {
			if r.DelayReason != "" && r.DelayReason != lastReason {
				fmt.Fprintf(bw, "%8s(%s)\n", "", oneLine(r.DelayReason))
				if hint := hints.explain(m, r); hint != "" {
					fmt.Fprintf(bw, "%8shint: %s\n", "", hint)
				}
				lastReason = r.DelayReason
			}
			fmt.Fprintf(bw, "%48s%s\n", "", r.Address)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		bw.WriteString("Mail queue is empty\n")
	} else {
		plural := "s"
		if n == 1 {
			plural = ""
		}
		fmt.Fprintf(bw, "\n-- %d Kbytes in %d Request%s.\n", total/1024, n, plural)
	}
	return bw.Flush()
}

// ListJSON writes one JSON object per message and line, with the field
// names of postqueue -j plus attempts and next_attempt.
func ListJSON(w, warn io.Writer, sp *spool.Spool) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	err := Walk(sp, warn, func(m *spool.Message) error { return enc.Encode(entryOf(m)) })
	if err != nil {
		return err
	}
	return bw.Flush()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// Show writes message id's envelope and header.
func Show(w io.Writer, sp *spool.Spool, id string) error {
	m, err := sp.Read(id)
	if err != nil {
		return notFound(err)
	}
	bw := bufio.NewWriter(w)
	state := "queued"
	switch {
	case m.Active:
		state = "being delivered"
	case m.Held:
		state = "on hold"
	}
	sender := "<" + m.Sender + ">"
	fmt.Fprintf(bw, "Queue ID:     %s\n", m.ID)
	fmt.Fprintf(bw, "State:        %s\n", state)
	fmt.Fprintf(bw, "Arrival:      %s\n", m.Arrival.Local().Format(time.RFC3339))
	fmt.Fprintf(bw, "Size:         %d bytes\n", m.Size)
	fmt.Fprintf(bw, "Sender:       %s\n", sender)
	fmt.Fprintf(bw, "Submitted by: %s (uid %d)\n", m.User, m.UID)
	fmt.Fprintf(bw, "Attempts:     %d\n", m.Attempts)
	fmt.Fprintf(bw, "Next attempt: %s\n", m.NextAttempt.Local().Format(time.RFC3339))
	if e := m.LastError(); e != "" {
		fmt.Fprintf(bw, "Last error:   %s\n", oneLine(e))
	}
	if m.RateWait != nil {
		fmt.Fprintf(bw, "Rate limit:   %s\n", rateWaitReason(m.RateWait))
	}
	if d := m.DSN; len(d.Notify) > 0 || d.Ret != "" || d.EnvID != "" {
		fmt.Fprintf(bw, "DSN:          NOTIFY=%s RET=%s ENVID=%s\n", strings.Join(d.Notify, ","), d.Ret, d.EnvID)
	}
	if m.Body != "" {
		fmt.Fprintf(bw, "Body:         %s\n", m.Body)
	}
	fmt.Fprintf(bw, "Recipients:\n")
	for _, r := range m.Recipients {
		fmt.Fprintf(bw, "  <%s> %s", r.Address, r.Status)
		if r.Original != "" {
			fmt.Fprintf(bw, " (given as %s)", r.Original)
		}
		if reason := r.Reason(); reason != "" {
			fmt.Fprintf(bw, ": %s", oneLine(reason))
		}
		bw.WriteString("\n")
	}
	fmt.Fprintf(bw, "Header:\n")
	f, err := sp.OpenContent(id)
	if err != nil {
		return notFound(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadString('\n')
		if strings.TrimRight(line, "\r\n") == "" {
			break
		}
		bw.WriteString("  " + strings.TrimRight(line, "\r\n") + "\n")
		if err != nil {
			break
		}
	}
	return bw.Flush()
}

// ShowMessage writes the stored message id (header and body) as it was
// queued, as Postfix's postcat does, or its header alone; CRLF line ends
// become LF. It reads the queue file only: the relay group may, others
// are refused by the spool's modes (exit 77).
func ShowMessage(w io.Writer, sp *spool.Spool, id string, headerOnly bool) error {
	f, err := sp.OpenContent(id)
	if err != nil {
		return notFound(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(w)
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			bw.Write(line) // a long line: its end comes next
			continue
		}
		text := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if headerOnly && len(text) == 0 && len(line) > 0 {
			break
		}
		bw.Write(text)
		if len(line) > 0 && line[len(line)-1] == '\n' {
			bw.WriteByte('\n')
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("queue show: %s: %w", id, err)
		}
	}
	return bw.Flush()
}

// notFound gives a missing message exit code 66.
func notFound(err error) error {
	if errors.Is(err, spool.ErrNotFound) {
		return sysexits.Wrap(sysexits.NoInput, err)
	}
	return err
}

// Each applies op to every id (every queued one when all is set), going on
// after a failure. It returns every failure, one per line.
func Each(sp *spool.Spool, ids []string, all bool, op func(id string) error) error {
	if all {
		var err error
		if ids, err = sp.IDs(); err != nil {
			return err
		}
	}
	var errs []error
	for _, id := range ids {
		if err := op(id); err != nil {
			errs = append(errs, notFound(err))
		}
	}
	return errors.Join(errs...)
}

// Delete removes messages for good (relay queue delete).
func Delete(sp *spool.Spool, ids []string, all bool) error {
	return Each(sp, ids, all, func(id string) error { return sp.Remove(id, LockWait) })
}

// Hold sets messages on hold: no runner delivers them until released.
func Hold(sp *spool.Spool, ids []string, all bool) error {
	return Each(sp, ids, all, func(id string) error {
		return sp.Change(id, LockWait, func(e *spool.Envelope) bool {
			changed := !e.Held
			e.Held = true
			return changed
		})
	})
}

// Release takes messages off hold and makes them due now.
func Release(sp *spool.Spool, ids []string, all bool, now time.Time) error {
	return Each(sp, ids, all, func(id string) error {
		return sp.Change(id, LockWait, func(e *spool.Envelope) bool {
			if !e.Held {
				return false
			}
			e.Held = false
			e.NextAttempt = now
			return true
		})
	})
}

// Flush makes deferred messages due now (relay queue flush, sendmail -q).
// Held messages stay held; one being delivered is skipped, since it is
// being tried anyway.
func Flush(sp *spool.Spool, ids []string, now time.Time) error {
	all := len(ids) == 0
	if all {
		var err error
		if ids, err = sp.IDs(); err != nil {
			return err
		}
	}
	// One batch write for the whole queue: 10,000 messages cost a few
	// syncs, not 20,000.
	errs := sp.ChangeAll(ids, func(e *spool.Envelope) bool {
		if e.Held || !e.NextAttempt.After(now) {
			return false
		}
		e.NextAttempt = now
		return true
	})
	var out []error
	for _, id := range ids {
		err := errs[id]
		if err == nil || all && (errors.Is(err, spool.ErrBusy) || errors.Is(err, spool.ErrNotFound)) {
			continue // being delivered, or delivered meanwhile
		}
		out = append(out, notFound(err))
	}
	return errors.Join(out...)
}

// hintCache remembers explanations by failure: a queue held up by one
// outage repeats one failure thousands of times, and the table is a list
// of patterns. The key leaves out the time, which differs per message.
type hintCache map[hintKey]string

type hintKey struct {
	stage          failure.Stage
	code           int
	enhanced, text string
}

// explain is the plain-words explanation of a recipient's stored failure
// (see package failure), "" when the table has none.
func (c hintCache) explain(m *spool.Message, r Recipient) string {
	if m.RateWait != nil && r.Status == string(spool.Pending) {
		return "" // no failure to explain: relay holds it back
	}
	for _, rc := range m.Recipients {
		if rc.Address == r.Address {
			f := rc.Failure
			if f == nil {
				return ""
			}
			key := hintKey{f.Stage, f.Code, f.Enhanced, f.Text}
			hint, ok := c[key]
			if !ok {
				hint = failure.Explain(f)
				c[key] = hint
			}
			return hint
		}
	}
	return ""
}
