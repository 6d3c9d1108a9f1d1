// Package testbin runs the relay binary the way callers and administrators
// do, for the black-box tests of the root package and of daemon: sendmail
// from cron, mailq, relay daemon under real signals, a system install with
// local users.
//
// The binary is built once per test binary, on first use (Binary), as it
// is shipped: static, without cgo (a binary with cgo cannot give up a
// capability on every thread; see listener). Beside it are the links
// sendmail, mailq and newaliases, so that a test runs each under the name
// that selects its behaviour. A package that uses this one calls Main from
// its TestMain, which removes the build when the tests are done.
//
// An Env is one spool with its configuration file in a directory of the
// test's own; every command it prepares reads that file (RELAY_CONFIG),
// never the host's. A SysEnv is a system install under a prefix (relay
// install), with two local users to submit as.
//
// It is imported by _test.go files only; the relay binary never links it.
package testbin
