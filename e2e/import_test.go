package e2e_test

// relay import against the programs it replaces (issue 17, item 8): each
// sample configuration, rewritten to the e2e smarthost, first sends a
// message through the real program (msmtp, nullmailer, dma as Debian
// builds them, run by e2e/anchors.sh in a private mount namespace: they
// conflict with Postfix as packages), then `relay import` turns it into a
// relay.toml and relay sends the same message; the two deliveries must
// agree on envelope sender (Return-Path), recipients (Delivered-To) and
// From. Then --queue: mail the real program left queued is moved into
// relay's spool and delivered by relay.
//
// Gate: the smarthost, root, unshare and `anchors.sh fetch`; with
// RELAY_E2E=1 a failed fetch is a failure.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var importAnchorsErr error
var importAnchorsDone bool

func needImportAnchors(t *testing.T) {
	t.Helper()
	needHarness(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	if !importAnchorsDone {
		importAnchorsDone = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "bash", "anchors.sh", "fetch").CombinedOutput(); err != nil {
			importAnchorsErr = fmt.Errorf("bash e2e/anchors.sh fetch: %v\n%s", err, out)
		}
	}
	if importAnchorsErr != nil {
		if os.Getenv("RELAY_E2E") == "1" {
			t.Fatal(importAnchorsErr)
		}
		t.Skip(importAnchorsErr)
	}
}

// anchorRun runs CMD in PROG's namespace with the configuration in conf.
func anchorRun(t *testing.T, prog, conf string, stdin []byte, drain bool, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", append([]string{"anchors.sh", "run", prog, "--config", conf, "--"}, cmd...)...)
	c.Stdin = bytes.NewReader(stdin)
	if !drain {
		c.Env = append(os.Environ(), "ANCHORS_DRAIN=0")
	}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("anchors.sh run %s %v: %v\n%s", prog, cmd, err, out)
	}
	return string(out)
}

// envelope is what a delivery says about its envelope and From.
type envelope struct {
	sender     string   // Return-Path
	recipients []string // Delivered-To of each copy, sorted
	from       string   // the From header
}

// deliveredEnvelope waits for the copies of id and reads them.
func deliveredEnvelope(t *testing.T, id string, want int) envelope {
	t.Helper()
	var e envelope
	copies := waitCopies(t, time.Minute, id)[id]
	if len(copies) != want {
		t.Fatalf("%d copies of %s in the Maildir, want %d", len(copies), id, want)
	}
	for _, c := range copies {
		f, err := os.Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := strings.TrimRight(sc.Text(), "\r")
			if l == "" {
				break
			}
			k, v, _ := strings.Cut(l, ":")
			switch strings.ToLower(k) {
			case "return-path":
				e.sender = strings.TrimSpace(v)
			case "from":
				e.from = strings.TrimSpace(v)
			}
		}
		f.Close()
		e.recipients = append(e.recipients, c.deliveredTo)
	}
	slices.Sort(e.recipients)
	return e
}

func importMsg(prog, who, from string) (string, []byte) {
	id := fmt.Sprintf("import-%s-%s-%s@e2e.relay.test", prog, who, token()[:8])
	return id, []byte("From: " + from + "\nTo: someone@example.net, other@example.net\nSubject: import " + prog + " via " + who +
		"\nMessage-ID: <" + id + ">\n\nsent by " + who + "\n")
}

// anchorConfDir makes a directory the programs can read after dropping
// privileges (dma reads auth.conf as the group mail): workRoot is private.
func anchorConfDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "relay-import-conf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	os.Chmod(d, 0o755)
	return d
}

