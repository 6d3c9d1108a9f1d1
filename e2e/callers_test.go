package e2e_test

// The real-callers tests: programs that send mail through /usr/sbin/sendmail
// (bsd-mailx, mutt, git send-email, PHP's mail()) run unmodified, as Debian
// packages them, against relay's sendmail; the test then reads relay's spool
// and checks the envelope and the message.
//
// The machine's /usr/sbin/sendmail belongs to Postfix (the test smarthost)
// and is never touched: each caller runs in a private mount namespace
//
//	unshare -m --propagation private sh -c 'mount --bind SRC /usr/sbin/sendmail && exec CALLER…'
//
// where SRC is, in turn,
//
//   - "recorded": a small sh script that writes down the argv the caller
//     passed and the bytes it sent (stdin, tee'd), then runs relay through a
//     symlink named sendmail; relay's stderr goes to a file, so the test can
//     check that relay printed nothing. The test asserts the exact argv, so
//     a caller that changes its command line is noticed.
//   - "bind-mounted": the relay binary itself, as an administrator installs
//     it; argv[0] is then /usr/sbin/sendmail and relay dispatches on its
//     base name. Anything relay prints reaches the caller.
//
// Both runs must queue the same envelope and message.
//
// Gate: these tests need root (mount namespaces), unshare(1) and the callers
// (sudo bash e2e/callers.sh install). When something is missing a test is
// skipped, unless RELAY_E2E=1 (as in CI), which makes it a failure. They do
// not need the smarthost: when the harness is down (and relay was therefore
// not built by TestMain) they build relay themselves.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/spool"
)

const callersHint = "install the callers first: sudo bash e2e/smarthost.sh install && sudo bash e2e/callers.sh install (RELAY_E2E=1 makes a missing caller a failure)"

// callerDomain is relay's `domain` in every caller test.
const callerDomain = "server1.example.test"

// needCaller skips (or, with RELAY_E2E=1, fails) the test unless it runs as
// root and every program it needs is there. A name with "::" is a Perl
// module; "git-send-email" is looked for in git's exec path.
func needCaller(t *testing.T, progs ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (for a private mount namespace)")
	}
	for _, p := range append([]string{"unshare", "mount", "sh", "tee"}, progs...) {
		if !haveCaller(p) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	hint := callersHint
	if len(missing) == 1 && os.Geteuid() != 0 {
		hint = "run the suite as root (RELAY_E2E=1 makes this a failure)"
	}
	if os.Getenv("RELAY_E2E") == "1" {
		t.Fatalf("RELAY_E2E=1 but missing: %s\n%s", strings.Join(missing, ", "), hint)
	}
	t.Skipf("missing: %s\n%s", strings.Join(missing, ", "), hint)
}

func haveCaller(p string) bool {
	switch {
	case strings.Contains(p, "::"):
		return exec.Command("perl", "-M"+p, "-e", "1").Run() == nil
	case p == "git-send-email":
		out, err := exec.Command("git", "--exec-path").Output()
		if err != nil {
			return false
		}
		fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "git-send-email"))
		return err == nil && fi.Mode().IsRegular()
	default:
		_, err := exec.LookPath(p)
		return err == nil
	}
}

