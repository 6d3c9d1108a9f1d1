package migrate_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/internal/testqueue"
	"github.com/relaymail/relay/migrate"
	"github.com/relaymail/relay/spool"
)

const body = "From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: queued\n\nstill waiting\n"

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// queuedMessages reads back every message of the spool: sender,
// recipients, content.
func queuedMessages(t *testing.T, sp *spool.Spool) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, id := range testqueue.IDs(t, sp) {
		m, content := testqueue.Read(t, sp, id)
		out[m.Sender] = [2]string{strings.Join(testqueue.Addresses(m), ","), content}
	}
	return out
}

func TestQueue_Nullmailer(t *testing.T) {
	q := t.TempDir()
	write(t, filepath.Join(q, "1733400000.100"), "alice@example.org\nbob@example.net\ncarol@example.net\n\n"+body)
	write(t, filepath.Join(q, "1733400001.101"), "\nroot@example.org\n\n"+body) // the null sender
	write(t, filepath.Join(q, "1733400002.102"), "no envelope at all")
	write(t, filepath.Join(q, "1733400003.103"), "alice@example.org\nnot an address\n\n"+body)
	sp := testqueue.NewSpool(t)
	moved, left, err := migrate.ImportQueue("nullmailer", q, migrate.QueueOptions{Spool: sp, UID: 0, User: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 2 || len(left) != 2 {
		t.Fatalf("moved %v, left %v", moved, left)
	}
	got := queuedMessages(t, sp)
	want := map[string][2]string{
		"alice@example.org": {"bob@example.net,carol@example.net", body},
		"":                  {"root@example.org", body},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("queued %q, want %q", got, want)
	}
	rest, _ := os.ReadDir(q)
	var names []string
	for _, e := range rest {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"1733400002.102", "1733400003.103"}) {
		t.Errorf("left in the nullmailer queue: %v (only the unreadable files)", names)
	}
	if !strings.Contains(left[0].Why, "empty line") || !strings.Contains(left[1].Why, "not an address") {
		t.Errorf("left: %+v", left)
	}
}

func TestQueue_Dma(t *testing.T) {
	q := t.TempDir()
	// One message to two recipients: a Q file each, the M files links of
	// one data file.
	write(t, filepath.Join(q, "M1a2b.55d0"), body)
	os.Link(filepath.Join(q, "M1a2b.55d0"), filepath.Join(q, "M1a2b.55e0"))
	write(t, filepath.Join(q, "Q1a2b.55d0"), "ID: 1a2b.55d0\nSender: alice@example.org\nRecipient: bob@example.net\n")
	write(t, filepath.Join(q, "Q1a2b.55e0"), "ID: 1a2b.55e0\nSender: alice@example.org\nRecipient: carol@example.net\n")
	write(t, filepath.Join(q, "Q9999.1"), "ID: 9999.1\nSender: x@example.org\nRecipient: y@example.net\n") // its M file is missing
	sp := testqueue.NewSpool(t)
	moved, left, err := migrate.ImportQueue("dma", q, migrate.QueueOptions{Spool: sp})
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 1 || len(left) != 1 || !strings.Contains(left[0].Why, "missing") {
		t.Fatalf("moved %+v left %+v", moved, left)
	}
	got := queuedMessages(t, sp)
	if want := (map[string][2]string{"alice@example.org": {"bob@example.net,carol@example.net", body}}); !reflect.DeepEqual(got, want) {
		t.Errorf("queued %q", got)
	}
	rest, _ := filepath.Glob(filepath.Join(q, "*"))
	if len(rest) != 1 || filepath.Base(rest[0]) != "Q9999.1" {
		t.Errorf("left in dma's spool: %v", rest)
	}
}

func TestQueue_Msmtpq(t *testing.T) {
	q := t.TempDir()
	write(t, filepath.Join(q, "2026-12-05-10.00.00.mail"), body)
	write(t, filepath.Join(q, "2026-12-05-10.00.00.msmtp"), "-oi -f alice@example.org -- bob@example.net carol@example.net\n")
	bcc := "From: cron@example.org\nTo: ops@example.net\nBcc: audit@example.net,\n  archive@example.net\nSubject: -t\n\nbody\n"
	write(t, filepath.Join(q, "2026-12-05-10.00.01.mail"), bcc)
	write(t, filepath.Join(q, "2026-12-05-10.00.01.msmtp"), "-t -a work\n")       // no -f: the From header's address
	write(t, filepath.Join(q, "2026-12-05-10.00.02.msmtp"), "-- x@example.net\n") // its .mail is gone
	sp := testqueue.NewSpool(t)
	moved, left, err := migrate.ImportQueue("msmtp", q, migrate.QueueOptions{Spool: sp})
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 2 || len(left) != 1 {
		t.Fatalf("moved %+v left %+v", moved, left)
	}
	got := queuedMessages(t, sp)
	want := map[string][2]string{
		"alice@example.org": {"bob@example.net,carol@example.net", body},
		"cron@example.org":  {"ops@example.net,audit@example.net,archive@example.net", "From: cron@example.org\nTo: ops@example.net\nSubject: -t\n\nbody\n"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("queued %q\nwant %q", got, want)
	}
}

// A message that cannot be made durable in relay's spool stays in the old
// queue: here the spool's file system is full.
func TestQueue_SpoolFullKeepsTheSource(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	testqueue.SmallFileSystem(t, dir, "64k")
	sp, err := spool.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	q := t.TempDir()
	big := "alice@example.org\nbob@example.net\n\n" + body + strings.Repeat("x", 200<<10) + "\n"
	write(t, filepath.Join(q, "1733400000.100"), big)
	_, _, err = migrate.ImportQueue("nullmailer", q, migrate.QueueOptions{Spool: sp})
	if exitCode(err) != 75 {
		t.Fatalf("err = %v, want exit 75", err)
	}
	if b, _ := os.ReadFile(filepath.Join(q, "1733400000.100")); string(b) != big {
		t.Error("the nullmailer queue file is gone or changed though relay could not queue it")
	}
	if ids := testqueue.IDs(t, sp); len(ids) != 0 {
		t.Errorf("queued %v", ids)
	}
}

// As root into a relay-owned spool the message goes through the maildrop,
// with its envelope intact for the pickup.
func TestQueue_ThroughTheMaildrop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	sp, err := spool.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "maildrop"), 0o733); err != nil {
		t.Fatal(err)
	}
	q := t.TempDir()
	write(t, filepath.Join(q, "1.1"), "alice@example.org\nbob@example.net\n\n"+body)
	moved, _, err := migrate.ImportQueue("nullmailer", q, migrate.QueueOptions{Spool: sp, Drop: true})
	if err != nil || len(moved) != 1 {
		t.Fatalf("moved %v: %v", moved, err)
	}
	names, err := sp.Drops(time.Now())
	if err != nil || len(names) != 1 {
		t.Fatalf("drops %v: %v", names, err)
	}
	d, err := sp.OpenDrop(names[0], 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Env.Sender != "alice@example.org" || len(d.Env.Recipients) != 1 || d.Env.Recipients[0].Address != "bob@example.net" {
		t.Errorf("drop envelope %+v", d.Env)
	}
	if _, err := os.Stat(filepath.Join(q, "1.1")); !os.IsNotExist(err) {
		t.Errorf("the source is still there: %v", err)
	}
}

func TestQueue_MissingDirectory(t *testing.T) {
	_, _, err := migrate.ImportQueue("nullmailer", filepath.Join(t.TempDir(), "none"), migrate.QueueOptions{Spool: testqueue.NewSpool(t)})
	if exitCode(err) != 66 {
		t.Errorf("err = %v, want 66", err)
	}
	if _, err := migrate.QueueDir("ssmtp", "", ""); exitCode(err) != 64 {
		t.Errorf("ssmtp has no queue: %v", err)
	}
}
