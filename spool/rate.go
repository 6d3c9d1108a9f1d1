package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// RateState is what the runners remember about a smarthost's rate limit
// ("100/h"): the times at which messages were handed to it within the last
// period. It lives in rate/NAME.json, apart from the host states in hosts/,
// because a flush forgets outages but never the messages already sent: the
// provider counts them whatever relay is told.
type RateState struct {
	Sent []time.Time `json:"sent"` // ascending
}

func (s *Spool) ratePath(name string) string {
	return filepath.Join(s.Dir, "rate", safeName(name)+".json")
}

// safeName makes a smarthost name usable as a file name.
func safeName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c == '/' || c == 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

// Rate returns the remembered rate state of smarthost name (zero if none).
func (s *Spool) Rate(name string) RateState {
	var st RateState
	if b, err := os.ReadFile(s.ratePath(name)); err == nil {
		json.Unmarshal(b, &st)
	}
	return st
}

// TakeRate takes one of the n sends smarthost name may make per period
// per, at now: when fewer than n were taken in (now-per, now], it records
// now and returns a zero time; otherwise it records nothing and returns
// when the next send may go (the oldest send in the window plus per).
// Runners in several processes (the daemon, a cron `queue run`) share the
// state under a lock on the file, and it survives them.
func (s *Spool) TakeRate(name string, n int, per time.Duration, now time.Time) (time.Time, error) {
	var until time.Time
	err := s.changeRate(name, func(st *RateState) bool {
		st.Sent = slices.DeleteFunc(st.Sent, func(t time.Time) bool { return !t.After(now.Add(-per)) })
		if len(st.Sent) >= n {
			until = st.Sent[len(st.Sent)-n].Add(per)
			return false
		}
		i, _ := slices.BinarySearchFunc(st.Sent, now, func(a, b time.Time) int { return a.Compare(b) })
		st.Sent = slices.Insert(st.Sent, i, now)
		return true
	})
	return until, err
}

// ReturnRate gives back the send taken at t (the message never reached
// the smarthost: the connection failed).
func (s *Spool) ReturnRate(name string, t time.Time) error {
	return s.changeRate(name, func(st *RateState) bool {
		i := slices.IndexFunc(st.Sent, func(u time.Time) bool { return u.Equal(t) })
		if i < 0 {
			return false
		}
		st.Sent = slices.Delete(st.Sent, i, i+1)
		return true
	})
}

// changeRate runs fn on the rate state of name under the state's lock and
// writes the state back when fn says it changed.
func (s *Spool) changeRate(name string, fn func(*RateState) bool) error {
	p := s.ratePath(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	lf, err := os.OpenFile(p+".lock", os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("spool: rate %s: %w", name, err)
	}
	defer lf.Close()
	if err := lockFile(lf, true); err != nil {
		return fmt.Errorf("spool: rate %s: lock: %w", name, err)
	}
	var st RateState
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		// A damaged state is forgotten: the window starts afresh.
		json.Unmarshal(b, &st)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("spool: rate %s: %w", name, err)
	}
	if !fn(&st) {
		return nil
	}
	b, _ = json.Marshal(&st)
	if err := s.writeFileDurably(p, b); err != nil {
		return fmt.Errorf("spool: rate %s: %w", name, err)
	}
	return nil
}
