#!/bin/bash
# bench/burst.sh — issue 20's table, targets 1-3, measured in ONE run for
# relay and the programs it replaces, all delivering to the e2e smarthost
# (Postfix + Dovecot on loopback, STARTTLS + AUTH on 2587), each invoked as
#
#   sendmail -i -f robot@example.com someone@example.net < 300-byte message
#
# Programs (PROGRAMS, in this order by default):
#   dma          dma (Debian), detached delivery (it forks a deliverer)
#   nullmailer   nullmailer (Debian): sendmail queues, nullmailer-send
#                (running for the whole phase) delivers
#   postfix      Postfix's own sendmail (postdrop into the e2e Postfix's
#                maildrop: MAIL_CONFIG=$SMARTHOST_POSTFIX_CONFIG); see
#                "Postfix" below
#   msmtp        msmtp (Debian), synchronous: no queue
#   relay        relay without a daemon (detached delivery: sendmail queues
#                and starts a detached runner)
#   relay-daemon relay with `relay daemon` running (same configuration;
#                sendmail queues, the daemon's watch delivers)
# dma, nullmailer and msmtp are never installed: e2e/anchors.sh fetches and
# unpacks them and runs each phase in a private mount namespace where
# /usr/sbin/sendmail is that program (its default configuration for the
# e2e smarthost). Each phase runs whole inside that namespace, so setting it
# up is never timed; relay and Postfix run without one.
#
# Per program, in one phase:
#   latency   WARMUP (not counted) + LAT single submissions, one at a time:
#             caller latency (fork+exec of sendmail until it exits, timed
#             with bash's EPOCHREALTIME) and end to end (sendmail start until
#             the message is in the Maildir; bench/arrivals -each watches
#             new/ with inotify); the next starts after a 0.1 s pause.
#             Median and p90 (nearest rank) of the latency, median end to
#             end.
#   burst     N sequential submissions (N_<program> overrides N, e.g.
#             N_msmtp=100; '-' in a name is '_': N_relay_daemon), from the
#             first start until bench/arrivals has seen all N in the
#             Maildir: msg/s. A submission that fails is retried once and
#             counted; a second failure ends the program's phase.
#   memory    during the burst, bench/psspeak sums Pss (from
#             /proc/PID/smaps_rollup) of every process of the program every
#             10 ms and keeps the peak. A process is the program's when its
#             executable is one of the program's (anchors: ANCHOR_BINARIES
#             of `e2e/anchors.sh env`; relay: this run's copy of the binary,
#             $B/bin/relay, daemon and detached runners included; Postfix:
#             /usr/sbin/sendmail, postdrop and /usr/lib/postfix/sbin/*
#             except smtpd) and it is in the sampler's mount namespace.
#   CPU       where cgroup v2 is mounted, the phase runs in a cgroup of its
#             own (accounting only) and the burst's CPU time (cpu.stat
#             usage_usec: every process the program started, ended or
#             detached, nullmailer-send adopted; not the harness's
#             arrivals and psspeak) is printed per message. It depends far
#             less on the machine's load than the times do. Not for
#             Postfix, whose work is done by the smarthost's processes.
#
# Postfix: the e2e Postfix is the smarthost itself, so its sendmail's mail
# is delivered into the Maildir by the same instance (pickup, cleanup,
# qmgr, virtual) where a real null client would hand it over SMTP to a
# relay host: its end to end and burst figures miss that hop (they flatter
# it), and its ΣPSS counts the instance's processes except smtpd (they
# also do the smarthost's work for the other programs' mail while those run,
# but not during Postfix's own phase).
#
# Runs from the repo root as root with the e2e smarthost running; takes the
# e2e lock (RELAY_E2E_LOCK, default /tmp/relay-e2e.lock) unless
# RELAY_E2E_LOCKED=1 says the caller holds it. Environment:
#   RELAY     relay binary to measure (copied to $B/bin/relay; default:
#             built from this tree)
#   N         burst size (default 500); N_<program> per program
#   LAT       single submissions timed per program (default 50)
#   WARMUP    single submissions before those, not counted (default 3)
#   PROGRAMS  programs to measure (default: all six, in the order above)
#   ANCHORS_DIR   e2e/anchors.sh's cache (default /var/tmp/relay-anchors)
#   BENCH_RESULTS file the report is recorded in (default bench/RESULTS.md,
#             section bench/burst.sh; empty records nothing: bench/results.sh)
# Raw samples (microseconds): $B/samples.tsv (program, kind, value).
# Nothing is asserted: targets are printed with met / NOT met.

