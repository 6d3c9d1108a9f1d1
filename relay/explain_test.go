package relay_test

// The explanation table (explain.go), row by row, through the real
// delivery path: a scripted server gives the answer, the runner delivers,
// and the test reads the sentence where a person meets it — the log line's
// hint= and, for a permanent failure, the bounce's human-readable part.
// Each case checks a phrase that only its row says.

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/failure"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
)

// lastLine returns the status and hint= of the last log line about
// addr.
func (h *harness) lastLine(addr string) (line, status, hint string) {
	h.t.Helper()
	l := h.logLines(addr)
	if len(l) == 0 {
		h.t.Fatalf("no log line about %s:\n%s", addr, h.log.String())
	}
	line = l[len(l)-1]
	_, v := logFields(h.t, line)
	return line, v["status"], v["hint"]
}

// squashSpaces joins the words of s with single spaces: the bounce text is
// wrapped at 72 columns.
func squashSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

// wantHint checks that the last log line about addr has status and a
// hint= containing phrase and, for a bounce, that the queue holds one
// report whose human-readable part explains the failure with phrase.
func wantHint(t *testing.T, h *harness, addr, status, phrase string) {
	t.Helper()
	line, st, hint := h.lastLine(addr)
	if st != status {
		t.Errorf("status %q, want %q (line %q)", st, status, line)
	}
	if !strings.Contains(hint, phrase) {
		t.Errorf("hint %q does not say %q (line %q)", hint, phrase, line)
	}
	reps := h.reports()
	if status != "bounced" {
		if len(reps) != 0 {
			t.Errorf("%d reports queued for a %s recipient", len(reps), status)
		}
		return
	}
	if len(reps) != 1 {
		t.Fatalf("%d reports queued, want one bounce", len(reps))
	}
	human := squashSpaces(parseReport(t, reps[0].Content).Human)
	if !strings.Contains(human, "What this means: ") || !strings.Contains(human, squashSpaces(phrase)) {
		t.Errorf("bounce does not explain with %q:\n%s", phrase, human)
	}
}

// explainCase is one scripted failure and the phrase its row says.
type explainCase struct {
	name string
	// setup starts the server and returns the smarthost that reaches it.
	setup  func(t *testing.T) config.Smarthost
	status string // of rcptA: "deferred" or "bounced"
	phrase string
}

func runExplainCases(t *testing.T, cases []explainCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			shortTimeouts(t, 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond, 2*time.Second)
			h := newHarness(t, tc.setup(t))
			id := h.enqueue(content, rcptA)
			h.run()
			wantHint(t, h, rcptA, tc.status, tc.phrase)
			if tc.status == "deferred" {
				h.mustRead(id)
			}
		})
	}
}

// explainServer returns a setup for a plain server on loopback with cfg's faults,
// authenticated when cfg offers AUTH.
func explainServer(cfg testsmtp.ServerConfig) func(t *testing.T) config.Smarthost {
	return func(t *testing.T) config.Smarthost {
		if cfg.AuthMechs != nil {
			return withAuth(smarthost(plainAuthServer(t, cfg).Port, "none"))
		}
		return smarthost(testsmtp.NewFaultServer(t, cfg).Port, "none")
	}
}

var explainAuth = []string{"PLAIN", "LOGIN"}

