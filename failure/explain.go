package failure

// The explanation table: what a smarthost's answer (or a failure without
// one) means in plain words, and what to change. One place in the code,
// used by the log's hint=, relay's bounces, mailq and relay probe.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
)

// explainRule is one row of the table. Every condition that is set must
// hold; a row with none of code, enhanced, reply, err and errText set
// matches on the stage alone.
type explainRule struct {
	// stages, when set, lists the stages the row is about: a failure at
	// another stage, or of an unknown stage (""), does not match.
	stages []Stage
	// notStages lists stages the row is never about; an unknown stage
	// matches.
	notStages []Stage
	// code matches the reply code ("421"); it needs a reply.
	code *regexp.Regexp
	// enhanced matches the enhanced status code ("5.7.1"); it needs one.
	enhanced *regexp.Regexp
	// reply matches the reply text, case-insensitively; it needs a reply.
	reply *regexp.Regexp
	// err and errText match a failure without a reply: the row matches
	// when err says yes for the Go error, or errText matches its text (a
	// failure read from the spool has lost its type).
	err     func(error) bool
	errText *regexp.Regexp
	// say is the explanation: what happened and what to do.
	say string
}

func (e *explainRule) matches(f *Failure) bool {
	if len(e.stages) > 0 && !slices.Contains(e.stages, f.Stage) {
		return false
	}
	if slices.Contains(e.notStages, f.Stage) {
		return false
	}
	if e.code != nil && (f.Code == 0 || !e.code.MatchString(strconv.Itoa(f.Code))) {
		return false
	}
	if e.enhanced != nil && !e.enhanced.MatchString(f.Enhanced) {
		return false
	}
	if e.reply != nil && (f.Code == 0 || !e.reply.MatchString(f.Text)) {
		return false
	}
	if e.err != nil || e.errText != nil {
		text := f.text()
		if f.Code != 0 || text == "" {
			return false
		}
		byType := e.err != nil && f.Err != nil && e.err(f.Err)
		if !byType && !(e.errText != nil && e.errText.MatchString(text)) {
			return false
		}
	}
	return true
}

// icase is a case-insensitive regular expression.
func icase(s string) *regexp.Regexp { return regexp.MustCompile("(?i)" + s) }

// Errors recognised by their type.
func errIsErrno(errs ...syscall.Errno) func(error) bool {
	return func(err error) bool {
		for _, e := range errs {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
}

func errIsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}

// errIsDialTimeout: the TCP connection itself was not made in time.
func errIsDialTimeout(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial" && oe.Timeout()
}

func errIsDNS(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de)
}

func errIsUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func errIsHostname(err error) bool {
	var he x509.HostnameError
	return errors.As(err, &he)
}

func errIsExpired(err error) bool {
	var ci x509.CertificateInvalidError
	return errors.As(err, &ci) && ci.Reason == x509.Expired
}

func errIsNotTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh)
}

