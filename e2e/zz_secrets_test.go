package e2e_test

import (
	"strings"
	"testing"
)

// TestZZ_NoPasswordInOutput runs last (last file, last name): every byte
// relay printed during the suite (stdout and stderr of every command, all
// recorded by run) and every file relay wrote into the suite's spools must
// be free of both test passwords — including the error paths the suite
// provoked (a wrong password that is alice's real one, refused TLS, AUTH
// refused in clear).
func TestZZ_NoPasswordInOutput(t *testing.T) {
	needHarness(t)
	printedMu.Lock()
	n := printed.Len()
	sawLog := strings.Contains(printed.String(), "status=")
	printedMu.Unlock()
	if n == 0 || !sawLog {
		t.Skip("no relay output recorded: run the whole suite (this test checks what the others made relay print)")
	}
	t.Logf("searched %d bytes of relay output and the suite's spools", n)
	for _, l := range passwordLeaks() {
		t.Error(l)
	}
}
