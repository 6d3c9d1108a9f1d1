// Command ceiling measures what a smarthost accepts at most: it sends N
// copies of a message over C authenticated sessions that it keeps open
// (MAIL, RCPT, DATA per message, nothing else: no RSET, no EHLO between
// messages) and prints the messages per second. bench/deliver.sh runs it
// beside `relay queue run` against the same smarthost, in the same run.
//
//	ceiling -addr 127.0.0.1:2587 -ca ca.crt -name smarthost.test \
//	        -user robot@example.test -pass-file secret -n 10000 -c 1 -msg message.eml
//
// Output, one line: "ceiling sessions=C messages=N seconds=S rate=R".
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2587", "smarthost host:port (STARTTLS)")
	ca := flag.String("ca", "", "CA certificate file")
	name := flag.String("name", "", "TLS server name")
	user := flag.String("user", "", "AUTH PLAIN user")
	passFile := flag.String("pass-file", "", "file whose first line is the password")
	n := flag.Int("n", 1000, "messages")
	c := flag.Int("c", 1, "sessions")
	msgFile := flag.String("msg", "", "the message to send")
	from := flag.String("from", "", "envelope sender (default: user)")
	to := flag.String("to", "ceiling@example.org", "recipient")
	flag.Parse()
	if err := run(*addr, *ca, *name, *user, *passFile, *msgFile, *from, *to, *n, *c); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func run(addr, caFile, name, user, passFile, msgFile, from, to string, n, c int) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no certificate", caFile)
	}
	pw, err := os.ReadFile(passFile)
	if err != nil {
		return err
	}
	pass, _, _ := strings.Cut(string(pw), "\n")
	msg, err := os.ReadFile(msgFile)
	if err != nil {
		return err
	}
	// The wire form: CRLF line ends.
	msg = bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	if from == "" {
		from = user
	}
	tcfg := &tls.Config{RootCAs: roots, ServerName: name}

	// Sessions are opened and authenticated before the clock starts: the
	// ceiling is the rate of transactions over sessions already open.
	clients := make([]*smtp.Client, c)
	for i := range clients {
		cl, err := smtp.DialStartTLS(addr, tcfg)
		if err != nil {
			return err
		}
		if err := cl.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			return err
		}
		clients[i] = cl
	}
	var wg sync.WaitGroup
	errs := make(chan error, c)
	start := time.Now()
	for i, cl := range clients {
		count := n / c
		if i < n%c {
			count++
		}
		wg.Go(func() {
			for range count {
				if err := send(cl, from, to, msg); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		return err
	}
	for _, cl := range clients {
		cl.Quit()
	}
	fmt.Printf("ceiling sessions=%d messages=%d seconds=%.3f rate=%.1f\n", c, n, elapsed.Seconds(), float64(n)/elapsed.Seconds())
	return nil
}

func send(cl *smtp.Client, from, to string, msg []byte) error {
	if err := cl.Mail(from, nil); err != nil {
		return err
	}
	if err := cl.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	if _, err := bw.Write(msg); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return w.Close()
}
