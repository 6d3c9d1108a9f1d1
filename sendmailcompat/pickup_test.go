package sendmailcompat_test

import (
	"github.com/relaymail/relay/internal/testqueue"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymail/relay/sendmailcompat"
)

// The pickup expands a drop's recipients again (the submitter may not
// read the alias file) and refuses a drop whose sender the user may not
// use (written by hand, past sendmail's check).
func TestPickupRewriting(t *testing.T) {
	s := testqueue.NewSubmitter(t)
	if err := os.Mkdir(filepath.Join(s.Spool.Dir, "maildrop"), 0o733); err != nil {
		t.Fatal(err)
	}
	s.Drop = true
	for _, args := range [][]string{{"root"}, {"-f", "boss@example.org", "bob@example.org"}} {
		if _, _, err := submitDrop(t, s, args); err != nil {
			t.Fatal(err)
		}
	}
	p := &sendmailcompat.Pickup{Spool: s.Spool, Hostname: "server1", MaxMessageSize: 1 << 20, Now: s.Now,
		User: func(int) string { return "alice" }, Log: func(kv ...string) { t.Log(kv) }}
	testqueue.WithRewrite(t, s, "alice: alice\n")
	p.Rewrite = s.Rewrite
	n, err := p.Run()
	if err != nil || n != 1 {
		t.Fatalf("pickup took %d, err %v; want 1 (the other refused)", n, err)
	}
	ids := testqueue.IDs(t, s.Spool)
	if len(ids) != 1 {
		t.Fatalf("queue %v", ids)
	}
	m, _ := testqueue.Read(t, s.Spool, ids[0])
	if got := testqueue.RecipientStates(m); got != "alice@example.org<root>pending ops@example.org<root>pending" {
		t.Errorf("recipients %s", got)
	}
	if bad, _ := filepath.Glob(filepath.Join(s.Spool.Dir, "corrupt", "*")); len(bad) == 0 {
		t.Error("the refused drop is not kept in corrupt/")
	}
}

// submitDrop queues into the maildrop without rewriting (a user who
// cannot read the alias file).
func submitDrop(t *testing.T, s *sendmailcompat.Submitter, args []string) (string, string, error) {
	t.Helper()
	o, err := sendmailcompat.ParseArgs(append([]string{"-i"}, args...))
	if err != nil {
		return "", "", err
	}
	r, err := s.Enqueue(o.Message(), strings.NewReader("Subject: s\n\nx\n"))
	if err == nil {
		err = r.Err()
	}
	return r.ID, "", err
}
