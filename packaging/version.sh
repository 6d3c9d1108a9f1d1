#!/usr/bin/env bash
# packaging/version.sh: prints the version of the checkout in the current
# directory, for the packages and `relay version` alike: the git tag
# (v1.2.0 gives 1.2.0), else `git describe --tags --always --dirty=+dirty`
# made a valid Debian and RPM version: v1.2.0-3-gabc1234 gives
# 1.2.0+3.gabc1234 (sorts after 1.2.0), a tree without a tag 0.0.0+gabc1234,
# and a dirty tree gets +dirty at the end.
set -euo pipefail
command -v git >/dev/null || { echo "version.sh: git is missing: apt-get install git (the version comes from git describe), or set RELAY_VERSION" >&2; exit 1; }
described=$(git describe --tags --always --dirty=+dirty) || { echo "version.sh: git describe failed: build from a git checkout, or set RELAY_VERSION" >&2; exit 1; }
printf '%s\n' "$described" | sed -E \
	-e 's/^v([0-9])/\1/' \
	-e 's/^([0-9][^-]*)-([0-9]+)-g([0-9a-f]+)/\1+\2.g\3/' \
	-e 's/^([0-9a-f]+)(\+dirty)?$/0.0.0+g\1\2/'
