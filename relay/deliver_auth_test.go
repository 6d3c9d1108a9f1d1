package relay_test

// AUTH during a delivery: the mechanism chosen, lenient LOGIN prompts, and
// an AUTH that did not end in 235.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// TestAuth_Login_AcceptsAnyPromptText: AUTH LOGIN answers the first
// challenge with the user and the second with the password, whatever they
// say.
func TestAuth_Login_AcceptsAnyPromptText(t *testing.T) {
	for _, prompts := range [][]string{
		{"Username:", "Password:"},
		{"User Name\x00", "Password\x00"},
		{"Benutzername:", "Passwort:"},
		{"", ""},
		{"username:", "password:"},
	} {
		t.Run(fmt.Sprintf("%q", prompts), func(t *testing.T) {
			srv := plainAuthServer(t, testsmtp.ServerConfig{AuthMechs: []string{"LOGIN"}, LoginPrompts: prompts})
			h := newHarness(t, withAuth(smarthost(srv.Port, "none")))
			id := h.enqueue(content, rcptA)
			h.run()
			if env := h.read(id); env != nil {
				t.Fatalf("not delivered: %+v", env.Recipients)
			}
			a := srv.Auths()
			if len(a) != 1 || a[0].Mech != "LOGIN" || a[0].User != testUser || a[0].Pass != testPass {
				t.Errorf("server saw %+v", a)
			}
		})
	}
}

// TestAuth_ChoosesMechanism: PLAIN when both are offered and auth is not
// set; the configured one otherwise.
func TestAuth_ChoosesMechanism(t *testing.T) {
	for _, tc := range []struct{ auth, want string }{{"", "PLAIN"}, {"login", "LOGIN"}, {"plain", "PLAIN"}} {
		t.Run("auth="+tc.auth, func(t *testing.T) {
			srv := plainAuthServer(t, testsmtp.ServerConfig{AuthMechs: []string{"LOGIN", "PLAIN"}})
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.Auth = tc.auth
			h := newHarness(t, sh)
			h.enqueue(content, rcptA)
			if st := h.run(); st.Delivered != 1 {
				t.Errorf("stats %+v", st)
			}
			a := srv.Auths()
			if len(a) != 1 || a[0].Mech != tc.want || a[0].User != testUser || a[0].Pass != testPass {
				t.Errorf("server saw %+v, want %s", a, tc.want)
			}
		})
	}
}

// TestAuth_Unavailable_DefersWithClearReason: no AUTH offered while a
// username is configured, or not the configured mechanism: deferred,
// nothing sent.
func TestAuth_Unavailable_DefersWithClearReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mechs  []string
		auth   string
		reason string
	}{
		{"NoAuthOffered", []string{}, "", "does not offer AUTH"},
		{"ForcedLoginNotOffered", []string{"PLAIN"}, "login", "LOGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := plainAuthServer(t, testsmtp.ServerConfig{AuthMechs: tc.mechs})
			sh := withAuth(smarthost(srv.Port, "none"))
			sh.Auth = tc.auth
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, tc.reason)
			if len(srv.Auths()) != 0 || len(srv.Mails()) != 0 {
				t.Errorf("server saw AUTH %v MAIL %v", srv.Auths(), srv.Mails())
			}
		})
	}
}

// TestAuth_WithoutReply235_IsNotAuthenticated: only 235 ends AUTH
// successfully; a server that asks again after the password or answers
// something else gets neither MAIL nor the message.
func TestAuth_WithoutReply235_IsNotAuthenticated(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name string
		mech string
		auth func(step int, line string) string // reply to the step-th AUTH line (0: the AUTH command)
	}{
		{"LoginThirdChallenge", "LOGIN", func(step int, _ string) string {
			return "334 " + b64([]string{"Username:", "Password:", "Password:", "Password:"}[min(step, 3)])
		}},
		{"LoginAnswered250", "LOGIN", func(step int, _ string) string {
			if step < 2 {
				return "334 " + b64([]string{"Username:", "Password:"}[step])
			}
			return "250 2.0.0 Ok"
		}},
		{"PlainChallengeAfterResponse", "PLAIN", func(step int, _ string) string { return "334 " }},
		{"PlainAnswered250", "PLAIN", func(step int, _ string) string { return "250 2.7.0 Authentication successful" }},
		{"PlainAnswered334Garbage", "PLAIN", func(step int, _ string) string { return "334 not base64 at all!" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := -1
			inAuth := false
			srv := testsmtp.NewRawServer(t, testsmtp.SMTPReplies([]string{"AUTH " + tc.mech}, map[string]func(string) string{
				"AUTH": func(l string) string { inAuth = true; step = 0; return tc.auth(0, l) },
				"*": func(l string) string {
					if l == "*" {
						inAuth = false
						return "501 5.7.0 Authentication aborted"
					}
					if inAuth {
						step++
						return tc.auth(step, l)
					}
					return "502 5.5.2 Error: command not recognized"
				},
			}))
			sh := withAuth(smarthost(srv.Port, "none"))
			c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
			if err == nil {
				c.Close()
				t.Fatalf("Dial succeeded; server saw %q", srv.Lines())
			}
			var f *relay.Failure
			if !errors.As(err, &f) || f.Stage != relay.StageAuth || f.Permanent() {
				t.Errorf("error %v (%#v), want a temporary auth failure", err, f)
			}
			if strings.Contains(err.Error(), testPass) {
				t.Errorf("error %q contains the password", err)
			}
			for _, c := range srv.Commands() {
				if c == "MAIL" || c == "RCPT" || c == "DATA" {
					t.Errorf("server got %s after an AUTH without 235: %q", c, srv.Lines())
				}
			}

			// And through the runner: deferred, still queued.
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "")
		})
	}
}
