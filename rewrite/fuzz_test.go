package rewrite_test

// Fuzz targets of the rewriting parsers: the files in the aliases(5)
// format (alias file, sender_map, sender_login_map) and the header
// rewriting at delivery (from_header = "rewrite", [[rewrite.header]]).
// Seeds: testdata/fuzz/; bench/fuzz.sh runs them longer.

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/rewrite"
	"github.com/relaymail/relay/spool"
)

const fuzzDomain = "server1.example.com"

// fuzzRules loads Rules whose alias file, sender map and login map are
// all the one file text.
func fuzzRules(t *testing.T, text []byte, rules []config.HeaderRule) (*rewrite.Rules, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "table")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Path = "/etc/relay/relay.toml"
	cfg.Domain = fuzzDomain
	cfg.Rewrite.Aliases, cfg.Rewrite.SenderMap, cfg.Rewrite.SenderLoginMap = path, path, path
	cfg.Rewrite.FromHeader = "rewrite"
	cfg.Rewrite.Header = rules
	return rewrite.Load(cfg, "server1.example.com"), path
}

// FuzzTables checks the aliases(5) parser with one file read as alias
// file, sender map and login map: every problem names the file and a line
// of it in one line of text; an address expands to at least one valid
// address or an explained bounce, whatever loops the file has; a mapped
// sender is a valid address; a user may always send as themselves.
func FuzzTables(f *testing.F) {
	for _, s := range []struct{ file, addr string }{
		{"# /etc/aliases\nmailer-daemon: postmaster\npostmaster: root\nnobody: root\nroot: admin@example.org, \\root\n", "postmaster"},
		{"root: |/usr/bin/procmail\nbackup: /var/mail/backup\nlists: :include:/etc/mail/lists\nops: root,\n  backup\n", "ops"},
		{"a: b\nb: c\nc: a\n*: catchall@example.org\n", "a"},
		{"\"quoted name\": \"x y\"@example.org\nAlice: alice@example.org\nalice: other@example.org\n", "ALICE@server1.example.com"},
		{"  continuation first\nno colon here\n: empty\nbad name@x: y\nk: <a@b>, \"c, d\"@e.example\n", "k"},
		{"root: robot@example.com\n@server1.example.com: @example.com\n*: fallback@example.com\n", "www-data@server1.example.com"},
		{"alice: *\nbob: <>\ncarol: @example.org\n*: noreply@example.org\n", "alice"},
		{"x: y\r\n\r\n\tz\r\n#c\n", "x"},
	} {
		f.Add([]byte(s.file), s.addr)
	}
	f.Fuzz(func(t *testing.T, text []byte, addr string) {
		r, path := fuzzRules(t, text, nil)
		lines := bytes.Count(text, []byte("\n")) + 1
		files := r.Files()
		if len(files.Errs) > 0 {
			if len(text) < 1<<20 {
				t.Fatalf("file of %d bytes not read: %v", len(text), files.Errs)
			}
			return // a line over 1 MB
		}
		for _, p := range files.Problems {
			if p.File != path || p.Line < 1 || p.Line > lines || p.Msg == "" || strings.ContainsAny(p.Msg, "\r\n") {
				t.Fatalf("problem %+v: want %s, a line in 1..%d, one line of text", p, path, lines)
			}
		}
		if err := mailaddr.Valid(mailaddr.Qualify(addr, fuzzDomain)); err != nil {
			return
		}
		xs := r.Expand(addr)
		if len(xs) == 0 {
			t.Fatalf("Expand(%q) gives nothing", addr)
		}
		for _, x := range xs {
			if x.Undeliverable == "" && (mailaddr.Valid(x.Address) != nil || !mailaddr.HasDomain(x.Address)) {
				t.Fatalf("Expand(%q) gives %+v, not a valid address", addr, x)
			}
		}
		sender := mailaddr.Qualify(addr, fuzzDomain)
		if v, _ := r.MapSender(sender); mailaddr.Valid(v) != nil {
			t.Fatalf("MapSender(%q) = %q, not a valid address", sender, v)
		}
		user := mailaddr.Local(sender)
		if strings.ContainsAny(user, "\"\\") {
			return
		}
		if err := r.AllowSender(user, user+"@"+fuzzDomain); err != nil {
			t.Fatalf("user %q may not send as themselves: %v", user, err)
		}
	})
}

// headerOf splits a message as the rewriter reads it: the header lines
// (each with its line end) and the rest. cut is true when the header
// ended at a line that is no field and no continuation (rest begins with
// it): the rewriter then puts the empty line back before it.
func headerOf(msg []byte) (lines [][]byte, rest []byte, cut bool) {
	for len(msg) > 0 {
		n := bytes.IndexByte(msg, '\n') + 1
		if n == 0 {
			n = len(msg)
		}
		line := msg[:n]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return lines, msg, false
		}
		cont := (line[0] == ' ' || line[0] == '\t') && len(lines) > 0
		if !cont && bytes.IndexByte(line, ':') <= 0 {
			return lines, msg, true
		}
		lines = append(lines, line)
		msg = msg[n:]
	}
	return lines, msg, false
}

