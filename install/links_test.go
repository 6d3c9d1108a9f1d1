package install_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/install"
)

// foreignMTA puts another MTA's sendmail (a file) and mailq (a link to its
// binary) under the prefix.
func foreignMTA(t *testing.T, prefix string) (sendmail, mailq string) {
	t.Helper()
	sendmail = filepath.Join(prefix, "/usr/sbin/sendmail")
	mailq = filepath.Join(prefix, "/usr/bin/mailq")
	for _, p := range []string{sendmail, mailq} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(sendmail, []byte("exim's sendmail"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/sbin/exim4", mailq); err != nil {
		t.Fatal(err)
	}
	return sendmail, mailq
}

// Without --force the install stops at another MTA's files and leaves
// them alone, in a dry run as in a real one.
func TestRun_ForeignMTAStopsWithoutForce(t *testing.T) {
	accountTools(t, false)
	name := absentUser(t)
	for _, dry := range []bool{true, false} {
		if !dry && os.Geteuid() != 0 {
			t.Log("a real install chowns the spool to the relay user: only the dry run is covered without root")
			continue
		}
		if !dry {
			name, _, _ = existingUser(t)
		}
		o, _ := options(t, name)
		o.DryRun = dry
		sendmail, mailq := foreignMTA(t, o.Prefix)

		err := install.Run(o)
		if err == nil || !strings.Contains(err.Error(), sendmail+" is a file (another MTA?)") || !strings.Contains(err.Error(), "--force") {
			t.Errorf("dry run %v: install over another MTA's sendmail: %v", dry, err)
		}
		if b, _ := os.ReadFile(sendmail); string(b) != "exim's sendmail" {
			t.Errorf("dry run %v: the other MTA's sendmail was replaced: %q", dry, b)
		}

		// With sendmail out of the way, the link named mailq stops it.
		os.Remove(sendmail)
		err = install.Run(o)
		if err == nil || !strings.Contains(err.Error(), mailq+" is a link to /usr/sbin/exim4 (another MTA?)") {
			t.Errorf("dry run %v: install over another MTA's mailq: %v", dry, err)
		}
		if target, _ := os.Readlink(mailq); target != "/usr/sbin/exim4" {
			t.Errorf("dry run %v: the other MTA's mailq now points to %q", dry, target)
		}
	}
}

func TestRun_ForceReplacesForeignMTA(t *testing.T) {
	accountTools(t, false)
	name, _, _ := existingUser(t)

	// A dry run says it would replace them, and does not.
	o, out := options(t, name)
	o.DryRun, o.Force = true, true
	sendmail, mailq := foreignMTA(t, o.Prefix)
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sendmail, mailq} {
		if !strings.Contains(out.String(), "would link "+p+" -> "+binPath+"\n") {
			t.Errorf("dry run with --force does not say it would replace %s:\n%s", p, out.String())
		}
	}
	if b, _ := os.ReadFile(sendmail); string(b) != "exim's sendmail" {
		t.Errorf("a dry run replaced the other MTA's sendmail: %q", b)
	}

	needRoot(t)
	o.DryRun = false
	out.Reset()
	if err := install.Run(o); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sendmail, mailq} {
		if !strings.Contains(out.String(), "\nlink "+p+" -> "+binPath+"\n") {
			t.Errorf("install --force does not report replacing %s:\n%s", p, out.String())
		}
		if target, err := os.Readlink(p); err != nil || target != binPath {
			t.Errorf("after install --force %s links to %q (%v), want %s", p, target, err, binPath)
		}
	}
}