// TestExplain_Connection: failures of reaching the smarthost and of TLS.
func TestExplain_Connection(t *testing.T) {
	runExplainCases(t, []explainCase{
		{"ConnectionRefused", func(t *testing.T) config.Smarthost {
			return smarthost(testsmtp.ClosedPort(t), "none")
		}, "deferred", "Nothing accepts connections on this host and port"},
		{"ConnectTimeout", func(t *testing.T) config.Smarthost {
			return smarthost(testsmtp.UnansweredPort(t), "none")
		}, "deferred", "did not answer the connection attempt in time"},
		{"DNSFailure", func(t *testing.T) config.Smarthost {
			sh := smarthost(587, "starttls")
			sh.Host = "smarthost.invalid" // RFC 2606: never resolves
			return sh
		}, "deferred", "could not be looked up in DNS"},
		{"NoGreeting", explainServer(testsmtp.ServerConfig{Hang: testsmtp.HangGreeting}),
			"deferred", "sent no SMTP greeting"},
		{"PlainToImplicitTLSPort", func(t *testing.T) config.Smarthost {
			return smarthost(testsmtp.NewFaultServer(t, testsmtp.ServerConfig{ImplicitTLS: true}).Port, "none")
		}, "deferred", `needs tls = "implicit"`},
		{"ImplicitTLSToPlainPort", func(t *testing.T) config.Smarthost {
			return smarthost(testsmtp.NewRawServer(t, testsmtp.SMTPReplies(nil, nil)).Port, "implicit")
		}, "deferred", `answered in plain text: implicit TLS is for port 465; for port 587 or 25 set tls = "starttls"`},
		{"StartTLSNotOffered", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(testsmtp.NewRawServer(t, testsmtp.SMTPReplies([]string{"AUTH PLAIN LOGIN"}, nil)).Port, "starttls"))
		}, "deferred", `does not offer STARTTLS on this port, and relay never sends mail unencrypted: check the port, and set tls = "implicit" for port 465`},
		{"CertificateUnknownAuthority", func(t *testing.T) config.Smarthost {
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true, AuthMechs: []string{"PLAIN"}, Password: testPass})
			return withAuth(smarthost(srv.Port, "starttls"))
		}, "deferred", "set tls_ca_file to its CA certificate"},
		{"CertificateNameMismatch", func(t *testing.T) config.Smarthost {
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true, AuthMechs: []string{"PLAIN"}, Password: testPass})
			sh := withAuth(smarthost(srv.Port, "starttls"))
			sh.TLSCAFile = srv.Cert.CAFile(t)
			sh.TLSServerName = "wrong.test"
			return sh
		}, "deferred", "or tls_server_name when you connect by IP address"},
		{"CertificateExpired", func(t *testing.T) config.Smarthost {
			port, caFile := expiredTLSServer(t)
			sh := smarthost(port, "implicit")
			sh.TLSCAFile = caFile
			return sh
		}, "deferred", "certificate has expired, or this machine's clock is wrong"},
		{"FingerprintMismatch", func(t *testing.T) config.Smarthost {
			srv := testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true})
			sh := smarthost(srv.Port, "starttls")
			sh.TLSFingerprint = strings.Repeat("ab", 32)
			return sh
		}, "deferred", "not the one pinned in tls_fingerprint"},
		{"ConnectionCutMidData", explainServer(testsmtp.ServerConfig{DropMidData: true}),
			"deferred", "closed the connection in the middle of the session"},
		{"NoAnswerToDot", explainServer(testsmtp.ServerConfig{Hang: testsmtp.HangDot}),
			"deferred", "The smarthost stopped answering (timeout)"},
	})
}

// TestExplain_Local: relay's own side, before or while logging in.
func TestExplain_Local(t *testing.T) {
	runExplainCases(t, []explainCase{
		{"PasswordCommandFails", func(t *testing.T) config.Smarthost {
			sh := smarthost(plainAuthServer(t, testsmtp.ServerConfig{}).Port, "none")
			sh.Username = testUser
			sh.PasswordCommand = []string{writeScript(t, "exit 3\n")}
			return sh
		}, "deferred", "password_command failed or printed nothing. Run the command by hand"},
		{"PasswordFileUnreadable", func(t *testing.T) config.Smarthost {
			sh := smarthost(plainAuthServer(t, testsmtp.ServerConfig{}).Port, "none")
			sh.Username = testUser
			sh.PasswordFile = filepath.Join(t.TempDir(), "missing")
			return sh
		}, "deferred", "relay could not read password_file"},
		{"CAFileMissing", func(t *testing.T) config.Smarthost {
			sh := smarthost(testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true}).Port, "starttls")
			sh.TLSCAFile = filepath.Join(t.TempDir(), "missing.pem")
			return sh
		}, "deferred", "A TLS file of this smarthost (tls_ca_file"},
		{"FingerprintNotHex", func(t *testing.T) config.Smarthost {
			sh := smarthost(testsmtp.NewFaultServer(t, testsmtp.ServerConfig{STARTTLS: true}).Port, "starttls")
			sh.TLSFingerprint = "not-a-fingerprint"
			return sh
		}, "deferred", "tls_fingerprint is not a SHA-256 fingerprint"},
	})
}

