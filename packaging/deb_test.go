package packaging_test

// The Debian package on a throwaway bookworm system (system_test.go): each
// test installs it in a fresh copy of the root and proves one point of
// what an administrator expects.

import (
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/relaymail/relay/spool"
)

const spoolDir = "/var/spool/relay" // config.SystemSpool

// The MTAs apt would otherwise pick for bsd-mailx's and cron's
// mail-transport-agent.
var otherMTAs = regexp.MustCompile(`(?m)^ii +(exim4\S*|postfix\S*|nullmailer|dma|msmtp-mta|sendmail\S*|opensmtpd|ssmtp)\s`)

func TestDeb_InstallsAndMailxCronPullNoOtherMTA(t *testing.T) {
	t.Parallel()
	// Without ca-certificates and passwd: apt must resolve them.
	s := newBareSystem(t)
	out := s.installRelay()
	if !strings.Contains(out, "Setting up relay (") || !strings.Contains(out, "Setting up ca-certificates (") {
		t.Fatalf("apt-get install relay.deb did not set up relay and its dependency ca-certificates:\n%s", out)
	}
	out = s.must("apt-get install -y -q bsd-mailx cron 2>&1")
	if strings.Contains(out, "exim4") || strings.Contains(out, "postfix") {
		t.Errorf("installing bsd-mailx and cron after relay mentions another MTA:\n%s", out)
	}
	list := s.must("dpkg -l")
	if m := otherMTAs.FindAllString(list, -1); len(m) > 0 {
		t.Errorf("another MTA got installed: %q", m)
	}
	for _, want := range []string{"ii  relay ", "ii  bsd-mailx ", "ii  cron "} {
		if !strings.Contains(list, want) {
			t.Errorf("dpkg -l has no %q line", want)
		}
	}
	if got := strings.TrimSpace(s.must("readlink -f /usr/sbin/sendmail")); got != "/usr/sbin/relay" {
		t.Errorf("/usr/sbin/sendmail is %s after bsd-mailx and cron, want relay", got)
	}
}

// modeBits is a mode as stat -c %a prints it (octal, with setgid and
// sticky as 2000 and 1000).
func modeBits(m fs.FileMode) uint64 {
	v := uint64(m.Perm())
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// statLine parses "MODE USER GROUP" from stat -c '%a %U %G'.
func statLine(t *testing.T, line string) (mode uint64, owner string) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("stat printed %q", line)
	}
	mode, err := strconv.ParseUint(f[0], 8, 32)
	if err != nil {
		t.Fatal(err)
	}
	return mode, f[1] + ":" + f[2]
}

func TestDeb_SendmailIsRelayWithTheSpoolOfRelayInstall(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.installRelay()

	for _, l := range []string{"/usr/sbin/sendmail", "/usr/lib/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases"} {
		if got := strings.TrimSpace(s.must("readlink -f " + l)); got != "/usr/sbin/relay" {
			t.Errorf("%s resolves to %s, want /usr/sbin/relay", l, got)
		}
	}
	// relay version prints the package's version: both come from
	// build.sh's one string.
	pkgVersion := strings.TrimSpace(s.must("dpkg-query -W -f '${Version}' relay"))
	if got := strings.TrimSpace(s.must("relay version")); got != "relay "+pkgVersion {
		t.Errorf("relay version says %q, the package is %q", got, pkgVersion)
	}

	// The account relay install makes: a system user with its group,
	// home the spool, no login.
	pw := strings.Split(strings.TrimSpace(s.must("getent passwd relay")), ":")
	if len(pw) != 7 || pw[5] != spoolDir || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("user relay: %q, want home %s and shell /usr/sbin/nologin", pw, spoolDir)
	}
	if uid, _ := strconv.Atoi(pw[2]); uid >= 1000 || uid == 0 {
		t.Errorf("user relay has uid %d, want a system uid", uid)
	}
	if gr := strings.TrimSpace(s.must("id -gn relay")); gr != "relay" {
		t.Errorf("relay's group is %q", gr)
	}
	for _, d := range spool.SystemDirs(spoolDir) {
		mode, owner := statLine(t, s.must("stat -c '%a %U %G' "+d.Path))
		if mode != modeBits(d.Mode) || owner != "relay:relay" {
			t.Errorf("%s: mode %o owner %s, relay install makes %s relay:relay", d.Path, mode, owner, spool.ModeString(d.Mode))
		}
	}
	// And relay install itself, run again, finds nothing to change.
	if out := s.must("relay install --package --dry-run"); strings.TrimSpace(out) != "relay install: everything is in place" {
		t.Errorf("relay install --dry-run after the package:\n%s", out)
	}

	// relay check with the daemon running (as systemd would run it): the
	// configuration and the spool are right; what is missing is the one
	// thing only the administrator knows, the smarthost (where root's
	// mail goes is reported once there is one).
	out, err := s.run(`runuser -u relay -- relay daemon >/dev/null 2>&1 &
for i in $(seq 50); do relay check >/tmp/check 2>&1 && ! grep -q 'no relay daemon' /tmp/check && break; sleep 0.2; done
relay check 2>&1`)
	if err != nil {
		t.Fatalf("relay check: %v\n%s", err, out)
	}
	if !strings.Contains(out, "configuration /etc/relay/relay.toml: OK") {
		t.Errorf("relay check does not find the configuration OK:\n%s", out)
	}
	smarthost := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.Contains(line, "warning: no [[smarthost]] configured"):
			smarthost = true
		case strings.HasPrefix(line, "configuration "), strings.HasPrefix(line, "spool "+spoolDir+": 0 message"):
		default:
			t.Errorf("relay check reports %q", line)
		}
	}
	if !smarthost {
		t.Errorf("relay check does not report the missing smarthost:\n%s", out)
	}
}

