#!/bin/bash
# e2e/callers.sh — the real programs that call /usr/sbin/sendmail, for the
# real-callers tests (e2e/callers_test.go), and the other Debian packages the
# e2e suite runs (microsocks and socat for e2e/socks_test.go, swaks and
# python3 for e2e/listener_test.go).
#
# Usage: e2e/callers.sh install|status|packages
#
#   install   apt-get install (idempotent, --no-install-recommends) every
#             package below that is missing. Run `e2e/smarthost.sh install`
#             first: bsd-mailx depends on "default-mta | mail-transport-agent",
#             and without Postfix already installed apt would pick exim4
#             (which takes port 25 and /usr/sbin/sendmail). The install
#             refuses to go on when apt would install exim or remove or
#             replace Postfix.
#   status    exit 0 when every package is installed, else list the missing
#             ones and exit 1.
#   packages  print the package list, one a line.
#
# The tests never touch the machine's /usr/sbin/sendmail (Postfix owns it):
# each caller runs in a private mount namespace where the relay binary is
# bind-mounted over it (unshare -m, from util-linux).
#
# Keep the install list here, in PACKAGES, and nowhere else: a test that
# needs another caller adds its packages to this array.

set -euo pipefail

PACKAGES=(
	util-linux        # unshare(1), mount(8): the private mount namespace
	bsd-mailx         # mail(1) / mailx
	mutt
	git git-email     # git send-email
	libmailtools-perl # git send-email needs Mail::Address; only a Recommends
	php-cli           # PHP's mail()
	php-symfony-mailer # Symfony Mailer's SendmailTransport: sendmail -bs (symfony_test.go)
	microsocks        # a real SOCKS5 server for the proxy tests (socks_test.go)
	socat             # a unix-socket proxy and a TCP forwarder in front of it (socks_test.go)
	swaks             # an SMTP client for the daemon's listener (listener_test.go)
	python3           # Python's smtplib, as Django sends, for the listener (listener_test.go)
)

log() { printf 'callers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=e2e/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing_packages() {
	local p
	for p in "${PACKAGES[@]}"; do
		installed "$p" || printf '%s\n' "$p"
	done
}

cmd_install() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get install)"
	local missing
	mapfile -t missing < <(missing_packages)
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "all packages already installed"
		return 0
	fi
	# bsd-mailx needs an MTA package: Postfix must already be the one.
	if ! installed postfix; then
		die "Postfix is not installed: run 'bash e2e/smarthost.sh install' first (otherwise apt satisfies bsd-mailx's mail-transport-agent dependency with exim4)"
	fi
	log "installing: ${missing[*]}"

	if ! apt-cache policy bsd-mailx 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		apt-get update
	fi

	# Ask apt first what it would do: never let it bring in exim or take
	# Postfix away (a removal, or a package that conflicts with it).
	local plan
	plan=$(DEBIAN_FRONTEND=noninteractive apt-get install -s -y --no-install-recommends "${missing[@]}" 2>&1) || {
		log "apt-get install -s failed; refreshing package lists and retrying once"
		apt-get update
		plan=$(DEBIAN_FRONTEND=noninteractive apt-get install -s -y --no-install-recommends "${missing[@]}" 2>&1) ||
			die "apt-get cannot install ${missing[*]}:"$'\n'"$plan"
	}
	if grep -E '^Remv |^Inst (exim|postfix|sendmail|nullmailer|dma|msmtp|ssmtp|opensmtpd)' <<<"$plan"; then
		die "apt would change the MTA (lines above): refusing"
	fi

	apt_install "${missing[@]}"
	installed postfix || die "Postfix is gone after the install"
	local still
	mapfile -t still < <(missing_packages)
	[[ ${#still[@]} -eq 0 ]] || die "still missing after the install: ${still[*]}"
	log "installed"
}

cmd_status() {
	local missing
	mapfile -t missing < <(missing_packages)
	if [[ ${#missing[@]} -ne 0 ]]; then
		log "missing: ${missing[*]} (sudo bash e2e/callers.sh install)"
		return 1
	fi
	log "all packages installed"
}

case ${1:-} in
install) cmd_install ;;
status) cmd_status ;;
packages) printf '%s\n' "${PACKAGES[@]}" ;;
*)
	echo "usage: $0 install|status|packages" >&2
	exit 64
	;;
esac
