package config_test

import (
	"strings"
	"testing"
)

// TestHeaderRulePercent: a header rule value knows %h, %u and %% only; a
// typo such as %H would otherwise go out as written.
func TestHeaderRulePercent(t *testing.T) {
	_, path, err := load(t, `[[rewrite.header]]
action = "append"
name = "Subject"
value = " [%h by %u, 100%%]"
[[rewrite.header]]
action = "add"
name = "X-Relay-Host"
value = "%H"
[[rewrite.header]]
action = "add"
name = "X-Load"
value = "99%"
`, 0o600)
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.ReplaceAll(err.Error(), path, "FILE")
	want := "FILE:8: rewrite.header[2].value: unknown %H: use %h (host), %u (submitting user) or %% (a percent sign)\n" +
		"FILE:12: rewrite.header[3].value: unknown % at the end: use %h (host), %u (submitting user) or %% (a percent sign)"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