// TestExplain_Auth: logging in.
func TestExplain_Auth(t *testing.T) {
	runExplainCases(t, []explainCase{
		{"AuthNotOffered", func(t *testing.T) config.Smarthost {
			return withAuth(smarthost(testsmtp.NewFaultServer(t, testsmtp.ServerConfig{}).Port, "none"))
		}, "deferred", "does not offer AUTH (login) here, but a username is configured"},
		{"AuthMechanismNotOffered", func(t *testing.T) config.Smarthost {
			sh := withAuth(smarthost(plainAuthServer(t, testsmtp.ServerConfig{AuthMechs: []string{"PLAIN"}}).Port, "none"))
			sh.Auth = "login"
			return sh
		}, "deferred", "remove auth, or set it to a mechanism the server lists"},
		{"WrongPassword535", func(t *testing.T) config.Smarthost {
			sh := withAuth(smarthost(plainAuthServer(t, testsmtp.ServerConfig{}).Port, "none"))
			sh.Password = "not-the-password"
			return sh
		}, "deferred", "refused the username or password: check username and password_file (or password_command). Gmail, Yandex and mail.ru need an app password"},
		{"Yandex535NoAccessRights", explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth,
			AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Error: authentication failed: This user does not have access rights to this service")}),
			"deferred", "log in to the provider's web mail once, accept its terms"},
		{"AcceptEULAFirst", explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth,
			AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Error: authentication failed: Please accept EULA first")}),
			"deferred", "log in to the provider's web mail once, accept its terms"},
		{"GmailAppPasswordRequired", explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth,
			AuthErr: smtpErr(534, smtp.EnhancedCode{5, 7, 9}, "Application-specific password required. Learn more at https://support.google.com/mail/?p=InvalidSecondFactor")}),
			"deferred", "create one in the account's security settings"},
		{"GmailWebLoginRequired534", explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth,
			AuthErr: smtpErr(534, smtp.EnhancedCode{5, 7, 14}, "Please log in via your web browser and then try again.")}),
			"deferred", "create one in the account's security settings"},
		{"AppPasswordRequired535", explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth,
			AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 0}, "NEOBT Application password is REQUIRED")}),
			"deferred", "create one in the account's security settings"},
		{"AuthTemporaryFailure", explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth,
			AuthErr: smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure")}),
			"deferred", "login service failed for a moment"},
	})
}

// TestExplain_AuthMechanisms: the rows of the mechanisms of auth.go,
// through delivery against the fault server's CRAM-MD5, SCRAM and token
// mechanisms (auth_test.go).
func TestExplain_AuthMechanisms(t *testing.T) {
	token := func(mech string) func(t *testing.T) config.Smarthost {
		return func(t *testing.T) config.Smarthost {
			srv := mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, authBehaviour{Token: "the-right-token"}, mech)
			sh := tlsSmarthost(t, srv)
			sh.Auth = strings.ToLower(mech)
			sh.Password = "a-stale-token"
			return sh
		}
	}
	runExplainCases(t, []explainCase{
		{"XOAUTH2TokenRefused", token("XOAUTH2"), "deferred", "refused the OAuth access token: password_command must print a current access token"},
		{"OAUTHBEARERTokenRefused", token("OAUTHBEARER"), "deferred", "refused the OAuth access token"},
		{"CRAMMD5WrongPassword", func(t *testing.T) config.Smarthost {
			sh := withAuth(smarthost(mechServer(t, testsmtp.ServerConfig{}, authBehaviour{}, "CRAM-MD5").Port, "none"))
			sh.Password = "not-the-password"
			return sh
		}, "deferred", "refused the username or password"},
		{"HashedPasswordsPlainRefusedToo", func(t *testing.T) config.Smarthost {
			sh := tlsSmarthost(t, mechServer(t, testsmtp.ServerConfig{STARTTLS: true}, authBehaviour{Hashed: true}, "SCRAM-SHA-256", "PLAIN"))
			sh.Password = "not-the-password"
			return sh
		}, "deferred", "refused the username or password"},
		{"SCRAMServerWithoutProof", func(t *testing.T) config.Smarthost {
			srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies([]string{"AUTH SCRAM-SHA-256"}, map[string]func(string) string{
				"AUTH": func(l string) string {
					f := strings.Fields(l)
					first, _ := base64.StdEncoding.DecodeString(f[len(f)-1])
					_, nonce, _ := strings.Cut(string(first), ",r=")
					return "334 " + base64.StdEncoding.EncodeToString([]byte("r="+nonce+"x,s=c2FsdA==,i=4096"))
				},
				"*": func(string) string { return "334 " + base64.StdEncoding.EncodeToString([]byte("v=AAAA")) },
			}))
			return withAuth(smarthost(srv.Port, "none"))
		}, "deferred", "SCRAM-SHA-256 login did not check out"},
	})
}

