package spool

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// removals makes the removals of DeleteSoon durable: one fsync of queue/
// at a time, each covering every removal made before it started.
type removals struct {
	mu      sync.Mutex
	running bool
	pending bool          // a removal since the running fsync began
	idle    chan struct{} // closed when the running syncer stops
	err     error         // the first fsync that failed, until SyncRemovals
}

// DeleteSoon is Delete for a runner that goes on with its next message
// while the removal reaches the disk. The unlinks happen now (queue/ID,
// then queue/ID.env), so no process finds the message from here on; the
// fsync of queue/ that makes them survive a power failure is shared with
// every other removal meanwhile, by a syncer that runs while removals
// come, and SyncRemovals waits for it. Until then a power failure can
// bring back a message that was delivered, as it always could between
// the smarthost's reply and the removal: it is sent again, never lost.
func (l *Locked) DeleteSoon() error {
	id := l.Env.ID
	err := os.Remove(l.s.path(id))
	if err == nil {
		if e := os.Remove(l.s.envPath(id)); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = e
		}
	}
	l.Close()
	if err != nil {
		return fmt.Errorf("spool: delete %s: %w", id, err)
	}
	l.s.rm.start(l.s.queueDir())
	return nil
}

func (r *removals) start(dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = true
	if r.running {
		return
	}
	r.running, r.idle = true, make(chan struct{})
	go r.loop(dir, r.idle)
}

func (r *removals) loop(dir string, idle chan struct{}) {
	defer close(idle)
	for {
		r.mu.Lock()
		if !r.pending {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.pending = false
		r.mu.Unlock()
		err := syncDir(dir)
		r.mu.Lock()
		if err != nil && r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
}

// SyncRemovals waits until every removal of DeleteSoon is durable and
// returns the first failure to make one so since the last call.
func (s *Spool) SyncRemovals() error {
	for {
		s.rm.mu.Lock()
		if !s.rm.running {
			err := s.rm.err
			s.rm.err = nil
			s.rm.mu.Unlock()
			if err != nil {
				return fmt.Errorf("spool: sync %s: %w", s.queueDir(), err)
			}
			return nil
		}
		idle := s.rm.idle
		s.rm.mu.Unlock()
		<-idle
	}
}
