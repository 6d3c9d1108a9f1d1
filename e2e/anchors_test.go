package e2e_test

// The anchors: dma, nullmailer and msmtp, the programs relay replaces, as
// Debian builds them, each through its OWN sendmail into the smarthost's
// Maildir. bench/burst.sh measures them beside relay; this proves that what
// it measures is a real delivery (STARTTLS, AUTH, the message arrives once)
// and not a failure that happens to be fast.
//
// e2e/anchors.sh fetches them (apt-get download, dpkg -x; never installed:
// they conflict with Postfix, the smarthost) and runs a command in a private
// mount namespace where /usr/sbin/sendmail and `sendmail` on PATH are the
// program. `run` returns once the program's spool is empty. Each program
// greets as anchors-PROG.example.test (the default configuration the script
// writes), which the smarthost's Received header records.
//
// Gate: the smarthost (needHarness), root, unshare and a successful
// `anchors.sh fetch` (it needs the Debian mirror the machine uses); with
// RELAY_E2E=1 a failed fetch is a failure.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// anchorsFetch runs `anchors.sh fetch` once per test binary.
var anchorsFetched error

func needAnchors(t *testing.T) {
	t.Helper()
	needHarness(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	if anchorsFetched == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "bash", "anchors.sh", "fetch").CombinedOutput()
		if err != nil {
			anchorsFetched = fmt.Errorf("bash e2e/anchors.sh fetch: %v\n%s", err, out)
		} else {
			anchorsFetched = errDone
		}
	}
	if anchorsFetched != errDone {
		if os.Getenv("RELAY_E2E") == "1" {
			t.Fatal(anchorsFetched)
		}
		t.Skip(anchorsFetched)
	}
}

var errDone = fmt.Errorf("fetched")

func TestAnchors_DeliverThroughTheirOwnSendmail(t *testing.T) {
	needAnchors(t)
	for _, prog := range []string{"dma", "nullmailer", "msmtp"} {
		t.Run(prog, func(t *testing.T) {
			id := fmt.Sprintf("anchor-%s-%d@e2e.example.test", prog, time.Now().UnixNano())
			msg := "From: Robot <robot@example.com>\r\n" +
				"To: someone@example.net\r\n" +
				"Subject: anchor " + prog + "\r\n" +
				"Message-ID: <" + id + ">\r\n" +
				"\r\n" +
				"delivered by " + prog + "\r\n"
			// The script proves where sendmail comes from: the shell
			// prints what `sendmail` and /usr/sbin/sendmail resolve to.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "anchors.sh", "run", prog, "--",
				"sh", "-c", `readlink -f "$(command -v sendmail)"; readlink -f /usr/sbin/sendmail; exec sendmail -i -f robot@example.com someone@example.net`)
			cmd.Stdin = strings.NewReader(msg)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("anchors.sh run %s: %v\n%s", prog, err, out)
			}
			// Both resolve into the program's private root (dma and
			// nullmailer: /usr/sbin inside the namespace is an overlay,
			// so the path is /usr/sbin/<the program's binary>).
			want := map[string]string{"dma": "/usr/sbin/dma", "nullmailer": "/usr/sbin/sendmail",
				"msmtp": "/root/msmtp/usr/bin/msmtp"}[prog]
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) < 2 || !strings.HasSuffix(lines[0], want) || !strings.HasSuffix(lines[1], want) {
				t.Fatalf("sendmail in the namespace is not %s's (want ...%s):\n%s", prog, want, out)
			}
			copies := waitCopies(t, time.Minute, id)[id]
			if len(copies) != 1 {
				t.Fatalf("%d copies of %s in the Maildir, want 1\n%s", len(copies), id, out)
			}
			b, err := os.ReadFile(copies[0].path)
			if err != nil {
				t.Fatal(err)
			}
			// The smarthost's own Received line: the program's greeting,
			// TLS and AUTH as the test login.
			contains(t, prog+"'s delivered copy", string(b),
				"Received: from anchors-"+prog+".example.test ",
				"(Authenticated sender: "+env["SMARTHOST_USER"]+")",
				"with ESMTPSA",
				"Return-Path: <robot@example.com>",
				"Delivered-To: someone@example.net",
				"delivered by "+prog)
			// The program's own trace, where it writes one (msmtp
			// writes none: its greeting above is its mark).
			if trace := map[string]string{"dma": "(DragonFly Mail Agent v", "nullmailer": "Received: (nullmailer pid "}[prog]; trace != "" {
				contains(t, prog+"'s delivered copy", string(b), trace)
			}
		})
	}
}
