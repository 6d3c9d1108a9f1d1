package config_test

import (
	"slices"
	"strings"
	"testing"
)

// TestLoad_RoutingAndConnectionKeys: recipients, helo_name (top level and
// per smarthost), source_address, ip_family and envelope_from_header load
// as written; bad values are reported each on its line.
func TestLoad_RoutingAndConnectionKeys(t *testing.T) {
	c, path, err := load(t, `helo_name = "mx1.example.com"
envelope_from_header = true

[[smarthost]]
name = "corp"
host = "10.1.2.10"
recipients = ["*@corp.example.com", "@.corp.example.com"]
helo_name = "[192.0.2.7]"
source_address = "192.0.2.7"
ip_family = "ipv4"

[[smarthost]]
host = "smtp.example.net"
ip_family = "ipv6"
source_address = "2001:db8::7"
`, 0o600)
	if err != nil {
		t.Fatalf("Load: %v", problems(t, err, path))
	}
	if c.HeloName != "mx1.example.com" || !c.EnvelopeFromHeader {
		t.Errorf("top level: helo_name %q, envelope_from_header %v", c.HeloName, c.EnvelopeFromHeader)
	}
	sh := c.Smarthosts[0]
	if !slices.Equal(sh.Recipients, []string{"*@corp.example.com", "@.corp.example.com"}) || sh.HeloName != "[192.0.2.7]" ||
		sh.SourceAddress != "192.0.2.7" || sh.IPFamily != "ipv4" {
		t.Errorf("smarthost[1] = %+v", sh)
	}
	if sh := c.Smarthosts[1]; sh.IPFamily != "ipv6" || sh.SourceAddress != "2001:db8::7" || sh.HeloName != "" {
		t.Errorf("smarthost[2] = %+v", sh)
	}

	_, path, err = load(t, `helo_name = "not a name"

[[smarthost]]
host = "a.example"
recipients = ["corp.example.com", "@.corp.example.com", "x@*.example.com"]
helo_name = "under_score.example"
source_address = "host.example"
ip_family = "ip6"

[[smarthost]]
host = "b.example"
ip_family = "ipv6"
source_address = "192.0.2.1"

[[smarthost]]
host = "c.example"
recipients = [] # like senders = []: every recipient
`, 0o600)
	got := problems(t, err, path)
	want := []string{
		`FILE:1: helo_name: "not a name" is not a host name or an address literal such as [192.0.2.1]`,
		`FILE:5: smarthost[1].recipients[1]: "corp.example.com" is not a recipient pattern`,
		`FILE:5: smarthost[1].recipients[3]: "x@*.example.com" is not a recipient pattern`,
		`FILE:6: smarthost[1].helo_name: "under_score.example" is not a host name`,
		`FILE:7: smarthost[1].source_address: "host.example" is not an IP address of this host`,
		`FILE:8: smarthost[1].ip_family: must be "any", "ipv4" or "ipv6", not "ip6"`,
		`FILE:13: smarthost[2].source_address: 192.0.2.1 is not an address of ip_family "ipv6"`,
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: %q, want it to begin %q", i, got[i], want[i])
		}
	}
}

// TestCheck_ProxyMakesSourceAndFamilyVoid: source_address and ip_family
// are ignored through a proxy (here inherited from the top level), and
// relay check says so (ip_family = "any" changes nothing: no warning); a configuration where every smarthost has
// recipients is warned about (other recipients have no route).
func TestCheck_ProxyMakesSourceAndFamilyVoid(t *testing.T) {
	c, path, err := load(t, `proxy = "socks5://127.0.0.1:9050"

[[smarthost]]
host = "a.example"
source_address = "192.0.2.7"
ip_family = "ipv4"
recipients = ["@corp.example.com"]

[[smarthost]]
host = "b.example"
ip_family = "any"
recipients = ["@example.net"]
`, 0o600)
	if err != nil {
		t.Fatalf("Load: %v", problems(t, err, path))
	}
	var got []string
	for _, p := range c.Check() {
		if p.Warning && p.Key != "rewrite.aliases" {
			got = append(got, strings.ReplaceAll(p.String(), path, "FILE"))
		}
	}
	want := []string{
		"FILE:5: warning: smarthost[1].source_address: ignored: the connection goes through the proxy socks5://127.0.0.1:9050, which chooses its own source address",
		"FILE:6: warning: smarthost[1].ip_family: ignored: the connection goes through the proxy socks5://127.0.0.1:9050, which resolves a.example and chooses the family itself",
		"FILE:7: warning: smarthost[1].recipients: every [[smarthost]] has recipients: mail to any other recipient has no smarthost and waits in the queue (add a [[smarthost]] without recipients)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
