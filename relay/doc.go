// Package relay delivers queued mail to authenticated TLS smarthosts.
//
// # One delivery pass
//
// [Runner.Run] walks the spool's queue IDs in arrival order (IDs only: the
// envelopes are read one at a time, so memory does not grow with the
// queue). A message is taken when it is due (its next attempt time has
// come), not held, and has recipients still pending or failures still to
// report.
//
// # Routing: which smarthost
//
// The order of decisions is SPEC §5's. First the sender map
// ([Rewriter].Sender) gives the sender that routing looks at. Then
// [route.Route]: the [[smarthost]] tables whose senders patterns match it, in
// configuration order, or, when none matches, the tables without senders.
// A table whose senders do not match is never used for that sender: its
// account may not send as it. Then, for each pending recipient,
// [route.Recipient]: the tables whose recipients patterns name it (when
// their senders allow the sender), else the sender's route. Recipients
// whose candidates differ are split into one transaction each, the parts
// one after the other (split.go explains their shared attempt and next
// attempt time); a message pinned with sendmail -a goes through that one
// table ([route.Pinned]). No table at all means a fault of the
// configuration: the recipients wait (relay's own side, never bounced,
// held after lifetime) with "no smarthost serves …". Last, the chosen
// smarthost's envelope_from, or its preset's rule (yandex, mailru, outlook
// and rambler accept only the login as the sender), gives the envelope
// sender that goes out ([route.OutgoingSender]), and the header changes for that
// smarthost apply ([Rewriter].Content).
//
// # Failover
//
// The candidates are tried in order. A smarthost that cannot be used —
// connect, proxy, TLS or certificate failure, a 421 or other refusal of
// the greeting or EHLO, AUTH refused — is marked down (below) and the
// message goes to the next candidate in the same pass. A smarthost already
// down is skipped without a connection. When every candidate is down the
// message is deferred with the last one's failure until the first of them
// is due to be tried again. A failure inside a transaction (a 4xx or 5xx
// to MAIL, RCPT or DATA, a connection lost mid-way) is no reason to fail
// over: the account works, the message or recipient is at issue.
//
// # Parallel connections, one message per worker
//
// Each smarthost has a lane of at most max_connections workers ([queue];
// a Config not loaded from a file, with 0, gets 1). Run is the
// dispatcher: it hands each due message's ID to the lane of its first
// usable candidate, starting a new worker only when every running one is
// busy and a connection to that smarthost has worked in this pass, so a
// short queue keeps one connection, a long one opens up to
// max_connections, and a smarthost that is down costs one failed
// connection. A worker locks the message (see package spool: a
// message another runner holds is skipped), re-reads its envelope under
// the lock and sends it over the worker's connection, which it opens on
// first use and keeps for the messages after: MAIL follows the reply to
// the last DATA directly, RSET only ends a transaction that ended early,
// and a connection idle for seconds is probed with NOOP first.
// A message is thus locked and sent by exactly one worker; results and log
// lines stay per recipient. When a dial fails, the worker gives the ID
// back to the dispatcher for the next candidate. With -v (Runner.Debug)
// each smarthost gets one connection, so that the dialogue stays readable.
// Runner.KeepConnections keeps a pass's connections for the next pass of
// the same runner (relay queue run's passes follow each other closely).
//
// # Rate limits
//
// rate_limit = "100/h" (presets carry the providers' known limits): before
// a message goes to a smarthost with a limit, the worker takes a send from
// the smarthost's window, a sliding window kept in the spool
// (rate/NAME.json, under a lock) so that every runner — the daemon, a cron
// `queue run` each minute, a sendmail --wait — counts the same sends, and
// a restart forgets none. A send whose connection then fails is given
// back. When the window is full the message waits until the oldest send
// leaves it: no attempt is counted, its reasons stay, the envelope records
// what it waits for (mailq shows "waiting for the rate limit of smarthost
// X (100/h) until …"), and the time waited is added to RateWaited, which
// lifetime does not count: a message never expires because relay held it
// back. A flush makes such a message due, and the window holds it again.
// The log says status=rate-limited once per message and wait.
//
// # Connecting: secure or not at all
//
// [Dial] opens TCP to host:port (from source_address, over ip_family's
// addresses only, when set and no proxy is used) and then, by the
// smarthost's tls setting:
//
//   - implicit: a TLS handshake before anything else (port 465);
//   - starttls: greeting, EHLO, STARTTLS, handshake, EHLO again, both
//     EHLOs with relay's name (the smarthost's helo_name, else
//     Runner.HeloName; go-smtp alone would say localhost before STARTTLS:
//     starttls.go). A server that does not
//     offer STARTTLS is an error: there is no fallback to plain text;
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
//     record did not), as in Postfix. When the record cannot be written (a
//     full disk) the runner remembers it in memory and pauses delivery
//     until the spool takes writes again (see unrecorded.go): a process
//     never sends to a recipient twice.
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
// each (or go to the next smarthost): a queue of thousands costs one failed
// connection per worker, not thousands.
//
// # Retries, lifetime, reports
//
// A deferred message is due again after retry_min, doubling per attempt up
// to retry_max. A smarthost that cannot be reached is remembered as down
// (spool.HostState, keyed by the smarthost's name) until its own retry
// time, across passes: due messages meanwhile go to the next candidate, or
// are deferred without a connection, with a failure that names the outage
// and carries, as its Cause, the failure that took the smarthost down; a
// flush forgets it (never the rate-limit windows).
//
// The state is about the settings it failed with (HostState.Addr, made by
// hostAddr): host, port, TLS mode and proxy in clear, and a digest of
// everything else that decides whether a connection works —
// tls_fingerprint, tls_server_name, tls_min_version, username, auth,
// password_command, source_address, ip_family, the name given in EHLO,
// the [smarthost.oauth] settings, and the files tls_ca_file,
// tls_client_cert, tls_client_key, password_file and the OAuth ones
// (client secret, service account, token file) by path, size,
// modification time and inode. A pass that finds a state recorded under other settings forgets
// it and connects: a corrected configuration is tried at once, not after
// the outage's backoff. Secrets are left out, even from the digest (no
// inline password, no proxy password, no file's contents): a change of an
// inline password alone is not seen, and waits for the backoff or a flush.
// The cost of a false change (a file touched but not changed) is one
// connection.
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
