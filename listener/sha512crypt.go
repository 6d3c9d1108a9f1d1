package listener

import (
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"strconv"
	"strings"
)

// SHA-512-crypt ("$6$", Ulrich Drepper's "Unix crypt using SHA-256 and
// SHA-512", the scheme of glibc's crypt(3), `openssl passwd -6`,
// `mkpasswd -m sha-512` and Dovecot's SHA512-CRYPT). Only verification is
// needed (relay writes bcrypt), so this is the algorithm of the
// specification, step by step, and nothing else; sha512crypt_test.go
// checks it against the specification's vectors and against openssl.

const (
	sha512SaltMax       = 16
	sha512RoundsDefault = 5000
	sha512RoundsMin     = 1000
	sha512RoundsMax     = 999999999
	cryptAlphabet       = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

var errBadSHA512Crypt = errors.New(`not a SHA-512-crypt hash ("$6$[rounds=N$]salt$hash")`)

// sha512Crypt computes the hash of password with the setting of hash
// ("$6$[rounds=N$]salt[$…]") and returns the whole string as crypt(3)
// would.
func sha512Crypt(password, setting string) (string, error) {
	rest, ok := strings.CutPrefix(setting, "$6$")
	if !ok {
		return "", errBadSHA512Crypt
	}
	rounds, explicit := sha512RoundsDefault, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, ok := strings.Cut(r, "$")
		n, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil {
			return "", errBadSHA512Crypt
		}
		rounds = int(min(max(n, sha512RoundsMin), sha512RoundsMax))
		rest, explicit = after, true
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > sha512SaltMax {
		salt = salt[:sha512SaltMax]
	}
	p, s := []byte(password), []byte(salt)

	// B = SHA512(P S P).
	h := sha512.New()
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := h.Sum(nil)

	// A = SHA512(P S, B repeated to len(P), then per bit of len(P): B for
	// a one, P for a zero).
	h.Reset()
	h.Write(p)
	h.Write(s)
	n := len(p)
	for ; n > 64; n -= 64 {
		h.Write(b)
	}
	h.Write(b[:n])
	for n = len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := h.Sum(nil)

	// The P sequence: SHA512(P repeated len(P) times), repeated to len(P).
	h.Reset()
	for range len(p) {
		h.Write(p)
	}
	dp := h.Sum(nil)
	pseq := make([]byte, 0, len(p))
	for len(pseq) < len(p) {
		pseq = append(pseq, dp[:min(64, len(p)-len(pseq))]...)
	}

	// The S sequence: SHA512(S repeated 16+A[0] times), cut to len(S).
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	sseq := h.Sum(nil)[:len(s)]

	c := a
	for i := range rounds {
		h.Reset()
		if i%2 != 0 {
			h.Write(pseq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sseq)
		}
		if i%7 != 0 {
			h.Write(pseq)
		}
		if i%2 != 0 {
			h.Write(c)
		} else {
			h.Write(pseq)
		}
		c = h.Sum(c[:0])
	}

	var out strings.Builder
	out.WriteString("$6$")
	if explicit {
		out.WriteString("rounds=" + strconv.Itoa(rounds) + "$")
	}
	out.WriteString(salt)
	out.WriteByte('$')
	for _, g := range [...][3]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
		{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
		{56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
	} {
		encode24(&out, c[g[0]], c[g[1]], c[g[2]], 4)
	}
	encode24(&out, 0, 0, c[63], 2)
	return out.String(), nil
}

// encode24 writes n characters of the 24 bits b2 b1 b0, low bits first.
func encode24(out *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for range n {
		out.WriteByte(cryptAlphabet[w&0x3f])
		w >>= 6
	}
}

// verifySHA512Crypt reports whether password matches hash, in constant
// time for the comparison.
func verifySHA512Crypt(hash, password string) bool {
	got, err := sha512Crypt(password, hash)
	return err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}
