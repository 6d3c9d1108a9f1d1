package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/spool"
)

// run is the state of one delivery pass: a lane per smarthost, each with
// up to max_connections workers, and a dispatcher (Run's goroutine) that
// routes queued messages to them. See the package documentation.
type run struct {
	r       *Runner
	ctx     context.Context
	lanes   []*lane // one per [[smarthost]], in configuration order
	maxConn int
	debug   io.Writer // Runner.Debug, safe for the workers
	workers sync.WaitGroup

	mu       sync.Mutex
	cond     *sync.Cond
	inflight int   // jobs handed to lanes and not finished
	redone   []job // jobs a lane gave back for the next candidate
	st       Stats
}

// job is one message on its way: its parts (split.go; one unless its
// recipients go to different smarthosts), the part on its way now, that
// part's candidate smarthosts and the one to try now.
type job struct {
	id    string
	env   *spool.Envelope // read by the dispatcher's Scan; nil: read it
	parts []part
	cur   int
	split *split // nil for a message that is not split
	cands []*lane
	next  int
}

// lane is one smarthost in a pass: its workers, what is known about it.
type lane struct {
	sh      *config.Smarthost
	jobs    chan job
	workers int // started; only the dispatcher touches it

	mu        sync.Mutex
	host      spool.HostState
	down      *Failure  // unusable: remembered, or failed in this pass
	downUntil time.Time // until then
	failed    bool      // a connection failed in this pass (counted once)
	up        bool      // a connection worked in this pass
	rateFull  time.Time // the rate limit is used up until then
}

func (r *Runner) newRun(ctx context.Context) *run {
	ru := &run{r: r, ctx: ctx, maxConn: max(r.Config.Queue.MaxConnections, 1)}
	ru.debug = r.Debug
	if r.Debug != nil {
		// The dialogue of one connection per smarthost, whole lines from
		// one writer at a time.
		ru.maxConn = 1
		ru.debug = &lockedWriter{w: r.Debug}
	}
	ru.cond = sync.NewCond(&ru.mu)
	now := r.Now()
	for i := range r.Config.Smarthosts {
		sh := &r.Config.Smarthosts[i]
		ln := &lane{sh: sh, jobs: make(chan job)}
		ln.host = r.Spool.Host(sh.Name)
		if ln.host != (spool.HostState{}) && ln.host.Addr != hostAddr(sh, r.HeloName) {
			// About settings no longer configured (see hostAddr): void,
			// and forgotten so that a return to them starts afresh.
			ln.host = spool.HostState{}
			if err := r.Spool.SetHost(sh.Name, ln.host); err != nil {
				r.Log.Error("relay", sh.Name, "status", "error", "reason", err.Error())
			}
		}
		if now.Before(ln.host.DownUntil) {
			cause := ln.host.Failure
			ln.down = &Failure{Stage: StageConnect, Cause: &cause,
				Err: fmt.Errorf("%s is down until %s (%s)", sh.Name, ln.host.DownUntil.Format(time.RFC3339), cause.ReplyLine())}
			ln.downUntil = ln.host.DownUntil
		}
		ru.lanes = append(ru.lanes, ln)
	}
	return ru
}

// laneOf returns the lane of a smarthost of the configuration.
func (ru *run) laneOf(sh *config.Smarthost) *lane {
	for _, ln := range ru.lanes {
		if ln.sh == sh {
			return ln
		}
	}
	return nil
}

func (ln *lane) isUp() bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.up
}

func (ln *lane) state() (*Failure, time.Time) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.down, ln.downUntil
}