// TestExplain_Replies: what the smarthost answers to the session and the
// transaction.
func TestExplain_Replies(t *testing.T) {
	mail := func(code int, enh smtp.EnhancedCode, msg string) func(*testing.T) config.Smarthost {
		return explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth, MailErr: map[string]*smtp.SMTPError{"*": smtpErr(code, enh, msg)}})
	}
	rcptErr := func(code int, enh smtp.EnhancedCode, msg string) func(*testing.T) config.Smarthost {
		return explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth, RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(code, enh, msg)}})
	}
	data := func(code int, enh smtp.EnhancedCode, msg string) func(*testing.T) config.Smarthost {
		return explainServer(testsmtp.ServerConfig{AuthMechs: explainAuth, DataErr: smtpErr(code, enh, msg)})
	}
	runExplainCases(t, []explainCase{
		{"Greeting421", explainServer(testsmtp.ServerConfig{Greeting: smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "Too many connections, try again later")}),
			"deferred", "busy or closing the connection (421"},
		{"EHLO421", explainServer(testsmtp.ServerConfig{EHLO: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Service not available, closing transmission channel")}),
			"deferred", "busy or closing the connection (421"},
		{"Greeting554", explainServer(testsmtp.ServerConfig{Greeting: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Access denied")}),
			"deferred", "refuses to talk to this machine"},
		{"SenderNotOwnedByAuthUser553", mail(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by auth user."),
			"deferred", "accepts only the login's own address as envelope sender: set envelope_from to it, or map senders to it with sender_map"},
		{"RelayingDeniedAtMail550", mail(550, smtp.EnhancedCode{5, 7, 1}, "Relaying denied"),
			"deferred", "does not relay mail for this account"},
		// Postfix refuses relaying at RCPT; it is about the account, so it
		// defers like a refusal at MAIL (SPEC 6), never bounces.
		{"RelayAccessDeniedAtRcpt550", rcptErr(550, smtp.EnhancedCode{5, 7, 1}, "<a@example.test>: Relay access denied"),
			"deferred", "does not relay mail for this account"},
		{"QuotaExceededAtRcpt550", rcptErr(550, smtp.EnhancedCode{5, 7, 1}, "Daily sending quota exceeded"),
			"deferred", "reached the provider's sending limit"},
		{"DailyQuotaExceeded", mail(550, smtp.EnhancedCode{5, 4, 5}, "Daily user sending quota exceeded."),
			"deferred", "reached the provider's sending limit"},
		{"RateLimitExceeded", mail(451, smtp.EnhancedCode{4, 7, 1}, "Ratelimit exceeded for mailbox robot@example.test. Try again later."),
			"deferred", "set rate_limit for this smarthost"},
		{"TooManyMessages", mail(450, smtp.EnhancedCode{4, 7, 1}, "Too many messages sent, try later"),
			"deferred", "set rate_limit for this smarthost"},
		{"UserUnknown511", rcptErr(550, smtp.EnhancedCode{5, 1, 1}, "<a@example.test>: Recipient address rejected: User unknown in virtual mailbox table"),
			"bounced", "address does not exist at its domain"},
		{"UserUnknown511Only", rcptErr(550, smtp.EnhancedCode{5, 1, 1}, "Recipient rejected"),
			"bounced", "address does not exist at its domain"},
		{"UserUnknownTextOnly", rcptErr(550, smtp.NoEnhancedCode, "<a@example.test>: Recipient address rejected: User unknown in local recipient table"),
			"bounced", "address does not exist at its domain"},
		{"BadDestination512", rcptErr(550, smtp.EnhancedCode{5, 1, 2}, "Bad destination system address"),
			"bounced", "domain does not exist or accepts no mail"},
		{"DomainNotFoundText", rcptErr(450, smtp.EnhancedCode{4, 1, 2}, "<a@example.test>: Recipient address rejected: Domain not found"),
			"deferred", "domain does not exist or accepts no mail"},
		{"MailboxFull422", rcptErr(452, smtp.EnhancedCode{4, 2, 2}, "Mailbox full"),
			"deferred", "mailbox is full"},
		{"MailboxFull522Only", rcptErr(552, smtp.EnhancedCode{5, 2, 2}, "Requested mail action aborted: exceeded storage allocation"),
			"deferred", "mailbox is full"},
		{"MailboxFullTextOnly", rcptErr(452, smtp.NoEnhancedCode, "Mailbox is full"),
			"deferred", "mailbox is full"},
		{"Greylisted", rcptErr(450, smtp.EnhancedCode{4, 7, 1}, "<a@example.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/"),
			"deferred", "(greylisting)"},
		{"RejectedAsSpam554", data(554, smtp.EnhancedCode{5, 7, 1}, "Message rejected under suspicion of SPAM"),
			"bounced", "refused the message as spam"},
		{"UnsolicitedMail550", data(550, smtp.EnhancedCode{5, 7, 1}, "Our system has detected that this message is likely unsolicited mail."),
			"bounced", "refused the message as spam"},
		{"Rejected554PolicyAtData", data(554, smtp.EnhancedCode{5, 7, 1}, "Message rejected"),
			"bounced", "refused the message as spam"},
		{"MessageTooLarge552", data(552, smtp.EnhancedCode{5, 3, 4}, "Error: message file too big"),
			"bounced", "lower max_message_size"},
		{"MessageSizeExceeds", data(552, smtp.NoEnhancedCode, "Message size exceeds fixed maximum message size"),
			"bounced", "lower max_message_size"},
		{"MessageTooLarge534Only", data(550, smtp.EnhancedCode{5, 3, 4}, "Rejected by size policy"),
			"bounced", "lower max_message_size"},
		{"MessageSizeTextOnly", data(554, smtp.EnhancedCode{5, 0, 0}, "Message size exceeds maximum permitted"),
			"bounced", "lower max_message_size"},
		{"Data552Only", data(552, smtp.NoEnhancedCode, "Requested mail action aborted: exceeded storage allocation"),
			"bounced", "lower max_message_size"},
		{"DMARC", data(550, smtp.EnhancedCode{5, 7, 26}, "Unauthenticated email from example.test is not accepted due to domain's DMARC policy."),
			"bounced", "(SPF, DKIM or DMARC)"},
	})
}

// TestExplain_AuthInClear: relay refuses AUTH without TLS to a peer that is
// not loopback. The peer is a non-loopback address of this machine,
// forwarded to a loopback test server; without one, the sentence is
// checked on the refusal's text alone.
func TestExplain_AuthInClear(t *testing.T) {
	const phrase = `refuses to send the password unencrypted to a host other than this machine: use TLS`
	t.Run("Text", func(t *testing.T) {
		f := &relay.Failure{Stage: relay.StageAuth, Err: errors.New("refusing to send the password of robot@example.test without TLS to 192.0.2.1:25 (only loopback peers may be authenticated in clear)")}
		if got := relay.Explain(f); !strings.Contains(got, phrase) {
			t.Errorf("Explain = %q, want %q", got, phrase)
		}
	})
	t.Run("Delivery", func(t *testing.T) {
		srv := plainAuthServer(t, testsmtp.ServerConfig{})
		addr := nonLoopbackForwarder(t, srv.Port)
		sh := withAuth(smarthost(addr.Port, "none"))
		sh.Name, sh.Host = addr.IP.String(), addr.IP.String()
		h := newHarness(t, sh)
		id := h.enqueue(content, rcptA)
		h.run()
		h.mustRead(id)
		wantHint(t, h, rcptA, "deferred", phrase)
		if len(srv.Auths()) != 0 {
			t.Errorf("the server got AUTH %+v in clear over a non-loopback address", srv.Auths())
		}
	})
}

// TestExplain_NetworkUnreachable: a connect without a route fails at once
// (ENETUNREACH). That cannot be scripted without changing the machine's
// routing table, so the row is checked on the error Dial returns for it.
func TestExplain_NetworkUnreachable(t *testing.T) {
	const phrase = "no network route to the smarthost"
	op := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 587},
		Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
	if got := relay.Explain(&relay.Failure{Stage: relay.StageConnect, Err: op}); !strings.Contains(got, phrase) {
		t.Errorf("Explain = %q, want %q", got, phrase)
	}
	if got := relay.Explain((&relay.Failure{Stage: relay.StageConnect, Err: op}).Stored(time.Now())); !strings.Contains(got, phrase) {
		t.Errorf("Explain(stored %q) = %q, want %q", op.Error(), got, phrase)
	}
}

// TestExplain_DownHostExplainedOnLaterPass: a smarthost remembered as down
// defers later mail without a connection; its hint still says why it is
// down.
func TestExplain_DownHostExplainedOnLaterPass(t *testing.T) {
	h := newHarness(t, smarthost(testsmtp.ClosedPort(t), "none"))
	h.enqueue(content, rcptA)
	h.run()
	h.log.Reset()
	h.now = h.now.Add(10 * time.Second) // before the retry time
	h.enqueue(content, rcptB)
	h.run()
	line, _, hint := h.lastLine(rcptB)
	if !strings.Contains(line, "is down until") {
		t.Fatalf("line %q: not deferred as down", line)
	}
	if !strings.Contains(hint, "Nothing accepts connections") {
		t.Errorf("hint %q, want the reason the smarthost is down explained (line %q)", hint, line)
	}
}

// TestExplain_HeldLineHasHint: past the lifetime, an own-side failure puts
// the message on hold; the held line explains too.
func TestExplain_HeldLineHasHint(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{MailErr: map[string]*smtp.SMTPError{"*": smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "Sender address rejected: not owned by auth user")}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	h.cfg.Queue.Lifetime = config.Duration(time.Hour)
	id := h.enqueue(content, rcptA)
	h.now = h.now.Add(time.Hour)
	h.run()
	if !h.mustRead(id).Held {
		t.Fatal("not held")
	}
	line, st, hint := h.lastLine(rcptA)
	if st != "held" || !strings.Contains(hint, "set envelope_from") {
		t.Errorf("line %q: want status=held with the hint", line)
	}
	keys, _ := logFields(t, line)
	if i := keyIndex(keys, "hint"); i < 1 || keys[i-1] != "reply" {
		t.Errorf("fields %q: want hint right after reply", keys)
	}
}

func keyIndex(s []string, x string) int {
	for i, v := range s {
		if v == x {
			return i
		}
	}
	return -1
}

// TestExplain_NoRow: a failure the table does not know gets no hint= (and
// Explain says ""), rather than a wrong explanation.
func TestExplain_NoRow(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(450, smtp.EnhancedCode{4, 2, 0}, "Mailbox busy")}})
	h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
	h.enqueue(content, rcptA)
	h.run()
	if line, st, hint := h.lastLine(rcptA); st != "deferred" || hint != "" || strings.Contains(line, "hint=") {
		t.Errorf("line %q: want deferred without hint=", line)
	}
	for _, f := range []*relay.Failure{nil, {Stage: relay.StageRcpt, Code: 450, Enhanced: "4.2.0", Text: "Mailbox busy"}, {Stage: relay.StageData, Err: errors.New("something odd")}} {
		if got := relay.Explain(f); got != "" {
			t.Errorf("Explain(%+v) = %q, want \"\"", f, got)
		}
	}
}

