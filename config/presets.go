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

// Presets are the provider presets a [[smarthost]] can name. Hosts, ports
// and limits are the providers' documented submission settings (README,
// "Presets").
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
}

// presetNames lists the presets in the order messages name them.
var presetNames = []string{"yandex", "mailru", "gmail", "outlook", "office365", "rambler"}

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
	if p.Login == "" {
		return username, "", false
	}
	if p.SenderIsLogin {
		return username, fmt.Sprintf("%q is not an address: preset %s logs in with %s, which is also the envelope sender", username, name, p.Login), true
	}
	return username, fmt.Sprintf("%q is not an address: preset %s logs in with %s; a bare login may be refused", username, name, p.Login), false
}
