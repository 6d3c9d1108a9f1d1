package spool

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U, so IDs are easy to read aloud and sort by time.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDLen is the length of every queue ID.
const IDLen = 15

var (
	idMu   sync.Mutex
	lastUS int64
)

// NewID returns a fresh queue ID: 11 characters of arrival time in
// microseconds, 4 random characters. Within one process IDs strictly increase.
func NewID(now time.Time) string {
	us := now.UnixMicro()
	idMu.Lock()
	if us <= lastUS {
		us = lastUS + 1
	}
	lastUS = us
	idMu.Unlock()

	var b [IDLen]byte
	for i := 10; i >= 0; i-- {
		b[i] = crockford[us&31]
		us >>= 5
	}
	var r [4]byte
	_, _ = rand.Read(r[:]) // never fails on Linux (Go 1.24+)
	x := binary.BigEndian.Uint32(r[:])
	for i := 11; i < IDLen; i++ {
		b[i] = crockford[x&31]
		x >>= 5
	}
	return string(b[:])
}

// ValidID reports whether s has the form of a queue ID. Names in the queue
// directory that do not are ignored, and IDs typed by users are checked
// before they become part of a path.
func ValidID(s string) bool { return validID(s) }

func validID[T string | []byte](s T) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') || c == 'I' || c == 'L' || c == 'O' || c == 'U' {
			return false
		}
	}
	return true
}

// IDTime returns the arrival time encoded in a valid ID.
func IDTime(id string) time.Time {
	var us int64
	for i := 0; i < 11; i++ {
		us = us<<5 | int64(indexCrockford(id[i]))
	}
	return time.UnixMicro(us)
}

func indexCrockford(c byte) int {
	for i := 0; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return 0
}
