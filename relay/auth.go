package relay

// AUTH: which mechanism, the fallback to PLAIN, and what a failure says.
//
// Without auth in the configuration, relay takes the strongest password
// mechanism both sides offer: SCRAM-SHA-256 (the server proves it knows
// the password too), CRAM-MD5, PLAIN, LOGIN. XOAUTH2 and OAUTHBEARER are
// used only when auth names them: their secret is an OAuth token, not a
// password. A named mechanism the server does not offer is an error; relay
// never silently picks another.
//
// A server that offers CRAM-MD5 or SCRAM but stores hashed passwords
// cannot check them and refuses every login with them. So when the
// automatically chosen challenge-response mechanism is refused (any reply
// but 421), relay tries PLAIN (LOGIN when PLAIN is not offered) on the same
// connection, but only over TLS: the point of a challenge-response
// mechanism is that the password never crosses the wire, and it must not
// then cross it in clear. A mechanism named in auth is never replaced.
//
// Servers keep the session after a refused AUTH (RFC 4954 4: the client
// may try again), but go-smtp's client answers every refusal with a "*"
// line, and Postfix (3.x, smtpd_forbidden_commands) drops a session on such
// a "non-SMTP command". So when the session is gone, the fallback runs on
// a new connection: Dial dials again (errAuthRedial). A 421 is a closing
// server, not a refusal: no fallback.
//
// The process remembers the fallback for the smarthost (host, port,
// username): its next connections start with that mechanism, so they
// neither pay for a refusal each (Dovecot delays every failed login by
// 2 s) nor need a second connection. A daemon keeps that memory until it
// restarts; it is never written down.
//
// The secret is read once per connection (password_file, password_command:
// tokens expire) and used for the fallback too.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/emersion/go-sasl"
	"github.com/relaymail/relay/config"
)

// passwordMechanisms are the mechanisms relay chooses from by itself,
// strongest first.
var passwordMechanisms = []string{"SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"}

// challengeResponse reports whether the password stays off the wire with
// mech (and so the server needs it in clear or in the mechanism's hash).
func challengeResponse(mech string) bool {
	return mech == "SCRAM-SHA-256" || mech == "CRAM-MD5"
}

// tokenMechanism reports whether mech's secret is an OAuth token.
func tokenMechanism(mech string) bool {
	return mech == "XOAUTH2" || mech == "OAUTHBEARER"
}

// chooseMechanism picks the mechanism named by auth, or else the strongest
// password mechanism the server offers.
func chooseMechanism(auth string, offered func(string) bool) (string, error) {
	if auth != "" {
		mech := strings.ToUpper(auth)
		if !offered(mech) {
			return "", fmt.Errorf("auth = %q, but the server does not offer %s", auth, mech)
		}
		return mech, nil
	}
	for _, m := range passwordMechanisms {
		if offered(m) {
			return m, nil
		}
	}
	return "", errors.New("the server offers no AUTH mechanism relay supports (SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN; XOAUTH2 and OAUTHBEARER when auth names them)")
}

// fallbackMechanism is the mechanism to try after first failed with f, or
// "" for none (see the file comment).
func fallbackMechanism(auth, first string, f *Failure, tls bool, offered func(string) bool) string {
	if auth != "" || !challengeResponse(first) || !tls || f.Code == 0 || f.Code == 421 {
		return ""
	}
	for _, m := range []string{"PLAIN", "LOGIN"} {
		if offered(m) {
			return m
		}
	}
	return ""
}

// errAuthRedial marks (as the Err of a Failure with a reply) an AUTH
// failure whose fallback needs a new connection: the server closed the
// session after refusing a challenge-response mechanism.
var errAuthRedial = errors.New("the fallback to PLAIN needs a new connection")

// fallbacks remembers, per smarthost, the mechanism to start with after a
// challenge-response mechanism was refused: "host:port user" → "PLAIN".
var fallbacks sync.Map

func fallbackKey(sh *config.Smarthost) string {
	return fmt.Sprintf("%s:%d %s", strings.ToLower(sh.Host), sh.Port, sh.Username)
}

func saslClient(mech string, sh *config.Smarthost, secret string) (sasl.Client, error) {
	user := sh.Username
	switch mech {
	case "PLAIN":
		return sasl.NewPlainClient("", user, secret), nil
	case "LOGIN":
		return &loginClient{user: user, pass: secret}, nil
	case "CRAM-MD5":
		return &cramMD5Client{user: user, pass: secret}, nil
	case "SCRAM-SHA-256":
		return newSCRAMClient(user, secret)
	case "XOAUTH2":
		return &xoauth2Client{user: user, token: secret}, nil
	case "OAUTHBEARER":
		return newOAuthBearerClient(user, secret, sh.Host, sh.Port), nil
	}
	return nil, fmt.Errorf("AUTH %s is not supported", mech)
}