// dispatch routes a message (split.go: one part per group of recipients
// with the same smarthosts) and hands its current part to the lane of
// the first of that part's smarthosts that is not down, starting a worker
// (a connection) when every started one is busy and the lane has fewer
// than max_connections. Parts that need no connection — no route, every
// smarthost down — are recorded here.
func (ru *run) dispatch(j job) {
	r := ru.r
	if r.stuck() != nil {
		return // outcomes cannot be recorded: nothing more is tried
	}
	if j.parts == nil {
		env, err := j.env, error(nil)
		if env == nil {
			var m *spool.Message
			if m, err = r.Spool.Read(j.id); err == nil {
				env = &m.Envelope
			}
		}
		j.env = nil
		if errors.Is(err, spool.ErrNotFound) {
			return
		}
		if err == nil {
			r.recall(env)
		}
		if err == nil && !r.due(env) {
			return // cheap check without the lock
		}
		if err != nil {
			// Lock reports it, and moves a corrupt file aside.
			if l := ru.lock(j.id); l != nil {
				l.Close()
			}
			return
		}
		sender := env.Sender
		if r.Rewrite != nil {
			sender = r.Rewrite.Sender(env)
		}
		j.parts, j.split = ru.plan(env, sender)
		j.cur, j.cands, j.next = 0, j.parts[0].cands, 0
	}
	for {
		if len(j.cands) == 0 {
			if !ru.noRoute(&j) || !j.advance() {
				return
			}
			continue
		}
		for j.next < len(j.cands) {
			if down, _ := j.cands[j.next].state(); down == nil {
				break
			}
			j.next++
		}
		if j.next < len(j.cands) {
			break
		}
		if !ru.allDown(&j) || !j.advance() {
			return
		}
	}
	ln := j.cands[j.next]
	ru.mu.Lock()
	ru.inflight++
	ru.mu.Unlock()
	select {
	case ln.jobs <- j:
		return
	default:
	}
	// A second connection only once one worked in this pass: a smarthost
	// that is down costs one failed connection, not max_connections.
	if ln.workers == 0 || ln.workers < ru.maxConn && ln.isUp() {
		ln.workers++
		ru.workers.Add(1)
		go ru.work(ln)
	}
	ln.jobs <- j
}

// dispatchRedone dispatches the jobs lanes gave back.
func (ru *run) dispatchRedone() {
	for {
		ru.mu.Lock()
		if len(ru.redone) == 0 || ru.ctx.Err() != nil {
			ru.mu.Unlock()
			return
		}
		j := ru.redone[0]
		ru.redone = ru.redone[1:]
		ru.mu.Unlock()
		ru.dispatch(j)
	}
}

// wait lets the lanes finish: jobs given back are dispatched again until
// none is in flight; then the workers close their connections and end.
func (ru *run) wait() {
	ru.mu.Lock()
	for {
		if len(ru.redone) > 0 && ru.ctx.Err() == nil {
			ru.mu.Unlock()
			ru.dispatchRedone()
			ru.mu.Lock()
			continue
		}
		if ru.inflight == 0 {
			break
		}
		ru.cond.Wait()
	}
	ru.mu.Unlock()
	for _, ln := range ru.lanes {
		close(ln.jobs)
	}
	ru.workers.Wait()
}

// done ends a job; redo, when set, goes back to the dispatcher.
func (ru *run) done(redo *job) {
	ru.mu.Lock()
	ru.inflight--
	if redo != nil {
		ru.redone = append(ru.redone, *redo)
	}
	ru.cond.Broadcast()
	ru.mu.Unlock()
}

// work is one connection's worth of a lane: it takes the lane's jobs one
// after the other over a connection it opens when needed and keeps for
// the next message (see Conn.Reset).
func (ru *run) work(ln *lane) {
	defer ru.workers.Done()
	conn := ru.r.takeIdle(ru.ctx, ln.sh)
	if conn != nil {
		ln.mu.Lock()
		ln.up = true
		ln.mu.Unlock()
	}
	defer func() { ru.r.release(ru.ctx, ln.sh, conn) }()
	for j := range ln.jobs {
		ru.done(ru.handle(ln, &conn, j))
	}
}

// lock takes a message for this runner; nil when it is not to be had
// (another runner has it, it is gone, or it is unreadable: reported).
func (ru *run) lock(id string) *spool.Locked {
	l, err := ru.r.Spool.Lock(id)
	switch {
	case errors.Is(err, spool.ErrNotFound):
		ru.r.forget(id)
		return nil
	case errors.Is(err, spool.ErrBusy):
		return nil
	case err != nil:
		ru.r.Log.Error("id", id, "status", "error", "reason", err.Error())
		return nil
	}
	// What this process could not write to the spool still counts.
	ru.r.recall(l.Env)
	return l
}

