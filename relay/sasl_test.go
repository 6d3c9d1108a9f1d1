package relay

// The SASL clients against the example exchanges of their RFCs and the
// exact bytes providers document, computed independently of the clients.

import (
	"bytes"
	"testing"
)

// RFC 2195 section 2: tim / tanstaaftanstaaf.
func TestCRAMMD5_RFC2195Example(t *testing.T) {
	c := &cramMD5Client{user: "tim", pass: "tanstaaftanstaaf"}
	mech, ir, err := c.Start()
	if mech != "CRAM-MD5" || ir != nil || err != nil {
		t.Fatalf("Start = %q, %q, %v; want CRAM-MD5 without an initial response", mech, ir, err)
	}
	resp, err := c.Next([]byte("<1896.697170952@postoffice.reston.mci.net>"))
	if err != nil || string(resp) != "tim b913a602c7eda7a495b4e6e7334d3890" {
		t.Errorf("Next = %q, %v", resp, err)
	}
	if _, err := c.Next([]byte("again")); err == nil {
		t.Error("a second challenge was answered")
	}
}

// RFC 7677 section 3: user / pencil, with the RFC's client nonce.
func TestSCRAMSHA256_RFC7677Example(t *testing.T) {
	scramNonce = func() string { return "rOprNGfwEbeRWgbNEkqO" }
	t.Cleanup(func() { scramNonce = nil })
	c, err := newSCRAMClient("user", "pencil")
	if err != nil {
		t.Fatal(err)
	}
	mech, ir, err := c.Start()
	if mech != "SCRAM-SHA-256" || string(ir) != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" || err != nil {
		t.Fatalf("Start = %q, %q, %v", mech, ir, err)
	}
	final, err := c.Next([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if err != nil || string(final) != want {
		t.Fatalf("client-final = %q, %v; want %q", final, err, want)
	}
	if c.Valid() {
		t.Error("Valid before the server's signature")
	}
	resp, err := c.Next([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
	if err != nil || resp == nil || len(resp) != 0 {
		t.Fatalf("answer to server-final = %q (nil %v), %v; want an empty, non-nil response", resp, resp == nil, err)
	}
	if !c.Valid() {
		t.Error("not Valid after the right server signature")
	}
}

func TestSCRAMSHA256_WrongServerSignatureFails(t *testing.T) {
	scramNonce = func() string { return "rOprNGfwEbeRWgbNEkqO" }
	t.Cleanup(func() { scramNonce = nil })
	c, _ := newSCRAMClient("user", "pencil")
	c.Start()
	c.Next([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	if _, err := c.Next([]byte("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")); err == nil || c.Valid() {
		t.Errorf("a wrong server signature was accepted (err %v)", err)
	}
}

// Google's XOAUTH2 documentation: "user=" {User} "^Aauth=Bearer " {Token}
// "^A^A"; its error challenge is answered with an empty response.
func TestXOAUTH2_InitialResponseAndErrorChallenge(t *testing.T) {
	c := &xoauth2Client{user: "someuser@example.com", token: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"}
	mech, ir, _ := c.Start()
	want := "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
	if mech != "XOAUTH2" || string(ir) != want {
		t.Errorf("Start = %q, %q; want %q", mech, ir, want)
	}
	resp, err := c.Next([]byte(`{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`))
	if err != nil || resp == nil || len(resp) != 0 {
		t.Errorf("answer to the error challenge = %q (nil %v), %v; want empty, non-nil", resp, resp == nil, err)
	}
	if got := c.Refusal(); got != "status 401, scope https://mail.google.com/" {
		t.Errorf("Refusal = %q", got)
	}
	if _, err := c.Next([]byte("x")); err == nil {
		t.Error("a second challenge was answered")
	}
}

// RFC 7628 3.2.3: the error challenge is answered with %x01.
func TestOAUTHBEARER_InitialResponseAndErrorChallenge(t *testing.T) {
	c := newOAuthBearerClient("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com", 587)
	mech, ir, _ := c.Start()
	want := "n,a=user@example.com,\x01host=server.example.com\x01port=587\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
	if mech != "OAUTHBEARER" || string(ir) != want {
		t.Errorf("Start = %q, %q; want %q", mech, ir, want)
	}
	resp, err := c.Next([]byte(`{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}`))
	if err != nil || !bytes.Equal(resp, []byte{1}) {
		t.Errorf("answer to the error challenge = %q, %v; want %%x01", resp, err)
	}
	if got := c.Refusal(); got != "status invalid_token, scope example_scope" {
		t.Errorf("Refusal = %q", got)
	}
}
