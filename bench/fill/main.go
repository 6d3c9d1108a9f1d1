// Command fill queues N copies of a message straight into a relay spool,
// as sendmail would have (durably, one queue file each), for the flush
// benchmark of bench/deliver.sh: it measures the delivery of a queue, not
// its filling.
//
//	fill -spool DIR -n 10000 -msg message.eml -from robot@example.test -to ops@example.org
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/relaymail/relay/spool"
)

func main() {
	dir := flag.String("spool", "", "spool directory (created when missing)")
	n := flag.Int("n", 1000, "messages")
	msgFile := flag.String("msg", "", "the message")
	from := flag.String("from", "", "envelope sender")
	to := flag.String("to", "", "recipient")
	par := flag.Int("p", 4, "writers in parallel")
	flag.Parse()
	if err := run(*dir, *msgFile, *from, *to, *n, *par); err != nil {
		fmt.Fprintln(os.Stderr, "fill:", err)
		os.Exit(1)
	}
}

func run(dir, msgFile, from, to string, n, par int) error {
	sp, err := spool.Create(dir)
	if err != nil {
		return err
	}
	msg, err := os.ReadFile(msgFile)
	if err != nil {
		return err
	}
	msg = bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	jobs := make(chan int)
	errs := make(chan error, par)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for range jobs {
				if err := one(sp, msg, from, to); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	start := time.Now()
	for i := range n {
		select {
		case jobs <- i:
		case err := <-errs:
			close(jobs)
			wg.Wait()
			return err
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Fprintf(os.Stderr, "fill: queued %d messages in %.1fs\n", n, time.Since(start).Seconds())
	return nil
}

func one(sp *spool.Spool, msg []byte, from, to string) error {
	d, err := sp.NewDraft()
	if err != nil {
		return err
	}
	defer d.Abort()
	now := time.Now()
	env := &spool.Envelope{
		Sender:      from,
		Recipients:  []spool.Recipient{{Address: to, Status: spool.Pending}},
		UID:         os.Getuid(),
		User:        "bench",
		Arrival:     now,
		NextAttempt: now,
	}
	if err := d.WriteEnvelope(env); err != nil {
		return err
	}
	if _, err := d.Write(msg); err != nil {
		return err
	}
	return d.Commit()
}
