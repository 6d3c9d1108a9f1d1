package smtpd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/sysexits"
)

// The commands that describe a transaction: HELO/EHLO, MAIL and RCPT.
// Each checks what it can as Enqueue will (through the Submitter's Check
// methods), so that a client hears of a bad address at the command that
// gave it, not after sending the whole message.

func (c *session) hello(arg string, extended bool) {
	name, _, _ := strings.Cut(arg, " ")
	if name == "" {
		if extended {
			c.protocolError(501, "5.5.4", "Syntax: EHLO hostname")
		} else {
			c.protocolError(501, "5.5.4", "Syntax: HELO hostname")
		}
		return
	}
	c.helo = name
	c.tx = nil
	if c.client != nil {
		c.client.Helo = name
		c.client.Protocol = "SMTP"
		if extended {
			c.client.Protocol = "ESMTP"
		}
	}
	if !extended {
		c.reply(250, "", c.host)
		return
	}
	size := "SIZE"
	if c.s.MaxMessageSize > 0 {
		size += " " + strconv.FormatInt(c.s.MaxMessageSize, 10)
	}
	ext := []string{c.host, "PIPELINING", size}
	if c.srv.TLS != nil && !c.encrypted {
		ext = append(ext, "STARTTLS")
	}
	if c.srv.Auth != nil && c.encrypted {
		// Offered only over TLS: a password never crosses the network in
		// clear (RFC 4954 section 4; Postfix's smtpd_tls_auth_only).
		ext = append(ext, "AUTH PLAIN LOGIN")
	}
	c.reply(250, "", append(ext, "8BITMIME", "DSN", "ENHANCEDSTATUSCODES")...)
}

func (c *session) mail(arg string) {
	if c.tx != nil {
		c.protocolError(503, "5.5.1", "Error: nested MAIL command")
		return
	}
	if c.srv.AuthRequired && c.user == "" {
		// A client admitted only with credentials (listen_auth_networks).
		if c.encrypted || c.srv.TLS == nil {
			c.protocolError(530, "5.7.0", "Authentication required")
		} else {
			c.protocolError(530, "5.7.0", "Must issue a STARTTLS command first")
		}
		return
	}
	path, params, ok := cutPath(arg, "FROM:")
	if !ok {
		c.protocolError(501, "5.5.4", "Syntax: MAIL FROM:<address>")
		return
	}
	// The sender as Enqueue will take it; sender_login_map applies to a
	// local user (-bs), not to a network client.
	_, err := c.s.CheckSender(&sendmailcompat.Submission{Sender: path, SenderSet: true, Client: c.client})
	switch {
	case path != "" && (sysexits.Code(err, 0) == sysexits.Usage || !exactAddress(path)):
		c.protocolError(501, "5.1.7", "Bad sender address syntax")
		return
	case err != nil:
		c.reply(553, "5.7.1", "Sender address rejected: "+err.Error())
		return
	}
	tx := &transaction{from: path}
	parsed, ok := c.esmtpParams(params)
	if !ok {
		return
	}
	for _, p := range parsed {
		key, val, hasVal := p.key, p.val, p.hasVal
		switch {
		case key == "SIZE" && hasVal:
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				c.protocolError(501, "5.5.4", "Bad SIZE parameter")
				return
			}
			if c.s.MaxMessageSize > 0 && n > c.s.MaxMessageSize {
				c.reply(552, "5.3.4", fmt.Sprintf("Message size exceeds fixed limit of %d bytes", c.s.MaxMessageSize))
				return
			}
		case key == "BODY" && hasVal:
			switch v := strings.ToUpper(val); v {
			case "7BIT", "8BITMIME":
				tx.body = v
			default:
				c.protocolError(501, "5.5.4", "Unsupported BODY parameter (use 7BIT or 8BITMIME)")
				return
			}
		case key == "RET" && hasVal:
			switch v := strings.ToUpper(val); v {
			case "FULL", "HDRS":
				tx.ret = v
			default:
				c.protocolError(501, "5.5.4", "Bad RET parameter (use FULL or HDRS)")
				return
			}
		case key == "ENVID" && hasVal:
			v, err := decodeXtext(val)
			if err != nil || !sendmailcompat.ValidEnvID(v) {
				c.protocolError(501, "5.5.4", "Bad ENVID parameter")
				return
			}
			tx.envID = v
		case key == "AUTH" && hasVal:
			// RFC 4954: accepted and ignored (relay is the first hop; an
			// authenticated client's identity is its AUTH, not this).
		default:
			c.protocolError(555, "5.5.4", "Unsupported option: "+p.raw)
			return
		}
	}
	if err := c.s.CheckFreeSpace(); err != nil {
		c.reply(452, "4.3.1", "Insufficient system storage: "+err.Error())
		return
	}
	c.tx = tx
	c.reply(250, "2.1.0", "Ok")
}

func (c *session) rcpt(arg string) {
	if c.tx == nil {
		c.protocolError(503, "5.5.1", "Error: need MAIL command")
		return
	}
	path, params, ok := cutPath(arg, "TO:")
	if !ok {
		c.protocolError(501, "5.5.4", "Syntax: RCPT TO:<address>")
		return
	}
	if strings.HasPrefix(path, "-") {
		c.protocolError(501, "5.1.3", "Bad recipient address: begins with '-'")
		return
	}
	// Refused here rather than bounced later: a recipient with nowhere to
	// go (an alias to a command or a file) is the client's to fix.
	err := c.s.CheckRecipient(path)
	switch {
	case sysexits.Code(err, 0) == sysexits.Usage || !exactAddress(path):
		c.protocolError(501, "5.1.3", "Bad recipient address syntax")
		return
	case err != nil:
		c.reply(550, "5.1.1", "Recipient address rejected: "+err.Error())
		return
	}
	var notify []string
	parsed, ok := c.esmtpParams(params)
	if !ok {
		return
	}
	for _, p := range parsed {
		key, val, hasVal := p.key, p.val, p.hasVal
		switch {
		case key == "NOTIFY" && hasVal:
			n, err := sendmailcompat.ParseNotify(val)
			if err != nil {
				c.protocolError(501, "5.5.4", "Bad NOTIFY parameter (use NEVER, or some of SUCCESS, DELAY, FAILURE)")
				return
			}
			notify = n
		case key == "ORCPT" && hasVal:
			// Accepted; the queue keeps no original recipient of its own.
			typ, _, ok := strings.Cut(val, ";")
			if !ok || typ == "" {
				c.protocolError(501, "5.5.4", "Bad ORCPT parameter")
				return
			}
		default:
			c.protocolError(555, "5.5.4", "Unsupported option: "+p.raw)
			return
		}
	}
	if len(c.tx.rcpts) >= maxRecipients {
		c.reply(452, "4.5.3", "Error: too many recipients")
		return
	}
	c.tx.rcpts = append(c.tx.rcpts, path)
	c.tx.notify = append(c.tx.notify, notify)
	c.reply(250, "2.1.5", "Ok")
}
