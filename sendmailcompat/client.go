package sendmailcompat

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Client is the network peer of an SMTP session, as recorded with each
// message it sends.
type Client struct {
	Addr     netip.AddrPort
	Helo     string // the name given in HELO or EHLO; "" before either
	Protocol string // "ESMTP" after EHLO, else "SMTP"; ESMTPS, ESMTPA, ESMTPSA (RFC 3848)
	User     string // the name the client authenticated as (AUTH); "" for none
}

// String is the client in log lines: [IP]:port.
func (c *Client) String() string {
	return "[" + c.Addr.Addr().String() + "]:" + strconv.Itoa(int(c.Addr.Port()))
}

// receivedField is the Received field of a message from c, as Postfix's
// smtpd writes it (without a DNS name: relay looks none up):
//
//	Received: from app.example ([127.0.0.1])
//		by host (relay) with ESMTP id 1K0WJNDJ9DXBQP5;
//		Mon, 23 Nov 2026 01:02:03 +0000
//
// An IPv6 client is an RFC 5321 address literal, [IPv6:::1]. The HELO name
// is the client's word: anything but printable ASCII, parentheses and
// semicolons is replaced with '?', and it is cut at 255 bytes.
func (c *Client) receivedField(host, id string, now time.Time, eol string) string {
	ip := c.Addr.Addr()
	lit := "[" + ip.String() + "]"
	if ip.Is6() {
		lit = "[IPv6:" + ip.String() + "]"
	}
	helo := c.Helo
	if len(helo) > 255 {
		helo = helo[:255]
	}
	helo = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' || r == '(' || r == ')' || r == ';' {
			return '?'
		}
		return r
	}, helo)
	if helo == "" {
		helo = "unknown"
	}
	proto := c.Protocol
	if proto == "" {
		proto = "SMTP"
	}
	return fmt.Sprintf("Received: from %s (%s)%s\tby %s (relay) with %s id %s;%s\t%s%s",
		helo, lit, eol, host, proto, id, eol, now.Format(time.RFC1123Z), eol)
}
