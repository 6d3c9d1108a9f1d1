package packaging_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testoauth"
)

// TestDeb_OAuthHelperGetsAToken: the package ships relay's OAuth helper
// where the packaged relay looks for it (/usr/libexec/relay), so `relay
// oauth login` on the installed system gets a token from an authorization
// server (the test's, on the shared loopback), stores it as the daemon
// user, and prints no token.
func TestDeb_OAuthHelperGetsAToken(t *testing.T) {
	t.Parallel()
	srv := testoauth.New(t, testoauth.Script{ClientID: "relay-pkg", ClientSecret: "pkg-client-secret"})
	s := newSystem(t)
	s.installRelay()
	conf := fmt.Sprintf(`[[smarthost]]
name     = "app"
host     = "127.0.0.1"
port     = 2587
username = "robot@example.test"

[smarthost.oauth]
provider           = "generic"
flow               = "client_credentials"
client_id          = "relay-pkg"
client_secret_file = "/etc/relay/app-client.secret"
token_url          = %q
`, srv.URL+"/token")
	s.must(`cat >/etc/relay/relay.toml <<'EOF'
` + conf + `EOF
printf 'pkg-client-secret\n' >/etc/relay/app-client.secret
chown root:relay /etc/relay/app-client.secret
chmod 0640 /etc/relay/app-client.secret`)

	out, err := s.run("relay oauth login app 2>&1")
	if err != nil {
		t.Fatalf("relay oauth login app on the installed system: %v\n%s", err, out)
	}
	if n := srv.Count("client_credentials"); n != 1 {
		t.Errorf("the authorization server saw %d client_credentials requests, want 1\n%s", n, out)
	}
	if got := s.must("stat -c '%U %a' /var/spool/relay/oauth/app.json"); got != "relay 600\n" {
		t.Errorf("the token file is %q, want the daemon user's, mode 600", got)
	}
	status, err := s.run("relay oauth status app 2>&1")
	if err != nil {
		t.Errorf("relay oauth status app after the login: %v\n%s", err, status)
	}
	for _, tok := range srv.Issued() {
		if strings.Contains(out+status, tok) {
			t.Errorf("a token appears in the output of relay oauth:\n%s\n%s", out, status)
		}
	}
}
