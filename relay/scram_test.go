package relay

import (
	"strings"
	"testing"
)

// What relay's SCRAM client refuses in the server's messages.
func TestSCRAMSHA256_RefusesBadServerFirst(t *testing.T) {
	scramNonce = func() string { return "rOprNGfwEbeRWgbNEkqO" }
	t.Cleanup(func() { scramNonce = nil })
	for _, c := range []struct{ name, serverFirst, want string }{
		{"too few iterations", "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000", "fewer than 4096"},
		{"nonce not extended", "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"},
		{"other nonce", "r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"},
		{"mandatory extension", "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension"},
		{"bad salt", "r=rOprNGfwEbeRWgbNEkqOxyz,s=%%%,i=4096", "salt"},
		{"missing fields", "r=rOprNGfwEbeRWgbNEkqOxyz", "malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, _ := newSCRAMClient("user", "pencil")
			cl.Start()
			if _, err := cl.Next([]byte(c.serverFirst)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one that says %q", err, c.want)
			}
		})
	}
}

func TestSCRAMSHA256_ServerErrorInFinal(t *testing.T) {
	scramNonce = func() string { return "rOprNGfwEbeRWgbNEkqO" }
	t.Cleanup(func() { scramNonce = nil })
	c, _ := newSCRAMClient("user", "pencil")
	c.Start()
	c.Next([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	if _, err := c.Next([]byte("e=invalid-proof")); err == nil || !strings.Contains(err.Error(), "invalid-proof") || c.Valid() {
		t.Errorf("err = %v, Valid %v", err, c.Valid())
	}
	if _, err := c.Next([]byte("more")); err == nil {
		t.Error("a challenge after the final message was answered")
	}
}

// A name with "=" and "," is escaped in client-first (RFC 5802 5.1).
func TestSCRAMSHA256_EscapesName(t *testing.T) {
	scramNonce = func() string { return "abc" }
	t.Cleanup(func() { scramNonce = nil })
	c, _ := newSCRAMClient("a=b,c", "pw")
	_, ir, _ := c.Start()
	if string(ir) != "n,,n=a=3Db=2Cc,r=abc" {
		t.Errorf("client-first = %q", ir)
	}
}