// fieldsOf joins header lines into fields: name (as the rewriter takes
// it) and value.
func fieldsOf(lines [][]byte) (names, values []string) {
	for _, l := range lines {
		if (l[0] == ' ' || l[0] == '\t') && len(names) > 0 {
			values[len(values)-1] += string(l)
			continue
		}
		name, value, _ := strings.Cut(string(l), ":")
		names = append(names, strings.TrimRight(name, " \t"))
		values = append(values, strings.TrimRight(value, "\r\n"))
	}
	return names, values
}

// FuzzHeaderRewrite checks the header rewriting at delivery with
// from_header = "rewrite" and a rule of each action: a header it can read
// comes out still a header (every line a field or a continuation), the
// body untouched, the removed field gone, the replaced one once, and a
// From with exactly the envelope sender. No header is passed through
// unprocessed: lines of any length are read, and a header cut short by a
// line that is no field ends there, as intake reads it.
func FuzzHeaderRewrite(f *testing.F) {
	for _, s := range []string{
		"Received: by server1 (relay, from userid 0)\n\tid 1; Mon, 23 Nov 2026 00:00:01 +0000\nFrom: root (Cron Daemon)\nTo: root\nSubject: Cron <root@server1> /usr/local/bin/backup\nX-Internal-Secret: 42\n\nbody\nFrom: not a header\n",
		"From: \"Backup, nightly\" <backup@server1.example.com>\r\nOrganization: a\r\nOrganization: b\r\nX-Tag: t\r\n\r\nbody\r\n",
		"From: Alice\n\t<alice@server1.example.com>\nSubject: folded\n\n",
		"From: Robot <Robot@Example.com>\n\n",
		"From: a@b@c\n\n",
		"From: =?utf-8?q?M=C3=BCller?= <m@x.example>, second@x.example\n\n",
		"To: x\nno colon line\nFrom: y\n\n",
		"X-Long: " + strings.Repeat("x", 1000) + "\nFrom: z@x.example\n\n",
		"X-Long: " + strings.Repeat("x", 70<<10) + "\nFrom: CEO <ceo@bank.example>\nX-Internal-Secret: 42\n\nbody\n",
		"\nbody only\n",
		"Subject: eof in header",
		"From : spaced@x.example\nx-internal-secret : 1\n\n",
	} {
		f.Add([]byte(s), "robot@example.com")
	}
	rules := []config.HeaderRule{
		{Action: "remove", Name: "X-Internal-Secret"},
		{Action: "replace", Name: "Organization", Value: "Example Org"},
		{Action: "append", Name: "X-Tag", Value: " [%h]"},
		{Action: "add", Name: "X-Relayed-By", Value: "%u on %h"},
	}
	f.Fuzz(func(t *testing.T, msg []byte, sender string) {
		if mailaddr.Valid(sender) != nil {
			return
		}
		r, _ := fuzzRules(t, nil, rules)
		env := &spool.Envelope{Sender: sender, User: "root"}
		sh := &config.Smarthost{Name: "mail"}
		out, err := io.ReadAll(r.Content(env, sh, sender, bytes.NewReader(msg)))
		inLines, inRest, cut := headerOf(msg)
		if err != nil {
			// Every header under 1 MiB is processed, however long its
			// lines or damaged its end (issue #21 item 14).
			t.Fatalf("Content(%q) refused the header: %v", msg, err)
		}
		outLines, outRest, outCut := headerOf(out)
		if outCut {
			t.Fatalf("Content(%q) = %q: the header no longer parses", msg, out)
		}
		if cut {
			// The empty line put back before the first line of the body.
			if !bytes.HasSuffix(outRest, inRest) || !slices.Contains([]string{"\n", "\r\n"}, string(outRest[:len(outRest)-len(inRest)])) {
				t.Fatalf("Content(%q) = %q: body %q became %q", msg, out, inRest, outRest)
			}
		} else if !bytes.Equal(inRest, outRest) {
			t.Fatalf("Content(%q) = %q: body %q became %q", msg, out, inRest, outRest)
		}
		inNames, _ := fieldsOf(inLines)
		names, values := fieldsOf(outLines)
		count := map[string]int{}
		from := -1
		for i, n := range names {
			count[strings.ToLower(n)]++
			if from < 0 && strings.EqualFold(n, "From") {
				from = i
			}
		}
		if count["x-internal-secret"] != 0 || count["organization"] != 1 || count["x-relayed-by"] != 1 || count["x-tag"] == 0 {
			t.Fatalf("Content(%q) = %q: the rules were not applied", msg, out)
		}
		hadFrom := false
		for _, n := range inNames {
			hadFrom = hadFrom || strings.EqualFold(n, "From")
		}
		if hadFrom {
			list, err := mailaddr.ParseList(strings.TrimSpace(values[from]))
			if err != nil || len(list) != 1 || !strings.EqualFold(list[0].Addr, sender) {
				t.Fatalf("Content(%q) = %q: From %q is not the sender %s alone (%+v, %v)", msg, out, values[from], sender, list, err)
			}
		}
	})
}
