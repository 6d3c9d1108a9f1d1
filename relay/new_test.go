package relay_test

import (
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/maillog"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

func TestNewRunner_FromTheConfiguration(t *testing.T) {
	cfg := config.Default()
	cfg.Domain = "example.com"
	cfg.Rewrite.Aliases = ""
	cfg.Smarthosts = []config.Smarthost{{Name: "main", Password: "correct-horse-battery"}, {Name: "short", Password: "pw"}}
	sp, err := spool.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf testsmtp.LockedBuffer
	log := maillog.New(&buf)
	r := relay.NewRunner(cfg, sp, log)
	if r.Spool != sp || r.Config != cfg || r.Log != log || r.Domain != "example.com" || r.Now == nil || r.Rewrite == nil || r.HeloName == "" {
		t.Errorf("runner %+v", r)
	}
	log.Info("reason", "AUTH with correct-horse-battery and pw")
	if strings.Contains(buf.String(), "correct-horse-battery") || !strings.Contains(buf.String(), "pw") {
		t.Errorf("log %q: the long password must be masked, the short one left alone", buf.String())
	}
}

// TestHeloName_Order: helo_name, else the domain key (else the host's
// name: the host's, not asserted here).
func TestHeloName_Order(t *testing.T) {
	cfg := config.Default()
	cfg.Domain = "example.com"
	cfg.HeloName = "mx1.example.com"
	if got := relay.HeloName(cfg); got != "mx1.example.com" {
		t.Errorf("with helo_name: %q", got)
	}
	cfg.HeloName = ""
	if got := relay.HeloName(cfg); got != "example.com" {
		t.Errorf("with domain only: %q, want the domain", got)
	}
}
