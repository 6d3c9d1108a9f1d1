// Package rewrite changes addresses and headers on their way through
// relay: recipient aliases, the sender map, the From header, header
// rules, and which local user may send as whom. It is the most common
// reason mail from servers never arrives: cron sends as
// root@server1.local, and the provider answers "553 5.7.1 Sender address
// rejected: not owned by auth user", or a receiver checking DMARC drops a
// From whose domain is not the authenticated one.
//
// # Files
//
// The alias file, sender_map and sender_login_map share the aliases(5)
// format: "key: value, value…"; a line beginning with white space
// continues the one before; empty lines and "#" lines are ignored; keys
// ignore case; a key given twice counts once (the first), with a warning.
// A bad line is reported with file:line (relay check, newaliases) and
// skipped: the rest of the file still applies, so one typo never stops
// mail.
//
// # Order of decisions
//
// At enqueue (sendmail, sendmail -bs, the pickup of the maildrop), where
// the recipients are decided:
//
//  1. Bare names are qualified with the mail domain (domain, else
//     /etc/mailname, else the host's FQDN), in the envelope and in the
//     address fields of the header (package sendmailcompat).
//  2. sender_login_map: a local user may give with -f (or MAIL FROM)
//     only the senders listed for their login ("*" any, "<>" the null
//     sender, "@domain", an address); their own login@domain always.
//     Refused: exit 77 (-bs: 553 at MAIL), nothing queued.
//  3. Aliases: every local recipient (no domain, or the mail domain, the
//     host's name, localhost) is looked up by its local part, recursively,
//     with loop detection; "*" catches local names without an entry. The
//     address as written is kept as the recipient's Original (the DSN's
//     ORCPT). A name whose entries all lead nowhere relay can deliver
//     (|command, /file, :include:, a loop) is kept as a failed recipient
//     with that reason: the sender gets a bounce, and sendmail exits 67.
//
// At delivery, through relay.Rewriter, so that a corrected configuration
// applies to mail already queued (fix the map, then relay queue flush):
//
//  4. The sender map rewrites the envelope sender (Rules.Sender). Keys, the
//     first match wins: the full address; the local name, for a local
//     address; "@domain"; "*". A value "@domain" keeps the local part.
//     The null sender is never rewritten.
//  5. Routing by the smarthosts' senders on that result, then the chosen
//     smarthost's envelope_from or its preset's rule (package relay: Route,
//     OutgoingSender).
//  6. from_header = "rewrite" makes the From address the envelope sender
//     that goes out (Rules.Content), keeping the display name, or giving
//     one such as "root on server1" when there is none, and keeping the
//     old value in X-Original-From. Reply-To is left alone. A From that
//     already is the sender is not touched.
//  7. The [[rewrite.header]] rules, in order: add, replace, append,
//     remove, with %h (this host) and %u (the submitting user).
//
// Steps 6 and 7 read only the header: the body is streamed through
// untouched. Without from_header = "rewrite" and header rules, the
// message leaves byte for byte as queued, so a DKIM signature stays
// valid; a rule that changes a signed field (From, Subject, …) breaks it.
//
// A Rules held by a long-running process (the daemon) looks at its files
// at most once a second and reads them again when one changed, so a fix
// needs no restart.
//
// Rules.Describe follows one address through all of this for relay
// rewrite and sendmail -bv; Rules.Check gives relay check's warnings
// (root and postmaster undeliverable, DMARC misalignment).
package rewrite
