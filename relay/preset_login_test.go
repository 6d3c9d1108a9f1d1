package relay_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/spool"
)

// TestPreset_Yandex_BareLogin_SendsAsTheAddress: Yandex documents its
// login without @yandex.ru. With preset = "yandex" and username = "robot"
// (host and port pointed at a test server: explicit keys override the
// preset), relay logs in as robot@yandex.ru and sends it as the envelope
// sender (the preset's rule), instead of a sender Yandex refuses with 553.
func TestPreset_Yandex_BareLogin_SendsAsTheAddress(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	path := filepath.Join(t.TempDir(), "relay.toml")
	text := "[[smarthost]]\npreset = \"yandex\"\nhost = \"127.0.0.1\"\nport = " + strconv.Itoa(srv.Port) +
		"\ntls = \"none\"\nusername = \"robot\"\npassword = \"" + testPass + "\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Location{Path: path, Required: true, DefaultSpool: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, cfg.Smarthosts[0])
	id := h.enqueueWith(content, func(e *spool.Envelope) { e.Sender = "root@host.example" }, rcptA)
	h.run()
	if env := h.read(id); env != nil {
		t.Fatalf("not delivered: %+v", env.Recipients)
	}
	if a := srv.Auths(); len(a) != 1 || a[0].User != "robot@yandex.ru" || a[0].Pass != testPass {
		t.Errorf("AUTH %+v, want robot@yandex.ru", a)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].From != "robot@yandex.ru" {
		t.Errorf("received %+v, want MAIL FROM robot@yandex.ru", m)
	}
}