set -euo pipefail
export LC_ALL=C # EPOCHREALTIME must use '.' as decimal separator

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$ROOT/bench/burst.sh
ANCHORS_SH=$ROOT/e2e/anchors.sh
B=/tmp/relay-bench-burst
FROM=robot@example.com
TO=someone@example.net

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# -------------------------------------------------- one program's phase --

# make_msg TAG FILE: a message of exactly 300 bytes carrying the header
# line "X-Relay-Bench: TAG" (what bench/arrivals looks for).
make_msg() {
	local head body size=300
	head="From: Robot <$FROM>
To: <$TO>
Subject: burst bench
Message-ID: <$1@bench.example.test>
X-Relay-Bench: $1

"
	body="The nightly job on app-07 finished: 0 errors."
	printf -v pad '%*s' $((size - ${#head} - ${#body} - 1)) ''
	printf '%s%s%s\n' "$head" "$body" "${pad// /.}" >"$2"
}

# submit FILE: one sendmail run of the phase's program.
submit() {
	case $PROG in
	dma | nullmailer | msmtp) /usr/sbin/sendmail -i -f "$FROM" "$TO" <"$1" ;;
	postfix) MAIL_CONFIG=$SMARTHOST_POSTFIX_CONFIG /usr/sbin/sendmail -i -f "$FROM" "$TO" <"$1" ;;
	relay | relay-daemon) "$B/bin/sendmail" -C "$B/$PROG.toml" -i -f "$FROM" "$TO" <"$1" ;;
	esac
}

wait_file() { # FILE: created by a helper that is starting
	local i
	for ((i = 0; i < 600; i++)); do
		[[ -e $1 ]] && return 0
		sleep 0.05
	done
	die "$PROG: $1 never appeared"
}

# CPU time: where the kernel offers cgroup v2, the phase puts itself in a
# cgroup of its own (no controllers: accounting only), so that cpu.stat
# counts every process the program starts, those that have ended and
# those that detached included; the harness's helpers (arrivals, psspeak)
# leave it first. Postfix is left out: most of its work happens in the
# smarthost's own processes, which also serve the other programs.
CG="" CG_HOME=""
cg_enter() {
	local root
	root=$(findmnt -rn -t cgroup2 -o TARGET 2>/dev/null | head -1)
	[[ -n $root ]] || return 0
	CG_HOME=$root$(sed -n 's/^0:://p' /proc/self/cgroup)
	CG=$root/relay-bench-burst-$PROG-$$
	if ! mkdir "$CG" || ! printf '%s\n' "$BASHPID" >"$CG/cgroup.procs"; then
		rmdir "$CG" 2>/dev/null || true
		CG=""
	fi
}
# cg_adopt EXE: move the running processes of EXE (in this mount
# namespace) into the cgroup: nullmailer-send, started before the phase.
cg_adopt() {
	local d ns
	[[ -n $CG ]] || return 0
	ns=$(readlink /proc/self/ns/mnt)
	for d in /proc/[0-9]*; do
		if [[ $(readlink "$d/exe" 2>/dev/null) == "$1" && $(readlink "$d/ns/mnt" 2>/dev/null) == "$ns" ]]; then
			printf '%s\n' "${d#/proc/}" >"$CG/cgroup.procs" 2>/dev/null || true
		fi
	done
}
cg_usec() {
	if [[ -n $CG ]]; then awk '$1 == "usage_usec" { print $2 }' "$CG/cpu.stat"; fi
}
# outside CMD...: exec CMD out of the phase's cgroup.
outside() {
	[[ -z $CG ]] || printf '%s\n' "$BASHPID" >"$CG_HOME/cgroup.procs"
	exec "$@"
}
cg_leave() {
	[[ -n $CG ]] || return 0
	local pid i
	# What still runs (nullmailer-send, a runner) goes back where the
	# phase came from; then the cgroup can go, once the last process that
	# was ending in it has been reaped.
	for ((i = 0; i < 100; i++)); do
		while read -r pid; do
			printf '%s\n' "$pid" >"$CG_HOME/cgroup.procs" 2>/dev/null || true
		done <"$CG/cgroup.procs"
		rmdir "$CG" 2>/dev/null && break
		sleep 0.05
	done
	[[ ! -d $CG ]] || log "could not remove the cgroup $CG"
	CG=""
}

