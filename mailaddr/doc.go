// Package mailaddr parses and qualifies the mail addresses that sendmail's
// callers hand to relay: in header fields (From, To, Cc, Bcc, Reply-To,
// Sender, Resent-*) and on the command line (-f/-r and recipient
// arguments).
//
// # Why lenient
//
// relay is installed as /usr/sbin/sendmail, so its callers are programs we
// cannot change: Debian cron writes "From: root (Cron Daemon)" and
// "To: root" (no domain), cronie writes `From: "(Cron Daemon)" <root>`,
// mailx users type "To: alice, bob@x", PHP scripts put "info@site <info@site>"
// or "a@x; b@y" in their headers. net/mail rejects all of these, and a
// sendmail that refuses a cron job's output loses the one message that said
// the job failed. relay must never lose a message over an address, so this
// package accepts everything that has one sensible reading:
//
//   - bare local parts without a domain ("root", "<root>", `"x y"`), which
//     [QualifyHeader] and [Qualify] complete with the local mail domain;
//   - display names made of any words, unquoted 8-bit/UTF-8 text, dots
//     ("John Q. Public"), bracketed words and even unquoted "@"
//     ("info@site <info@site>"); RFC 2047 encoded words are left as written;
//   - "addr (comment)", comments anywhere between elements, nested comments
//     and quoted-pairs;
//   - groups ("undisclosed-recipients:;", "Team: a@x, b@y;"), also without
//     the closing ";";
//   - obsolete route addresses <@r1,@r2:a@b> (the route is dropped), domain
//     literals a@[127.0.0.1], quoted local parts, the null path <>;
//   - folded values (CR and LF count as white space), empty elements
//     (",a@b,,c@d,") and ";" used as a list separator outside a group.
//
// Parsing fails only when no sensible reading exists: an unterminated quoted
// string, comment, domain literal or angle address, or an element that is not
// an address at all ("a@b@c", "John Smith", "<a@b> extra <c@d>"). The error
// names the offending text. A header value that does not parse is passed on
// unchanged by [QualifyHeader]: the message still goes out.
//
// Parsing keeps byte offsets ([Address].Start and End) so that headers can
// be rewritten in place: qualification inserts "@domain" after each bare
// local part and changes no other byte (comments, display names, folding and
// spacing stay as the caller wrote them).
//
// Strictness belongs elsewhere: [Valid] checks that a single, complete
// address is plausible enough to hand to a smarthost, for configuration
// values and for recipients after qualification.
package mailaddr
