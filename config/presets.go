package config

import (
	"fmt"
	"strings"
	"time"
)

// Preset is what a provider preset fills in. Every field is a default: a
// key written in the [[smarthost]] table overrides it (rate_limit = ""
// turns the preset's limit off).
type Preset struct {
	Host string
	Port int
	TLS  string
	// SenderIsLogin: the provider refuses an envelope sender other than
	// the login ("553 5.7.1 Sender address rejected: not owned by auth
	// user"), so relay sends the login as the envelope sender, unless
	// envelope_from names another address.
	SenderIsLogin bool
	// RateLimit is the provider's known sending limit (per account),
	// which relay keeps below so that the account is not blocked.
	RateLimit RateLimit
	// LoginDomain: the provider's logins are addresses on this one
	// domain, and it documents the login without it (Yandex: "robot" for
	// robot@yandex.ru). A bare username is qualified with it, so that
	// AUTH and the sender rule see the address (relay check says so).
	LoginDomain string
	// Login says what the provider's login is, for the message about a
	// bare username of a preset without LoginDomain: its logins are
	// addresses on several domains, or on any, and relay cannot guess
	// which. There a bare username is an error when the login is the
	// envelope sender (it is no address: every message would wait on
	// 553), else a warning.
	Login string
	// KeyLogin: the login is an API key or a generated name, never an
	// address (SendGrid, SES, Mailjet): a bare username is what it
	// should be, and no rule applies to it.
	KeyLogin bool
	// Username is the login every account of the provider uses (SendGrid:
	// the word "apikey"), filled in when the table writes none.
	Username string
	// RegionHost: Host has a %s for the provider's region, which the
	// table's region key gives (SES: email-smtp.eu-west-1.amazonaws.com).
	RegionHost bool
	// OAuth is the provider's OAuth 2.0 platform ("microsoft", "google"):
	// the provider of a [smarthost.oauth] table that names none.
	OAuth string
	// OAuthOnly: the provider has turned passwords off for SMTP. Without
	// a password key the smarthost logs in with OAuth (a
	// [smarthost.oauth] table may be left out, but client_id is needed);
	// with one, relay check warns.
	OAuthOnly bool
	// Tenant is the default tenant of a microsoft provider: "consumers"
	// for personal accounts, "organizations" for work accounts.
	Tenant string
}

