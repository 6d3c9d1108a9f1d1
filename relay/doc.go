// Package relay delivers queued mail to an authenticated TLS smarthost.
//
// # One delivery pass
//
// [Runner.Run] walks the spool in arrival order. A message is taken when it
// is due (its next attempt time has come), not held, and has recipients
// still pending. The runner locks it (see package spool: a message another
// runner holds is skipped), re-reads its envelope under the lock and hands
// it to the smarthost over a connection that later messages of the same
// pass reuse (RSET between transactions).
//
// # Connecting: secure or not at all
//
// [Dial] opens TCP to host:port and then, by the smarthost's tls setting:
//
//   - implicit: a TLS handshake before anything else (port 465);
//   - starttls: greeting, EHLO, STARTTLS, handshake, EHLO again. A server
//     that does not offer STARTTLS is an error: there is no fallback to
//     plain text;
//   - none: plain SMTP.
//
// The certificate is verified against the system roots, or against
// tls_ca_file, for tls_server_name (default: host); tls_fingerprint instead
// pins the SHA-256 of the leaf certificate and skips chain verification.
// Then AUTH, when a username is configured: never over a connection without
// TLS unless the peer's address is loopback, with the mechanism named by
// auth or else the strongest password mechanism both sides support
// (SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN; XOAUTH2 and OAUTHBEARER only when
// named), with PLAIN over TLS after a refused challenge-response mechanism
// (auth.go explains). The password is read for each new connection
// (password_file, or the first line password_command prints: tokens
// expire).
//
// # One transaction, a result per recipient
//
// MAIL FROM, then RCPT TO for each pending recipient, then DATA with the
// message as queued. Each recipient gets its own outcome:
//
//   - accepted at RCPT and the DATA answered 250: delivered. The runner
//     records this in the spool (fsynced) before it does anything else, so
//     that a crash can cause at most one duplicate (the 250 arrived, the
//     record did not), as in Postfix.
//   - a 5xx at RCPT (except 552, which RFC 5321 says to treat as 452), or a
//     5xx to DATA or after it: failed permanently, with the reply.
//   - a 4xx anywhere, a timeout, a dropped connection: deferred, with the
//     reply or error, to be retried.
//
// Failures of relay's own side or of the account — connect, DNS, TLS or
// certificate errors, any reply before RCPT (greeting, EHLO, STARTTLS, AUTH
// such as 535, MAIL FROM such as Yandex's "553 5.7.1 Sender address
// rejected: not owned by auth user") — never fail a recipient: they defer
// the whole message, because the mail is fine and the configuration or the
// account is not. A bounce would lose mail that a fixed configuration
// delivers.
//
// When the connection itself fails (connect, TLS, AUTH), the other messages
// of the pass are deferred with the same reason without a new connection
// each: a queue of thousands costs one failed connection, not thousands.
//
// # Retries, lifetime, reports
//
// A deferred message is due again after retry_min, doubling per attempt up
// to retry_max. A smarthost that cannot be reached is remembered as down
// (spool.HostState, for its host, port and TLS mode) until its own retry
// time, across passes: due messages meanwhile are deferred with that reason
// and no connection; a flush forgets it.
//
// Past lifetime, a message waiting on relay's own side or the account is
// put on hold (never bounced, never deleted), and a recipient the
// smarthost keeps deferring is failed ("gave up after …"). soft_bounce
// turns every permanent failure into a deferral.
//
// A failed recipient is recorded first; then a delivery status
// notification (package bounce) is queued to the sender as a message of its
// own, marked as a bounce, from bounce_from; then the recipient is marked
// notified. A crash in between repeats the report, never loses it. NOTIFY
// and the null sender can make a report unnecessary. Reports — relay's own
// and other systems' (multipart/report, Auto-Submitted: auto-replied) — are
// never answered with a report: a failed one goes to postmaster, and if
// postmaster fails too, it is held. A delay warning goes out once after
// warn_after. A message leaves the queue when every recipient is delivered
// or failed and reported; otherwise only by relay queue delete.
package relay
