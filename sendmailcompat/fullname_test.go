package sendmailcompat_test

import (
	"encoding/json"
	"github.com/relaymail/relay/internal/testqueue"
	"mime"
	"os/exec"
	"strings"
	"testing"

	"github.com/relaymail/relay/mailaddr"
)

// fullNames are -F values that once made a From with two mailboxes or
// none (issue #21 item 13): non-ASCII with the phrase specials , " < > and
// their company, and ASCII ones for contrast.
var fullNames = []string{
	"Müller, Hans",
	"Ärger <x@y>",
	`Jürgen "JJ" Schmidt`,
	`Zoë <a@b>, "c" <d@e>`,
	"Łukasz (admin); root@host",
	"Smith, John",
	`Eve "<evil@attacker.example>"`,
	"Cron Daemon",
	"Мария Иванова",
}

// The From that sendmail -F makes parses back to exactly one mailbox, the
// sender's, with the name as given: with relay's parser and with Python's
// email package, which many receiving scripts use.
func TestFullNameFromParsesAsOneMailbox(t *testing.T) {
	var froms []string
	for _, name := range fullNames {
		s := testqueue.NewSubmitter(t)
		_, content, err := submit(t, s, []string{"-i", "-F", name, "-f", "alice@server1.example.com", "bob@example.org"}, "Subject: s\n\nx\n")
		if err != nil {
			t.Fatalf("-F %q: %v", name, err)
		}
		from := fieldValue(testqueue.HeaderOf(content), "From")
		froms = append(froms, from)
		list, err := mailaddr.ParseList(from)
		if err != nil || len(list) != 1 {
			t.Errorf("-F %q: From: %s\nrelay's parser: %d mailboxes, %v", name, from, len(list), err)
			continue
		}
		if list[0].Addr != "alice@server1.example.com" {
			t.Errorf("-F %q: From: %s: address %q", name, from, list[0].Addr)
		}
		if got, err := new(mime.WordDecoder).DecodeHeader(list[0].Name); err != nil || got != name {
			t.Errorf("-F %q: From: %s: name decodes to %q (%v)", name, from, got, err)
		}
	}

	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the From lines were checked with relay's parser only")
	}
	// For each From: getaddresses' pairs, then the mailboxes of the
	// modern header registry (policy.default), which decodes the name.
	const script = `
import json, sys
from email import policy
from email.parser import Parser
from email.utils import getaddresses
out = []
for v in json.load(sys.stdin):
    msg = Parser(policy=policy.default).parsestr("From: " + v + "\n\nx\n")
    boxes = [[a.display_name, a.addr_spec] for a in msg["From"].addresses]
    out.append({"getaddresses": getaddresses([v]), "registry": boxes, "defects": len(msg["From"].defects)})
json.dump(out, sys.stdout)
`
	in, _ := json.Marshal(froms)
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = strings.NewReader(string(in))
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var res []struct {
		GetAddresses [][2]string `json:"getaddresses"`
		Registry     [][2]string `json:"registry"`
		Defects      int         `json:"defects"`
	}
	if err := json.Unmarshal(outb, &res); err != nil {
		t.Fatalf("python3 said %s: %v", outb, err)
	}
	for i, name := range fullNames {
		r := res[i]
		if len(r.GetAddresses) != 1 || r.GetAddresses[0][1] != "alice@server1.example.com" {
			t.Errorf("-F %q: From: %s\nPython getaddresses: %q", name, froms[i], r.GetAddresses)
		}
		if len(r.Registry) != 1 || r.Registry[0] != [2]string{name, "alice@server1.example.com"} || r.Defects != 0 {
			t.Errorf("-F %q: From: %s\nPython policy.default: %q, %d defects", name, froms[i], r.Registry, r.Defects)
		}
	}
}

// fieldValue is the unfolded value of the first field named name.
func fieldValue(header, name string) string {
	lines := strings.Split(header, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
			continue
		}
		v := l[len(name)+1:]
		for _, c := range lines[i+1:] {
			if c == "" || (c[0] != ' ' && c[0] != '\t') {
				break
			}
			v += c
		}
		return strings.TrimSpace(v)
	}
	return ""
}
