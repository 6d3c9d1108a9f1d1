package config

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// OAuth is a [smarthost.oauth] table: relay logs in to the smarthost with
// an OAuth 2.0 access token it obtains and refreshes itself (package
// oauth), sent with XOAUTH2 or OAUTHBEARER. After Load every default is
// filled in: Provider (from the preset), Flow, Tenant (microsoft),
// Scopes, the three endpoints (those the provider has), Subject
// (service_account: the username) and TokenFile (a file in the spool).
type OAuth struct {
	Provider           string   `toml:"provider"` // "microsoft", "google" or "generic"
	Flow               string   `toml:"flow"`     // "device", "authcode", "client_credentials" or "service_account"
	ClientID           string   `toml:"client_id"`
	ClientSecretFile   string   `toml:"client_secret_file"`
	Tenant             string   `toml:"tenant"` // microsoft only
	Scopes             []string `toml:"scopes"`
	ServiceAccountFile string   `toml:"service_account_file"`
	Subject            string   `toml:"subject"`
	// Endpoints: given by the provider, required for generic; https, or
	// http on a loopback address.
	DeviceAuthorizationURL string `toml:"device_authorization_url"`
	AuthorizationURL       string `toml:"authorization_url"`
	TokenURL               string `toml:"token_url"`
	// TokenFile holds the grant (refresh token) and the cached access
	// token; default SPOOL/oauth/NAME.json.
	TokenFile string `toml:"token_file"`
}

// UsesOAuth reports whether the smarthost logs in with OAuth (after Load).
func (sh *Smarthost) UsesOAuth() bool { return sh.OAuth.Provider != "" }

// NeedsLogin reports whether the smarthost's OAuth grant comes from relay
// oauth login (the device and authorization-code flows), rather than
// from a secret alone (client_credentials, service_account).
func (o *OAuth) NeedsLogin() bool { return o.Flow == "device" || o.Flow == "authcode" }

var (
	oauthProviders = []string{"microsoft", "google", "generic"}
	oauthFlows     = []string{"device", "authcode", "client_credentials", "service_account"}
)

// microsoftTenants are the tenants that stand for many: they cannot issue
// an app-only (client_credentials) token.
var microsoftTenants = []string{"common", "organizations", "consumers"}

