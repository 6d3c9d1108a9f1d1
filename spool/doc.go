// Package spool is relay's durable on-disk mail queue.
//
// # Layout
//
// A spool is one directory on a local file system. Only this package
// knows the names inside it; other packages ask it (WatchDirs, Announced,
// SystemDirs, Corrupt, ChangeStamp):
//
//	tmp/              drafts being written (tmp/ID), envelopes and states
//	                  on their way to a rename; never a message yet
//	queue/ID          one file per accepted message (the queue file)
//	queue/ID.env      the message's current envelope, once it changed
//	                  after arrival
//	corrupt/          files that could not be read, moved aside for a
//	                  human: queue/ID and queue/ID.env, maildrop-NAME for
//	                  a drop, any stranger found in queue/
//	maildrop/         system install only: where users who cannot write
//	                  the queue leave their messages (.ID while written,
//	                  ID when complete; see "The maildrop" below)
//	index             the envelope index: a cache of every message's
//	                  current envelope (see "The envelope index")
//	hosts/NAME.json   a smarthost found down: until when, why, how many
//	                  failures in a row (HostState)
//	rate/NAME.json    the sends of a smarthost within its rate limit's
//	                  period (RateState), and rate/NAME.json.lock
//	run.lock          the run lock: held by the runner making a pass
//	daemon.pid        the daemon lock, with the daemon's pid (0644: anyone
//	                  may test whether a daemon runs)
//
// In a single-user install everything belongs to the user, mode 0700
// (files 0600). A system install (relay install, or dist/relay.conf for
// tmpfiles.d) gives the spool the owner relay:relay and these modes
// (SystemDirs): the spool 0751 (others may only pass through, to the
// maildrop), queue/ 0750 and its files 0640 (the relay group reads them:
// mailq), tmp/ and corrupt/ 0700, maildrop/ 3733.
//
// A queue file is, byte for byte:
//
//	relay-spool 2\n              format line: magic word and format version
//	{"id":"…","sender":…}\n      the arrival envelope, one line of JSON
//	Received: …\r\n…             the message as accepted (after header fix-ups)
//
// The envelope records the envelope sender, every recipient with its own
// status (pending, delivered, failed) and last reply, the submitting user and
// uid, arrival time, attempts, next attempt time, last error, DSN options,
// whether the message is held, how it came in (the listener: source "smtp") and, for a message taken from the maildrop,
// the drop's identity. The message size is not stored: it is the
// file's size minus the two leading lines.
//
// # Enqueue: a message exists completely or not at all
//
// [Spool.NewDraft] picks a queue ID and creates tmp/ID (O_EXCL) holding a
// lock on it. The caller writes the envelope and streams the message into it;
// [Draft.Commit] then fsyncs the file, renames it to queue/ID with
// RENAME_NOREPLACE (an existing message is never overwritten) and fsyncs
// queue/. The rename is the commit point: a crash before it leaves only a
// file in tmp/ (the caller was never told "accepted"), a crash after it a
// complete message. Two fsyncs per message is the floor for this guarantee,
// which is why envelope and content share one file at arrival.
//
// Files left in tmp/ by a crashed writer are recognised by their missing lock
// (a live writer holds one until it exits) and an age of over a minute, and
// are removed by [Spool.Clean].
//
// # Queue IDs
//
// An ID is 15 characters of Crockford's base32 (0-9, A-Z without I L O U): 11
// encode the arrival time in microseconds, 4 are random. IDs sort by arrival
// time, are unique (the rename refuses a duplicate, the random part makes one
// unlikely even within a microsecond) and never come back, since time only
// moves on.
//
// # Changing the envelope
//
// Delivery attempts change recipients' status, attempts and next attempt
// time. Rewriting a queue file that may hold 100 MB for that would be
// wasteful, so the new envelope goes to queue/ID.env (written in tmp/,
// fsynced, renamed over the old one, queue/ fsynced), which supersedes the
// arrival envelope. The envelope file also records the queue file's size
// ("queue_file_size", which readers of the envelope ignore), so that a
// count of the queue reads one file per message and stats none
// (ScanSummaries). Removing a message unlinks queue/ID first and
// queue/ID.env second: a crash in between leaves an orphan .env file (removed
// by Clean), never a message that reverted to its arrival envelope and would
// be sent again to recipients already served. Delete fsyncs queue/ before
// it returns; a delivery pass uses DeleteSoon instead, whose fsync is
// shared by every removal made while it runs and awaited at the end of
// the pass (SyncRemovals): a power failure meanwhile can bring a
// delivered message back, to be sent again, never lose one.
//
// # The envelope index
//
// A listing of the queue (mailq, relay queue list and stats, the
// runner's look for due mail, the daemon's schedule) needs every
// message's current envelope. Reading it from the message's files costs
// an open, a read and a close of queue/ID or queue/ID.env per message,
// and at 100,000 messages those system calls were most of two seconds.
// The index holds the same envelopes in one file, read in one pass.
//
// It is a cache: nothing depends on it for correctness, and a message it
// lacks is read from its files. Every writer of an envelope appends a
// record to it before the rename that makes the envelope current: the
// enqueue (Draft.Commit, after the fsync of the queue file, before the
// rename into queue/), an update (Locked.Update, ChangeAll: after the
// fsync of the new envelope file, before its rename). A record is one
// line:
//
//	KIND VERSION ID INODE FILESIZE CONTENTSIZE CRC32 JSON
//
// KIND is q (the arrival envelope of the queue file) or e (an envelope
// file), INODE the inode of the file it describes, FILESIZE and
// CONTENTSIZE the queue file's size and the message's, CRC32 the
// checksum of JSON, the envelope as the file holds it. A reader lists
// queue/ once with the inode of every name (getdents64) and trusts a
// record only when its inode is the one listed now for the message's
// current envelope: queue/ID.env when there is one, else queue/ID. Files
// are never rewritten in place, only replaced by a rename, so an inode
// stands for one content as long as the name lists it. The record of a
// rename that never happened (a crash before it) names an inode the
// queue never lists; of several records naming the current inode (an
// inode number used again by a later envelope of the same message) the
// last is the current one, because each is appended while its file
// exists, and the file of an older one was gone before the newer was
// created. A torn line fails its checksum. A record the index lacks (an
// append that failed, a spool written by a relay before the index) costs
// that message its file reads.
//
// Readers keep a few bytes per message: the listing (32 bytes each: the
// ID and two inodes) and where each message's record is; the records
// themselves are read again chunk by chunk as the scan goes, so the
// daemon's memory does not grow with the index.
//
// Clean (the first step of every runner) rebuilds the index when there
// is none and messages are queued — the upgrade of a spool of an older
// relay, whose files stay as they are — and when it has grown to more
// than twice the size of its last rebuild, which its first line records
// ("relay-index 1 BYTES"). The rebuild writes tmp/index.*: the current
// record of every message in arrival order, copied from the old index or
// made from the message's files, then renames it over the index.
// Appenders hold a shared lock on the index around their write and write
// only to the file that is still the index (a link count of zero means
// it was replaced: they open the new one); the rebuild copies what was
// appended while it ran from the old file under the exclusive lock, just
// before its rename, so no record is lost between the two files. One
// rebuild runs at a time (a lock of its own on the index). Messages
// being delivered are told, for a whole listing, from one read of
// /proc/locks: the listing takes a read lock of its own on the index,
// beyond its end where no writer locks, and uses the device /proc/locks
// shows for it when the inode there is the one the spool directory lists
// for the index; anywhere that does not hold (no /proc, no index), it
// tests each message's lock as before.
//
// # Locks
//
// Every lock is an open file description lock (fcntl F_OFD_SETLK): it
// belongs to the open file, not the process, and the kernel drops it when
// the holder exits or crashes, so a crash never leaves anything locked
// and no lock file is ever stale. Unlike flock it can be tested without
// being taken (F_OFD_GETLK). The spool must therefore be on a local file
// system. There are four, and the index's (see "The envelope index"):
//
//   - The message lock, on queue/ID. Whoever changes a message (a delivery
//     runner, relay queue hold/delete, a flush) first takes [Spool.Lock].
//     Testing it lets mailq mark a message being delivered with "*"
//     without ever making a runner skip it. After taking the lock the
//     holder checks that the file still has a link: another runner may
//     have delivered and removed the message between our open and our
//     lock. A writer holds the same lock on its draft tmp/ID from its
//     creation until it exits, which is how Clean tells a live draft from
//     a dead one.
//   - The run lock, on run.lock ([Spool.TryRunLock]): one delivery pass
//     at a time. A runner that finds it taken leaves (relay queue run) or
//     waits (the daemon); a submitter that sees it held
//     ([Spool.RunnerActive]) starts no runner of its own.
//   - The daemon lock, on daemon.pid ([Spool.LockDaemon]): held by the
//     daemon for its life; relay check and sendmail test it
//     ([Spool.DaemonRunning]).
//   - The rate lock, on rate/NAME.json.lock, taken (waiting) around each
//     read-change-write of a smarthost's rate state, which runners in
//     several processes share ([Spool.TakeRate]).
//
// # The maildrop
//
// maildrop/ belongs to relay:relay with mode 3733: anyone may create
// files there, nobody but relay may list it, the sticky bit stops users
// deleting each other's files, and the setgid bit gives every file the
// group relay, so a drop created 0640 is readable by relay and nobody
// else. A submitter writes maildrop/.ID, fsyncs it and renames it to
// maildrop/ID ([Spool.NewDrop]). The pickup (run by relay queue run and
// the daemon, as relay) takes the complete names in order ([Spool.Drops]),
// trusts nothing in a drop but its content ([Spool.OpenDrop]: a regular
// file with one link, no larger than the limit, the submitter's uid from
// fstat), queues it as a new message and removes the drop
// ([Spool.FinishDrop]). A drop that is no message is unlinked (a symlink,
// a FIFO, a socket, a device, a hard link), removed (an empty directory)
// or moved to corrupt/ as maildrop-NAME (a directory, too large,
// unreadable; a name too long for the prefix keeps 200 bytes and a hash;
// never over an earlier file); dot-named drafts older than a day are
// removed. What can be neither taken nor moved (a user's directory relay
// may not write) is left out of Drops for a while ([Spool.DeferDrop]), so
// that it never makes a pass repeat.
//
// A crash between the commit of the queue file and the removal of the
// drop must not queue it twice: the envelope records the drop's identity
// (Envelope.Drop: name, device, inode, size, mtime, ctime), and the next
// pickup asks [Spool.QueuedDrops] which waiting drops are already queued
// (reading only messages younger than the oldest drop, less a margin for
// a clock set back) and removes those ([Spool.RemoveQueuedDrop]).
//
// The durability window: a maildrop writer cannot fsync the directory
// (that needs read access to it), so until the pickup fsyncs maildrop/ a
// power failure can lose the new name. The window runs from sendmail's
// exit to the next pickup: at once with the daemon (it watches
// maildrop/), the next run with cron. A crash of a process alone never
// loses a message that was renamed.
//
// # Format versions and conversion
//
// Every file relay writes starts with the format line: a queue file (then
// the arrival envelope and the message) and, since format 2, an envelope
// file queue/ID.env (then the envelope). Format 1 wrote envelope files as
// the JSON line alone; one that starts with "{" is format 1. The envelope
// index came after format 2 without changing either file: a spool
// without it (written by an older relay) is read from its files and gets
// its index from the first runner's Clean; an index record carries the
// format version of its envelope.
//
//   - Format 1 stored failures as text: a recipient's "reason" (the reply
//     line, "gave up after 5d: " in front once relay gave up, or the 250
//     reply of a delivery), the envelope's "last_error" ("rcpt: 452 …") and
//     "own_side".
//   - Format 2 stores them as structures of package failure: a recipient's
//     "failure" (stage, code, enhanced code, text, time, gave_up_after), a
//     delivered recipient's "reply" (the 250 reply stays text: it is shown,
//     never classified), and the envelope's "last_failure". Whether a
//     message waits for relay's own side is no longer stored: it is
//     derived from its pending recipients' failures ([Envelope.OwnSide]).
//
// A file of an older format is converted when it is read, in memory: the
// text is parsed back once (package failure's ParseFormat1Reason and
// ParseFormat1Error), a recipient's stage taken from the last error when
// its reason is that error's reply, else the one mailq assumed for format
// 1 (MAIL when the message waited for relay's own side, else RCPT). Reading
// never writes (mailq needs only read access), so a converted envelope
// reaches the disk with the message's next update, which writes queue/ID.env
// in the current format; the queue file itself is never rewritten (it may
// hold 100 MB) and keeps its older arrival envelope, which the envelope file
// supersedes. A message never updated again is converted on every read, at
// the cost of parsing a few lines. spool/testdata holds a spool written by
// format 1, which the tests read back field by field.
//
// A file of a newer format than this relay reads (queue or envelope file)
// is refused with ErrNewer and left alone. Going back to an older relay is
// not supported: one that reads only format 1 refuses format-2 queue files
// (left alone) but takes a format-2 envelope file for corrupt (moved aside
// to corrupt/, never deleted).
//
// # Corrupt files
//
// A queue file whose format line or envelope cannot be read is moved to
// corrupt/ by the next process that can write the spool, and reported; it is
// never deleted and never stops the processing of the other messages. A file
// written by a newer format version is left alone and reported.
package spool
