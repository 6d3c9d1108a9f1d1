package relay

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// The messages of SCRAM-SHA-256 (RFC 5802 section 7) without channel
// binding or authorisation identity, for scramClient (sasl.go).

// scramGS2Header is "no channel binding, no authzid"; client-final sends
// it again, base64-encoded ("c=biws").
const scramGS2Header = "n,,"

// scramMinIterations is the least iteration count accepted (RFC 7677
// section 4 asks for 4096 at least): a server asking for fewer makes the
// password's hash cheap to guess for whoever records the exchange.
const scramMinIterations = 4096

// newSCRAMNonce is 24 random bytes, base64: printable, without a comma.
func newSCRAMNonce() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// scramName escapes a saslname: "=" and "," as "=3D" and "=2C".
func scramName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// final answers server-first ("r=NONCE,s=SALT,i=COUNT[,ext]") with
// client-final and keeps the server signature to expect.
func (c *scramClient) final(serverFirst string) (string, error) {
	if strings.HasPrefix(serverFirst, "m=") {
		return "", errors.New("the server asks for a SCRAM extension relay does not know")
	}
	f := strings.Split(serverFirst, ",")
	if len(f) < 3 || !strings.HasPrefix(f[0], "r=") || !strings.HasPrefix(f[1], "s=") || !strings.HasPrefix(f[2], "i=") {
		return "", errors.New("malformed server-first message")
	}
	nonce := f[0][2:]
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return "", errors.New("the server's nonce does not extend the client's")
	}
	salt, err := base64.StdEncoding.DecodeString(f[1][2:])
	if err != nil || len(salt) == 0 {
		return "", errors.New("malformed salt in the server-first message")
	}
	iter, err := strconv.Atoi(f[2][2:])
	if err != nil || iter <= 0 {
		return "", errors.New("malformed iteration count in the server-first message")
	}
	if iter < scramMinIterations {
		return "", errors.New("the server asks for " + strconv.Itoa(iter) + " iterations, fewer than " + strconv.Itoa(scramMinIterations))
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(scramGS2Header)) + ",r=" + nonce
	authMessage := []byte(c.first + "," + serverFirst + "," + withoutProof)

	salted, err := pbkdf2.Key(sha256.New, c.pass, salt, iter, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := scramHMAC(salted, []byte("Client Key"))
	storedKey := sha256.Sum256(clientKey)
	proof := scramHMAC(storedKey[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSig = scramHMAC(scramHMAC(salted, []byte("Server Key")), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verify checks server-final ("v=SIGNATURE" or "e=ERROR").
func (c *scramClient) verify(serverFinal string) error {
	field, _, _ := strings.Cut(serverFinal, ",")
	if msg, ok := strings.CutPrefix(field, "e="); ok {
		return errors.New("server error: " + msg)
	}
	v, ok := strings.CutPrefix(field, "v=")
	if !ok {
		return errors.New("malformed server-final message")
	}
	sig, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !hmac.Equal(sig, c.serverSig) {
		return errors.New("server validation failed: wrong server signature")
	}
	c.valid = true
	return nil
}

func scramHMAC(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}