// authenticate logs in on c: refuses to send a secret without TLS to
// anything but a loopback peer, chooses the mechanism, reads the secret,
// and falls back to PLAIN as the file comment says. tried lists the
// mechanisms tried, in order, also when it fails. Every error is a
// *Failure.
func (c *Conn) authenticate(ctx context.Context, peer net.Addr) (tried []string, err error) {
	sh := c.Host
	switch {
	case c.TLS == "" && sh.Proxy != "":
		return nil, &Failure{Stage: StageAuth, Err: fmt.Errorf("refusing to send the password of %s without TLS to %s via %s (through a proxy a password needs TLS)",
			sh.Username, net.JoinHostPort(sh.Host, fmt.Sprint(sh.Port)), config.MaskProxy(sh.Proxy))}
	case c.TLS == "" && !isLoopback(peer):
		return nil, &Failure{Stage: StageAuth, Err: fmt.Errorf("refusing to send the password of %s without TLS to %s (only loopback peers may be authenticated in clear)", sh.Username, peer)}
	}
	if ok, _ := c.client.Extension("AUTH"); !ok {
		return nil, &Failure{Stage: StageAuth, Err: errors.New("the server does not offer AUTH, but a username is configured")}
	}
	if sh.UsesOAuth() {
		return c.authenticateOAuth(ctx) // oauth.go
	}
	mech, err := chooseMechanism(sh.Auth, c.client.SupportsAuth)
	if err != nil {
		return nil, &Failure{Stage: StageAuth, Err: err}
	}
	if m, ok := fallbacks.Load(fallbackKey(sh)); ok && sh.Auth == "" && c.TLS != "" && c.client.SupportsAuth(m.(string)) {
		mech = m.(string)
	}
	secret, err := password(ctx, sh)
	if err != nil {
		return nil, &Failure{Stage: StageLocal, Err: err}
	}
	tried = []string{mech}
	f := c.authWith(mech, secret)
	if f == nil {
		return tried, nil
	}
	if fb := fallbackMechanism(sh.Auth, mech, f, c.TLS != "", c.client.SupportsAuth); fb != "" {
		tried = append(tried, fb)
		f2 := c.authWith(fb, secret)
		if f2 == nil {
			fallbacks.Store(fallbackKey(sh), fb)
			return tried, nil
		}
		if f2.Code == 0 && f2.Stage == StageAuth {
			// The server dropped the session after the refusal: the
			// next connection starts with fb (Dial makes it at once).
			// Should that fail to come about, the answer to the first
			// mechanism is the one that explains.
			fallbacks.Store(fallbackKey(sh), fb)
			f.Text += fmt.Sprintf(" (AUTH %s was refused; %s could not be tried: %v)", mech, fb, f2.Err)
			f.Err = errAuthRedial
		} else {
			f = f2
			if f.Code > 0 {
				f.Text += fmt.Sprintf(" (AUTH %s was refused, then %s)", mech, fb)
			}
		}
	}
	return tried, f
}

// authWith runs one AUTH exchange with mech; nil when the server answered
// 235 (and, with SCRAM, proved that it knows the password).
func (c *Conn) authWith(mech, secret string) *Failure {
	sc, err := saslClient(mech, c.Host, secret)
	if err != nil {
		return &Failure{Stage: StageAuth, Err: err}
	}
	if err := c.client.Auth(sc); err != nil {
		f := failure(StageAuth, err)
		if f.Code == 0 {
			if !strings.HasPrefix(err.Error(), "AUTH ") {
				f.Err = fmt.Errorf("AUTH %s: %w", mech, err)
			}
			return f
		}
		if tc, ok := sc.(tokenClient); ok && f.Code/100 == 5 {
			// The explanation of a refused token differs from that of a
			// wrong password (explain.go looks for this).
			why := "token refused"
			if r := tc.Refusal(); r != "" {
				why += ", " + r
			}
			f.Text += fmt.Sprintf(" (AUTH %s: %s)", mech, why)
		}
		return f
	}
	if s, ok := sc.(*scramClient); ok && !s.Valid() {
		return &Failure{Stage: StageAuth, Err: errors.New("AUTH SCRAM-SHA-256: the server accepted the login without proving that it knows the password (no valid server signature)")}
	}
	return nil
}

// loginClient is AUTH LOGIN that answers the first challenge with the user
// name and the second with the password, whatever their text: servers send
// "Username:", "User Name", "VXNlcm5hbWU6" decoded or localised prompts, and
// go-sasl's client accepts only the exact "Password:".
type loginClient struct {
	user, pass string
	step       int
}

func (c *loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (c *loginClient) Next(challenge []byte) ([]byte, error) {
	c.step++
	switch c.step {
	case 1:
		return []byte(c.user), nil
	case 2:
		return []byte(c.pass), nil
	}
	// A third challenge: answering nil would make go-smtp report success
	// without a 235, so fail the exchange instead.
	return nil, errors.New("AUTH LOGIN: unexpected third challenge")
}
