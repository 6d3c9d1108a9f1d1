package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaymail/relay/failure"
)

// HostState is what the runners remember about a smarthost between passes:
// after a connection-level failure it is down until its next retry time,
// and every due message is deferred without a connection attempt of its
// own until then (10,000 queued messages cost one failed connection).
type HostState struct {
	// Addr is what the state is about (the smarthost's address and the
	// settings it failed with, see relay's hostAddr): a state recorded
	// under other settings (the configuration changed) is void.
	Addr      string    `json:"addr"`
	DownUntil time.Time `json:"down_until"`
	// Failure is the failure that took the smarthost down (as stored:
	// a value, so that states compare with ==).
	Failure  failure.Failure `json:"failure"`
	Failures int             `json:"failures"` // consecutive failed connections
}

func (s *Spool) hostPath(name string) string {
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
	return filepath.Join(s.Dir, "hosts", safe+".json")
}

// Host returns the remembered state of the smarthost name (zero if none).
func (s *Spool) Host(name string) HostState {
	st, _ := s.ReadHost(name)
	return st
}

// ReadHost is Host that says when the state cannot be read (hosts/ is
// the spool owner's alone: the relay group cannot tell): an error
// wrapping fs.ErrPermission. A missing or damaged state is no error.
func (s *Spool) ReadHost(name string) (HostState, error) {
	var st struct {
		HostState
		// Reason is the failure as spool format 1 kept it: its reply line.
		Reason string `json:"reason"`
	}
	b, err := os.ReadFile(s.hostPath(name))
	if errors.Is(err, fs.ErrPermission) {
		return HostState{}, fmt.Errorf("spool: %w", err)
	}
	if err == nil {
		json.Unmarshal(b, &st)
	}
	if old := failure.ParseFormat1Reason("", st.Reason); st.Failure == (failure.Failure{}) && old != nil {
		st.Failure = *old
	}
	if st.Failure == (failure.Failure{}) {
		// Damaged, or no state at all: nothing is known to be down, and
		// the next connection finds out.
		return HostState{}, nil
	}
	return st.HostState, nil
}

// SetHost records the state of smarthost name durably; a zero state
// forgets it (the host works).
func (s *Spool) SetHost(name string, st HostState) error {
	p := s.hostPath(name)
	if st == (HostState{}) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	b, _ := json.Marshal(st)
	if err := s.writeFileDurably(p, b); err != nil {
		return fmt.Errorf("spool: host %s: %w", name, err)
	}
	return nil
}

// ForgetHosts clears every remembered down state (relay queue flush: the
// admin wants a try now).
func (s *Spool) ForgetHosts() error {
	err := os.RemoveAll(filepath.Join(s.Dir, "hosts"))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}
