// Package sendmailcompat is relay's intake from the command line: what
// `sendmail` (and `mailq`, `newaliases`) means, and how a message becomes
// a queued message. It never delivers and never imports the delivery
// side; the SMTP intake (package smtpd) builds on it, never the reverse.
//
// It has three parts.
//
// # Flags
//
// [ParseArgs] reads sendmail's command line as Postfix's sendmail(1) does
// (POSIX getopt: the first argument that is not a flag ends the flags;
// flags that are only accepted for compatibility, such as -odi and -oem,
// are ignored) into [Options]: the Mode (-bm, -bp, -bs, -bv, -bi, -q),
// what concerns the invocation (-v, --wait, -C) and, embedded, the
// [Submission] that describes the message (-f, -F, -t, -i, -N, -R, -V, -B
// and the recipients). [Options.Message] is that Submission as Enqueue
// takes it. Values that could inject header lines (a line break or NUL in
// -f, -F or a recipient) and recipients that begin with '-' are refused.
//
// # The Submitter
//
// A [Submitter] is who submits (uid, login, full name, the mail domain
// that qualifies bare names) and where the message goes (the spool, or its
// maildrop). [NewSubmitter] and [OpenSubmitter] assemble one from the
// configuration for the calling user. [Submitter.Enqueue] takes one
// Submission and its text and does, in this order:
//
//  1. the envelope sender: the user's own address, or -f qualified; a
//     sender other than the user's own is checked against
//     sender_login_map (a network client of the daemon has no login and is
//     not);
//  2. the recipient arguments, each an address list, qualified;
//     min_free_space;
//  3. the header, read up to the empty line, with its line ends kept
//     (CRLF or LF, judged by the first line); bare names in the address
//     fields qualified; with -t the recipients of To, Cc and Bcc (or of
//     the Resent- fields when there are any) added; duplicates dropped;
//  4. aliases (package rewrite): a recipient becomes what the alias file
//     makes of it, the address as written kept as Original; one with
//     nowhere to go (a command, a file, a loop) is kept as failed, so the
//     sender gets a bounce;
//  5. the header fix-ups, as Postfix's cleanup makes them: Bcc, Resent-Bcc
//     and Return-Path removed; From (with -F or the user's full name),
//     Date and Message-ID added when missing; a Received field on top
//     recording the submitting uid (or the network client);
//  6. the durable commit: envelope, header and body streamed into a draft
//     (max_message_size enforced while reading: the input is never held
//     in memory), then fsync, rename into the queue and fsync of the
//     directory (spool.Draft.Commit). Only then does the message exist and
//     is the enqueue line logged; on any error before, nothing is left.
//
// Enqueue returns a [Receipt]: the queue ID and the recipients with
// nowhere to go. Those are a partial success, not an error: the message is
// queued. [Receipt.Err] turns them into sendmail's exit 67.
//
// [Submitter.Verify] says what addresses become without queuing anything
// (sendmail -bv, relay rewrite). The Check methods ([Submitter.CheckSender],
// [Submitter.CheckRecipient], [Submitter.CheckFreeSpace]) are Enqueue's
// checks on their own, for an SMTP server to refuse at MAIL and RCPT what
// Enqueue would refuse after DATA.
//
// # The maildrop pickup
//
// In a system install the queue belongs to the relay user and a local
// user cannot write it. Such a submitter (Submitter.Drop, decided by
// OpenSubmitter) writes the same envelope and message, without the
// Received field, into the maildrop, /var/spool/relay/maildrop
// (config.SystemSpool; mode 3733: anyone may create, nobody may list). The
// [Pickup], run as the relay user by relay queue run and the daemon,
// trusts nothing in a drop but its content: it checks the envelope, takes
// the submitter from the file's owner, applies sender_login_map and the
// aliases again (the submitter may not have been able to read them), gives
// it a new queue ID and writes the Received field itself. See spool's
// package documentation for the maildrop's modes and durability.
//
// # Start-up
//
// A sendmail run is mostly start-up: the Go runtime, the initialisation
// of every package the one binary links, the configuration, then the two
// fsyncs of the commit (docs/performance.md has the figures). So nothing
// on this path is prepared before it is needed: regexps are compiled at
// first use (the -q interval), the alias file and the user database are
// read because the envelope and the Received field need them, and no
// package that initialises tables (relay's SASLprep, once xdg-go's
// stringprep) may be linked into the binary with work at init. The
// detached runner that delivers is started by the root package while
// Enqueue commits (daemon.BeginDelivery), so its start-up overlaps the
// fsyncs. Measure a change with bench/startup.sh and
// `GODEBUG=inittrace=1 relay version`.
//
// # Exit codes
//
// Errors are *sysexits.Error, or system errors that sysexits.Code maps;
// the root package turns them into the exit code:
//
//	64  usage: an unknown flag, a bad -f, -N, -R, -V or -B, a recipient
//	    that is no address, no recipients
//	65  data: unreadable input, a message over max_message_size, a bad
//	    address in a header read with -t, no recipient found there
//	67  queued, but a recipient has nowhere to go (Receipt.Err); -bv for
//	    such an address
//	73  the spool or the queue file cannot be made
//	75  temporary: a full disk or less than min_free_space, an alias file
//	    that cannot be read (mail would go to the wrong place)
//	77  permission denied: the spool, or a sender sender_login_map refuses
package sendmailcompat