func TestDeb_UserSubmitsWithMailAndCannotReadTheQueue(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.installRelay()
	s.must("apt-get install -y -q bsd-mailx 2>&1 && useradd -m alice")

	if out, err := s.run(`su alice -c 'echo "hello from alice" | mail -s test root' 2>&1`); err != nil {
		t.Fatalf("alice's mail -s test root: %v\n%s", err, out)
	}
	// The drop waits in the maildrop (no runner in the chroot): alice's,
	// group relay, 0640, whatever her umask.
	drop := strings.TrimSpace(s.must("stat -c '%a %U %G' " + spoolDir + "/maildrop/*"))
	if mode, owner := statLine(t, drop); mode != 0o640 || owner != "alice:relay" {
		t.Errorf("alice's drop: mode %o owner %s, want 0640 alice:relay", mode, owner)
	}
	for _, cmd := range []string{"mailq", "ls " + spoolDir + "/maildrop", "ls " + spoolDir + "/queue", "cat " + spoolDir + "/maildrop/*"} {
		if out, err := s.run(`su alice -c '` + cmd + `' 2>&1`); err == nil {
			t.Errorf("alice may %s:\n%s", cmd, out)
		}
	}

	// One pass, as relay-queue.service makes it: the pickup queues the
	// drop; with no smarthost it stays queued.
	s.must("runuser -u relay -- relay queue run >/dev/null 2>&1 || true")
	out := s.must("mailq")
	if !strings.Contains(out, "alice@"+hostName) || !strings.Contains(out, "root@"+hostName) || !strings.Contains(out, "1 Request") {
		t.Errorf("root's mailq does not list alice's message to root:\n%s", out)
	}
	queued := strings.TrimSpace(s.must("stat -c '%a %U %G' " + spoolDir + "/queue/*"))
	if mode, owner := statLine(t, queued); mode != 0o640 || owner != "relay:relay" {
		t.Errorf("queue file: mode %o owner %s, want 0640 relay:relay", mode, owner)
	}
	if out, err := s.run(`su alice -c 'cat ` + spoolDir + `/queue/*' 2>&1`); err == nil {
		t.Errorf("alice can read the queue file:\n%s", out)
	}
}

// fingerprint is what must not change in a file: content, mode, owner.
func (s *system) fingerprint(path string) string {
	s.t.Helper()
	return s.must("stat -c '%a %U %G %s' " + path + " && sha256sum " + path)
}

func TestDeb_ReinstallAndUpgradeKeepConfigurationAndSecrets(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	upgradePath, upgradeVersion := upgradeDeb(t)
	s.put(upgradePath, upgradeInRoot)
	s.installRelay()
	s.must(`printf '\n# edited by the administrator\nmax_message_size = "20MB"\n' >>/etc/relay/relay.toml
install -m 0640 -o root -g relay /dev/null /etc/relay/smarthost.secret
echo 's3cret' >/etc/relay/smarthost.secret`)
	files := []string{"/etc/relay/relay.toml", "/etc/relay/smarthost.secret"}
	before := map[string]string{}
	for _, f := range files {
		before[f] = s.fingerprint(f)
	}
	check := func(when string) {
		t.Helper()
		for _, f := range files {
			if got := s.fingerprint(f); got != before[f] {
				t.Errorf("%s changed %s:\nbefore %s\nafter  %s", f, when, before[f], got)
			}
		}
		for _, d := range spool.SystemDirs(spoolDir) {
			mode, owner := statLine(t, s.must("stat -c '%a %U %G' "+d.Path))
			if mode != modeBits(d.Mode) || owner != "relay:relay" {
				t.Errorf("%s %s: mode %o owner %s", when, d.Path, mode, owner)
			}
		}
	}

	// No prompt either: stdin is not a terminal, and dpkg would fail on
	// a conffile question.
	out := s.must("apt-get install -y -q --reinstall " + debInRoot + " </dev/null 2>&1")
	if !strings.Contains(out, "Setting up relay (") {
		t.Fatalf("reinstall:\n%s", out)
	}
	check("on reinstall")

	out = s.must("apt-get install -y -q " + upgradeInRoot + " </dev/null 2>&1")
	if !strings.Contains(out, "Setting up relay ("+upgradeVersion+")") {
		t.Fatalf("upgrade to %s:\n%s", upgradeVersion, out)
	}
	check("on upgrade")
	if got := strings.TrimSpace(s.must("relay version")); got != "relay "+upgradeVersion {
		t.Errorf("after the upgrade relay version says %q, want relay %s", got, upgradeVersion)
	}
	if strings.Contains(out, "relay.toml.dpkg-") || s.must("ls /etc/relay") != "relay.toml\nsmarthost.secret\n" {
		t.Errorf("the upgrade left other files in /etc/relay: %s", s.must("ls -a /etc/relay"))
	}
}

