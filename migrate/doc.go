// Package migrate turns the configuration of another sendmail-compatible
// relay client (msmtp, ssmtp, nullmailer, dma, a Postfix null client) into
// a relay.toml, and moves the mail waiting in its queue into relay's spool
// (`relay import FORMAT [PATH] [--write DIR] [--queue]`).
//
// # Every setting is accounted for
//
// An import reads every line of the source and answers for each setting
// with a [Note]: mapped (to which relay key), not needed (and why: relay
// does it by itself, or it concerns a part relay does not have), not
// possible (and what to do instead), insecure (not carried over, with the
// secure equivalent proposed) or unknown (a key this package does not
// know: reported, never dropped). The notes go to standard error; the
// configuration is a [Result] rendered as TOML.
//
// Insecure settings never travel silently: a certificate check turned off
// (msmtp's tls_certcheck off, nullmailer's --insecure, Postfix's
// smtp_tls_security_level = encrypt) becomes relay's verified TLS, and the
// note proposes pinning the certificate with tls_fingerprint (relay probe
// prints it); opportunistic or no TLS (Postfix's may, dma's
// OPPORTUNISTIC_TLS, a nullmailer remote without --ssl or --starttls)
// becomes mandatory STARTTLS.
//
// Passwords never go into relay.toml: each becomes a secret file named by
// password_file (written by [Result.Write] with mode 0640, group relay when
// it exists). A source that others may read is reported: its password has
// been exposed.
//
// # Bad input
//
// A source line that cannot be read is a [*SourceError] naming the file
// and line (exit 65); a missing source exits 66. Nothing is written then.
//
// # The queue
//
// [ImportQueue] reads the queue of nullmailer, dma or msmtpq, commits each
// message into relay's spool with the spool's own durable enqueue (the
// message's envelope sender, recipients and content unchanged), and only
// then removes the source files; a file it cannot parse is left where it
// is and reported.
package migrate
