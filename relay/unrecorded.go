package relay

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/relaymail/relay/spool"
)

// When the spool cannot record an outcome
//
// The spool is the record of what was delivered: a recipient the
// smarthost took is marked delivered in the envelope before anything
// else. When that write fails (a full disk, an I/O error), the spool
// still says "pending", and a runner that believed it would send the
// message again to everyone it already reached, pass after pass. So a
// runner that cannot write an outcome:
//
//   - keeps it in memory (memory.msgs): the recipients delivered and the
//     message's next attempt time. Every later look at the message in
//     this process (the pass's lock, the daemon's timer, relay queue
//     run's "is anything due") reads the envelope from disk and lays this
//     over it (recall), so the same process never sends to a recipient
//     twice and waits for the message's own retry time. Once a write
//     of the message succeeds, which carries what was remembered, or the
//     message is gone, the memory is dropped. Another process, or this one
//     after a restart, knows only the disk: one more copy to the
//     recipients delivered meanwhile, as after a crash in the instant
//     between a 250 and its record (SPEC section 4).
//   - stops delivering (memory.stuck): a message sent while outcomes
//     cannot be written is one more message that may go out twice. The
//     rest of the pass starts no transaction; each later pass first
//     checks that the spool takes a write again (spool.CanRecord) and
//     does nothing until it does, and Due reports nothing due, so the
//     daemon backs off (its gap doubles up to 30 seconds) and relay queue
//     run stops after its pass.
//
// A flush (an envelope rewritten by someone else) makes the message due
// at once again; the delivered recipients stay remembered.
type memory struct {
	mu    sync.Mutex
	msgs  map[string]*unrecorded
	stuck error // the last failed write; nil: the spool takes writes
}

// errNotRecorded wraps the failure to write an outcome to the spool.
var errNotRecorded = errors.New("the spool could not record the outcome; delivery paused")

// unrecorded is what the spool does not know yet about one message.
type unrecorded struct {
	delivered map[string]string // address: the smarthost's 250 reply
	next      time.Time         // not to be tried before
	// diskNext is the next attempt time the spool held when the write
	// failed; another one means the envelope was rewritten since (a
	// flush), whose time then counts.
	diskNext time.Time
	attempts int
}

// remember keeps the outcome of env that could not be written; diskNext
// is the next attempt time the spool still holds.
func (r *Runner) remember(env *spool.Envelope, diskNext time.Time, err error) {
	m := r.memory()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.msgs == nil {
		m.msgs = map[string]*unrecorded{}
	}
	u := m.msgs[env.ID]
	if u == nil {
		u = &unrecorded{delivered: map[string]string{}, diskNext: diskNext}
		m.msgs[env.ID] = u
	}
	for _, rc := range env.Recipients {
		if rc.Status == spool.Delivered {
			u.delivered[rc.Address] = rc.Reply
		}
	}
	u.next, u.attempts = env.NextAttempt, env.Attempts
	if floor := r.Now().Add(r.backoff(max(env.Attempts, 1))); u.next.Before(floor) {
		u.next = floor
	}
	m.stuck = err
}

// remembers reports whether this runner remembers outcomes it could not
// record (the pass then needs the queue's IDs: checkSpool).
func (r *Runner) remembers() bool {
	m := r.memory()
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs) > 0
}

// pause stops delivery until the spool takes writes again (checkSpool).
func (r *Runner) pause(err error) {
	m := r.memory()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stuck = err
}

// forget drops what was remembered of message id: the spool has it now,
// or the message is gone.
func (r *Runner) forget(id string) {
	m := r.memory()
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.msgs, id)
}

// recall lays what this process remembers of a message over its envelope
// as read from the spool.
func (r *Runner) recall(env *spool.Envelope) {
	m := r.memory()
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.msgs[env.ID]
	if u == nil {
		return
	}
	for i := range env.Recipients {
		rc := &env.Recipients[i]
		if reply, ok := u.delivered[rc.Address]; ok && rc.Status == spool.Pending {
			rc.Status, rc.Reply, rc.Failure = spool.Delivered, reply, nil
		}
	}
	env.Attempts = max(env.Attempts, u.attempts)
	if env.NextAttempt.Equal(u.diskNext) && env.NextAttempt.Before(u.next) {
		env.NextAttempt = u.next
	}
}

// stuck returns the failure that keeps the spool from recording outcomes
// (nil: none known).
func (r *Runner) stuck() error {
	m := r.memory()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stuck
}

// checkSpool starts a pass: when outcomes could not be written, it checks
// whether the spool takes writes again and returns an error as long as
// it does not (the pass then does nothing). It also forgets messages no
// longer queued.
func (r *Runner) checkSpool(ids []string) error {
	m := r.memory()
	m.mu.Lock()
	stuck := m.stuck
	if r.Only == nil {
		for id := range m.msgs {
			if i := sort.SearchStrings(ids, id); i == len(ids) || ids[i] != id {
				delete(m.msgs, id)
			}
		}
	}
	m.mu.Unlock()
	if stuck == nil {
		return nil
	}
	if err := r.Spool.CanRecord(); err != nil {
		return fmt.Errorf("delivery paused: the spool cannot record what is delivered (%v); nothing is sent until it can", err)
	}
	m.mu.Lock()
	m.stuck = nil
	m.mu.Unlock()
	r.Log.Info("status", "resumed", "reason", "the spool records outcomes again")
	return nil
}

// NextDue is the package's NextDue for a message as this runner sees it:
// what it could not write to the spool included (see recall).
func (r *Runner) NextDue(env *spool.Envelope) (time.Time, bool) {
	r.recall(env)
	return NextDue(env)
}

// Inherit makes r share what old could not write to the spool, for a
// runner that replaces it (the daemon's, after a reload): shared, not
// copied, so that a pass old still makes adds to it.
func (r *Runner) Inherit(old *Runner) {
	if old == nil || old == r {
		return
	}
	m := old.memory()
	memInit.Lock()
	defer memInit.Unlock()
	r.mem = m
}

var memInit sync.Mutex

func (r *Runner) memory() *memory {
	memInit.Lock()
	defer memInit.Unlock()
	if r.mem == nil {
		r.mem = &memory{}
	}
	return r.mem
}
