#!/bin/sh
# bench/fuzz.sh [SECONDS]: run every native Go fuzz target of relay for
# SECONDS each (default 60), one after the other, and print per target the
# executions, the new corpus entries and the size of its seed corpus in
# testdata/fuzz/. A crash stops the run: Go has written the failing input
# to PKG/testdata/fuzz/FuzzX/ and `go test ./PKG/` fails on it from then on,
# so it is a seed once committed (with its fix).
#
# PARALLEL (default: the number of CPUs) is the fuzz workers per target;
# on a shared machine use PARALLEL=1. Spools and files the targets write go
# to a tmpfs when /dev/shm exists (fsync there costs nothing).
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
parallel=${PARALLEL:-$(nproc 2>/dev/null || echo 2)}
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=$(mktemp -d /dev/shm/relay-fuzz.XXXXXX)
	export TMPDIR
	trap 'rm -rf "$TMPDIR"' EXIT
fi
log=$(mktemp)

# The targets: every func FuzzX in a *_test.go file, as "pkg FuzzX".
targets=$(grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f" | while read -r fn; do
		echo "$(dirname "$f") $fn"
	done
done)

printf '%-16s %-20s %12s %8s %8s\n' package target execs new seeds
total=0
echo "$targets" | while read -r pkg fn; do
	[ -n "$fn" ] || continue
	if ! go test -run '^$' -fuzz "^$fn\$" -fuzztime "${secs}s" -fuzzminimizetime 10s \
		-parallel "$parallel" "$pkg/" >"$log" 2>&1; then
		cat "$log"
		echo "fuzz.sh: $fn in $pkg failed; the input is in $pkg/testdata/fuzz/$fn/" >&2
		exit 1
	fi
	# The last progress line: "fuzz: elapsed: 60s, execs: N (…), new interesting: M (total: T)".
	last=$(grep '^fuzz: elapsed' "$log" | tail -1)
	execs=$(echo "$last" | sed -n 's/.*execs: \([0-9]*\).*/\1/p')
	new=$(echo "$last" | sed -n 's/.*new interesting: \([0-9]*\).*/\1/p')
	seeds=$(ls "$pkg/testdata/fuzz/$fn" 2>/dev/null | wc -l)
	printf '%-16s %-20s %12s %8s %8s\n' "${pkg#./}" "$fn" "${execs:-?}" "${new:-?}" "$seeds"
done
rm -f "$log"
