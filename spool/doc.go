// Package spool is relay's durable on-disk mail queue.
//
// # Layout
//
// A spool is one directory on a local file system:
//
//	tmp/       messages being written; never a message yet
//	queue/ID   one file per accepted message
//	queue/ID.env  the message's current envelope, once it changed after arrival
//	corrupt/   queue files that could not be read, moved aside for a human
//
// A queue file is, byte for byte:
//
//	relay-spool 2\n              format line: magic word and format version
//	{"id":"…","sender":…}\n      the arrival envelope, one line of JSON
//	Received: …\r\n…             the message as accepted (after header fix-ups)
//
// The envelope records the envelope sender, every recipient with its own
// status (pending, delivered, failed) and last reply, the submitting user and
// uid, arrival time, attempts, next attempt time, last error, DSN options and
// whether the message is held. The message size is not stored: it is the
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
// arrival envelope. Removing a message unlinks queue/ID first and
// queue/ID.env second: a crash in between leaves an orphan .env file (removed
// by Clean), never a message that reverted to its arrival envelope and would
// be sent again to recipients already served.
//
// # Locks: one runner per message
//
// Whoever changes a message (a delivery runner, relay queue hold/delete, a
// flush) first takes [Spool.Lock]: an open file description lock (fcntl
// F_OFD_SETLK) on queue/ID. It behaves like flock: it belongs to the open
// file, not the process, and the kernel drops it when the holder exits or
// crashes, so a crash never leaves a message locked. Unlike flock it can be
// tested without being taken (F_OFD_GETLK), which lets mailq mark a message
// being delivered with "*" without ever making a runner skip it. After taking
// the lock the holder checks that the file still has a link: another runner
// may have delivered and removed the message between our open and our lock.
// The spool must therefore be on a local file system.
//
// # Format versions and conversion
//
// Every file relay writes starts with the format line: a queue file (then
// the arrival envelope and the message) and, since format 2, an envelope
// file queue/ID.env (then the envelope). Format 1 wrote envelope files as
// the JSON line alone; one that starts with "{" is format 1.
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
