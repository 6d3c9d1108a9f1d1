#!/bin/bash
# bench/startup.sh — where the time of one `sendmail` goes: relay's
# sendmail beside what it is made of, in the same run (bench/spawn: rounds
# in which each runs once, so background noise hits all alike):
#
#   true        /bin/true: starting any program on this machine
#   go-empty    a Go program whose main does nothing: the Go runtime's
#               own start-up, with the message on stdin
#   version     relay version: relay's runtime start-up, package
#               initialisation and exit, no configuration read
#   floor       bench/floor (a Go program): write stdin durably (temp
#               file, fsync, rename, directory fsync), the least a durable
#               enqueue in Go pays
#   sendmail    relay's sendmail -i -f robot@example.com someone@example.net,
#               a spool and nothing else configured (no runner starts)
#   sendmail+runner
#               the same with a smarthost configured (on a closed port):
#               the detached runner starts as after any submission when
#               none is at work (it finds the port closed and leaves)
#
# The message is 300 bytes. No root, no smarthost needed. Environment:
#   RELAY   relay binary (default: built from this tree into the work
#           directory with -trimpath -ldflags "-s -w", as packaged)
#   N       measured runs per program (default 200); WARMUP (default 10)
#
# Prints one line per program: wall-time median and 90th percentile and
# median CPU time (user + system) in ms. Not recorded in RESULTS.md: the
# side-by-side figures against the other MTAs are bench/enqueue.sh's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-200}
WARMUP=${WARMUP:-10}
B=$(mktemp -d /tmp/relay-startup.XXXXXX)
trap 'rm -rf "$B"' EXIT
mkdir -p "$B/bin"

(
	cd "$ROOT"
	CGO_ENABLED=0 go build -o "$B/spawn" ./bench/spawn
	CGO_ENABLED=0 go build -o "$B/floor" ./bench/floor
	if [[ -z ${RELAY:-} ]]; then
		CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$B/relay" .
	fi
)
RELAY=${RELAY:-$B/relay}
[[ $RELAY == /* ]] || RELAY="$PWD/$RELAY"
ln -s "$RELAY" "$B/bin/sendmail"
mkdir -p "$B/empty"
printf 'package main\n\nfunc main() {}\n' >"$B/empty/main.go"
(cd "$B/empty" && printf 'module empty\n' >go.mod && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$B/go-empty" .)

printf 'spool = "%s/spool"\n' "$B" >"$B/spool.toml"
# The port is closed: the runner connects, fails, defers and leaves.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'spool = "%s/spool-runner"\n[[smarthost]]\nhost = "127.0.0.1"\nport = %s\ntls = "none"\n' "$B" "$port" >"$B/runner.toml"
{
	printf 'From: robot@example.com\nTo: someone@example.net\nSubject: startup\n\n'
	head -c 240 /dev/zero | tr '\0' x
	printf '\n'
} >"$B/message.eml"

mkdir -p "$B/floor-spool"
export FLOOR_SPOOL=$B/floor-spool
sm="$B/bin/sendmail"
args="-i -f robot@example.com someone@example.net"
"$B/spawn" -n "$N" -warmup "$WARMUP" -in "$B/message.eml" \
	/bin/true "$B/go-empty" "$RELAY version" "$B/floor" \
	"$sm -C $B/spool.toml $args" "$sm -C $B/runner.toml $args" |
	sed -e "s#$B/bin/##g; s#$B/##g" |
	awk '{ split($0, f, " "); name = f[1]; sub(/_.*/, "", name)
	       if (name == "relay") name = "version"; else if (index($0, "runner.toml")) name = "sendmail+runner"
	       printf "%-16s %s %s %s %s\n", name, f[2], f[3], f[4], f[5] }'
