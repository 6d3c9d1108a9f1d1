package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// LoadLenient is Load for the paths that must never refuse a message
// because of the configuration (SPEC section 12): sendmail, sendmail -bs,
// the daemon's SMTP listener and maildrop pickup, and the runners, which
// hold mail instead of delivering it. It always returns a configuration;
// when the file has errors, Problems lists them (Broken returns them as an
// error) and the configuration is the best that can be made of the file:
//
//   - a file that cannot be read: the defaults, with the default spool;
//   - a file that is not valid TOML: the defaults, with the spool of a
//     top-level line spool = "/absolute/path" when one can be found in the
//     text before the first [table] (else the default spool): the only key
//     read from a broken text, because the spool decides where the message
//     waits, and nothing else is worth a guess;
//   - a file with other errors (an unknown key, a bad value, an inline
//     password in a file others can read): every key as written, except
//     that a key of intake with an error itself takes its default (spool,
//     domain, sizes, [rewrite], [log] to, [daemon]; a bad entry of listen
//     or listen_networks is left out, the good ones kept).
//
// Such a configuration is good for queueing only: delivery with it holds
// the mail (see HoldReason) until the file is fixed.
func LoadLenient(loc Location) *Config {
	if loc.DefaultSpool == "" {
		loc.DefaultSpool = SystemSpool
	}
	c, err := Load(loc)
	if err == nil {
		return c
	}
	probs, ok := err.(*Errors)
	if !ok {
		probs = &Errors{{File: loc.Path, Msg: err.Error()}}
	}
	if c == nil {
		c = beforeSyntaxError(loc, *probs)
	} else {
		c.resetBroken(*probs)
	}
	c.Problems = *probs
	return c
}

// Broken returns the configuration's errors (an *Errors) when it was made
// by LoadLenient from a file with errors, else nil.
func (c *Config) Broken() error {
	if len(c.Problems) == 0 {
		return nil
	}
	e := c.Problems
	return &e
}

// HoldReason says why mail is not delivered with a broken configuration,
// for mailq, the log and relay check: "the configuration FILE has errors:
// FIRST (and N more: relay check lists them)". Problems never quote a
// secret, so neither does the reason.
func (c *Config) HoldReason() string {
	if len(c.Problems) == 0 {
		return ""
	}
	p := c.Problems[0]
	p.File = ""
	first := p.String()
	if p.Line > 0 {
		first = fmt.Sprintf("line %d: %s", p.Line, first)
	}
	s := fmt.Sprintf("the configuration %s has errors: %s", c.Path, first)
	if n := len(c.Problems) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more: relay check lists them)", n)
	}
	return s
}

// beforeSyntaxError makes the best of a file that is not valid TOML (or
// cannot be read: the defaults): the text before the line of the syntax
// error, when it is valid TOML itself, gives every key it holds (those in
// error take their defaults); a spool line anywhere before the first
// table gives the spool if that text did not.
func beforeSyntaxError(loc Location, probs Errors) *Config {
	c := Default()
	c.Path = loc.Path
	c.DefaultSpool = loc.DefaultSpool
	c.Spool = loc.DefaultSpool
	data, err := os.ReadFile(loc.Path)
	if err != nil {
		return c
	}
	c.Loaded = true
	if len(probs) == 1 && probs[0].Line > 1 {
		lines := strings.SplitAfter(string(data), "\n")
		prefix := strings.Join(lines[:min(probs[0].Line-1, len(lines))], "")
		if pc, err := parse(loc, []byte(prefix), 0o600); pc != nil {
			if e, ok := err.(*Errors); ok {
				pc.resetBroken(*e)
			}
			c = pc
		}
	}
	if !c.defined["spool"] {
		if sp := findSpool(data); sp != "" {
			c.Spool = sp
		}
	}
	return c
}

// spoolLine is a top-level spool = "…" or '…' line.
var spoolLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\s*spool\s*=\s*(?:"([^"\\]*)"|'([^']*)')\s*(?:#.*)?$`)
})

// findSpool looks for the spool in the text of a file that is not valid
// TOML: a spool line before the first table header, naming an absolute
// path. "" when there is none, or more than one.
func findSpool(data []byte) string {
	found := ""
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "[") {
			break
		}
		m := spoolLine().FindStringSubmatch(strings.TrimSuffix(line, "\r"))
		if m == nil {
			continue
		}
		p := m[1] + m[2]
		if found != "" || !filepath.IsAbs(p) {
			return ""
		}
		found = filepath.Clean(p)
	}
	return found
}

// intakeKeys are the keys intake and the runners' set-up use: one with an
// error takes its default in a lenient configuration.
var intakeKeys = []string{
	"spool", "domain", "max_message_size", "min_free_space",
	"rewrite.aliases", "rewrite.sender_map", "rewrite.sender_login_map",
	"rewrite.from_header", "rewrite.header", "log.to",
	"daemon.user", "daemon.detached_delivery", "daemon.rescan",
	"daemon.listen", "daemon.listen_networks", "metrics.listen",
}

// resetBroken gives every intake key that has an error its default.
func (c *Config) resetBroken(probs Errors) {
	d := Default()
	for _, key := range intakeKeys {
		for _, p := range probs {
			if p.Warning || !(p.Key == key || strings.HasPrefix(p.Key, key+".") || strings.HasPrefix(p.Key, key+"[")) {
				continue
			}
			switch key {
			case "spool":
				c.Spool = c.DefaultSpool
			case "domain":
				c.Domain = d.Domain
			case "max_message_size":
				c.MaxMessageSize = d.MaxMessageSize
			case "min_free_space":
				c.MinFreeSpace = d.MinFreeSpace
			case "rewrite.aliases":
				c.Rewrite.Aliases = d.Rewrite.Aliases
			case "rewrite.sender_map":
				c.Rewrite.SenderMap = d.Rewrite.SenderMap
			case "rewrite.sender_login_map":
				c.Rewrite.SenderLoginMap = d.Rewrite.SenderLoginMap
			case "rewrite.from_header":
				c.Rewrite.FromHeader = d.Rewrite.FromHeader
			case "rewrite.header":
				c.Rewrite.Header = nil
			case "log.to":
				c.Log.To = d.Log.To
			case "daemon.user":
				c.Daemon.User = d.Daemon.User
			case "daemon.detached_delivery":
				c.Daemon.DetachedDelivery = d.Daemon.DetachedDelivery
			case "daemon.rescan":
				c.Daemon.Rescan = d.Daemon.Rescan
			case "daemon.listen":
				c.Daemon.Listen = keep(c.Daemon.Listen, validListen)
			case "daemon.listen_networks":
				c.Daemon.ListenNetworks = keep(c.Daemon.ListenNetworks, validNetwork)
			case "metrics.listen":
				c.Metrics.Listen = ""
			}
		}
	}
}

func keep(vals []string, ok func(string) bool) []string {
	var out []string
	for _, v := range vals {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out
}

func validListen(l string) bool {
	_, port, err := net.SplitHostPort(l)
	n, perr := strconv.Atoi(port)
	return err == nil && perr == nil && n >= 1 && n <= 65535
}

func validNetwork(n string) bool {
	_, err := netip.ParsePrefix(n)
	return err == nil
}