// oauth validates and completes sh.OAuth. on says whether OAuth is in
// use (the table is written, or the preset logs in with nothing else).
func (v *validator) oauth(p string, sh *Smarthost, preset *Preset, on bool) {
	k := func(name string) string { return p + ".oauth." + name }
	o := &sh.OAuth
	if !on {
		return
	}
	if o.Provider == "" && preset != nil {
		o.Provider = preset.OAuth
	}
	switch {
	case o.Provider == "":
		v.errorf(p+".oauth", "missing provider: %s", quoteList(oauthProviders))
		o.Provider = "generic" // for the checks below; the error stands
	case !v.oneOf(k("provider"), o.Provider, oauthProviders):
		return
	}
	if o.Flow == "" {
		switch o.Provider {
		case "microsoft":
			o.Flow = "device"
		case "google":
			// Google grants no mail scope to its device flow.
			o.Flow = "authcode"
		default:
			o.Flow = "device"
			if o.DeviceAuthorizationURL == "" && o.AuthorizationURL != "" {
				o.Flow = "authcode"
			}
		}
	} else if !v.oneOf(k("flow"), o.Flow, oauthFlows) {
		return
	}
	switch {
	case o.Provider == "google" && o.Flow == "client_credentials":
		v.errorf(k("flow"), `Google has no client_credentials flow for mail: use "service_account" (Google Workspace) or "authcode"`)
	case o.Provider == "microsoft" && o.Flow == "service_account":
		v.errorf(k("flow"), `"service_account" is Google's: Microsoft 365's app-only flow is "client_credentials"`)
	}

	if o.Provider == "microsoft" {
		if o.Tenant == "" {
			o.Tenant = "common"
			if preset != nil && preset.Tenant != "" {
				o.Tenant = preset.Tenant
			}
			if o.Flow == "client_credentials" {
				v.errorf(p+".oauth", "missing tenant: an app-only token (client_credentials) needs your tenant's ID or domain (e.g. \"example.onmicrosoft.com\")")
			}
		} else if o.Flow == "client_credentials" && slices.Contains(microsoftTenants, strings.ToLower(o.Tenant)) {
			v.errorf(k("tenant"), "%q cannot issue an app-only token (client_credentials): use your tenant's ID or domain", o.Tenant)
		} else if strings.ContainsAny(o.Tenant, "/?#% ") {
			v.errorf(k("tenant"), "%q is not a tenant ID or domain", o.Tenant)
		}
	} else if v.has(k("tenant")) {
		v.errorf(k("tenant"), "is for provider \"microsoft\" only")
	}

	// Endpoints: the provider's, unless written.
	base := ""
	switch o.Provider {
	case "microsoft":
		base = "https://login.microsoftonline.com/" + url.PathEscape(o.Tenant) + "/oauth2/v2.0/"
		def(&o.DeviceAuthorizationURL, base+"devicecode")
		def(&o.AuthorizationURL, base+"authorize")
		def(&o.TokenURL, base+"token")
	case "google":
		def(&o.DeviceAuthorizationURL, "https://oauth2.googleapis.com/device/code")
		def(&o.AuthorizationURL, "https://accounts.google.com/o/oauth2/v2/auth")
		def(&o.TokenURL, "https://oauth2.googleapis.com/token")
	}
	for _, e := range []struct{ key, val string }{
		{"device_authorization_url", o.DeviceAuthorizationURL},
		{"authorization_url", o.AuthorizationURL},
		{"token_url", o.TokenURL},
	} {
		if e.val != "" {
			if msg := endpointProblem(e.val); msg != "" {
				v.errorf(k(e.key), "%s", msg)
			}
		}
	}
	missing := func(key, why string) {
		if !v.has(k(key)) {
			v.errorf(p+".oauth", "missing %s: %s", key, why)
		}
	}
	if o.TokenURL == "" {
		missing("token_url", "the token endpoint of the authorization server")
	}
	switch o.Flow {
	case "device":
		if o.DeviceAuthorizationURL == "" {
			missing("device_authorization_url", "the device flow starts there")
		}
	case "authcode":
		if o.AuthorizationURL == "" {
			missing("authorization_url", "the authorization-code flow starts there")
		}
	}

	// The client.
	switch o.Flow {
	case "service_account":
		if o.ServiceAccountFile == "" {
			missing("service_account_file", "the service account's JSON key (Google Cloud console)")
		}
		if v.has(k("client_id")) {
			v.errorf(k("client_id"), "has no use with flow \"service_account\": the key file names the client")
		}
		if o.Subject == "" {
			o.Subject = sh.Username
		}
	default:
		if o.ClientID == "" {
			why := "the application (client) ID of your app registration"
			if !v.has(p + ".oauth") {
				why = "preset " + sh.Preset + " logs in with OAuth: add a [smarthost.oauth] table with client_id (README: quick start)"
			}
			missing("client_id", why)
		}
		if o.Flow == "client_credentials" && o.ClientSecretFile == "" {
			missing("client_secret_file", "an app-only token (client_credentials) needs the client secret")
		}
		for _, key := range []string{"service_account_file", "subject"} {
			if v.has(k(key)) {
				v.errorf(k(key), "is for flow \"service_account\" only")
			}
		}
	}
	v.absPath(k("client_secret_file"), o.ClientSecretFile)
	v.absPath(k("service_account_file"), o.ServiceAccountFile)
	v.absPath(k("token_file"), o.TokenFile)
	if o.Subject != "" && !isAddress(o.Subject) {
		v.errorf(k("subject"), "%q is not an address: the mailbox the service account acts for", o.Subject)
	}

	if len(o.Scopes) == 0 {
		switch {
		case o.Provider == "microsoft" && o.Flow == "client_credentials":
			o.Scopes = []string{"https://outlook.office365.com/.default"}
		case o.Provider == "microsoft":
			o.Scopes = []string{"https://outlook.office.com/SMTP.Send", "offline_access"}
		case o.Provider == "google":
			o.Scopes = []string{"https://mail.google.com/"}
		}
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			v.errorf(indexKey(k("scopes"), i+1), "%q is not a scope", s)
		}
	}
	if o.TokenFile == "" && v.c.Spool != "" {
		o.TokenFile = filepath.Join(v.c.Spool, "oauth", safeFileName(sh.Name)+".json")
	}

	// What else the smarthost says about logging in.
	if sh.Username == "" && !v.bad[p+".username"] {
		v.errorf(p+".oauth", "needs username: the mailbox to log in as (XOAUTH2 and OAUTHBEARER send it)")
	}
	if sh.Auth != "" && sh.Auth != "xoauth2" && sh.Auth != "oauthbearer" {
		v.errorf(p+".auth", "must be \"xoauth2\" or \"oauthbearer\" (or left out) with [smarthost.oauth], not %q", sh.Auth)
	}
}

func def(s *string, val string) {
	if *s == "" {
		*s = val
	}
}

// endpointProblem says what is wrong with an OAuth endpoint URL: it must
// be https, or http on a loopback address (a test server); "" when fine.
func endpointProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "\"" + s + "\" is not a URL (https://host/path)"
	}
	if u.User != nil {
		return "must not carry credentials"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if isLoopback(u.Hostname()) {
			return ""
		}
	}
	return "must be an https URL (http only on a loopback address), not \"" + s + "\""
}

// safeFileName makes a smarthost name usable as a file name.
func safeFileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
}