# The phase: run as "burst.sh __phase PROG", inside the anchor's namespace
# for an anchor. Writes $B/res-PROG (shell assignments) and appends to
# $B/samples.tsv.
phase() {
	PROG=$1
	local np=$2 exes=$3 not=${4:-} i t0 t1 line arr tag fails=0 arrfd
	# Whatever this phase started ends with it, also when it fails.
	KILL=""
	trap 'if [[ -n $KILL ]]; then kill $KILL 2>/dev/null || true; fi; cg_leave' EXIT
	if [[ $PROG != postfix ]]; then
		cg_enter
		[[ $PROG == nullmailer ]] && cg_adopt /usr/sbin/nullmailer-send
	fi
	# shellcheck source=/dev/null  # generated by e2e/smarthost.sh start
	. "${RELAY_E2E_DIR:-/tmp/relay-e2e}/env"
	local maildir=$SMARTHOST_MAILDIR msg=$B/msg-$PROG.eml

	if [[ $PROG == relay-daemon ]]; then
		"$B/bin/relay" -C "$B/$PROG.toml" daemon </dev/null >/dev/null 2>>"$B/daemon.log" &
		DPID=$!
		KILL+=" $DPID"
		for ((i = 0; i < 200; i++)); do
			grep -q 'status=started' "$B/daemon.log" 2>/dev/null && break
			sleep 0.05
		done
		grep -q 'status=started' "$B/daemon.log" || die "the daemon did not start: $(tail -3 "$B/daemon.log")"
	fi

	# Single submissions, each timed to the Maildir.
	local total=$((WARMUP + LAT))
	coproc ARR { outside "$B/bin/arrivals" -maildir "$maildir" -tag "X-Relay-Bench: $RUNID-$PROG-one-" \
		-n "$total" -timeout "$((60 + 5 * total))s" -ready "$B/ready-one-$PROG" -each; }
	KILL+=" $ARR_PID"
	# A copy of the pipe: bash closes the coprocess's own descriptors as
	# soon as it has ended, maybe before its last line is read.
	exec {arrfd}<&"${ARR[0]}"
	wait_file "$B/ready-one-$PROG"
	for ((i = 0; i < total; i++)); do
		make_msg "$RUNID-$PROG-one-$i" "$msg"
		t0=${EPOCHREALTIME/./}
		submit "$msg" || die "$PROG: a single submission failed"
		t1=${EPOCHREALTIME/./}
		read -r -t 120 line <&"$arrfd" || die "$PROG: message $i did not arrive within 120 s"
		arr=${line%% *}
		tag=${line#* }
		[[ $tag == "$i" ]] || die "$PROG: message $tag arrived while $i was awaited"
		arr=${arr/./}
		if ((i >= WARMUP)); then
			printf '%s\tlatency\t%s\n%s\te2e\t%s\n' "$PROG" $((t1 - t0)) "$PROG" $((arr - t0)) >>"$B/samples.tsv"
		fi
		sleep 0.1
	done
	exec {arrfd}<&-

	# The burst, under the memory sampler.
	(outside "$B/bin/psspeak" -exe "$exes" -not "$not" -ready "$B/ready-pss-$PROG" >"$B/pss-$PROG") &
	local pss=$!
	KILL+=" $pss"
	wait_file "$B/ready-pss-$PROG"
	(outside "$B/bin/arrivals" -maildir "$maildir" -tag "X-Relay-Bench: $RUNID-$PROG-burst" -n "$np" \
		-timeout "$((120 + np))s" -ready "$B/ready-burst-$PROG" >"$B/end-$PROG") &
	local waiter=$!
	KILL+=" $waiter"
	wait_file "$B/ready-burst-$PROG"
	make_msg "$RUNID-$PROG-burst" "$msg"
	local start submitted a b cpu0 cpu1
	cpu0=$(cg_usec)
	start=$EPOCHREALTIME
	for ((i = 0; i < np; i++)); do
		a=${EPOCHREALTIME/./}
		if ! submit "$msg"; then
			fails=$((fails + 1))
			submit "$msg" || die "$PROG: a submission of the burst failed twice"
		fi
		b=${EPOCHREALTIME/./}
		printf '%s\tburst\t%s\n' "$PROG" $((b - a)) >>"$B/samples.tsv"
	done
	submitted=$EPOCHREALTIME
	wait "$waiter" || die "$PROG: not all $np messages of the burst arrived"
	cpu1=$(cg_usec)
	kill -TERM "$pss"
	wait "$pss" || true
	local end
	end=$(cat "$B/end-$PROG")
	if [[ $PROG == relay-daemon ]]; then
		kill -TERM "$DPID"
		wait "$DPID" || true
	fi
	{
		printf 'R_N=%s\nR_RETRIES=%s\n' "$np" "$fails"
		printf 'R_SUBMIT_S=%s\n' "$(awk -v a="$start" -v b="$submitted" 'BEGIN { printf "%.2f", b - a }')"
		printf 'R_TOTAL_S=%s\n' "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
		if [[ -n $cpu0 && -n $cpu1 ]]; then
			printf 'R_CPU=%s\n' "$(awk -v a="$cpu0" -v b="$cpu1" -v n="$np" 'BEGIN { printf "%.1f", (b - a) / 1000 / n }')"
		fi
		printf 'R_RATE=%s\n' "$(awk -v n="$np" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n / (b - a) }')"
		sed 's/^peak_kb=\([0-9]*\) peak_procs=\([0-9]*\) samples=\([0-9]*\) max_procs=\([0-9]*\)$/R_PSS_KB=\1\nR_PSS_PROCS=\2\nR_PSS_SAMPLES=\3\nR_MAX_PROCS=\4/' "$B/pss-$PROG"
	} >"$B/res-$PROG"
}

if [[ ${1:-} == __phase ]]; then
	shift
	phase "$@"
	exit 0
fi

# ------------------------------------------------------------- set-up --

# shellcheck source=bench/results.sh
. "$ROOT/bench/results.sh"
N=${N:-500}
LAT=${LAT:-50}
WARMUP=${WARMUP:-3}
PROGRAMS=${PROGRAMS:-dma nullmailer postfix msmtp relay relay-daemon}
[[ $(id -u) -eq 0 ]] || die "run as root (mount namespaces, Postfix's queue)"
[[ $N =~ ^[1-9][0-9]*$ && $LAT =~ ^[1-9][0-9]*$ && $WARMUP =~ ^[0-9]+$ ]] || die "N, LAT and WARMUP must be numbers"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5 (EPOCHREALTIME) required"
for p in $PROGRAMS; do
	case $p in dma | nullmailer | postfix | msmtp | relay | relay-daemon) ;; *) die "unknown program $p" ;; esac
