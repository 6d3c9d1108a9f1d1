# shellcheck shell=bash
# Sourced by e2e/smarthost.sh and e2e/callers.sh: the one way the e2e
# scripts install Debian packages. The caller defines log().

# apt_install PKG... installs the packages without starting any service
# and, when the machine's package lists are stale (the download 404s),
# refreshes them once and retries.
apt_install() {
	# No package's init script may start a system-wide service (Dovecot,
	# Postfix with the default config): the tests start their own. A
	# container usually has a policy-rc.d that says so; when there is none,
	# put one in place for the duration of the install.
	local policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# temporary, from relay e2e install\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		# shellcheck disable=SC2064  # expand $policy now, on purpose
		trap "rm -f '$policy'" EXIT
	fi
	if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "$@"; then
		log "install failed; refreshing package lists and retrying once"
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "$@"
	fi
}