// Presets are the provider presets a [[smarthost]] can name. Hosts, ports,
// sender rules and limits are the providers' documented submission
// settings; docs/relay.toml.5.md ("Presets") names the source of each, and
// says where a provider publishes no figure (the limit is then a cautious
// one of relay's) or where the limit depends on the plan (then none).
var Presets = map[string]Preset{
	"yandex": {Host: "smtp.yandex.ru", Port: 465, TLS: "implicit", SenderIsLogin: true, RateLimit: RateLimit{N: 500, Per: 24 * time.Hour},
		LoginDomain: "yandex.ru"},
	"mailru": {Host: "smtp.mail.ru", Port: 465, TLS: "implicit", SenderIsLogin: true, RateLimit: RateLimit{N: 100, Per: time.Hour},
		Login: "the whole mailbox address, e.g. robot@mail.ru (or @inbox.ru, @list.ru, @bk.ru, @internet.ru)"},
	"gmail": {Host: "smtp.gmail.com", Port: 587, TLS: "starttls", RateLimit: RateLimit{N: 500, Per: 24 * time.Hour},
		Login: "the whole address, e.g. robot@gmail.com or an address of a Google Workspace domain", OAuth: "google"},
	"outlook": {Host: "smtp-mail.outlook.com", Port: 587, TLS: "starttls", SenderIsLogin: true, RateLimit: RateLimit{N: 300, Per: 24 * time.Hour},
		Login: "the whole address of the Microsoft account, e.g. robot@outlook.com, @hotmail.com or your own domain",
		OAuth: "microsoft", OAuthOnly: true, Tenant: "consumers"},
	"office365": {Host: "smtp.office365.com", Port: 587, TLS: "starttls", SenderIsLogin: true, RateLimit: RateLimit{N: 30, Per: time.Minute},
		Login: "the whole address of the mailbox, e.g. robot@example.com",
		OAuth: "microsoft", OAuthOnly: true, Tenant: "organizations"},
	"rambler": {Host: "smtp.rambler.ru", Port: 465, TLS: "implicit", SenderIsLogin: true, RateLimit: RateLimit{N: 100, Per: time.Hour},
		Login: "the whole mailbox address, e.g. robot@rambler.ru (or @lenta.ru, @autorambler.ru, @myrambler.ru, @ro.ru)"},

	// Mailbox providers: the login is the mailbox, which is also the
	// sender they accept.
	"icloud": {Host: "smtp.mail.me.com", Port: 587, TLS: "starttls", SenderIsLogin: true, RateLimit: RateLimit{N: 1000, Per: 24 * time.Hour},
		Login: "the whole iCloud Mail address, e.g. robot@icloud.com (or @me.com, @mac.com), with an app-specific password"},
	"zoho": {Host: "smtp.zoho.com", Port: 465, TLS: "implicit", SenderIsLogin: true, RateLimit: RateLimit{N: 50, Per: time.Hour},
		Login: "the whole address of the Zoho Mail account, e.g. robot@zohomail.com or your own domain"},
	"fastmail": {Host: "smtp.fastmail.com", Port: 465, TLS: "implicit",
		Login: "the whole Fastmail address, e.g. robot@fastmail.com, with an app password"},
	"yahoo": {Host: "smtp.mail.yahoo.com", Port: 465, TLS: "implicit", SenderIsLogin: true, RateLimit: RateLimit{N: 500, Per: 24 * time.Hour},
		Login: "the whole Yahoo address, e.g. robot@yahoo.com (or @ymail.com, a country domain), with an app password"},
	"gmx": {Host: "mail.gmx.net", Port: 587, TLS: "starttls", SenderIsLogin: true, RateLimit: RateLimit{N: 100, Per: time.Hour},
		Login: "the whole GMX address, e.g. robot@gmx.net (or @gmx.de, @gmx.at, @gmx.ch, @gmx.com)"},
	"web.de": {Host: "smtp.web.de", Port: 587, TLS: "starttls", SenderIsLogin: true, RateLimit: RateLimit{N: 100, Per: time.Hour},
		LoginDomain: "web.de"},

	// Sending services: the login is a key, the sender any address or
	// domain verified with the service; the limit is the plan's.
	"sendgrid": {Host: "smtp.sendgrid.net", Port: 587, TLS: "starttls", KeyLogin: true, Username: "apikey",
		Login: `the word "apikey" (the API key is the password)`},
	"mailgun": {Host: "smtp.mailgun.org", Port: 587, TLS: "starttls",
		Login: "the SMTP login of the sending domain, e.g. postmaster@mg.example.com (EU domains: host = \"smtp.eu.mailgun.org\")"},
	"ses": {Host: "email-smtp.%s.amazonaws.com", Port: 587, TLS: "starttls", KeyLogin: true, RegionHost: true,
		Login: "the SMTP user name of the SES SMTP credentials (not the IAM access key)"},
	"mailjet": {Host: "in-v3.mailjet.com", Port: 587, TLS: "starttls", KeyLogin: true,
		Login: "the API key (the secret key is the password)"},
	"brevo": {Host: "smtp-relay.brevo.com", Port: 587, TLS: "starttls",
		Login: "the SMTP login shown under SMTP & API, e.g. 8a1b2c001@smtp-brevo.com (an SMTP key is the password)"},
}

// presetNames lists the presets in the order messages name them.
var presetNames = []string{"yandex", "mailru", "gmail", "outlook", "office365", "rambler", "icloud", "zoho", "fastmail", "yahoo", "gmx", "web.de",
	"sendgrid", "mailgun", "ses", "mailjet", "brevo"}

// qualifyLogin applies a preset's rule for a username without a domain
// (see Preset.LoginDomain and Preset.Login): the username to use, and the
// problem to report (none for an address, or a preset without the rule).
func (p Preset) qualifyLogin(name, username string) (login, problem string, isError bool) {
	if username == "" || strings.Contains(username, "@") {
		return username, "", false
	}
	if p.LoginDomain != "" {
		login = username + "@" + p.LoginDomain
		return login, fmt.Sprintf("%q is a bare login: preset %s logs in and sends as %s", username, name, login), false
	}
	if p.Login == "" || p.KeyLogin {
		return username, "", false
	}
	if p.SenderIsLogin {
		return username, fmt.Sprintf("%q is not an address: preset %s logs in with %s, which is also the envelope sender", username, name, p.Login), true
	}
	return username, fmt.Sprintf("%q is not an address: preset %s logs in with %s; a bare login may be refused", username, name, p.Login), false
}
