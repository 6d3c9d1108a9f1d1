package sendmailcompat_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/sysexits"
)

func TestOpenSubmitter_MakesTheSpoolOnFirstUse(t *testing.T) {
	cfg := config.Default()
	cfg.Domain = "example.com"
	cfg.Rewrite.Aliases = ""
	cfg.Spool = filepath.Join(t.TempDir(), "spool")
	cfg.MaxMessageSize = 12345
	s, err := sendmailcompat.OpenSubmitter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Spool == nil || s.Drop || s.Domain != "example.com" || s.MaxMessageSize != 12345 || s.UID != os.Getuid() || s.User == "" {
		t.Errorf("submitter %+v", s)
	}
	if _, err := os.Stat(filepath.Join(cfg.Spool, "queue")); err != nil {
		t.Errorf("no queue made: %v", err)
	}
}

func TestOpenSubmitter_UnreadableAliasesIs75(t *testing.T) {
	cfg := config.Default()
	cfg.Domain = "example.com"
	cfg.Spool = filepath.Join(t.TempDir(), "spool")
	cfg.Rewrite.Aliases = t.TempDir() // a directory: exists, cannot be read as a file
	_, err := sendmailcompat.OpenSubmitter(cfg)
	if sysexits.Code(err, 0) != sysexits.TempFail || !strings.Contains(err.Error(), "try again when it is readable") {
		t.Errorf("err %v, want exit 75", err)
	}
}

func TestNewSubmitter_VerifiesWithoutASpool(t *testing.T) {
	cfg := config.Default()
	cfg.Domain = "example.com"
	cfg.Rewrite.Aliases = ""
	s := sendmailcompat.NewSubmitter(cfg)
	if s.Spool != nil {
		t.Fatal("a spool opened to verify addresses")
	}
	var out bytes.Buffer
	if err := s.Verify([]string{"alice"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "alice@example.com") {
		t.Errorf("alice not qualified with the domain: %q", out.String())
	}
}
