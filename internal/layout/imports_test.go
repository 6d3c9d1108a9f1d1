package layout_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// allowedImports is the target layout: for each package of the module,
// relative to it ("" is the root), the module's packages it may import
// (only non-test files count: tests may import what they need, such as
// internal/testsmtp). A package the module gains must be added here, on
// purpose, before the test passes.
var allowedImports = map[string][]string{
	// Leaves: no package of the module, except that the spool stores the
	// failure structure.
	"sysexits": nil,
	"config":   nil,
	"mailaddr": nil,
	"maillog":  nil,
	"failure":  nil, // stages, the stored failure, classification, explanations
	"metrics":  nil, // Prometheus' text exposition format
	// Replacing a file whole (temporary file, fsync, rename, directory
	// fsync): the listener's users, OAuth tokens, metrics textfiles and
	// relay import's output.
	"internal/atomicfile": nil,
	"spool":               {"failure"},
	// route: which smarthosts serve a sender, and the outgoing envelope
	// sender; rewrite (intake) and relay (delivery) both ask it.
	"route": {"config", "mailaddr"},

	// Intake: never delivery (see neverDependOn). smtpd is the SMTP
	// server of sendmail -bs and the listener, queueing through
	// sendmailcompat's Submitter.
	"rewrite":        {"config", "failure", "mailaddr", "maillog", "route", "spool"},
	"sendmailcompat": {"config", "mailaddr", "maillog", "rewrite", "route", "spool", "sysexits"},
	"smtpd":          {"config", "mailaddr", "maillog", "sendmailcompat", "spool", "sysexits"},

	// The queue as a user sees it: reads the spool, explains failures.
	// Statistics route by sender (per smarthost) and write metrics.
	"mailq": {"config", "failure", "internal/atomicfile", "metrics", "route", "spool", "sysexits"},

	// Delivery: builds its own Runner from the configuration.
	"bounce": {"config", "failure", "mailaddr", "spool"},
	"relay":  {"bounce", "config", "failure", "mailaddr", "maillog", "oauth", "rewrite", "route", "spool", "sysexits"},
	// OAuth 2.0 tokens of a smarthost: the token file, its lock, the
	// cache; delivery, relay check and the root's relay oauth use it.
	// The flows over golang.org/x/oauth2 (net/http) are oauth/flow, in
	// the helper binary relay-oauth only (see neverDependOn).
	"oauth":           {"config", "internal/atomicfile"},
	"oauth/flow":      {"config", "oauth"},
	"cmd/relay-oauth": {"oauth/flow"},

	// Runners, over intake and delivery.
	"daemon":   {"config", "failure", "listener", "mailaddr", "maillog", "mailq", "metrics", "relay", "rewrite", "route", "sendmailcompat", "spool", "sysexits"},
	"listener": {"config", "internal/atomicfile", "mailaddr", "maillog", "rewrite", "sendmailcompat", "smtpd", "spool", "sysexits"},
	"check":    {"config", "failure", "mailaddr", "maillog", "oauth", "relay", "rewrite", "route", "spool", "sysexits"},
	"install":  {"config", "spool", "sysexits"},
	// relay import: other programs' configurations and queues, into a
	// relay.toml (the presets) and the spool.
	"migrate": {"config", "internal/atomicfile", "mailaddr", "spool", "sysexits"},

	// The command line wires everything.
	"": {"*"},

	// Not part of relay: tests, the benchmarks' own programs, the units.
	"internal/layout":    nil,
	"internal/testsmtp":  nil,
	"internal/testbin":   {"spool"},
	"internal/testqueue": {"config", "rewrite", "sendmailcompat", "spool"},
	"internal/testoauth": nil,
	"e2e":                nil,
	"dist":               nil,
	"docs":               nil, // tests only: the manual pages against the program
	"packaging":          nil,
	"bench/arrivals":     nil,
	"bench/ceiling":      nil,
	"bench/fill":         {"spool"},
	"bench/floor":        nil,
	"bench/psspeak":      nil,
	"bench/spawn":        nil,
}

// neverDependOn: intake, the leaves and mailq never reach delivery,
// go-smtp or the OAuth client (golang.org/x/oauth2, which brings
// net/http), directly or through another package (Deps is the transitive
// closure, as `go list -deps` prints it). Running sendmail must not load an
// SMTP client, and a change to delivery must not touch how mail is
// accepted. relay's SMTP server (sendmail -bs, the listener: package smtpd,
// once in sendmailcompat) is its own code, not go-smtp's server, so the
// whole go-smtp module is ruled out here, not only its client.
var neverDependOn = map[string][]string{
	"sendmailcompat": {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"smtpd":          {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"rewrite":        {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"mailaddr":       {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"spool":          {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"config":         {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"mailq":          {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"route":          {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"failure":        {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"maillog":        {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	"sysexits":       {"relay", "oauth", "github.com/emersion/go-smtp", "golang.org/x/oauth2"},
	// The relay binary itself never links the OAuth flows: every sendmail
	// run would pay for the initialisation of net/http and x/oauth2.
	"":      {"oauth/flow", "golang.org/x/oauth2"},
	"relay": {"oauth/flow", "golang.org/x/oauth2"},
	"oauth": {"oauth/flow", "golang.org/x/oauth2"},
}

func TestImportsFollowTheLayout(t *testing.T) {
	pkgs := modulePackages(t)
	byPath := map[string]listedPackage{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	violations := map[string]string{}
	for _, p := range pkgs {
		name := rel(p.ImportPath)
		allowed, known := allowedImports[name]
		if !known {
			t.Errorf("package %q is not in allowedImports: place it in the layout", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			r := rel(imp)
			if r == imp { // outside the module
				continue
			}
			if !slices.Contains(allowed, r) && !slices.Contains(allowed, "*") {
				v := fmt.Sprintf("%s imports %s", display(name), display(r))
				violations[v] = v
			}
		}
		for _, forbidden := range neverDependOn[name] {
			if slices.ContainsFunc(p.Deps, matches(forbidden)) {
				key := fmt.Sprintf("%s depends on %s", display(name), forbidden)
				violations[key] = fmt.Sprintf("%s (through %s)", key, through(p, byPath, forbidden))
			}
		}
	}
	reportViolations(t, violations)
}

// matches reports whether an import path is forbidden (a package of the
// module relative to it, or an outside path) or a package below it.
func matches(forbidden string) func(path string) bool {
	return func(path string) bool {
		r := rel(path)
		return r == forbidden || strings.HasPrefix(r, forbidden+"/")
	}
}

// through names the direct imports of p that bring forbidden in, so that
// a new violation says where to look.
func through(p listedPackage, byPath map[string]listedPackage, forbidden string) string {
	var via []string
	for _, imp := range p.Imports {
		if matches(forbidden)(imp) || slices.ContainsFunc(byPath[imp].Deps, matches(forbidden)) {
			via = append(via, display(rel(imp)))
		}
	}
	return strings.Join(via, ", ")
}

// display names the root package "main" in messages.
func display(rel string) string {
	if rel == "" {
		return "main"
	}
	return rel
}
