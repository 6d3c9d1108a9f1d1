package relay

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// saslprep prepares a SCRAM user name or password (RFC 4013, the
// "SASLprep" profile of stringprep, RFC 3454, for stored strings): non-ASCII
// spaces become SPACE, the characters of table B.1 are removed, the result
// is normalised to NFKC, and it is refused when it holds a prohibited or
// unassigned code point or breaks the bidirectional rules of RFC 3454
// section 6. ASCII without control characters, nearly every user name and
// password, is returned as it is without a table lookup.
func saslprep(s string) (string, error) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 {
			ascii = false
			break
		} else if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("SASLprep: prohibited character %U", rune(c))
		}
	}
	if ascii {
		return s, nil
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case inRanges(saslprepNothing[:], r):
		case inRanges(saslprepSpace[:], r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	out := norm.NFKC.String(b.String())
	randAL := false
	for _, r := range out {
		if inRanges(saslprepProhibited[:], r) {
			return "", fmt.Errorf("SASLprep: prohibited character %U", r)
		}
		randAL = randAL || inRanges(saslprepRandAL[:], r)
	}
	if !randAL {
		return out, nil
	}
	// RFC 3454 6: a string with right-to-left characters holds no
	// left-to-right ones, and starts and ends with a right-to-left one.
	for _, r := range out {
		if inRanges(saslprepL[:], r) {
			return "", errors.New("SASLprep: left-to-right and right-to-left text mixed")
		}
	}
	rs := []rune(out)
	if !inRanges(saslprepRandAL[:], rs[0]) || !inRanges(saslprepRandAL[:], rs[len(rs)-1]) {
		return "", errors.New("SASLprep: right-to-left text must start and end with a right-to-left character")
	}
	return out, nil
}

// inRanges reports whether r lies in one of the sorted, disjoint,
// inclusive ranges.
func inRanges(ranges [][2]rune, r rune) bool {
	lo, hi := 0, len(ranges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < ranges[m][0]:
			hi = m
		case r > ranges[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}
