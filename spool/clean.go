package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// DraftMaxAge is how old an unlocked file in tmp/ must be before Clean takes
// it for the remains of a crashed writer. A live writer holds a lock, so the
// age only covers the instant between its create and its lock.
const DraftMaxAge = time.Minute

// Problem is something Clean found and handled, for the log.
type Problem struct {
	Path string
	What string // what was wrong and what was done about it
}

func (p Problem) String() string { return p.Path + ": " + p.What }

// Clean removes what crashes leave behind and moves unreadable files aside:
// drafts in tmp/ no writer holds any more, envelope files whose message is
// gone (a crash during Delete), and names in queue/ that are no queue file
// (moved to corrupt/). It needs write access to the spool.
func (s *Spool) Clean(now time.Time) ([]Problem, error) {
	var probs []Problem
	names, err := readNames(s.tmpDir())
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		p := filepath.Join(s.tmpDir(), n)
		if removeDeadDraft(p, now) {
			probs = append(probs, Problem{p, "removed a draft left by an interrupted writer"})
		}
	}

	// One listing of queue/ with the inodes, a few bytes per message (the
	// daemon runs this before every pass, with 100,000 messages queued
	// too), for the strangers, the orphans and the index.
	ql, err := s.listQueue()
	if err != nil {
		return nil, err
	}
	for _, id := range ql.orphans {
		p := s.envPath(id)
		if err := os.Remove(p); err == nil {
			probs = append(probs, Problem{p, "removed the envelope of a message no longer queued"})
		}
	}
	for _, n := range ql.strayers {
		p := filepath.Join(s.queueDir(), n)
		if err := os.MkdirAll(s.corruptDir(), 0o700); err != nil {
			return probs, fmt.Errorf("spool: %w", err)
		}
		if err := os.Rename(p, filepath.Join(s.corruptDir(), n)); err == nil {
			probs = append(probs, Problem{p, "not a queue file: moved to " + s.corruptDir()})
		}
	}
	s.maybeRebuildIndex(ql)
	return probs, nil
}

// removeDeadDraft removes the draft at p if no writer holds it and it is old
// enough, and reports whether it did.
func removeDeadDraft(p string, now time.Time) bool {
	f, err := os.OpenFile(p, os.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || now.Sub(fi.ModTime()) < DraftMaxAge {
		return false
	}
	if lockFile(f, false) != nil {
		return false // a writer is still at it
	}
	return os.Remove(p) == nil
}

// Change locks message id (waiting up to wait while a runner holds it),
// calls fn with its envelope and, when fn reports a change, writes the
// envelope back durably.
func (s *Spool) Change(id string, wait time.Duration, fn func(*Envelope) bool) error {
	l, err := s.LockWait(id, wait)
	if err != nil {
		return err
	}
	defer l.Close()
	if !fn(l.Env) {
		return nil
	}
	return l.Update()
}

// Remove deletes message id from the queue (relay queue delete), waiting up
// to wait while a runner holds it.
func (s *Spool) Remove(id string, wait time.Duration) error {
	l, err := s.LockWait(id, wait)
	if err != nil {
		return err
	}
	return l.Delete()
}

// IsMissing reports whether err says a message is not in the queue.
func IsMissing(err error) bool { return errors.Is(err, ErrNotFound) }

// ChangeAll is Change without waiting for each of ids, for commands that
// touch a whole queue at once (relay queue flush): fn decides per
// envelope, and errs has an entry for every id that could not be changed
// (ErrBusy while a runner holds it, ErrNotFound, a write error).
//
// Change pays two fsyncs per message; 10,000 of them took half a minute.
// ChangeAll takes the messages in batches: it locks each, writes the new
// envelopes to tmp/ without syncing, syncs the file system once (syncfs),
// renames them all into queue/ and syncs that directory once. The crash
// guarantee is Change's: a message has its old envelope or its new one,
// whole.
func (s *Spool) ChangeAll(ids []string, fn func(*Envelope) bool) (errs map[string]error) {
	errs = make(map[string]error)
	const batch = 256
	for start := 0; start < len(ids); start += batch {
		s.changeBatch(ids[start:min(start+batch, len(ids))], fn, errs)
	}
	return errs
}

func (s *Spool) changeBatch(ids []string, fn func(*Envelope) bool, errs map[string]error) {
	type pending struct {
		l   *Locked
		tmp string
		rec []byte // its index record
	}
	var todo []pending
	defer func() {
		for _, p := range todo {
			p.l.Close()
		}
	}()
	for _, id := range ids {
		l, err := s.Lock(id)
		if err != nil {
			errs[id] = err
			continue
		}
		if !fn(l.Env) {
			l.Close()
			continue
		}
		b, err := encodeEnvelopeFile(l)
		var tmp string
		var ino uint64
		if err == nil {
			tmp, ino, err = s.writeTempFile(l.Env.ID+envSuffix, b, false) // one syncfs below
		}
		if err != nil {
			l.Close()
			errs[id] = fmt.Errorf("spool: update %s: %w", id, err)
			continue
		}
		todo = append(todo, pending{l, tmp, indexRecord(recEnv, FormatVersion, id, ino, l.offset+l.Size, l.Size, b[len(formatLine):len(b)-1])})
	}
	if len(todo) == 0 {
		return
	}
	fail := func(p pending, err error) {
		errs[p.l.Env.ID] = fmt.Errorf("spool: update %s: %w", p.l.Env.ID, err)
	}
	if err := syncFS(s.tmpDir()); err != nil {
		for _, p := range todo {
			os.Remove(p.tmp)
			fail(p, err)
		}
		return
	}
	var recs []byte
	for _, p := range todo {
		recs = append(recs, p.rec...)
	}
	s.appendIndex(recs) // before the renames, in one write
	var renamed []pending
	for _, p := range todo {
		if err := os.Rename(p.tmp, s.envPath(p.l.Env.ID)); err != nil {
			os.Remove(p.tmp)
			fail(p, err)
			continue
		}
		renamed = append(renamed, p)
	}
	if len(renamed) > 0 {
		if err := syncDir(s.queueDir()); err != nil {
			for _, p := range renamed {
				fail(p, err)
			}
		}
	}
}

// syncFS flushes the whole file system that holds dir to disk.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
