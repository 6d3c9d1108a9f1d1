#!/usr/bin/env bash
# fresh-etc.sh COMMAND [ARG...]: run COMMAND as on a fresh machine that has
# no mail transfer agent, no syslog daemon and no relay installed, whatever
# this machine has.
#
# The tests must never read the host's files (/etc/aliases, /etc/mailname,
# /etc/relay, a syslog socket, the host name); each supplies its own. A
# machine where Postfix was installed once hides a test that forgets to:
# it passes here and fails on a fresh machine. So COMMAND runs in a private
# mount and UTS namespace where
#   - a copy of /etc without aliases, mailname and relay/ is bound over
#     /etc (so whatever COMMAND writes there, such as the users the system
#     install tests add, vanishes with the namespace);
#   - every syslog socket Go's log/syslog dials (/dev/log, /var/run/syslog,
#     /var/run/log) is covered by an empty file: connecting is refused;
#   - the host name is relay-ci-fresh, in no /etc/hosts line and without
#     a dot, so an expectation written for one machine's name fails;
#   - /var/spool/relay, the default spool, is an empty directory, so a
#     test that forgets to name its own spool finds nothing queued there
#     by an earlier run (relay check reports mail in the default spool);
#   - no test smarthost runs: RELAY_E2E_DIR names an empty place, so the
#     e2e suite, which runs whenever `e2e/smarthost.sh status` succeeds,
#     skips instead of mailing a smarthost someone else started.
# Nothing outside the namespace changes. Needs root (mounts):
#   sudo env "PATH=$PATH" .ci/fresh-etc.sh go test -race -p 1 ./...
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 64
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "fresh-etc: needs root for its mount namespace; try: sudo env \"PATH=\$PATH\" $0 $*" >&2
	exit 77
fi

if [[ -z ${FRESH_ETC_DIR:-} ]]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/fresh-etc.XXXXXX")
	trap 'rm -rf "$dir"' EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
	cp -a /etc "$dir/etc"
	rm -rf "$dir"/etc/aliases "$dir"/etc/aliases.* "$dir/etc/mailname" "$dir/etc/relay"
	: >"$dir/no-socket"
	export RELAY_E2E_DIR="$dir/no-e2e-smarthost"
	FRESH_ETC_DIR=$dir unshare --mount --uts --propagation private "$0" "$@"
	exit
fi

# Inside the namespace: mounts made here are private to it.
mount --bind "$FRESH_ETC_DIR/etc" /etc
for sock in /dev/log /var/run/syslog /var/run/log; do
	if [[ -S $sock ]]; then # -S follows a symlink such as journald's
		mount --bind "$FRESH_ETC_DIR/no-socket" "$sock"
	fi
done
if [[ -d /var/spool/relay ]]; then
	mkdir -p "$FRESH_ETC_DIR/empty-spool"
	mount --bind "$FRESH_ETC_DIR/empty-spool" /var/spool/relay
fi
echo relay-ci-fresh >/proc/sys/kernel/hostname
unset FRESH_ETC_DIR
exec "$@"
