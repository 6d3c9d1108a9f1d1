package smtpd

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/sysexits"
)

// data reads a message and queues it. The 250 goes out only after Enqueue
// returned: the message is then durable.
func (c *session) data(arg string) error {
	switch {
	case arg != "":
		c.protocolError(501, "5.5.4", "Syntax: DATA")
		return nil
	case c.tx == nil:
		c.protocolError(503, "5.5.1", "Error: need MAIL command")
		return nil
	case len(c.tx.rcpts) == 0:
		c.protocolError(503, "5.5.1", "Error: need RCPT command")
		return nil
	}
	tx := c.tx
	c.tx = nil
	c.reply(354, "", "End data with <CR><LF>.<CR><LF>")
	if err := c.w.Flush(); err != nil {
		return err
	}
	// One transaction, one Submission, one Enqueue.
	m := sendmailcompat.Submission{
		SenderSet:  true,
		Sender:     tx.from,
		Recipients: tx.rcpts,
		IgnoreDots: true, // the end of DATA is the dotReader's EOF
		FullName:   c.srv.FullName,
		Notify:     mergeNotify(tx.notify),
		Ret:        tx.ret,
		EnvID:      tx.envID,
		Body:       tx.body,
	}
	if c.client != nil {
		cl := *c.client // the HELO name may change for the next message
		if cl.Protocol == "ESMTP" {
			// RFC 3848: ESMTPS over TLS, ESMTPA authenticated, ESMTPSA both.
			if c.encrypted {
				cl.Protocol += "S"
			}
			if c.user != "" {
				cl.Protocol += "A"
			}
		}
		m.Client = &cl
	}
	dr := &dotReader{r: c.r, atLineStart: true}
	receipt, err := c.s.Enqueue(m, dr)
	if err == nil {
		// Queued, even if a recipient has nowhere to go (it bounces;
		// RCPT refuses those it can see). Enqueue read to the end; make
		// sure of it all the same.
		io.Copy(io.Discard, dr)
		if dr.err == nil {
			c.reply(250, "2.0.0", "Ok: queued as "+receipt.ID)
			if c.srv.Queued != nil {
				c.srv.Queued()
			}
			return nil
		}
	} else if dr.err == nil {
		io.Copy(io.Discard, dr) // the rest of a refused message
	}
	if dr.err != nil {
		// The client went away or fell silent during DATA: nothing was
		// queued (Enqueue leaves nothing behind on error).
		return c.readFailed(dr.err)
	}
	code, enh, text := c.enqueueReply(err, dr.n)
	c.reply(code, enh, text)
	return nil
}

// enqueueReply maps an error of Enqueue to a reply. Only what the client
// can fix is permanent; relay's own failures are 451, never 5xx.
func (c *session) enqueueReply(err error, n int64) (int, string, string) {
	switch sysexits.Code(err, sysexits.TempFail) {
	case sysexits.DataErr:
		if c.s.MaxMessageSize > 0 && n > c.s.MaxMessageSize {
			return 552, "5.3.4", fmt.Sprintf("Message size exceeds fixed limit of %d bytes", c.s.MaxMessageSize)
		}
		if errors.Is(err, sendmailcompat.ErrHeaderTooLarge) {
			limit := c.s.HeaderSizeLimit
			if limit <= 0 {
				limit = sendmailcompat.DefaultHeaderSizeLimit
			}
			return 552, "5.3.4", fmt.Sprintf("Message header size exceeds fixed limit of %d bytes", limit)
		}
		if errors.Is(err, sendmailcompat.ErrUnsendableHeader) {
			return 554, "5.6.0", "Error: " + err.Error()
		}
	case sysexits.Usage:
		// Addresses are checked at MAIL and RCPT; this is a safety net.
		return 553, "5.1.3", "Error: " + err.Error()
	}
	return 451, "4.3.0", "Error: queue file write error: " + err.Error()
}

// dotReader yields the message of DATA: up to the line holding a lone dot
// (CRLF or, leniently, LF), with the leading dot of dot-stuffed lines
// removed. Line ends are kept as sent; lines of any length pass. err keeps
// the first I/O error of the connection: the message is then incomplete.
type dotReader struct {
	r           *bufio.Reader
	pending     []byte
	atLineStart bool
	done        bool
	err         error
	n           int64 // bytes yielded
}

func (d *dotReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		switch {
		case d.done:
			return 0, io.EOF
		case d.err != nil:
			return 0, d.err
		}
		line, err := d.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil // a long line: the rest comes with the next slice
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			d.err = err
			return 0, err
		}
		if d.atLineStart && len(line) > 0 && line[0] == '.' {
			if string(line) == ".\r\n" || string(line) == ".\n" {
				d.done = true
				return 0, io.EOF
			}
			line = line[1:]
		}
		d.atLineStart = line[len(line)-1] == '\n'
		d.pending = line
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	d.n += int64(n)
	return n, nil
}
