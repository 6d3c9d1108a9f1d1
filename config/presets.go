package config

import "time"

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
}

// Presets are the provider presets a [[smarthost]] can name. Hosts, ports
// and limits are the providers' documented submission settings (README,
// "Presets").
var Presets = map[string]Preset{
	"yandex":  {Host: "smtp.yandex.ru", Port: 465, TLS: "implicit", SenderIsLogin: true, RateLimit: RateLimit{N: 500, Per: 24 * time.Hour}},
	"mailru":  {Host: "smtp.mail.ru", Port: 465, TLS: "implicit", SenderIsLogin: true, RateLimit: RateLimit{N: 100, Per: time.Hour}},
	"gmail":   {Host: "smtp.gmail.com", Port: 587, TLS: "starttls", RateLimit: RateLimit{N: 500, Per: 24 * time.Hour}},
	"outlook": {Host: "smtp-mail.outlook.com", Port: 587, TLS: "starttls", SenderIsLogin: true, RateLimit: RateLimit{N: 300, Per: 24 * time.Hour}},
	"rambler": {Host: "smtp.rambler.ru", Port: 465, TLS: "implicit", SenderIsLogin: true, RateLimit: RateLimit{N: 100, Per: time.Hour}},
}

// presetNames lists the presets in the order messages name them.
var presetNames = []string{"yandex", "mailru", "gmail", "outlook", "rambler"}