func TestDeb_PurgeKeepsQueuedMail(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.installRelay()
	s.must(`printf 'Subject: kept\n\nqueued before the purge\n' | sendmail -i root`)
	id := strings.TrimSpace(s.must("ls " + spoolDir + "/queue"))
	if len(id) != 15 {
		t.Fatalf("queue holds %q, want one message", id)
	}

	out := s.must("apt-get purge -y -q relay 2>&1")
	if !strings.Contains(out, "1 message is still in "+spoolDir) {
		t.Errorf("the purge does not say where and how many messages it kept:\n%s", out)
	}
	if got := strings.TrimSpace(s.must("ls " + spoolDir + "/queue")); got != id {
		t.Errorf("after the purge the queue holds %q, want %s", got, id)
	}
	if got := s.must("grep -c 'queued before the purge' " + spoolDir + "/queue/" + id); strings.TrimSpace(got) != "1" {
		t.Errorf("the message changed: %s", got)
	}
	// Its owner stays, so that the files are never orphaned to a uid a
	// new account could take.
	s.must("getent passwd relay")
	if out, err := s.run("test -e /etc/relay"); err == nil {
		t.Errorf("/etc/relay survived the purge: %s", out)
	}
	if out := s.must("dpkg-query -W -f '${db:Status-Abbrev}' relay 2>&1 || true"); strings.HasPrefix(out, "ii") || strings.HasPrefix(out, "rc") {
		t.Errorf("relay is %q after the purge", out)
	}
}

func TestDeb_PurgeWithEmptyQueueRemovesSpoolAndUser(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.installRelay()
	out := s.must("apt-get purge -y -q relay 2>&1")
	if strings.Contains(out, "still in") {
		t.Errorf("the purge of an empty spool says it kept mail:\n%s", out)
	}
	for _, gone := range []string{spoolDir, "/etc/relay", "/usr/sbin/relay", "/usr/sbin/sendmail",
		"/etc/systemd/system/multi-user.target.wants/relay.service"} {
		if _, err := s.run("test -e " + gone + " || test -L " + gone); err == nil {
			t.Errorf("%s is still there after the purge", gone)
		}
	}
	for _, db := range []string{"passwd", "group"} {
		if out, err := s.run("getent " + db + " relay"); err == nil {
			t.Errorf("%s relay survived the purge: %s", db, out)
		}
	}
	t.Log(out)
}

// TestDeb_LogrotateRotatesTheLogFile: the shipped /etc/logrotate.d/relay
// is valid for logrotate and rotates relay's log file as the relay user,
// making a new one relay can write (relay.service's LogsDirectory= makes
// /var/log/relay; without systemd the administrator does, as here).
func TestDeb_LogrotateRotatesTheLogFile(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.installRelay()
	s.must(`apt-get install -y -q logrotate 2>&1
install -d -o relay -g relay -m 0750 /var/log/relay
runuser -u relay -- sh -c 'umask 027; echo "id=1 status=queued" >/var/log/relay/relay.log'`)
	out, err := s.run("logrotate -v -f /etc/logrotate.d/relay 2>&1")
	if err != nil || strings.Contains(out, "error:") {
		t.Fatalf("logrotate /etc/logrotate.d/relay: %v\n%s", err, out)
	}
	got := s.must("cd /var/log/relay && stat -c '%n %a %U %G %s' relay.log relay.log.1")
	want := "relay.log 640 relay relay 0\nrelay.log.1 640 relay relay 19\n"
	if got != want {
		t.Errorf("after logrotate /var/log/relay holds:\n%swant:\n%s\nlogrotate said:\n%s", got, want, out)
	}
}
