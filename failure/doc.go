// Package failure says why a delivery did not succeed, as data: the stage
// of the SMTP session where it failed, the smarthost's reply (code,
// enhanced status code, text) or the text of an error without one, when it
// happened, and whether relay gave up. Package relay makes failures while
// it delivers; package spool stores them with each recipient (a structure
// in the envelope, never a sentence to be parsed back); mailq, bounce and
// the log read them. This package imports nothing but the standard
// library, so a reader of the queue does not pull in the SMTP client.
//
// # Classification (SPEC sections 6 and 9)
//
// Every failure defers unless it is proven permanent:
//
//   - A 4xx reply, and any failure without a reply (connect, DNS, TLS or
//     certificate, proxy, timeout, a connection cut), defers the
//     recipient: it is tried again with exponential backoff between
//     retry_min and retry_max.
//   - A 5xx to RCPT refuses that recipient for good ([Failure.Permanent]),
//     except 552, which RFC 5321 (4.5.3.1.10) asks to treat as 452. A 5xx
//     to DATA or after it refuses the message's remaining recipients.
//   - Failures of relay's own side or of the account ([Failure.OwnSide])
//     never bounce, whatever their code: every failure before RCPT
//     (connect, TLS, greeting, EHLO, AUTH such as 535, MAIL FROM such as
//     "553 5.7.1 … not owned by auth user", relay's own configuration at
//     StageLocal), and replies at RCPT or DATA that speak of the account
//     rather than the recipient (relaying denied, a sending quota or limit
//     exceeded). The mail is fine; it waits for someone to act. They are
//     logged as errors, shown in mailq, and make relay check fail.
//   - soft_bounce turns every permanent failure into a deferral (to test a
//     new configuration without losing mail). The log then says 4.x.x
//     ([Failure.DSN]), as a Postfix soft bounce does.
//   - Past lifetime, a recipient the smarthost keeps deferring is given up:
//     it fails, and its stored failure says so (GaveUpAfter) so that the
//     bounce tells the sender that relay, not the server, stopped
//     ([Failure.FailedStatus] is then 5.4.7). Mail that waits for relay's
//     own side or the account, and relay's own bounces, are never given
//     up: they go on hold (until relay queue release), never away.
//
// [Failure.DSN] is the status code the log shows; [Failure.ReplyLine] is
// the reply as one line ("553 5.7.1 Sender address rejected"), the log's
// reply= and mailq's reason; [Failure.Error] adds the stage in front.
//
// # Explanations
//
// [Explain] says in plain words what a failure means and what to change:
// the log's hint=, the bounces, mailq and relay probe all use it. It is
// one table of rows, tried in order; a row names the conditions it needs
// (stages, reply code, enhanced code, reply text, an error's type or
// text) and the first row whose conditions all hold gives the sentence. A
// failure read back from the spool has lost the type of its Go error, so
// every row that recognises an error by its type also recognises it by
// its text. A recipient skipped because its smarthost is remembered as
// down carries the failure that took the smarthost down as its Cause, and
// is explained by it.
//
// # Format 1
//
// Spool format 1 stored failures as text: a recipient's reason
// ("451 4.3.0 text", "gave up after 5d: …") and the envelope's last error
// ("rcpt: 452 …"). [ParseFormat1Reason] and [ParseFormat1Error] read such
// text back into a Failure for package spool's conversion, and for a
// smarthost's down state (spool.HostState) that an older relay left in
// the spool.
package failure