func errIsCut(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Sentences of the table that several rows give, or that are long.
const (
	sayNoGreeting = `The smarthost accepted the connection but sent no SMTP greeting. ` +
		`A port that speaks TLS from the first byte (465) needs tls = "implicit"; otherwise the server is overloaded or does not serve this address.`
	sayAppPassword = `The provider wants an app password for mail programs, not the account's normal password: ` +
		`create one in the account's security settings and put it in password_file (Google: 534 5.7.9, which needs 2-Step Verification), or log in with OAuth where relay offers it (a [smarthost.oauth] table, preset gmail).`
	sayMailboxFull = `The recipient's mailbox is full. relay keeps trying for a while; only the recipient can make room.`
	sayTooLarge    = `The message is larger than the smarthost accepts: send a smaller message (a link instead of a big attachment), ` +
		`and lower max_message_size so that relay refuses such mail when it is submitted.`
	sayQuota = `The account reached the provider's sending limit (daily quota or rate). ` +
		`relay keeps the mail and tries again later; set rate_limit for this smarthost to stay under the limit.`
	saySpam = `The smarthost refused the message as spam, for its content or the sender's reputation: ` +
		`check the message (links, attachments, subject) and the provider's sending limits.`
	sayUnknownUser = `The recipient's address does not exist at its domain: check it for typing mistakes.`
	sayBadDomain   = `The recipient's domain does not exist or accepts no mail: check the part after the @ for typing mistakes.`
)

// proxyFailed starts the text of every failure of the SOCKS proxy, as
// dialSmarthost words it: "proxy socks5://…: socks connect …".
const proxyFailed = `^proxy socks5://.*: socks connect\b`

// explainRules is the table, in order: the first row that matches gives
// the explanation.
// The table is built on first use: its patterns cost milliseconds to
// compile, and sendmail, which never explains anything, starts with this
// package.
var explainRules = sync.OnceValue(func() []explainRule {
	return []explainRule{
		// relay's own side.
		{stages: []Stage{StageLocal}, errText: icase(`^held: the configuration .* has errors`),
			say: `relay holds the mail because its configuration file has errors: run relay check, fix what it lists, then relay queue flush (a running daemon also needs systemctl reload relay).`},
		// OAuth (package oauth): the texts name the smarthost and what to run.
		{stages: []Stage{StageLocal}, errText: icase(`^OAuth .*(refused the grant|no grant yet|grant in .* is for another)`),
			say: `relay has no usable OAuth grant for this smarthost: it was never given one, or the provider revoked it or let it expire (a changed password, an administrator, 90 days unused). ` +
				`Run relay oauth login with the smarthost's name, as the reason says, as root; the waiting mail goes once it is done.`},
		{stages: []Stage{StageLocal}, errText: icase(`^OAuth .*token endpoint .*(cannot be reached|failed \(HTTP|answered )`),
			say: `relay could not get an OAuth access token: the provider's token endpoint did not answer, or failed. relay tries again by itself; ` +
				`if it lasts, check this machine's network and DNS (and the proxy), and relay oauth status for the last error. A login (relay oauth login) is needed only when the grant itself is refused.`},
		{stages: []Stage{StageLocal}, errText: icase(`^OAuth .*refused the (client|scopes)`),
			say: `The provider's token endpoint refused relay's client: client_id, client_secret_file (expired secrets are common: Microsoft's last at most two years), tenant or scopes do not match the app registration.`},
		{stages: []Stage{StageLocal}, errText: icase(`^OAuth .*(token file|client_secret_file|service_account_file)`),
			say: `relay could not use a file of its OAuth login (the token file, client_secret_file or service_account_file): it must exist and belong to, or be readable by, the user relay delivers as (the spool's owner).`},
		{stages: []Stage{StageLocal}, errText: icase(`password_command`),
			say: `relay could not get the password: password_command failed or printed nothing. Run the command by hand, as the user relay runs as, to see why.`},
		{stages: []Stage{StageLocal}, errText: icase(`password_file`),
			say: `relay could not read password_file: check the path, and that the user relay runs as may read the file.`},
		{stages: []Stage{StageLocal}, errText: icase(`tls_fingerprint: `),
			say: `tls_fingerprint is not a SHA-256 fingerprint: it must be 64 hexadecimal digits (colons allowed).`},
		{stages: []Stage{StageLocal}, errText: icase(`tls_ca_file|tls_client_cert|tls_client_key`),
			say: `A TLS file of this smarthost (tls_ca_file, tls_client_cert or tls_client_key) cannot be read or holds no PEM certificate: check its path and contents.`},

		// TLS.
		{errText: icase(`does not match tls_fingerprint`),
			say: `The smarthost's certificate is not the one pinned in tls_fingerprint: if the provider renewed its certificate, put the new one's SHA-256 in tls_fingerprint; otherwise something intercepts the connection.`},
		{err: errIsUnknownAuthority, errText: icase(`signed by unknown authority`),
			say: `The smarthost's certificate is not signed by an authority this system trusts (self-signed or a private CA). If host is the right server, set tls_ca_file to its CA certificate (or pin it with tls_fingerprint); otherwise check host.`},
		{err: errIsHostname, errText: icase(`certificate is (not )?valid for`),
			say: `The smarthost's certificate is made out to another name than the one relay connected to: set host to the name on the certificate, or tls_server_name when you connect by IP address or by another name.`},
		{err: errIsExpired, errText: icase(`certificate has expired`),
			say: `The smarthost's certificate has expired, or this machine's clock is wrong: check the date here; otherwise the provider must renew the certificate (relay keeps the mail until then).`},
		{err: errIsNotTLS, errText: icase(`first record does not look like a TLS handshake|oversized record received|unsupported SSLv2 handshake`),
			say: `relay spoke TLS from the start (tls = "implicit") but the server answered in plain text: implicit TLS is for port 465; for port 587 or 25 set tls = "starttls".`},
		{errText: icase(`does not offer STARTTLS|doesn't support STARTTLS`),
			say: `The server does not offer STARTTLS on this port, and relay never sends mail unencrypted: check the port, and set tls = "implicit" for port 465 (tls = "none" only for a server on a trusted network).`},

		// The SOCKS proxy (proxy = "socks5://…"). Before the rows about
		// reaching the smarthost: a connection to the proxy that is refused,
		// or a SOCKS reply "connection refused", is not the smarthost's port.
		// The rows after the one for "dial" are about the proxy's replies
		// (RFC 1928 section 6, as golang.org/x/net/proxy names them).
		{errText: icase(proxyFailed + `.*username/password authentication failed`),
			say: `The SOCKS proxy refused the user name or password in proxy: check the user:password part of proxy against the proxy's configuration.`},
		{errText: icase(proxyFailed + `.*no acceptable authentication methods`),
			say: `The SOCKS proxy wants a login that relay was not given: put the user name and password in proxy, as "socks5://user:password@host:port".`},
		{errText: icase(proxyFailed + `.*: dial unix .*permission denied`),
			say: `relay may not open the SOCKS proxy's unix socket: give the user relay runs as access to it (Debian's Tor: add that user to the group debian-tor), or use the proxy's TCP port.`},
		{errText: icase(proxyFailed + `.*: dial (tcp|unix)\b`),
			say: `The SOCKS proxy in proxy is not running or cannot be reached: start it (Tor: systemctl start tor) and check its address in proxy. relay never connects to the smarthost directly instead: the mail waits for the proxy.`},
		{errText: icase(proxyFailed + `.*(unexpected protocol version|non-zero reserved field|unknown address type)`),
			say: `What answers at the address in proxy does not speak SOCKS5 (an HTTP proxy, or Tor's control port 9051?): point proxy at a SOCKS5 port (Tor: its SocksPort, usually 9050).`},
		{errText: icase(proxyFailed + `.*connection not allowed by ruleset`),
			say: `The SOCKS proxy's rules forbid connecting to this host and port (with Tor, the exit relays' policy; many reject port 25): use port 587 or 465, or change the proxy's rules.`},
		{errText: icase(proxyFailed + `.*connection refused`),
			say: `The SOCKS proxy reached the smarthost's machine, but nothing accepts connections on that port: check port (587 for STARTTLS, 465 for implicit TLS); for a .onion smarthost, the hidden service has no HiddenServicePort for it, or what it points to is not running.`},
		{errText: icase(proxyFailed + `.*(host unreachable|network unreachable|TTL expired|general SOCKS server failure|unknown code)`),
			say: `The SOCKS proxy works but could not reach the smarthost: for a .onion smarthost, the hidden service is down or the name in host is wrong; otherwise check host, and that the proxy itself has network access. relay tries again later.`},
		{errText: icase(proxyFailed + `.*(i/o timeout|deadline exceeded|timed out)`),
			say: `The SOCKS proxy did not connect to the smarthost in time: with Tor, building a circuit or reaching the hidden service is slow or failing. relay tries again later.`},
		{errText: icase(proxyFailed + `.*(: (unexpected )?EOF$|connection reset|broken pipe)`),
			say: `The SOCKS proxy closed the connection before it connected to the smarthost: its log says why (a limit, its rules, or a login it wants).`},

		// What Send decides before or while it sends (send.go).
		{errText: icase(`needs SMTPUTF8`),
			say: `The address has non-ASCII characters before the @, which only a server offering SMTPUTF8 can carry, and this smarthost does not offer it: ` +
				`relay keeps the mail and tries again, so route it through a smarthost that offers SMTPUTF8, or ask for an ASCII address.`},
		{errText: icase(`took the message too slowly`),
			say: `The smarthost read the message slower than relay allows (DATA budget): the link or the server is very slow. ` +
				`relay tries again later; if it keeps happening with big messages, send them smaller or through a faster route.`},

		// Reaching the smarthost.
		{err: errIsErrno(syscall.ECONNREFUSED), errText: icase(`connection refused`),
			say: `Nothing accepts connections on this host and port: check host and port (587 for STARTTLS, 465 for implicit TLS) and that no firewall rejects them.`},
		{err: errIsDNS, errText: icase(`\blookup \S+|no such host`),
			say: `The smarthost's name could not be looked up in DNS: check host for typing mistakes, and that this machine's DNS works.`},
		{err: errIsErrno(syscall.ENETUNREACH, syscall.EHOSTUNREACH), errText: icase(`network is unreachable|no route to host`),
			say: `This machine has no network route to the smarthost: check the network connection and the firewall.`},
		{err: errIsDialTimeout, errText: icase(`^dial .*(i/o timeout|timed out)`),
			say: `The smarthost did not answer the connection attempt in time: the host is down, or a firewall drops the traffic (many networks block outgoing port 25; use 587 or 465).`},
		{stages: []Stage{StageGreeting}, err: func(err error) bool { return errIsTimeout(err) || errIsCut(err) },
			errText: icase(`i/o timeout|deadline exceeded|timed out|^EOF$|connection reset`), say: sayNoGreeting},
		{err: errIsTimeout, errText: icase(`i/o timeout|deadline exceeded|timed out`),
			say: `The smarthost stopped answering (timeout). relay tries again later; if it keeps happening, the network or the server is slow, or a firewall cuts idle connections.`},
		{err: errIsCut, errText: icase(`^(EOF|unexpected EOF)$|connection reset|broken pipe`),
			say: `The smarthost closed the connection in the middle of the session. relay tries again later; if it keeps happening, the server may be refusing this address or the message.`},

		// Logging in.
		{errText: icase(`without TLS`),
			say: `relay refuses to send the password unencrypted to a host other than this machine: use TLS, tls = "starttls" (port 587) or tls = "implicit" (port 465).`},
		{errText: icase(`does not offer AUTH`),
			say: `The server does not offer AUTH (login) here, but a username is configured: check host and port (587 or 465 usually offer it, many servers only over TLS), or remove username if the server takes mail from this machine without login.`},
		{errText: icase(`but the server does not offer|no AUTH mechanism relay supports`),
			say: `The server does not offer the AUTH mechanism relay would use: remove auth, or set it to a mechanism the server lists (relay probe shows them).`},
		// AUTH with a token (auth.go appends "(AUTH XOAUTH2: token refused…)"
		// to the reply): before the password rows, which would say "app
		// password".
		{reply: icase(`\(a valid token of relay oauth`),
			say: `The smarthost refused a valid OAuth access token (not expired) that relay got from the provider for this account. relay forgets it and asks for a new one at the next attempt, which says whether the grant was revoked. ` +
				`If new tokens are refused too: SMTP AUTH is off for the mailbox or the tenant (Microsoft 365: Authenticated SMTP in the mailbox's mail apps, Set-CASMailbox -SmtpClientAuthenticationDisabled $false), ` +
				`the app lacks the permission (SMTP.Send, or SMTP.SendAsApp with the service principal allowed on the mailbox), or username is not the mailbox the grant is for. Fix that, then relay oauth login with the smarthost's name.`},
		{reply: icase(`\(AUTH (XOAUTH2|OAUTHBEARER): token refused`),
			say: `The smarthost refused the OAuth access token: password_command must print a current access token for this account (not the refresh token, not the password), with the scope for mail (Gmail: https://mail.google.com/, Outlook: https://outlook.office.com/SMTP.Send). Run the command by hand to see what it prints; relay runs it again for each connection.`},
		{enhanced: icase(`^5\.7\.139$`),
			say: `Microsoft refuses SMTP AUTH for this mailbox or tenant (5.7.139: SMTP client authentication is disabled, or security defaults block it): an administrator must enable Authenticated SMTP for the mailbox, and relay should log in with OAuth (preset office365 or outlook, [smarthost.oauth]).`},
		{code: icase(`^550$`), enhanced: icase(`^5\.7\.30$`),
			say: `Microsoft no longer accepts a password here (basic authentication is off for SMTP): log in with OAuth instead, a [smarthost.oauth] table (preset office365 or outlook) and relay oauth login with the smarthost's name.`},
		{code: icase(`^535$`), enhanced: icase(`^5\.7\.3$`),
			say: `Microsoft refused the login (535 5.7.3): for a password, basic authentication is off for the tenant or account (personal accounts since September 2024, Exchange Online by the end of 2026), or SMTP AUTH is disabled for the mailbox. ` +
				`Log in with OAuth: a [smarthost.oauth] table (preset office365 or outlook) and relay oauth login with the smarthost's name.`},
		{reply: icase(`SendAsDenied|5\.2\.252`),
			say: `Microsoft 365 refuses to send as this sender (SendAsDenied): the mailbox relay logs in as has no Send As right for the address. Send as the login's own address (envelope_from, and from_header = "rewrite" in [rewrite]), or have an administrator grant Send As on that address.`},
		{code: icase(`^535$`), enhanced: icase(`^5\.7\.8$`), reply: icase(`username and password not accepted`),
			say: `Google refused the username and password (535 5.7.8): Gmail and Google Workspace take an app password (made in the Google account's security settings, which needs 2-Step Verification) in password_file, never the account's password; or log in with OAuth: a [smarthost.oauth] table with provider "google" and relay oauth login.`},
		{errText: icase(`SCRAM-SHA-256: .*characters SCRAM does not allow`),
			say: `The username or password holds characters SCRAM-SHA-256 cannot use (SASLprep refuses control characters and some others): set auth = "plain" to log in with PLAIN over TLS.`},
		{errText: icase(`AUTH SCRAM-SHA-256: .*(without proving|server validation failed|server error|nonce|iterations|unexpected challenge)`),
			say: `The smarthost's SCRAM-SHA-256 login did not check out: the server did not prove that it knows the password, or broke the protocol. Check that host and the TLS settings reach the real server; if its SCRAM support is broken, set auth = "plain" to log in with PLAIN over TLS.`},
		{code: icase(`^534$`), say: sayAppPassword},
		{reply: icase(`application[- ]specific password|app(lication)? password`), say: sayAppPassword},
		{reply: icase(`does not have access rights|\bEULA\b|accept .*(terms|agreement)|not allowed to use (smtp|this service)|smtp (access )?(is )?disabled`),
			say: `The account may not send through SMTP yet: log in to the provider's web mail once, accept its terms and allow mail programs in the settings (Yandex: Mail clients), then use an app password.`},
		{code: icase(`^535$`),
			say: `The smarthost refused the username or password: check username and password_file (or password_command). Gmail, Yandex and mail.ru need an app password here, not the account's normal password.`},
		{stages: []Stage{StageAuth}, code: icase(`^454$`),
			say: `The smarthost's login service failed for a moment (temporary authentication failure): relay tries again later by itself.`},

		// Refused before the transaction.
		{stages: []Stage{StageGreeting, StageEHLO}, code: icase(`^5`),
			say: `The smarthost refuses to talk to this machine: check host and port (a mail submission port such as 587 or 465), and whether the provider blocks this machine's address.`},

		// The sender.
		{reply: icase(`not owned by (auth |authenticated )?user|not allowed to send as|SendAsDenied|sender .*(does not|doesn't) match .*(login|auth)`),
			say: `The provider accepts only the login's own address as envelope sender: set envelope_from to it, or map senders to it with sender_map in [rewrite].`},
		{reply: icase(`relay(ing)? (access )?(is )?(denied|not permitted|prohibited)|not permitted to relay|unable to relay|relay not (permitted|allowed)`),
			say: `The smarthost does not relay mail for this account: relay is not logged in (set username and a password), or host is not the outgoing server of this account.`},
		{reply: icase(`\bDMARC\b|\bSPF\b|\bDKIM\b|unauthenticated (e-?mail|sender)`),
			say: `The message was refused because the sender's domain does not authorise this server (SPF, DKIM or DMARC): send from an address of the login's own domain (envelope_from and the From header).`},

		// The recipient's mailbox and the message.
		{enhanced: icase(`^[45]\.2\.2$`), say: sayMailboxFull},
		{notStages: []Stage{StageGreeting, StageEHLO, StageAuth, StageMail}, reply: icase(`mailbox (is )?full|over quota|insufficient (storage|space)`), say: sayMailboxFull},
		{enhanced: icase(`^[45]\.(3\.4|2\.3)$`), say: sayTooLarge},
		{reply: icase(`\bsize\b.*\b(exceed|limit|maximum|too)|exceeds .*\bsize\b|(message|mail) (is )?too (big|large)`), say: sayTooLarge},
		{notStages: []Stage{StageRcpt, StageGreeting, StageEHLO, StageAuth}, code: icase(`^552$`), say: sayTooLarge},
		{reply: icase(`quota|limit (is )?exceeded|exceeded .*limit|too many (messages|mails|e-?mails)|rate ?limit|sending limit`), say: sayQuota},
		{reply: icase(`spam|unsolicited|junk|black ?list|block ?list|reputation|suspicio`), say: saySpam},
		// 554 5.7.1 to the message (or a stored reason, whose stage is unknown).
		{notStages: []Stage{StageConnect, StageTLS, StageGreeting, StageEHLO, StageAuth, StageMail, StageRcpt, StageLocal},
			code: icase(`^554$`), enhanced: icase(`^5\.7\.1$`), say: saySpam},
		{enhanced: icase(`^5\.1\.1$`), say: sayUnknownUser},
		{reply: icase(`user unknown|unknown (user|recipient)|no such (user|mailbox|recipient)|(mailbox|recipient) not found|(user|address|mailbox|recipient) does not exist`), say: sayUnknownUser},
		{enhanced: icase(`^5\.1\.2$`), say: sayBadDomain},
		{reply: icase(`domain (not found|does not exist)|host (or domain name )?not found`), say: sayBadDomain},

		// Come back later.
		{reply: icase(`gr[ae]y-?list`),
			say: `The server delays mail from senders it does not know yet (greylisting): relay tries again later by itself, and that attempt usually passes.`},
		{code: icase(`^421$`),
			say: `The smarthost is busy or closing the connection (421, often too many connections at once): relay tries again later by itself; if it keeps happening, lower max_connections in [queue].`},
	}
})

// Explain says in plain words what a failure means and how to fix it, in
// one or two sentences; "" when the table has nothing to say.
func Explain(f *Failure) string {
	if f == nil {
		return ""
	}
	if f.Cause != nil {
		// A smarthost remembered as down: explain why it went down.
		return Explain(f.Cause)
	}
	rules := explainRules()
	for i := range rules {
		if rules[i].matches(f) {
			return rules[i].say
		}
	}
	return ""
}