// importSample: per program, a realistic configuration written for the
// e2e smarthost into dir (its path), and the sendmail arguments used.
func importSample(t *testing.T, prog, dir string) (path string, args []string) {
	t.Helper()
	w := func(name, text string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	rcpts := []string{"someone@example.net", "other@example.net"}
	switch prog {
	case "msmtp":
		// The Yandex how-to's shape (defaults, an account, the default
		// naming it), with the e2e host and a pinned trust file instead
		// of tls_certcheck off.
		w("msmtprc", fmt.Sprintf(`# as the how-to has it, for the e2e smarthost
defaults
auth           on
tls            on
tls_starttls   on
tls_trust_file %s
logfile        /dev/null

account        e2e
host           %s
port           %s
from           %s
user           %s
password       %s

account default : e2e
`, env["SMARTHOST_CA"], env["SMARTHOST_NAME"], env["SMARTHOST_PORT_STARTTLS"], env["SMARTHOST_USER"], env["SMARTHOST_USER"], env["SMARTHOST_PASS"]), 0o600)
		// No -f: msmtp sends the account's from, as cron's mail does.
		return filepath.Join(dir, "msmtprc"), append([]string{"-i"}, rcpts...)
	case "nullmailer":
		w("remotes", fmt.Sprintf("# the smarthost, then a backup that is never needed\n%s smtp --port=%s --starttls --x509cafile=%s --user=%s --pass=%s\nbackup.invalid smtp --port=587 --starttls\n",
			env["SMARTHOST_NAME"], env["SMARTHOST_PORT_STARTTLS"], env["SMARTHOST_CA"], env["SMARTHOST_USER"], env["SMARTHOST_PASS"]), 0o600)
		w("me", "client.example.test\n", 0o644)
		w("defaultdomain", "example.test\n", 0o644)
		w("allmailfrom", env["SMARTHOST_USER"]+"\n", 0o644)
		w("pausetime", "5\n", 0o644)
		w("adminaddr", "ops@example.net\n", 0o644)
		return dir, append([]string{"-i", "-f", "alice@client.example.test"}, rcpts...)
	case "dma":
		// AUTHPATH by the directory's own path: the namespace sees it too.
		w("dma.conf", fmt.Sprintf(`# $DragonFly: src/etc/dma/dma.conf,v 1.2 2008/02/04 10:11:41 matthias Exp $
SMARTHOST %s
PORT %s
AUTHPATH %s
SECURETRANSFER
STARTTLS
FINGERPRINT %s
MAILNAME client.example.test
MASQUERADE %s
`, env["SMARTHOST_NAME"], env["SMARTHOST_PORT_STARTTLS"], filepath.Join(dir, "auth.conf"), strings.ToUpper(env["SMARTHOST_CERT_SHA256"]), env["SMARTHOST_USER"]), 0o644)
		w("auth.conf", fmt.Sprintf("%s|%s:%s\n", env["SMARTHOST_USER"], env["SMARTHOST_NAME"], env["SMARTHOST_PASS"]), 0o640)
		if g, err := user.LookupGroup("mail"); err == nil {
			gid, _ := strconv.Atoi(g.Gid)
			os.Chown(filepath.Join(dir, "auth.conf"), 0, gid) // as Debian's dma package has it
		}
		return filepath.Join(dir, "dma.conf"), append([]string{"-i", "-f", "alice@client.example.test"}, rcpts...)
	}
	t.Fatalf("no sample for %s", prog)
	return "", nil
}

// importedCase imports path into dir/relay and makes it a test case of
// its own: spool in dir, no detached delivery.
func importedCase(t *testing.T, prog, path, dir string) *tc {
	t.Helper()
	out := filepath.Join(dir, "relay")
	r := run(t, nil, relayBin, "import", prog, path, "--write", out)
	if r.Code != 0 {
		t.Fatalf("relay import %s %s: %v", prog, path, r)
	}
	t.Logf("relay import %s:\n%s", prog, r.Stderr)
	conf := filepath.Join(out, "relay.toml")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	// The spool is the test's; the rest is the import's, unchanged.
	text := fmt.Sprintf("spool = %q\n%s\n[daemon]\ndetached_delivery = false\n", filepath.Join(dir, "spool"), b)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", conf, text)
	return &tc{t: t, dir: dir, conf: conf}
}

func TestImport_SameDeliveryAsTheProgram(t *testing.T) {
	needImportAnchors(t)
	for _, prog := range []string{"msmtp", "nullmailer", "dma"} {
		t.Run(prog, func(t *testing.T) {
			dir := filepath.Join(workRoot, "import-"+prog+"-"+token()[:6])
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			conf := anchorConfDir(t)
			path, args := importSample(t, prog, conf)

			from := "Robot <" + env["SMARTHOST_USER"] + ">"
			idA, msgA := importMsg(prog, prog, from)
			anchorRun(t, prog, conf, msgA, true, append([]string{"sendmail"}, args...)...)
			want := deliveredEnvelope(t, idA, 2)

			c := importedCase(t, prog, path, dir)
			idB, msgB := importMsg(prog, "relay", from)
			r := run(t, bytes.NewReader(msgB), relayBin, append([]string{"-C", c.conf, "sendmail"}, args...)...)
			if r.Code != 0 {
				t.Fatalf("relay sendmail: %v", r)
			}
			if r, _ := c.queueRun(); r.Code != 0 {
				t.Fatalf("relay queue run: %v", r)
			}
			got := deliveredEnvelope(t, idB, 2)
			t.Logf("%s: sender %s, recipients %v, From %s; relay: sender %s, recipients %v, From %s",
				prog, want.sender, want.recipients, want.from, got.sender, got.recipients, got.from)
			if got.sender != want.sender || !slices.Equal(got.recipients, want.recipients) || got.from != want.from {
				t.Errorf("relay delivered sender %s, recipients %v, From %s\n%s delivered sender %s, recipients %v, From %s",
					got.sender, got.recipients, got.from, prog, want.sender, want.recipients, want.from)
			}
			c.expectEmptyQueue()
		})
	}
}

// anchorSpool is where PROG's queue is on the host.
func anchorSpool(t *testing.T, prog string) string {
	t.Helper()
	out, err := exec.Command("bash", "anchors.sh", "env", prog).Output()
	if err != nil {
		t.Fatalf("anchors.sh env %s: %v", prog, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "ANCHOR_SPOOL="); ok && v != "" {
			if prog == "nullmailer" {
				return filepath.Join(v, "queue")
			}
			return v
		}
	}
	t.Fatalf("anchors.sh env %s: no ANCHOR_SPOOL", prog)
	return ""
}

func anchorClear(t *testing.T, prog string) {
	if out, err := exec.Command("bash", "anchors.sh", "clear", prog).CombinedOutput(); err != nil {
		t.Errorf("anchors.sh clear %s: %v\n%s", prog, err, out)
	}
}

// The program's queue, left by the program itself (nullmailer with no
// reachable remote, dma with DEFER), moves into relay's spool with
// relay import --queue and relay delivers it: the sender the program
// would have used, both recipients, once each; the old queue is empty.
func TestImport_QueueOfTheProgram(t *testing.T) {
	needImportAnchors(t)
	for _, prog := range []string{"nullmailer", "dma"} {
		t.Run(prog, func(t *testing.T) {
			anchorClear(t, prog)
			t.Cleanup(func() { anchorClear(t, prog) })
			dir := filepath.Join(workRoot, "import-queue-"+prog+"-"+token()[:6])
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			conf := anchorConfDir(t)
			path, args := importSample(t, prog, conf)

			// The program queues and cannot deliver.
			hold := anchorConfDir(t)
			holdPath, _ := importSample(t, prog, hold)
			switch prog {
			case "nullmailer":
				os.WriteFile(filepath.Join(hold, "remotes"), []byte("127.0.0.1 smtp --port=1\n"), 0o600)
			case "dma":
				b, _ := os.ReadFile(holdPath)
				os.WriteFile(holdPath, append(b, "DEFER\n"...), 0o644)
			}
			id, m := importMsg(prog, prog+"-queue", "Robot <"+env["SMARTHOST_USER"]+">")
			anchorRun(t, prog, hold, m, false, append([]string{"sendmail"}, args...)...)
			q := anchorSpool(t, prog)
			before, _ := os.ReadDir(q)
			if len(before) == 0 {
				t.Fatalf("%s queued nothing in %s", prog, q)
			}

			c := importedCase(t, prog, path, dir)
			r := run(t, nil, relayBin, "-C", c.conf, "import", prog, path, "--queue-dir", q)
			if r.Code != 0 || !strings.Contains(r.Stderr, "1 message(s) moved") {
				t.Fatalf("relay import --queue: %v", r)
			}
			t.Logf("relay import --queue:\n%s", r.Stderr)
			if after, _ := os.ReadDir(q); len(after) != 0 {
				t.Errorf("%s's queue still holds %d file(s)", prog, len(after))
			}
			if r, _ := c.queueRun(); r.Code != 0 {
				t.Fatalf("relay queue run: %v", r)
			}
			got := deliveredEnvelope(t, id, 2)
			t.Logf("delivered: sender %s, recipients %v, From %s", got.sender, got.recipients, got.from)
			if got.sender != "<"+env["SMARTHOST_USER"]+">" || !slices.Equal(got.recipients, []string{"other@example.net", "someone@example.net"}) {
				t.Errorf("delivered sender %s recipients %v, want <%s> and both recipients", got.sender, got.recipients, env["SMARTHOST_USER"])
			}
			c.expectEmptyQueue()
		})
	}
}