// handle delivers one message — or, for a split message, its current
// part — through lane ln, over *conn (dialed when there is none, or when
// the old one fails its Reset). It returns the job to dispatch again: the
// same part when the smarthost cannot be used and another candidate is
// left, else the message's next part (split.go), if any.
func (ru *run) handle(ln *lane, conn **Conn, j job) *job {
	r := ru.r
	if ru.ctx.Err() != nil || r.stuck() != nil {
		return nil // stopping, or outcomes cannot be recorded (unrecorded.go)
	}
	l, rcpts, goOn := ru.lockPart(&j)
	if l == nil {
		if goOn {
			return j.after()
		}
		return nil
	}
	defer l.Close()
	if rcpts == nil && !r.sendable(l.Env) {
		ru.record(l, &Outcome{}, &pass{sh: ln.sh}) // only failures to report
		return nil
	}
	if down, until := ln.state(); down != nil {
		if j.next+1 < len(j.cands) {
			j.next++
			return &j
		}
		ru.record(l, allDeferred(l.Env, rcpts, down), &pass{sh: ln.sh, down: down, downUntil: until, split: j.split})
		return j.after()
	}
	slot, wait := ru.takeRate(ln)
	if !wait.IsZero() {
		ru.holdForRate(l, ln, wait, rcpts, j.split)
		return j.after()
	}
	began := time.Now()
	if *conn == nil || (*conn).Reset() != nil {
		if *conn != nil {
			(*conn).Close()
			*conn = nil
		}
		c, err := Dial(ru.ctx, ln.sh, DialOptions{HeloName: r.HeloName, Debug: ru.debug, Abort: ru.ctx, StopWait: func(atMost time.Duration) {
			r.Log.Warning("smarthost", ln.sh.Name, "status", "stopping",
				"reason", "the final dot is out: waiting for the reply before stopping, so that the message is not sent twice",
				"at_most", atMost.Round(time.Second).String())
		}})
		if r.Observer != nil && ru.ctx.Err() == nil {
			var expiry time.Time
			if c != nil {
				expiry = c.CertExpiry()
			}
			r.Observer.Connection(ln.sh.Name, ConnectionResult(err, ln.sh.Proxy != ""), expiry)
			if to, ok := r.Observer.(TokenObserver); ok && err == nil && c.OAuth != nil {
				to.TokenExpiry(ln.sh.Name, c.OAuth.Expiry)
			}
		}
		if err != nil {
			ru.returnRate(ln, slot)
			if ru.ctx.Err() != nil {
				// Stopping is not an outage of the smarthost.
				ru.record(l, allDeferred(l.Env, rcpts, &Failure{Stage: StageConnect, Err: ErrAborted}), &pass{sh: ln.sh, split: j.split})
				return nil
			}
			down, until := ru.markDown(ln, failure(StageConnect, err))
			if j.next+1 < len(j.cands) {
				r.Log.Info("id", j.id, "relay", ln.sh.Name, "status", "failover", "next", j.cands[j.next+1].sh.Name, "reason", down.ReplyLine())
				j.next++
				return &j
			}
			ru.record(l, allDeferred(l.Env, rcpts, down), &pass{sh: ln.sh, down: down, downUntil: until, split: j.split})
			return j.after()
		}
		*conn = c
		ru.markUp(ln)
	}
	out, err := r.sendVia(*conn, ln.sh, l, rcpts)
	if r.Observer != nil {
		r.Observer.Transaction(ln.sh.Name, time.Since(began))
	}
	p := &pass{sh: ln.sh, conn: *conn, split: j.split}
	if err != nil {
		(*conn).Close()
		*conn = nil
		p.conn = nil
	}
	ru.record(l, out, p)
	return j.after()
}

// markDown remembers that a connection to ln's smarthost failed: it is
// down until its backoff ends, in this pass and (spool.HostState) in the
// next ones. Workers failing together count as one failure.
func (ru *run) markDown(ln *lane, f *Failure) (*Failure, time.Time) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.down != nil {
		return ln.down, ln.downUntil
	}
	r := ru.r
	ln.down, ln.failed = f, true
	ln.host.Addr = hostAddr(ln.sh, r.HeloName)
	ln.host.Failures++
	ln.host.Failure = *f.Stored(r.Now())
	ln.downUntil = r.Now().Add(r.backoff(ln.host.Failures))
	ln.host.DownUntil = ln.downUntil
	if err := r.Spool.SetHost(ln.sh.Name, ln.host); err != nil {
		r.Log.Error("relay", ln.sh.Name, "status", "error", "reason", err.Error())
	}
	return ln.down, ln.downUntil
}

// markUp forgets a remembered outage once a connection worked.
func (ru *run) markUp(ln *lane) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.up = true
	if ln.host != (spool.HostState{}) && !ln.failed {
		ln.host = spool.HostState{}
		ru.r.Spool.SetHost(ln.sh.Name, ln.host)
	}
}

// noRoute records the current part of j, which no smarthost serves: its
// recipients wait, as a fault of the configuration (own side: never
// bounced, held after the lifetime). It reports whether the next part
// may go on (false when the message was not to be had).
func (ru *run) noRoute(j *job) bool {
	l, rcpts, goOn := ru.lockPart(j)
	if l == nil {
		return goOn
	}
	defer l.Close()
	p := j.parts[j.cur]
	out := &Outcome{}
	if rcpts != nil || ru.r.sendable(l.Env) {
		if rcpts == nil {
			rcpts = l.Env.Pending()
		}
		for _, rc := range rcpts {
			out.Results = append(out.Results, RcptResult{rc, &Failure{Stage: StageLocal, Err: errors.New(p.why(rc.Address))}})
		}
	}
	ru.record(l, out, &pass{sh: &ru.r.Config.Smarthosts[0], noRoute: true, split: j.split})
	return true
}

