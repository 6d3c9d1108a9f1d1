#!/bin/bash
# bench/results.sh — sourced by bench/enqueue.sh, bench/deliver.sh and
# bench/daemon.sh: each records the figures of its run in bench/RESULTS.md,
# in a section of its own between two markers
#
#   <!-- bench/NAME.sh: begin -->
#   ...
#   <!-- bench/NAME.sh: end -->
#
# so that a run of one script replaces its own section and leaves the other
# scripts' sections and the text around them as they were. A section that
# is missing is appended. bench/results_test.sh tests this file.
#
# Environment:
#   BENCH_RESULTS  the file to write (default bench/RESULTS.md beside this
#                  script); empty: record nothing

# results_write FILE NAME SECTION: replace the section NAME of FILE with the
# content of the file SECTION (markers added here), or append it when FILE
# has none; FILE is created when missing. The new file is written beside
# the old one and renamed over it, under a lock on the directory, so that
# two scripts finishing at once both keep their sections and a reader never
# sees half a file. A begin marker without its end marker is an error and
# leaves FILE untouched: the rest of the file would be lost otherwise.
results_write() {
	local file=$1 name=$2 section=$3
	local dir tmp lockfd rc=0
	dir=$(dirname "$file")
	[[ -d $dir ]] || { printf 'results: no directory %s\n' "$dir" >&2; return 1; }
	[[ -f $section ]] || { printf 'results: no section file %s\n' "$section" >&2; return 1; }
	exec {lockfd}<"$dir"
	flock "$lockfd"
	tmp=$(mktemp "$dir/.results.XXXXXX")
	# Markers are compared as whole lines, never as patterns: a name may
	# hold '.' or '/'.
	if [[ -f $file ]]; then
		awk -v begin="<!-- $name: begin -->" -v end="<!-- $name: end -->" -v section="$section" '
			function put(  line) {
				print begin
				while ((getline line < section) > 0) print line
				close(section)
				print end
			}
			$0 == begin {
				if (done) { print "results: " FILENAME ": a second section " begin > "/dev/stderr"; exit 2 }
				inside = 1; next
			}
			$0 == end && inside { inside = 0; done = 1; put(); next }
			$0 == end { print "results: " FILENAME ": " end " without its begin marker" > "/dev/stderr"; exit 2 }
			inside { next }
			{ print; last = $0 }
			END {
				if (inside) { print "results: " FILENAME ": " begin " without its end marker" > "/dev/stderr"; exit 2 }
				if (!done) { if (NR > 0 && last != "") print ""; put() }
			}' "$file" >"$tmp" || rc=$?
	else
		{
			printf '<!-- %s: begin -->\n' "$name"
			cat "$section"
			printf '<!-- %s: end -->\n' "$name"
		} >"$tmp" || rc=$?
	fi
	if ((rc == 0)); then
		chmod 0644 "$tmp"
		mv -f "$tmp" "$file" || rc=$?
	fi
	rm -f "$tmp"
	exec {lockfd}<&-
	return "$rc"
}

# results_machine: one line naming the machine a run was measured on.
# results_count_median_p90: of the numbers on standard input, one a line,
# print their count, median (of an even count the mean of the two middle
# values) and p90 (the nearest-rank percentile); "0 0 0" for none.
results_count_median_p90() {
	sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "0 0 0"; exit }
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.9 * NR); if (r < 0.9 * NR) r++
			print NR, med, v[r]
		}'
}

results_machine() {
	local cpu mem
	cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576; exit }' /proc/meminfo 2>/dev/null)
	printf '%s CPUs (%s), %s memory, kernel %s\n' "$(nproc)" "${cpu:-CPU model unknown}" "${mem:-unknown}" "$(uname -r)"
}

# results_version RELAY ROOT: what relay was measured: the binary's own
# version line and the commit of the tree (with "+ uncommitted changes"
# when the tree differs from it, RESULTS.md itself aside).
results_version() {
	local relay=$1 root=$2 v commit
	v=$("$relay" version 2>/dev/null | head -1) || true
	commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null) || commit=""
	if [[ -n $commit && -n $(git -C "$root" status --porcelain --untracked-files=no -- . ':(exclude)bench/RESULTS.md' 2>/dev/null) ]]; then
		commit+=" + uncommitted changes"
	fi
	printf '%s; tree %s\n' "${v:-version unknown}" "${commit:-unknown (not a git checkout)}"
}

# results_section TITLE RELAY ROOT PARAMS ANCHORS REPORT: print a section:
# a heading, the date (UTC), the machine, the relay measured, the run's
# parameters, the anchors measured in the same run, and the report the
# script printed (the file REPORT), verbatim.
results_section() {
	local title=$1 relay=$2 root=$3 params=$4 anchors=$5 report=$6
	printf '## %s\n\n' "$title"
	printf -- '- date: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf -- '- machine: %s\n' "$(results_machine)"
	printf -- '- relay: %s\n' "$(results_version "$relay" "$root")"
	printf -- '- run: %s\n' "$params"
	printf -- '- anchors measured in the same run: %s\n' "$anchors"
	printf '\n```\n'
	cat "$report"
	printf '```\n'
}

# results_record NAME TITLE RELAY ROOT PARAMS ANCHORS REPORT: write the
# section NAME (the script's path, such as bench/enqueue.sh) into
# $BENCH_RESULTS, by default bench/RESULTS.md. A failure is reported and
# returned; the caller decides whether it ends the run.
results_record() {
	local name=$1 title=$2 relay=$3 root=$4 params=$5 anchors=$6 report=$7
	local file=${BENCH_RESULTS-$root/bench/RESULTS.md} section rc=0
	if [[ -z $file ]]; then
		printf 'bench: BENCH_RESULTS is empty: figures not recorded\n' >&2
		return 0
	fi
	section=$(mktemp)
	results_section "$title" "$relay" "$root" "$params" "$anchors" "$report" >"$section" &&
		results_write "$file" "$name" "$section" || rc=$?
	rm -f "$section"
	if ((rc == 0)); then
		printf 'bench: figures recorded in %s (section %s)\n' "$file" "$name" >&2
	else
		printf 'bench: could not record the figures in %s\n' "$file" >&2
	fi
	return "$rc"
}
