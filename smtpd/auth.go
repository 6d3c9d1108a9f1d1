package smtpd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"time"
)

// STARTTLS and AUTH, for the daemon's listener when [daemon] listen_tls
// and listen_users are set (Server.TLS, Server.Auth). The rules:
//
//   - STARTTLS (RFC 3207) is offered while the session is in clear. Commands
//     the client pipelined after it are discarded unread (they were sent in
//     clear: the injection of CVE-2011-0411), and everything the session
//     knew is forgotten: the client says EHLO again.
//   - AUTH PLAIN and LOGIN (RFC 4954) are offered only after STARTTLS.
//     Before it, AUTH is answered 538 5.7.11 "Encryption required", and the
//     password, if the client sent one with the command, is not looked at.
//   - A refused AUTH waits AuthFailureDelay (2 s, as Dovecot's
//     auth_failure_delay) before "535 5.7.8 Error: authentication failed",
//     so that a client guesses at most one password every two seconds per
//     session; after MaxAuthFailures (3) refusals the session ends with
//     "421 4.7.0". The listener also counts failures per client address
//     across sessions (package listener).
//   - After a successful AUTH (235 2.7.0) a second one is 503; an AUTH
//     inside a transaction is 503. The user is recorded in the Received
//     field (with ESMTPSA, RFC 3848) and the log line (sasl_username=).

// Defaults of the AUTH failure rules.
const (
	DefaultAuthFailureDelay = 2 * time.Second
	DefaultMaxAuthFailures  = 3
)

// tlsHandshakeTimeout bounds the TLS handshake after STARTTLS.
const tlsHandshakeTimeout = 30 * time.Second

// offered lists STARTTLS and AUTH for HELP when they are offered now.
func (c *session) offered() string {
	var s string
	if c.srv.TLS != nil && !c.encrypted {
		s += "STARTTLS "
	}
	if c.srv.Auth != nil && c.encrypted {
		s += "AUTH "
	}
	return s
}

func (c *session) startTLS(arg string) error {
	switch {
	case c.srv.TLS == nil:
		c.protocolError(502, "5.5.1", "Error: command not implemented")
		return nil
	case c.encrypted:
		c.protocolError(503, "5.5.1", "Error: TLS already active")
		return nil
	case arg != "":
		c.protocolError(501, "5.5.4", "Syntax: STARTTLS")
		return nil
	}
	c.reply(220, "2.0.0", "Ready to start TLS")
	if err := c.w.Flush(); err != nil {
		return err
	}
	// Whatever the client sent after STARTTLS in clear is dropped: the
	// new reader starts at the handshake. A client that pipelined
	// commands after STARTTLS is broken or an attacker's injection.
	if n, ok := c.conn.(interface{ StartingTLS() }); ok {
		// The listener's connection writes its own 421 at a stop: not
		// into a TLS stream.
		n.StartingTLS()
	}
	tc := tls.Server(c.conn, c.srv.TLS)
	c.conn.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	err := tc.Handshake()
	c.conn.SetDeadline(time.Time{})
	if err != nil {
		// Nothing more can be said to the client: its TLS failed.
		return errQuit
	}
	c.conn = tc
	c.r = bufio.NewReaderSize(deadlineReader{tc, c.timeout}, 64<<10)
	c.w = bufio.NewWriter(deadlineWriter{tc, c.timeout})
	c.encrypted = true
	c.helo, c.tx = "", nil
	if c.client != nil {
		c.client.Helo = ""
	}
	return nil
}

func (c *session) auth(arg string) error {
	mech, initial, _ := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	switch {
	case c.srv.Auth == nil:
		c.protocolError(502, "5.5.1", "Error: command not implemented")
		return nil
	case !c.encrypted:
		c.protocolError(538, "5.7.11", "Encryption required for requested authentication mechanism (use STARTTLS first)")
		return nil
	case c.user != "":
		c.protocolError(503, "5.5.1", "Error: already authenticated")
		return nil
	case c.tx != nil:
		c.protocolError(503, "5.5.1", "Error: MAIL transaction in progress")
		return nil
	case mech == "":
		c.protocolError(501, "5.5.4", "Syntax: AUTH mechanism")
		return nil
	}
	var user, pass string
	switch mech {
	case "PLAIN":
		resp, ok, err := c.authResponse(initial, "")
		if err != nil || !ok {
			return err
		}
		// authzid NUL authcid NUL password; an authzid other than the
		// user is refused (there are no proxy users).
		parts := bytes.Split(resp, []byte{0})
		if len(parts) != 3 || len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
			return c.authFailed("")
		}
		user, pass = string(parts[1]), string(parts[2])
	case "LOGIN":
		u, ok, err := c.authResponse(initial, "VXNlcm5hbWU6") // "Username:"
		if err != nil || !ok {
			return err
		}
		p, ok, err := c.authResponse("", "UGFzc3dvcmQ6") // "Password:"
		if err != nil || !ok {
			return err
		}
		user, pass = string(u), string(p)
	default:
		c.protocolError(504, "5.5.4", "Unrecognized authentication type (use PLAIN or LOGIN)")
		return nil
	}
	if user == "" || !c.srv.Auth(user, pass) {
		return c.authFailed(user)
	}
	c.user = user
	if c.client != nil {
		c.client.User = user
	}
	c.reply(235, "2.7.0", "Authentication successful")
	return nil
}

// authResponse returns the decoded initial response when the client gave
// one ("=" is an empty one), else asks with a 334 challenge and reads the
// answer. ok is false when the exchange was answered already (cancelled,
// undecodable); err ends the session.
func (c *session) authResponse(initial, challenge string) (resp []byte, ok bool, err error) {
	line := initial
	if line == "" {
		c.reply(334, "", challenge)
		b, err := c.readCommand()
		if err != nil {
			return nil, false, c.readFailed(err)
		}
		if b == nil { // too long: answered
			return nil, false, nil
		}
		line = string(b)
	}
	switch line {
	case "*":
		c.protocolError(501, "5.7.0", "Authentication aborted")
		return nil, false, nil
	case "=":
		return []byte{}, true, nil
	}
	resp, derr := base64.StdEncoding.DecodeString(line)
	if derr != nil {
		c.protocolError(501, "5.5.2", "Error: cannot decode response")
		return nil, false, nil
	}
	return resp, true, nil
}

// authFailed answers a refused AUTH after the delay, and ends the session
// after too many.
func (c *session) authFailed(user string) error {
	c.authFailures++
	delay := c.srv.AuthFailureDelay
	if delay <= 0 {
		delay = DefaultAuthFailureDelay
	}
	limit := c.srv.MaxAuthFailures
	if limit <= 0 {
		limit = DefaultMaxAuthFailures
	}
	if c.client != nil {
		kv := []string{"client", c.client.String(), "status", "auth-failed"}
		if user != "" {
			kv = append(kv, "sasl_username", user)
		}
		c.s.Log.Warning(kv...)
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	time.Sleep(delay)
	c.reply(535, "5.7.8", "Error: authentication failed")
	if c.authFailures >= limit {
		c.reply(421, "4.7.0", c.host+" Error: too many failed authentications")
		return errQuit
	}
	return nil
}
