// Package layout holds no code: its tests keep the module's shape.
//
// The packages follow the path of a message, and nothing imports back up
// that chain:
//
//	leaves    sysexits, config, mailaddr, maillog, failure, spool, route
//	intake    sendmailcompat (sendmail's flags, the Submitter, the pickup),
//	          smtpd (the SMTP server of -bs and the listener), rewrite,
//	          mailaddr
//	queue     mailq (reads the spool; never delivers)
//	delivery  relay, with bounce for the reports it sends
//	runners   daemon, listener, check, install
//	command   the root package main: parses the command line, dispatches,
//	          maps errors to exit codes
//
// imports_test.go holds the table of the module's packages each package may
// import, read from `go list -json ./...`, and checks with each package's
// transitive dependencies that intake, the leaves and mailq never reach the
// delivery package or go-smtp: running sendmail must not load an SMTP
// client. length_test.go keeps the root package's files (tests too) under
// 300 lines and every other test file under 800, so that no file grows
// back into a grab-bag.
package layout
