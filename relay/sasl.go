package relay

// SASL clients that go-sasl does not have (CRAM-MD5, SCRAM-SHA-256,
// XOAUTH2) or has with a gap (OAUTHBEARER: it answers the server's error
// challenge by aborting, so the server's final reply is never read).
//
// go-smtp's Client.Auth ends the exchange successfully when Next returns
// nil after a 334, without waiting for 235; every client here therefore
// answers a challenge with a non-nil response or an error.

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"
)

// cramMD5Client is AUTH CRAM-MD5 (RFC 2195): the answer to the server's
// challenge is the user name, a space and the hex HMAC-MD5 of the
// challenge keyed with the password. The password never crosses the wire,
// but the server must keep it in clear (or as CRAM-MD5's own hash).
type cramMD5Client struct {
	user, pass string
	answered   bool
}

func (c *cramMD5Client) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c *cramMD5Client) Next(challenge []byte) ([]byte, error) {
	if c.answered {
		return nil, errors.New("AUTH CRAM-MD5: unexpected second challenge")
	}
	c.answered = true
	return []byte(c.user + " " + cramMD5(c.pass, challenge)), nil
}

func cramMD5(secret string, challenge []byte) string {
	m := hmac.New(md5.New, []byte(secret))
	m.Write(challenge)
	return hex.EncodeToString(m.Sum(nil))
}

// scramClient is AUTH SCRAM-SHA-256 (RFC 5802, RFC 7677): client-first
// as the initial response, the proof for the server-first challenge, and
// the check of the server's signature in the server-final challenge,
// answered with an empty line. Valid reports whether the server proved
// that it knows the password. It is relay's own (scram.go): the library
// it replaced built its SASLprep tables at package initialisation, a
// millisecond of every sendmail run.
type scramClient struct {
	user, pass string // SASLprep'ed
	state      int    // 0 before Start, 1 client-first sent, 2 client-final sent, 3 done
	nonce      string // the client's nonce, then the server's extension of it
	first      string // client-first-message-bare
	serverSig  []byte
	valid      bool
}

func newSCRAMClient(user, pass string) (*scramClient, error) {
	u, err := saslprep(user)
	if err == nil {
		pass, err = saslprep(pass)
	}
	if err != nil {
		// SASLprep refuses the name or password (control characters…).
		return nil, errors.New("AUTH SCRAM-SHA-256: the username or password holds characters SCRAM does not allow (SASLprep)")
	}
	return &scramClient{user: u, pass: pass}, nil
}

// scramNonce replaces the random client nonce in tests (RFC 7677's
// example exchange); nil: random.
var scramNonce func() string

func (c *scramClient) Start() (string, []byte, error) {
	if c.state != 0 {
		return "", nil, errors.New("AUTH SCRAM-SHA-256: started twice")
	}
	c.state = 1
	if scramNonce != nil {
		c.nonce = scramNonce()
	} else {
		c.nonce = newSCRAMNonce()
	}
	c.first = "n=" + scramName(c.user) + ",r=" + c.nonce
	return "SCRAM-SHA-256", []byte(scramGS2Header + c.first), nil
}

func (c *scramClient) Next(challenge []byte) ([]byte, error) {
	switch c.state {
	case 1:
		c.state = 2
		final, err := c.final(string(challenge))
		if err != nil {
			return nil, fmt.Errorf("AUTH SCRAM-SHA-256: %w", err)
		}
		return []byte(final), nil
	case 2:
		c.state = 3
		if err := c.verify(string(challenge)); err != nil {
			return nil, fmt.Errorf("AUTH SCRAM-SHA-256: %w", err)
		}
		return []byte{}, nil // an empty line after the server-final message
	}
	return nil, errors.New("AUTH SCRAM-SHA-256: unexpected challenge after the server's final message")
}

// Valid reports whether the server's signature was checked and right.
func (c *scramClient) Valid() bool { return c.valid }

// tokenClient is a SASL client whose secret is an OAuth 2.0 token. After a
// failed exchange, Refusal says what the server's JSON error challenge said
// ("status 401"), "" when it sent none.
type tokenClient interface {
	sasl.Client
	Refusal() string
}

// xoauth2Client is Google's and Microsoft's AUTH XOAUTH2: the initial
// response "user=U^Aauth=Bearer T^A^A". A refused token comes back as a
// 334 with a JSON error; the client must answer it with an empty line so
// the server sends its final error reply (535 or 454).
type xoauth2Client struct {
	user, token string
	refusal     string
	answered    bool
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	if c.answered {
		return nil, errors.New("AUTH XOAUTH2: unexpected second challenge")
	}
	c.answered = true
	c.refusal = oauthRefusal(challenge)
	return []byte{}, nil
}

func (c *xoauth2Client) Refusal() string { return c.refusal }

// oauthBearerClient is AUTH OAUTHBEARER (RFC 7628): go-sasl's client for
// the initial response; its error challenge is answered with the dummy
// response %x01 (RFC 7628 3.2.3), which go-sasl's client does not do.
type oauthBearerClient struct {
	sasl.Client
	refusal  string
	answered bool
}

func newOAuthBearerClient(user, token, host string, port int) *oauthBearerClient {
	return &oauthBearerClient{Client: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: user, Token: token, Host: host, Port: port,
	})}
}

func (c *oauthBearerClient) Next(challenge []byte) ([]byte, error) {
	if c.answered {
		return nil, errors.New("AUTH OAUTHBEARER: unexpected second challenge")
	}
	c.answered = true
	c.refusal = oauthRefusal(challenge)
	return []byte{0x01}, nil
}

func (c *oauthBearerClient) Refusal() string { return c.refusal }

// oauthRefusal summarises the JSON error of RFC 7628 3.2.2 (also what
// Google and Microsoft send for XOAUTH2): `status 401, scope
// https://mail.google.com/`. The challenge holds no secret.
func oauthRefusal(challenge []byte) string {
	var e sasl.OAuthBearerError
	if json.Unmarshal(challenge, &e) != nil || e.Status == "" {
		return "no JSON error"
	}
	s := "status " + e.Status
	if e.Scope != "" {
		s += ", scope " + e.Scope
	}
	return s
}