// TestExplainReply: lines as spool format 1 stored them (a recipient's
// reason, Failure.Error as last error) are read back as its conversion
// reads them and explained like the failure itself.
func TestExplainReply(t *testing.T) {
	for _, tc := range []struct {
		stage relay.Stage
		line  string
		want  string // a phrase; "" for no explanation
	}{
		{relay.StageMail, "553 5.7.1 Sender address rejected: not owned by auth user", "set envelope_from"},
		{"", "mail: 553 5.7.1 Sender address rejected: not owned by auth user", "set envelope_from"},
		{relay.StageMail, "553 5.7.1 <root@server1.lan>: Sender address rejected: not owned by user robot@example.com", "set envelope_from"}, // Postfix's reject_sender_login_mismatch
		{"", "auth: 535 5.7.8 Error: authentication failed: This user does not have access rights to this service", "accept its terms"},
		{"", "535 5.7.8 Authentication credentials invalid", "refused the username or password"},
		{"", "534-5.7.9 Application-specific password required", "create one in the account's security settings"},
		{"", "550 5.1.1 <a@example.test>: Recipient address rejected: User unknown", "does not exist at its domain"},
		{"", "gave up after 5d: 452 4.2.2 Mailbox full", "mailbox is full"},
		{"", "421 Too many concurrent SMTP connections", "(421"},
		{"", "552 Message size exceeds fixed maximum message size", "max_message_size"},
		{relay.StageConnect, "dial tcp 127.0.0.1:25: connect: connection refused", "Nothing accepts connections"},
		{"", "connect: dial tcp: lookup smtp.example.invalid on 127.0.0.53:53: no such host", "looked up in DNS"},
		{"", "connect: dial tcp 192.0.2.1:587: i/o timeout", "did not answer the connection attempt"},
		{"", "greeting: read tcp 127.0.0.1:4000->127.0.0.1:465: i/o timeout", "sent no SMTP greeting"},
		{"", "tls: TLS handshake: tls: failed to verify certificate: x509: certificate signed by unknown authority", "tls_ca_file"},
		{"", "tls: TLS handshake: tls: failed to verify certificate: x509: certificate is valid for mx.example.org, not smtp.example.org", "tls_server_name"},
		{"", "tls: TLS handshake: tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2030-01-01T00:00:00Z is after 2029-01-01T00:00:00Z", "has expired"},
		{"", "tls: TLS handshake: tls: first record does not look like a TLS handshake", "implicit TLS is for port 465"},
		{"", `tls: the server does not offer STARTTLS, and tls = "starttls" never falls back to plain text`, "does not offer STARTTLS on this port"},
		{"", "auth: the server does not offer AUTH, but a username is configured", "does not offer AUTH (login)"},
		{"", "local: password_command pass: exit status 2", "password_command failed"},
		{"", "auth: 535 5.7.8 Username and Password not accepted. (AUTH XOAUTH2: token refused, status 401, scope https://mail.google.com/)", "refused the OAuth access token"},
		{"", "auth: 535 5.7.8 Authentication failed (AUTH OAUTHBEARER: token refused)", "refused the OAuth access token"},
		{"", "auth: 535 5.7.8 Error: authentication failed (AUTH CRAM-MD5 was refused, then PLAIN)", "refused the username or password"},
		{"", "auth: AUTH SCRAM-SHA-256: server validation failed", "SCRAM-SHA-256 login did not check out"},
		{"", "auth: AUTH SCRAM-SHA-256: the username or password holds characters SCRAM does not allow (SASLprep)", `set auth = "plain"`},
		{"", "rcpt: 450 4.2.0 Mailbox busy", ""},
		{"", "250 2.0.0 Ok", ""},
		{"", "", ""},
	} {
		f := failure.ParseFormat1Error(tc.line)
		if f != nil && tc.stage != "" {
			f.Stage = tc.stage
		}
		got := relay.Explain(f)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("ExplainReply(%q, %q) = %q, want %q", tc.stage, tc.line, got, tc.want)
		}
	}
}