// relayForCallers returns the relay binary: the suite's when TestMain built
// one, else RELAY_E2E_BIN, else a fresh build in the test's directory.
func relayForCallers(t *testing.T) string {
	t.Helper()
	if relayBin != "" {
		return relayBin
	}
	if b := os.Getenv("RELAY_E2E_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(t.TempDir(), "relay")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = ".." // the module root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// shQuote quotes s for sh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// callerRun is one caller invocation.
type callerRun struct {
	args  []string // the caller's command line
	stdin string
	dir   string   // working directory ("" = the run's own directory)
	env   []string // added to the environment
	conf  string   // added to relay.toml after spool and domain
}

// sendmailCall is one invocation of /usr/sbin/sendmail, as recorded.
type sendmailCall struct {
	argv   []string
	stdin  []byte // what the caller wrote to sendmail
	stderr string // what relay printed on stderr
}

// queuedMsg is one message in relay's spool.
type queuedMsg struct {
	*spool.Message
	content []byte
}

// callerOutcome is what a caller run left behind.
type callerOutcome struct {
	out   string // the caller's stdout and stderr
	calls []sendmailCall
	queue []queuedMsg
	dur   time.Duration
	conf  string // relay.toml of the run
}

// runCaller runs r in a private mount namespace with relay (recorded: the
// argv recorder in front of it) over /usr/sbin/sendmail, with its own
// relay.toml and spool, and returns the outcome. It fails the test when the
// caller does not exit 0.
func runCaller(t *testing.T, bin string, recorded bool, r callerRun) callerOutcome {
	t.Helper()
	d := t.TempDir()
	conf := filepath.Join(d, "relay.toml")
	spoolDir := filepath.Join(d, "spool")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "spool = %q\ndomain = %q\n%s", spoolDir, callerDomain, r.conf), 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(d, "home")
	callsDir := filepath.Join(d, "calls")
	for _, p := range []string{home, callsDir, filepath.Join(d, "bin")} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	src := bin
	if recorded {
		// relay through a link named sendmail: the same argv[0] dispatch
		// as the bind mount gives.
		link := filepath.Join(d, "bin", "sendmail")
		if err := os.Symlink(bin, link); err != nil {
			t.Fatal(err)
		}
		src = filepath.Join(d, "bin", "sendmail-recorder")
		script := "#!/bin/sh\n" +
			"# Records how the caller ran sendmail, then hands over to relay.\n" +
			"rec=" + shQuote(callsDir) + "/$$\n" +
			"for a in \"$0\" \"$@\"; do printf '%s\\0' \"$a\"; done >\"$rec.argv\"\n" +
			"tee \"$rec.stdin\" | " + shQuote(link) + " \"$@\" 2>\"$rec.stderr\"\n"
		if err := os.WriteFile(src, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /usr/sbin/sendmail && shift && exec "$@"`, "sh", src}, r.args...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(cleanEnv(), "RELAY_CONFIG="+conf, "HOME="+home, "LC_ALL=C.UTF-8",
		"GIT_CONFIG_NOSYSTEM=1", "MAILRC=/dev/null")
	cmd.Env = append(cmd.Env, r.env...)
	cmd.Dir = d
	if r.dir != "" {
		cmd.Dir = r.dir
	}
	cmd.Stdin = strings.NewReader(r.stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	o := callerOutcome{out: out.String(), dur: time.Since(start), conf: conf}
	// Whatever relay said reaches this output in the bind-mounted run: the
	// suite's last test searches it for passwords too.
	printedMu.Lock()
	printed.Write(out.Bytes())
	printedMu.Unlock()
	t.Logf("%s (%s) took %v", r.args[0], map[bool]string{true: "recorded", false: "bind-mounted"}[recorded], o.dur.Round(time.Millisecond))
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			t.Fatalf("%s exited %d (%v); output:\n%s", strings.Join(r.args, " "), ee.ExitCode(), ctx.Err(), o.out)
		}
		t.Fatalf("%s: %v (%v); output:\n%s", strings.Join(r.args, " "), err, ctx.Err(), o.out)
	}
	expectSystemSendmailIntact(t, bin, src)

	if recorded {
		o.calls = readCalls(t, callsDir)
	}
	sp, err := spool.Open(spoolDir)
	if err != nil {
		t.Fatalf("relay's spool: %v (the caller did not run relay?); caller output:\n%s", err, o.out)
	}
	ids, err := sp.IDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		m, err := sp.Read(id)
		if err != nil {
			t.Fatalf("queued message %s unreadable: %v", id, err)
		}
		f, err := sp.OpenContent(id)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, err = b.ReadFrom(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		o.queue = append(o.queue, queuedMsg{Message: m, content: b.Bytes()})
	}
	return o
}

// expectSystemSendmailIntact checks that the mount stayed in the namespace.
func expectSystemSendmailIntact(t *testing.T, ours ...string) {
	t.Helper()
	sys, err := os.Stat("/usr/sbin/sendmail")
	if err != nil {
		t.Fatalf("/usr/sbin/sendmail: %v", err)
	}
	for _, p := range ours {
		if fi, err := os.Stat(p); err == nil && os.SameFile(fi, sys) {
			t.Fatalf("/usr/sbin/sendmail outside the namespace is %s: the bind mount leaked", p)
		}
	}
}

func readCalls(t *testing.T, dir string) []sendmailCall {
	t.Helper()
	argvs, err := filepath.Glob(filepath.Join(dir, "*.argv"))
	if err != nil {
		t.Fatal(err)
	}
	var calls []sendmailCall
	for _, a := range argvs {
		base := strings.TrimSuffix(a, ".argv")
		raw, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		c := sendmailCall{argv: strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")}
		if c.stdin, err = os.ReadFile(base + ".stdin"); err != nil {
			t.Fatal(err)
		}
		stderr, err := os.ReadFile(base + ".stderr")
		if err != nil {
			t.Fatal(err)
		}
		c.stderr = string(stderr)
		calls = append(calls, c)
	}
	return calls
}

// ------------------------------------------------------ reading messages --

// hfield is one header field.
type hfield struct {
	name  string // as written
	raw   string // the whole field, its lines joined with "\n", no CR
	value string // unfolded, trimmed
}

// splitMessage cuts a message at its first empty line (LF or CRLF) into
// header fields and the body bytes exactly as they are.
func splitMessage(b []byte) ([]hfield, []byte) {
	var lines []string
	body := []byte(nil)
	rest := b
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			body = rest
			break
		}
		lines = append(lines, string(line))
	}
	var fields []hfield
	for _, l := range lines {
		if (l[0] == ' ' || l[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.raw += "\n" + l
			f.value += " " + strings.TrimSpace(l)
			continue
		}
		name, v, _ := strings.Cut(l, ":")
		fields = append(fields, hfield{name: name, raw: l, value: strings.TrimSpace(v)})
	}
	for i := range fields {
		fields[i].value = strings.TrimSpace(fields[i].value)
	}
	return fields, body
}

func fieldsNamed(fs []hfield, name string) []hfield {
	var out []hfield
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	return out
}

func hasField(fs []hfield, raw string) bool {
	for _, f := range fs {
		if f.raw == raw {
			return true
		}
	}
	return false
}

// callerWant is what a caller run must have queued.
type callerWant struct {
	argv     []string // the whole argv the caller passed, argv[0] included
	sender   string   // envelope sender
	rcpts    []string // envelope recipients, any order
	fromAddr string   // the address in the From header
	subject  string
	body     string   // the body with CRs removed; "" = see bodyHas
	bodyHas  []string // substrings of the body
	header   []string // fields the queued header must hold, as "Name: value" (folded lines joined by "\n")
	input    []string // fields the caller must have written (recorded run)
	output   string   // all the caller prints (stdout and stderr): relay must add nothing
}

// removedFields are taken out by relay whatever the flags.
var removedFields = []string{"bcc", "resent-bcc", "return-path"}

func checkCaller(t *testing.T, o callerOutcome, w callerWant, recorded bool) {
	t.Helper()
	if o.out != w.output {
		t.Errorf("the caller printed (relay's complaint, passed on?)\n%q\nwant\n%q", o.out, w.output)
	}
	if len(o.queue) != 1 {
		t.Fatalf("%d messages queued, want 1; caller output:\n%s", len(o.queue), o.out)
	}
	m := o.queue[0]
	if m.Sender != w.sender {
		t.Errorf("envelope sender %q, want %q", m.Sender, w.sender)
	}
	var got []string
	for _, r := range m.Recipients {
		got = append(got, r.Address)
		if r.Status != spool.Pending {
			t.Errorf("recipient %s: status %v, want pending", r.Address, r.Status)
		}
	}
	want := slices.Clone(w.rcpts)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("envelope recipients %q, want %q", got, want)
	}

	fields, body := splitMessage(m.content)
	if len(fields) == 0 || !strings.EqualFold(fields[0].name, "Received") || !strings.Contains(fields[0].value, "(relay") {
		t.Errorf("the first header field is not relay's Received: %q", fields[:min(1, len(fields))])
	}
	for _, n := range removedFields {
		if fs := fieldsNamed(fields, n); len(fs) != 0 {
			t.Errorf("the queued message keeps %q", fs[0].raw)
		}
	}
	for _, n := range []string{"From", "Date", "Message-ID", "Subject"} {
		if fs := fieldsNamed(fields, n); len(fs) != 1 {
			t.Errorf("the queued message has %d %s fields, want 1", len(fs), n)
		}
	}
	if fs := fieldsNamed(fields, "Subject"); len(fs) == 1 && fs[0].value != w.subject {
		t.Errorf("Subject %q, want %q", fs[0].value, w.subject)
	}
	if fs := fieldsNamed(fields, "From"); len(fs) == 1 {
		a, err := mail.ParseAddress(fs[0].value)
		if err != nil || a.Address != w.fromAddr {
			t.Errorf("From %q: address %v (%v), want %s", fs[0].value, a, err, w.fromAddr)
		}
	}
	if fs := fieldsNamed(fields, "Date"); len(fs) == 1 {
		if _, err := mail.ParseDate(fs[0].value); err != nil {
			t.Errorf("Date %q: %v", fs[0].value, err)
		}
	}
	if fs := fieldsNamed(fields, "Message-ID"); len(fs) == 1 && fs[0].value != m.MessageID {
		t.Errorf("Message-ID %q, but the envelope records %q", fs[0].value, m.MessageID)
	}
	for _, h := range w.header {
		if !hasField(fields, h) {
			t.Errorf("the queued header lacks %q:\n%s", h, headerText(fields))
		}
	}
	plain := strings.ReplaceAll(string(body), "\r", "")
	if w.body != "" && plain != w.body {
		t.Errorf("body %q, want %q", plain, w.body)
	}
	for _, s := range w.bodyHas {
		if !strings.Contains(plain, s) {
			t.Errorf("body lacks %q:\n%s", s, plain)
		}
	}
	if !recorded {
		return
	}

	// What the caller gave relay, and what relay made of it.
	if len(o.calls) != 1 {
		t.Fatalf("the caller ran sendmail %d times, want once: %q", len(o.calls), o.calls)
	}
	c := o.calls[0]
	t.Logf("argv: %q", c.argv)
	if !slices.Equal(c.argv, w.argv) {
		t.Errorf("the caller ran sendmail as\n  %q\nwant\n  %q", c.argv, w.argv)
	}
	if c.stderr != "" {
		t.Errorf("relay printed on stderr: %q", c.stderr)
	}
	inFields, inBody := splitMessage(c.stdin)
	for _, h := range w.input {
		if !hasField(inFields, h) {
			t.Errorf("the caller did not write %q (its header:\n%s)", h, headerText(inFields))
		}
	}
	if !bytes.Equal(body, inBody) {
		t.Errorf("the queued body differs from the one the caller sent:\nqueued %q\nsent   %q", body, inBody)
	}
	// Every field the caller wrote is kept, in its order, but the removed
	// ones; relay only adds (Received first, then From/Date/Message-ID).
	var kept []string
	for _, f := range inFields {
		if !slices.Contains(removedFields, strings.ToLower(f.name)) {
			kept = append(kept, f.raw)
		}
	}
	var queued []string
	for _, f := range fields {
		if slices.Contains(kept, f.raw) {
			queued = append(queued, f.raw)
		}
	}
	if !slices.Equal(queued, kept) {
		t.Errorf("the caller's header fields, changed or reordered:\nsent   %q\nqueued %q", kept, queued)
	}
}

func headerText(fs []hfield) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + strings.ReplaceAll(f.raw, "\n", "\n  ") + "\n")
	}
	return b.String()
}

// testCaller runs r both ways (recorded, then bind-mounted) and checks w.
func testCaller(t *testing.T, bin string, r callerRun, w callerWant) {
	t.Helper()
	for _, recorded := range []bool{true, false} {
		name := map[bool]string{true: "recorded", false: "bind-mounted"}[recorded]
		t.Run(name, func(t *testing.T) {
			checkCaller(t, runCaller(t, bin, recorded, r), w, recorded)
		})
	}
}

// ---------------------------------------------------------------- tests --

// TestCallers runs each real caller against relay's sendmail. The argv each
// one passes is asserted; see the table in the report and NOTES.md.
func TestCallers(t *testing.T) {
	if os.Geteuid() != 0 {
		needCaller(t) // skips or fails with the reason
	}
	// Built here, not in a subtest: a subtest's TempDir goes with it.
	bin := relayForCallers(t)
	rootFrom := "root@" + callerDomain // relay's default sender for root

	t.Run("bsd-mailx", func(t *testing.T) {
		needCaller(t, "bsd-mailx")
		// bsd-mailx writes Bcc into the header and leaves it to sendmail
		// to take it out.
		testCaller(t, bin, callerRun{
			args:  []string{"bsd-mailx", "-s", "relay callers: bsd-mailx", "-c", "cc@example.org", "-b", "bcc@example.org", "to@example.org"},
			stdin: "body from bsd-mailx\nsecond line\n",
		}, callerWant{
			argv:     []string{"/usr/sbin/sendmail", "-i", "-t"},
			sender:   rootFrom,
			rcpts:    []string{"to@example.org", "cc@example.org", "bcc@example.org"},
			fromAddr: rootFrom,
			subject:  "relay callers: bsd-mailx",
			body:     "body from bsd-mailx\nsecond line\n",
			header:   []string{"To: to@example.org", "Cc: cc@example.org"},
			input:    []string{"Bcc: bcc@example.org", "Subject: relay callers: bsd-mailx"},
		})
	})

	t.Run("bsd-mailx-r", func(t *testing.T) {
		needCaller(t, "bsd-mailx")
		// -r gives sendmail -f with the bare address, and a From header.
		testCaller(t, bin, callerRun{
			args:  []string{"bsd-mailx", "-r", "Alice <alice@example.org>", "-a", "X-Relay-Test: callers", "-s", "relay callers: bsd-mailx -r", "-b", "bcc@example.org", "to@example.org"},
			stdin: "body from bsd-mailx -r\n",
		}, callerWant{
			argv:     []string{"/usr/sbin/sendmail", "-i", "-t", "-f", "alice@example.org"},
			sender:   "alice@example.org",
			rcpts:    []string{"to@example.org", "bcc@example.org"},
			fromAddr: "alice@example.org",
			subject:  "relay callers: bsd-mailx -r",
			body:     "body from bsd-mailx -r\n",
			header:   []string{"From: Alice <alice@example.org>", "X-Relay-Test: callers"},
			input:    []string{"Bcc: bcc@example.org"},
		})
	})

	t.Run("mutt", func(t *testing.T) {
		needCaller(t, "mutt")
		// mutt keeps Bcc out of the header and passes every recipient on
		// the command line, after "--".
		testCaller(t, bin, callerRun{
			args: []string{"mutt", "-n", "-F", "/dev/null",
				"-e", "set from=alice@example.org",
				"-e", `set sendmail="/usr/sbin/sendmail -oem -oi"`,
				"-e", "set use_envelope_from=yes",
				"-e", "set copy=no",
				"-s", "relay callers: mutt", "-c", "cc@example.org", "-b", "bcc@example.org",
				"--", "to@example.org"},
			stdin: "body from mutt\n",
		}, callerWant{
			argv:     []string{"/usr/sbin/sendmail", "-oem", "-oi", "-f", "alice@example.org", "--", "to@example.org", "cc@example.org", "bcc@example.org"},
			sender:   "alice@example.org",
			rcpts:    []string{"to@example.org", "cc@example.org", "bcc@example.org"},
			fromAddr: "alice@example.org",
			subject:  "relay callers: mutt",
			body:     "body from mutt\n",
			header:   []string{"To: to@example.org", "Cc: cc@example.org"},
		})
	})

	t.Run("git-send-email", func(t *testing.T) {
		needCaller(t, "git", "git-send-email", "Mail::Address")
		// One commit, one patch: the author is the --from address, so the
		// body is the patch's body unchanged.
		repo := t.TempDir()
		gitEnv := append(cleanEnv(), "HOME="+repo, "GIT_CONFIG_NOSYSTEM=1")
		for _, args := range [][]string{
			{"init", "-q"},
			{"config", "user.name", "A"},
			{"config", "user.email", "alice@example.org"},
			{"add", "greeting.txt"},
			{"commit", "-q", "-m", "relay callers: add greeting.txt"},
			{"format-patch", "-q", "-1", "-o", "patches"},
		} {
			if args[0] == "add" {
				if err := os.WriteFile(filepath.Join(repo, "greeting.txt"), []byte("hello from relay's callers test\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("git", args...)
			cmd.Dir, cmd.Env = repo, gitEnv
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		patches, _ := filepath.Glob(filepath.Join(repo, "patches", "*.patch"))
		if len(patches) != 1 {
			t.Fatalf("format-patch made %q", patches)
		}
		patch, err := os.ReadFile(patches[0])
		if err != nil {
			t.Fatal(err)
		}
		_, patchBody := splitMessage(patch)
		// git send-email adds the patch author as Cc (to the envelope too):
		// here that is the sender herself.
		// --quiet: one line on success, so anything relay said shows.
		testCaller(t, bin, callerRun{
			args: []string{"git", "send-email", "--quiet", "--to=to@example.org", "--from=A <alice@example.org>",
				"--confirm=never", "--smtp-server=/usr/sbin/sendmail", "--envelope-sender=alice@example.org", patches[0]},
			dir: repo,
		}, callerWant{
			argv:     []string{"/usr/sbin/sendmail", "-f", "alice@example.org", "-i", "to@example.org", "alice@example.org"},
			sender:   "alice@example.org",
			rcpts:    []string{"to@example.org", "alice@example.org"},
			fromAddr: "alice@example.org",
			subject:  "[PATCH] relay callers: add greeting.txt",
			body:     strings.ReplaceAll(string(patchBody), "\r", ""),
			bodyHas:  []string{"+hello from relay's callers test\n", "diff --git a/greeting.txt b/greeting.txt\n"},
			header:   []string{"From: A <alice@example.org>", "To: to@example.org", "Cc: A <alice@example.org>"},
			output:   "Sent [PATCH] relay callers: add greeting.txt\n",
		})
	})

	t.Run("php-mail", func(t *testing.T) {
		needCaller(t, "php")
		// PHP (8.x) writes its header lines with CRLF, the body as given
		// (LF here) plus a CRLF; Bcc stays in the header for sendmail -t.
		code := `exit(mail("to@example.org", "relay callers: php", "body from PHP\nGrüße, 8-bit\n.\nafter a lone dot",` +
			` "From: www@example.org\r\nCc: cc@example.org\r\nBcc: bcc@example.org", "-fwww@example.org") ? 0 : 1);`
		testCaller(t, bin, callerRun{
			args: []string{"php", "-n", "-d", "sendmail_path=/usr/sbin/sendmail -t -i", "-r", code},
		}, callerWant{
			argv:     []string{"/usr/sbin/sendmail", "-t", "-i", "-fwww@example.org"},
			sender:   "www@example.org",
			rcpts:    []string{"to@example.org", "cc@example.org", "bcc@example.org"},
			fromAddr: "www@example.org",
			subject:  "relay callers: php",
			body:     "body from PHP\nGrüße, 8-bit\n.\nafter a lone dot\n",
			header:   []string{"To: to@example.org", "Cc: cc@example.org", "From: www@example.org"},
			input:    []string{"Bcc: bcc@example.org"},
		})
	})
}
