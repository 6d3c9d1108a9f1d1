package relay_test

// The password: password_command and password_file, and that the secret
// never reaches the log or an error.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/relaymail/relay/internal/testsmtp"
	"github.com/relaymail/relay/relay"
	"github.com/relaymail/relay/spool"
)

// writeScript writes an executable shell script for password_command.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasswordCommand_FirstLineReachesServer(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{Password: "cmd-s3cret-9"})
	sh := smarthost(srv.Port, "none")
	sh.Username = testUser
	sh.PasswordCommand = []string{writeScript(t, "echo cmd-s3cret-9\necho second line\n")}
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Error("not delivered")
	}
	if a := srv.Auths(); len(a) != 1 || a[0].Pass != "cmd-s3cret-9" || a[0].User != testUser {
		t.Errorf("server saw %+v", a)
	}
	if strings.Contains(h.log.String(), "cmd-s3cret-9") {
		t.Errorf("log contains the password:\n%s", h.log.String())
	}
}

func TestPasswordCommand_Failing_DefersWithoutLeakingOutput(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	sh := smarthost(srv.Port, "none")
	sh.Username = testUser
	sh.PasswordCommand = []string{writeScript(t, "echo stdout-leak-1\necho stderr-leak-2 >&2\nexit 3\n")}
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	id2 := h.enqueue(content, rcptB)
	st := h.run()
	if st.Deferred != 2 {
		t.Errorf("stats %+v, want both deferred", st)
	}
	env := h.mustRead(id)
	wantStatuses(t, env, map[string]spool.Status{rcptA: spool.Pending}, "password_command")
	h.mustRead(id2)
	for where, s := range map[string]string{"log": h.log.String(), "reason": rcpt(env, rcptA).Reason(), "last error": env.LastError()} {
		for _, leak := range []string{"stdout-leak-1", "stderr-leak-2"} {
			if strings.Contains(s, leak) {
				t.Errorf("%s contains the command's output %q: %s", where, leak, s)
			}
		}
	}
	if len(srv.Auths()) != 0 || len(srv.Mails()) != 0 {
		t.Errorf("server saw AUTH %v MAIL %v", srv.Auths(), srv.Mails())
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections for 2 messages, want 1", n)
	}
}

// TestPasswordCommand_Hanging_BoundedByTimeout: a password_command that
// does not finish (a script waiting on a child, as `pass` waits on gpg) is
// given up after PasswordCommandTimeout and the mail deferred.
func TestPasswordCommand_Hanging_BoundedByTimeout(t *testing.T) {
	old := relay.PasswordCommandTimeout
	relay.PasswordCommandTimeout = 300 * time.Millisecond
	t.Cleanup(func() { relay.PasswordCommandTimeout = old })
	srv := plainAuthServer(t, testsmtp.ServerConfig{})
	sh := smarthost(srv.Port, "none")
	sh.Username = testUser
	// The shell's child keeps the command's stdout open after the shell
	// is killed.
	sh.PasswordCommand = []string{writeScript(t, "sleep 4\necho late-password\n")}
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	start := time.Now()
	h.run()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the pass took %v with PasswordCommandTimeout = %v: the command's child kept it waiting", d, relay.PasswordCommandTimeout)
	}
	wantStatuses(t, h.mustRead(id), map[string]spool.Status{rcptA: spool.Pending}, "password_command")
	if len(srv.Auths()) != 0 {
		t.Errorf("server saw AUTH %+v", srv.Auths())
	}
}

func TestPasswordFile_FirstLineIsPassword(t *testing.T) {
	srv := plainAuthServer(t, testsmtp.ServerConfig{Password: "file-s3cret"})
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("file-s3cret\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sh := smarthost(srv.Port, "none")
	sh.Username = testUser
	sh.PasswordFile = p
	h := newHarness(t, sh)
	id := h.enqueue(content, rcptA)
	h.run()
	if h.read(id) != nil {
		t.Errorf("not delivered; server saw %+v", srv.Auths())
	}
}

// TestSecrets_PasswordNeverInLogOrErrors runs deliveries that succeed and
// fail at every stage and greps everything relay says for the password.
func TestSecrets_PasswordNeverInLogOrErrors(t *testing.T) {
	cfgs := map[string]testsmtp.ServerConfig{
		"ok":       {},
		"auth535":  {AuthErr: smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")},
		"auth454":  {AuthErr: smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Try again")},
		"wrongpw":  {Password: "something-else"},
		"mail553":  {MailErr: map[string]*smtp.SMTPError{"*": smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "not owned by auth user")}},
		"rcpt550":  {RcptErr: map[string]*smtp.SMTPError{rcptA: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user")}},
		"data554":  {DataErr: smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Rejected")},
		"drop":     {DropAtDot: true},
		"loginOdd": {AuthMechs: []string{"LOGIN"}, LoginPrompts: []string{"Passwort:", "Username:"}},
	}
	for name, cfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			srv := plainAuthServer(t, cfg)
			sh := withAuth(smarthost(srv.Port, "none"))
			h := newHarness(t, sh)
			id := h.enqueue(content, rcptA)
			h.run()
			outputs := map[string]string{"log": h.log.String()}
			if env := h.read(id); env != nil {
				outputs["last error"] = env.LastError()
				for _, r := range env.Recipients {
					outputs["reason of "+r.Address] = r.Reason()
				}
			}
			c, err := relay.Dial(context.Background(), &sh, relay.DialOptions{HeloName: "relay.test"})
			if err != nil {
				outputs["Dial error"] = err.Error()
				outputs["Dial error %#v"] = fmt.Sprintf("%#v", err)
			} else {
				out, err := c.Send(&spool.Envelope{ID: "X", Sender: sender, Recipients: []spool.Recipient{{Address: rcptA, Status: spool.Pending}}}, sender, strings.NewReader(content), int64(len(content)))
				if err != nil {
					outputs["Send error"] = err.Error()
				}
				for _, r := range out.Results {
					if r.Err != nil {
						outputs["Send result"] = r.Err.Error() + " " + r.Err.ReplyLine()
					}
				}
				c.Close()
			}
			for where, s := range outputs {
				if strings.Contains(s, testPass) {
					t.Errorf("%s contains the password: %s", where, s)
				}
			}
		})
	}
}