// --- servers for the connection-level rows ---

// expiredTLSServer starts an implicit-TLS listener on 127.0.0.1 whose
// self-signed certificate expired yesterday; it returns its port and a
// tls_ca_file that trusts the certificate.
func expiredTLSServer(t *testing.T) (port int, caFile string) {
	t.Helper()
	cert, err := testsmtp.MakeCertValid(time.Now().Add(-30*24*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testsmtp.Serve(t, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert.Pair}}), func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.(*tls.Conn).Handshake() // fails: the client refuses the certificate
		c.Close()
	})
	return ln.Addr().(*net.TCPAddr).Port, cert.CAFile(t)
}

// nonLoopbackForwarder listens on an address of this machine that is not
// loopback and forwards every connection to 127.0.0.1:port. It skips the
// test when the machine has no such address.
func nonLoopbackForwarder(t *testing.T, port int) *net.TCPAddr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	var ln net.Listener
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if ln, err = net.Listen("tcp", net.JoinHostPort(ipn.IP.String(), "0")); err == nil {
			break
		}
	}
	if ln == nil {
		t.Skip("no address other than loopback to listen on")
	}
	testsmtp.Serve(t, ln, func(c net.Conn) {
		b, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			c.Close()
			return
		}
		done := make(chan struct{})
		go func() { io.Copy(b, c); b.Close(); close(done) }()
		io.Copy(c, b)
		c.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr)
}
