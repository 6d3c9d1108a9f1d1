// Package smtpd is relay's SMTP intake: `sendmail -bs` (an SMTP session on
// stdin and stdout, as Symfony Mailer uses it) and the daemon's loopback
// listener (package listener, which decides who may connect and hands
// each connection to [Server.ServeConn]). It queues through
// sendmailcompat.Submitter, so a message that arrives over SMTP is queued
// exactly as the sendmail command line queues it: same qualification,
// header fix-ups, aliases, limits and durability.
//
// # Why it is written here
//
// go-smtp's server package would do the protocol, but its parser refuses
// what callers of a local MTA send and Postfix accepts: an unqualified
// mailbox (`RCPT TO:<root>`, Ansible's mail module by default; `MAIL
// FROM:<root>`) is answered 501 before the backend sees it, and a quoted
// local part loses its quotes (`"a b"@x` arrives as `a b@x`). The server
// here is small (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, VRFY, HELP,
// QUIT; STARTTLS and AUTH PLAIN/LOGIN only when the listener configures
// them, see auth.go; no BDAT or SMTPUTF8) and keeps Postfix's leniency:
// spaces after the colon, a path without <> when it has no spaces, an
// obsolete source route dropped, LF as well as CRLF.
//
// # A session and the Submitter
//
// MAIL and RCPT check what they can at once, with the Submitter's own
// checks (CheckSender, CheckRecipient, CheckFreeSpace), so that a client
// hears of a bad address at the command that gave it: 501 for syntax, 553
// for a sender sender_login_map refuses (a local -bs user only: a network
// client has no login), 550 for a recipient with nowhere to go, 452 when
// the spool is below min_free_space, 552 for a SIZE over
// max_message_size. The ESMTP parameters SIZE, BODY, RET, ENVID (xtext),
// NOTIFY and ORCPT are understood; the queue keeps one NOTIFY per message,
// so differing ones are merged without losing a notice anyone asked for.
//
// Each transaction (MAIL … DATA) becomes one sendmailcompat.Submission
// and one Enqueue, which reads the message straight from the connection
// through a reader that ends at the lone dot and undoes dot-stuffing. The
// reply "250 2.0.0 Ok: queued as ID" is written only after Enqueue has
// returned, that is after the commit (fsync, rename, directory fsync): a
// client that goes away or a process killed before it leaves no message,
// or one complete message, never a partial one. A refused message gets:
//
//	552 5.3.4  over max_message_size, or a header section over
//	           header_size_limit (the rest of the data is read and
//	           dropped; the session goes on)
//	553 5.1.3  an address Enqueue refused (a safety net: MAIL and RCPT
//	           check first)
//	451 4.3.0  anything else, a full spool included: relay's own failures
//	           are temporary, never 5xx, so the client tries again
//
// # Limits
//
// A command line of at most 4,096 bytes (longer ones are answered 500 and
// skipped), 1,000 recipients per message (Postfix's
// smtpd_recipient_limit), 20 protocol errors per session before 421
// (smtpd_hard_error_limit), and [DefaultTimeout], five minutes, for each
// read of a command or a line of DATA and each write of a reply
// (smtpd_timeout); silence beyond it is answered 421 4.4.2 and ends the
// session. Replies to pipelined commands (PIPELINING) go out together,
// flushed only when no complete command is waiting.
//
// For -bs, [NewStdioConn] makes a net.Conn of stdin and stdout so that
// the same session code, deadlines included, serves both.
package smtpd
