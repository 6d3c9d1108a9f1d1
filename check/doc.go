// Package check is `relay check`: is this installation able to deliver
// mail, and if not, why, in one run an administrator (or a monitoring
// probe) can act on. It reads, never changes anything, and never touches
// the network (that is `relay probe`).
//
// # What is checked
//
//   - The configuration and every file it names (config.Config.Check:
//     types, ranges, smarthosts, password files and their modes), then the
//     [rewrite] files and what they mean together (rewrite.Rules.Check:
//     alias loops, a From that DMARC would reject). Suspicious things are
//     warnings, one line each on stderr, and do not fail the check.
//   - The spool. A spool that does not exist yet is fine: it is made on
//     first use. A single-user spool must be readable, writable and
//     searchable by this user (or sendmail could not queue). A system
//     install (one with a maildrop) must have every directory with the
//     owner and mode relay install gives it (spool.SystemDirs); a daemon
//     not running is a warning there, since local users' mail then waits
//     for `relay queue run`.
//   - The queue: every message is read as mailq reads it (spool.Scan).
//     Unreadable ones and files set aside in corrupt/ are warnings. Mail
//     whose last attempt failed on relay's own side or the account's
//     (connect, TLS, AUTH, MAIL FROM: the envelope's OwnSide) is stuck:
//     the configuration may be valid, but mail does not leave.
//
// # Exit codes
//
// Errors exit 78 (every one listed, file:line where known); stuck mail
// exits 75 ([StuckError]), so a monitoring check tells "fix the
// configuration" from "the smarthost or the account is refusing us";
// otherwise 0 with the configuration used and the count of queued
// messages on stdout.
package check