done

if [[ ${RELAY_E2E_LOCKED:-} != 1 ]]; then
	# -o: no program started here (a detached runner, nullmailer-send)
	# keeps holding the lock.
	log "waiting for the e2e lock"
	exec flock -o "${RELAY_E2E_LOCK:-/tmp/relay-e2e.lock}" env RELAY_E2E_LOCKED=1 bash "$SELF" "$@"
fi
"$ROOT/e2e/smarthost.sh" status >/dev/null 2>&1 || die "the e2e smarthost is not running: bash e2e/smarthost.sh start"
# shellcheck source=/dev/null  # generated by e2e/smarthost.sh start
. "${RELAY_E2E_DIR:-/tmp/relay-e2e}/env"

rm -rf "${B:?}"
mkdir -p "$B/bin"
chmod 700 "$B"
(
	cd "$ROOT"
	for tool in arrivals psspeak; do
		CGO_ENABLED=0 go build -o "$B/bin/$tool" "./bench/$tool"
	done
	if [[ -z ${RELAY:-} ]]; then CGO_ENABLED=0 go build -o "$B/bin/relay" .; fi
)
if [[ -n ${RELAY:-} ]]; then
	[[ $RELAY == /* ]] || RELAY="$PWD/$RELAY"
	[[ -f $RELAY && -x $RELAY ]] || die "RELAY=$RELAY is not an executable file"
	# A copy of its own, so that only this run's relay processes match
	# its path in the memory sampler.
	cp "$RELAY" "$B/bin/relay"
fi
RELAY_MEASURED=${RELAY:-$B/bin/relay}
ln -s relay "$B/bin/sendmail"

printf '%s\n' "$SMARTHOST_PASS" >"$B/secret"
chmod 600 "$B/secret"
for p in relay relay-daemon; do
	cat >"$B/$p.toml" <<-EOF
		spool = "$B/spool-$p"
		domain = "client.example.test"
		[[smarthost]]
		host = "$SMARTHOST_HOST"
		port = $SMARTHOST_PORT_STARTTLS
		tls = "starttls"
		tls_server_name = "$SMARTHOST_NAME"
		tls_ca_file = "$SMARTHOST_CA"
		username = "$SMARTHOST_USER"
		password_file = "$B/secret"
	EOF
	chmod 600 "$B/$p.toml"
done

RUNID="burst-$(date +%Y%m%d%H%M%S)-$$"
export B RUNID LAT WARMUP

declare -A NOTE=() VERSION=() LOAD=()
ANCHORS_OK=0
if [[ " $PROGRAMS " =~ \ (dma|nullmailer|msmtp)\  ]]; then
	if bash "$ANCHORS_SH" fetch >&2; then ANCHORS_OK=1; else log "e2e/anchors.sh fetch failed: the anchors are left out"; fi
fi

# -------------------------------------------------------- measuring --

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for p in $PROGRAMS; do
	nvar=N_${p//-/_}
	np=${!nvar:-$N}
	[[ $np =~ ^[1-9][0-9]*$ ]] || die "$nvar must be a number"
	LOAD[$p]=$(cut -d' ' -f1 /proc/loadavg)
	log "$p: $WARMUP + $LAT single submissions, then a burst of $np (load ${LOAD[$p]})"
	rc=0
	case $p in
	dma | nullmailer | msmtp)
		if ((ANCHORS_OK == 0)); then
			NOTE[$p]="not measured: e2e/anchors.sh fetch failed"
			continue
		fi
		eval "$(bash "$ANCHORS_SH" env "$p")"
		VERSION[$p]=$ANCHOR_VERSION
		bash "$ANCHORS_SH" clear "$p"
		ANCHORS_DRAIN=60 bash "$ANCHORS_SH" run "$p" -- \
			bash "$SELF" __phase "$p" "$np" "${ANCHOR_BINARIES// /,}" || rc=$?
		;;
	postfix)
		VERSION[$p]=$(postconf -c "$SMARTHOST_POSTFIX_CONFIG" -h mail_version 2>/dev/null || echo '?')
		bash "$SELF" __phase "$p" "$np" /usr/sbin/sendmail,/usr/sbin/postdrop,/usr/lib/postfix/sbin/ \
			/usr/lib/postfix/sbin/smtpd || rc=$?
		;;
	relay | relay-daemon)
		VERSION[$p]=$("$B/bin/relay" version 2>/dev/null | head -1 | awk '{ print $NF }')
		bash "$SELF" __phase "$p" "$np" "$B/bin/relay" || rc=$?
		;;
	esac
	if ((rc != 0)) || [[ ! -s $B/res-$p ]]; then
		NOTE[$p]="failed (exit $rc): see the log above"
	fi
done
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------- results --

# stats PROG KIND -> "count median p90" in microseconds (median of an even
# count: mean of the two middle values; p90: nearest rank).
stats() {
	awk -F'\t' -v p="$1" -v k="$2" '$1 == p && $2 == k { print $3 }' "$B/samples.tsv" | results_count_median_p90
}
ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }

declare -A LMED=() LP90=() EMED=() RATE=() PSS=() RUNS=() PROCS=() CPU=()
for p in $PROGRAMS; do
	[[ -s $B/res-$p && -z ${NOTE[$p]:-} ]] || continue
	read -r _ m q < <(stats "$p" latency)
	LMED[$p]=$(ms "$m") LP90[$p]=$(ms "$q")
	read -r _ m _ < <(stats "$p" e2e)
	EMED[$p]=$(ms "$m")
	R_CPU=""
	# shellcheck source=/dev/null
	. "$B/res-$p"
	RATE[$p]=$R_RATE RUNS[$p]=$R_N PROCS[$p]=$R_MAX_PROCS CPU[$p]=${R_CPU:--}
	PSS[$p]=$(awk -v k="$R_PSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
	((R_RETRIES == 0)) || NOTE[$p]="$R_RETRIES burst submission(s) failed once and were repeated"
done

label() {
	case $1 in
	dma) echo "dma ${VERSION[dma]:-}" ;;
	nullmailer) echo "nullmailer ${VERSION[nullmailer]:-}" ;;
	postfix) echo "Postfix ${VERSION[postfix]:-} sendmail" ;;
	msmtp) echo "msmtp ${VERSION[msmtp]:-} (sync)" ;;
	relay) echo "relay, no daemon" ;;
	relay-daemon) echo "relay, daemon" ;;
	esac
}

# check VALUE OP LIMIT -> "met (VALUE OP LIMIT)", "NOT met (...)" or "-"
# when a figure is missing
check() {
	if [[ -z $1 || -z $3 ]]; then
		echo "- (not measured)"
		return
	fi
	if awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN { exit !((op == "<=" && a <= b) || (op == "<" && a < b) || (op == ">=" && a >= b)) }'; then
		echo "met ($1 $2 $3)"
	else
		echo "NOT met ($1 $2 $3)"
	fi
}
times() { [[ -n $2 ]] && awk -v f="$1" -v x="$2" 'BEGIN { printf "%.2f", f * x }'; }

REPORT=$B/report.txt
{
	echo
	echo "issue 20, targets 1-3: sendmail -i -f $FROM $TO < 300-byte message; smarthost: e2e Postfix + Dovecot, STARTTLS + AUTH on loopback"
	echo "single submissions: $WARMUP warm-up + $LAT timed per program; burst: N sequential (runs column), all delivered; PSS sum = peak ΣPSS of the program's processes, sampled every 10 ms during the burst"
	echo "CPU/msg: CPU time (user + system) of all the program's processes during the burst, per message (cgroup v2 cpu.stat; the harness's fork of each sendmail included, the same for all; Postfix: -, its work is the smarthost's)"
	echo "machine: $(nproc) CPUs; load average (1 min) at each program's start in the last column"
	echo
	printf '%-26s %8s %8s %9s %6s %9s %9s %6s %8s %6s\n' program "lat med" "lat p90" "e2e med" runs "burst" "PSS sum" procs "CPU/msg" load
	printf '%-26s %8s %8s %9s %6s %9s %9s %6s %8s %6s\n' "" ms ms ms "" msg/s MB "" ms ""
	for p in $PROGRAMS; do
		[[ -n ${LMED[$p]:-} ]] || continue
		printf '%-26s %8s %8s %9s %6s %9s %9s %6s %8s %6s\n' "$(label "$p")" "${LMED[$p]}" "${LP90[$p]}" \
			"${EMED[$p]}" "${RUNS[$p]}" "${RATE[$p]}" "${PSS[$p]}" "${PROCS[$p]}" "${CPU[$p]}" "${LOAD[$p]}"
	done
	for p in $PROGRAMS; do
		[[ -n ${NOTE[$p]:-} ]] && printf '%-26s %s\n' "$(label "$p")" "${NOTE[$p]}"
	done
	echo
	printf '%-36s %-26s %s\n' "targets (issue 20)" "relay, no daemon" "relay, daemon"
	row() { # text, then per mode: value op limit
		printf '%-36s %-26s %s\n' "$1" "$(check "$2" "$3" "$4")" "$(check "$5" "$6" "$7")"
	}
	row "1. latency median <= 0.6x dma's ms" "${LMED[relay]:-}" "<=" "$(times 0.6 "${LMED[dma]:-}")" \
		"${LMED[relay-daemon]:-}" "<=" "$(times 0.6 "${LMED[dma]:-}")"
	row "1. latency median <= 0.3x Postfix's" "${LMED[relay]:-}" "<=" "$(times 0.3 "${LMED[postfix]:-}")" \
		"${LMED[relay-daemon]:-}" "<=" "$(times 0.3 "${LMED[postfix]:-}")"
	row "1. latency p90 <= dma's median ms" "${LP90[relay]:-}" "<=" "${LMED[dma]:-}" \
		"${LP90[relay-daemon]:-}" "<=" "${LMED[dma]:-}"
	row "2. burst >= 2.5x dma's msg/s" "${RATE[relay]:-}" ">=" "$(times 2.5 "${RATE[dma]:-}")" \
		"${RATE[relay-daemon]:-}" ">=" "$(times 2.5 "${RATE[dma]:-}")"
	row "2. one message end to end < 30 ms" "${EMED[relay]:-}" "<" 30 "${EMED[relay-daemon]:-}" "<" 30
	row "3. peak PSS sum <= 2x dma's MB" "${PSS[relay]:-}" "<=" "$(times 2 "${PSS[dma]:-}")" \
		"${PSS[relay-daemon]:-}" "<=" "$(times 2 "${PSS[dma]:-}")"
	row "3. peak PSS sum < Postfix's MB" "${PSS[relay]:-}" "<" "${PSS[postfix]:-}" \
		"${PSS[relay-daemon]:-}" "<" "${PSS[postfix]:-}"
	echo
	echo "Postfix is the smarthost itself: its end to end and burst skip the SMTP hop a null client makes; its ΣPSS counts the instance's processes but smtpd."
} >"$REPORT"
cat "$REPORT"

anchors=()
for p in dma nullmailer postfix msmtp; do
	[[ -n ${LMED[$p]:-} ]] && anchors+=("$(label "$p") ${LMED[$p]} ms median, ${EMED[$p]} ms end to end, ${RATE[$p]} msg/s, ${PSS[$p]} MB")
done
anchor_text=none
if ((${#anchors[@]} > 0)); then
	anchor_text=$(printf '%s; ' "${anchors[@]}")
	anchor_text=${anchor_text%; }
fi
params="N=$N LAT=$LAT WARMUP=$WARMUP PROGRAMS='$PROGRAMS'"
for p in $PROGRAMS; do
	nvar=N_${p//-/_}
	[[ -n ${!nvar:-} ]] && params+=" $nvar=${!nvar}"
done
results_record bench/burst.sh "bench/burst.sh: sendmail latency, burst and memory beside the programs relay replaces (issue 20)" \
	"$RELAY_MEASURED" "$ROOT" "$params" "$anchor_text" "$REPORT" || true
log "raw samples: $B/samples.tsv"