// allDown records the current part of j, all of whose smarthosts are
// down: deferred with the last one's failure until the first of them is
// up again, without a connection. It reports whether the next part may go
// on.
func (ru *run) allDown(j *job) bool {
	l, rcpts, goOn := ru.lockPart(j)
	if l == nil {
		return goOn
	}
	defer l.Close()
	last := j.cands[len(j.cands)-1]
	down, until := last.state()
	for _, ln := range j.cands {
		if _, u := ln.state(); u.Before(until) {
			until = u
		}
	}
	out := &Outcome{}
	if rcpts != nil {
		out = allDeferred(l.Env, rcpts, down)
	} else {
		out = ru.r.deferAll(l.Env, down)
	}
	ru.record(l, out, &pass{sh: last.sh, down: down, downUntil: until, split: j.split})
	return true
}

// deferAll defers the message's recipients that are due with f; a message
// with only failures to report gets an empty outcome.
func (r *Runner) deferAll(env *spool.Envelope, f *Failure) *Outcome {
	if !r.sendable(env) {
		return &Outcome{}
	}
	return allDeferred(env, nil, f)
}

// record writes the outcome (Runner.record) and counts it.
func (ru *run) record(l *spool.Locked, out *Outcome, p *pass) {
	err := ru.r.record(l, out, p)
	if err != nil {
		ru.r.Log.Error("id", l.Env.ID, "status", "error", "reason", err.Error())
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if errors.Is(err, errNotRecorded) {
		// Not recorded: no work done as far as the spool knows, so the
		// daemon does not take it for progress (unrecorded.go).
		ru.st.Unrecorded++
		return
	}
	if p.split == nil || !p.split.counted {
		ru.st.Messages++ // a split message counts once
		if p.split != nil {
			p.split.counted = true
		}
	}
	for _, res := range out.Results {
		switch {
		case res.Err == nil:
			ru.st.Delivered++
		case res.Rcpt.Status == spool.Failed:
			ru.st.Failed++
		default:
			ru.st.Deferred++
		}
	}
	if l.Env.Held {
		ru.st.Held++
	}
}

// lockedWriter serializes the writes of several connections.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// idleConns are the connections a pass left open for the next one (see
// Runner.KeepConnections), per smarthost. They belong to the context of
// the pass that opened them (DialOptions.Abort): a pass under another
// context never gets them, so a stop always cuts what is in flight.
type idleConns struct {
	mu    sync.Mutex
	ctx   context.Context
	conns map[*config.Smarthost][]*Conn
	timer *time.Timer
}

var idleInit sync.Mutex

func (r *Runner) idleConns() *idleConns {
	idleInit.Lock()
	defer idleInit.Unlock()
	if r.idle == nil {
		r.idle = &idleConns{conns: map[*config.Smarthost][]*Conn{}}
	}
	return r.idle
}

// takeIdle returns a connection to sh left open by an earlier pass under
// ctx, or nil.
func (r *Runner) takeIdle(ctx context.Context, sh *config.Smarthost) *Conn {
	if r.KeepConnections <= 0 {
		return nil
	}
	ic := r.idleConns()
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.ctx != ctx {
		return nil
	}
	cs := ic.conns[sh]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	ic.conns[sh] = cs[:len(cs)-1]
	return c
}

// release ends a worker's use of its connection: kept for the next pass
// (KeepConnections) or closed.
func (r *Runner) release(ctx context.Context, sh *config.Smarthost, c *Conn) {
	if c == nil {
		return
	}
	if r.KeepConnections <= 0 || ctx.Err() != nil || !c.Usable() {
		c.Close()
		return
	}
	ic := r.idleConns()
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.ctx != ctx {
		closeAll(ic.conns)
		ic.ctx = ctx
	}
	ic.conns[sh] = append(ic.conns[sh], c)
	if ic.timer != nil {
		ic.timer.Stop()
	}
	ic.timer = time.AfterFunc(r.KeepConnections, r.closeIdle)
}

// closeIdle closes the connections kept for a next pass.
func (r *Runner) closeIdle() {
	ic := r.idleConns()
	ic.mu.Lock()
	defer ic.mu.Unlock()
	closeAll(ic.conns)
	if ic.timer != nil {
		ic.timer.Stop()
	}
}

func closeAll(m map[*config.Smarthost][]*Conn) {
	for sh, cs := range m {
		for _, c := range cs {
			c.Close()
		}
		delete(m, sh)
	}
}
