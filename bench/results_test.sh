#!/bin/bash
# bench/results_test.sh — tests bench/results.sh, the section writer the
# bench scripts share, on files in a temporary directory (it never touches
# bench/RESULTS.md and measures nothing). Exits 0 when every case passes,
# 1 otherwise, printing each failure with the file as it came out.
#
#   bash bench/results_test.sh

set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/results.sh
. "$HERE/results.sh"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0

fail() {
	printf 'FAIL: %s\n' "$1"
	if [[ -n ${2:-} && -f $2 ]]; then sed 's/^/    | /' "$2"; fi
	failures=$((failures + 1))
}

# expect NAME FILE: FILE must equal what the test wrote to $T/want.
expect() {
	if ! cmp -s "$T/want" "$2"; then
		fail "$1"
		diff -u "$T/want" "$2" | sed 's/^/    /' || true
	fi
}

section() { # file lines...: a section body
	local f=$1
	shift
	printf '%s\n' "$@" >"$f"
}

# 1. No file yet: the file is created holding the section alone.
section "$T/s1" "## one" "" "first figures"
results_write "$T/new.md" bench/one.sh "$T/s1"
printf '%s\n' '<!-- bench/one.sh: begin -->' '## one' '' 'first figures' '<!-- bench/one.sh: end -->' >"$T/want"
expect "a missing file is created with the section" "$T/new.md"

# 2. A file with text before, between and after two sections: replacing
#    the second changes only its body.
cat >"$T/doc.md" <<'EOF'
# Results

Text before the sections.

<!-- bench/one.sh: begin -->
## one
old one
<!-- bench/one.sh: end -->

Text between.

<!-- bench/two.sh: begin -->
## two
old two
line two
<!-- bench/two.sh: end -->

Text after.
EOF
section "$T/s2" "## two" "new two"
results_write "$T/doc.md" bench/two.sh "$T/s2"
cat >"$T/want" <<'EOF'
# Results

Text before the sections.

<!-- bench/one.sh: begin -->
## one
old one
<!-- bench/one.sh: end -->

Text between.

<!-- bench/two.sh: begin -->
## two
new two
<!-- bench/two.sh: end -->

Text after.
EOF
expect "replacing one section leaves the rest byte for byte" "$T/doc.md"

# 3. The same replacement again gives the same file (no marker doubles, no
#    blank line creeps in).
cp "$T/doc.md" "$T/once.md"
results_write "$T/doc.md" bench/two.sh "$T/s2"
cp "$T/once.md" "$T/want"
expect "replacing twice is the same as once" "$T/doc.md"

# 4. A section the file does not have is appended after one blank line.
section "$T/s3" "## three"
results_write "$T/doc.md" bench/three.sh "$T/s3"
{
	cat "$T/once.md"
	printf '\n%s\n' '<!-- bench/three.sh: begin -->'
	printf '%s\n' '## three' '<!-- bench/three.sh: end -->'
} >"$T/want"
expect "a missing section is appended" "$T/doc.md"

# 5. Content that awk, sed or a regular expression would mangle goes
#    through untouched; a name with regex characters matches only itself.
# shellcheck disable=SC2016 # the dollar is meant literally
printf '%s\n' 'a \\ backslash \n & ampersand % percent $1 dollar' '.* [x] ^$' '```' >"$T/s5"
printf '%s\n' '<!-- bench/a.sh: begin -->' 'keep a' '<!-- bench/a.sh: end -->' \
	'<!-- bench/aXsh: begin -->' 'keep aXsh' '<!-- bench/aXsh: end -->' >"$T/odd.md"
results_write "$T/odd.md" bench/a.sh "$T/s5"
{
	printf '%s\n' '<!-- bench/a.sh: begin -->'
	cat "$T/s5"
	printf '%s\n' '<!-- bench/a.sh: end -->' \
		'<!-- bench/aXsh: begin -->' 'keep aXsh' '<!-- bench/aXsh: end -->'
} >"$T/want"
expect "special characters pass through and names match literally" "$T/odd.md"

# 6. A begin marker without its end: an error, and the file is untouched.
printf '%s\n' 'before' '<!-- bench/one.sh: begin -->' 'everything after' 'would be lost' >"$T/broken.md"
cp "$T/broken.md" "$T/want"
if results_write "$T/broken.md" bench/one.sh "$T/s1" 2>"$T/err"; then
	fail "a begin marker without its end must be an error"
fi
expect "a broken file is left as it was" "$T/broken.md"
grep -q 'without its end marker' "$T/err" || fail "the error names the missing end marker" "$T/err"

# 7. Two sections of the same name: an error, the file untouched.
printf '%s\n' '<!-- x: begin -->' 'a' '<!-- x: end -->' '<!-- x: begin -->' 'b' '<!-- x: end -->' >"$T/twice.md"
cp "$T/twice.md" "$T/want"
if results_write "$T/twice.md" x "$T/s1" 2>/dev/null; then
	fail "a section given twice must be an error"
fi
expect "a file with a doubled section is left as it was" "$T/twice.md"

# 8. Two writers at once, each on its own section, many times over: both
#    sections survive (the directory lock), and no temporary file is left.
printf '%s\n' '# shared' >"$T/race.md"
for w in left right; do
	(
		for i in $(seq 1 25); do
			printf '%s %s\n' "$w" "$i" >"$T/race-$w"
			results_write "$T/race.md" "$w" "$T/race-$w"
		done
	) &
done
wait
printf '%s\n' '# shared' '' >"$T/want"
# The order of the two sections depends on which writer came first.
if grep -q '^<!-- left: begin -->$' <(head -3 "$T/race.md"); then
	printf '%s\n' '<!-- left: begin -->' 'left 25' '<!-- left: end -->' '' \
		'<!-- right: begin -->' 'right 25' '<!-- right: end -->' >>"$T/want"
else
	printf '%s\n' '<!-- right: begin -->' 'right 25' '<!-- right: end -->' '' \
		'<!-- left: begin -->' 'left 25' '<!-- left: end -->' >>"$T/want"
fi
expect "concurrent writers of different sections both keep theirs" "$T/race.md"
if compgen -G "$T/.results.*" >/dev/null; then fail "a temporary file was left behind"; fi

# 9. results_record writes a whole section: heading, UTC date, machine,
#    version of the binary, parameters, anchors and the report verbatim,
#    and replaces it on the next run.
cat >"$T/fake-relay" <<'EOF'
#!/bin/sh
[ "$1" = version ] && echo "relay v9.9.9-test (0123456789ab)"
EOF
chmod +x "$T/fake-relay"
printf '%s\n' 'program    median ms' 'relay           1.00' >"$T/report"
BENCH_RESULTS=$T/rec.md results_record bench/x.sh "bench/x.sh: a title" "$T/fake-relay" "$T" "N=3" "postfix 2.00 ms" "$T/report" 2>/dev/null
r=$T/rec.md
[[ $(sed -n 1p "$r") == '<!-- bench/x.sh: begin -->' ]] || fail "the record starts with its begin marker" "$r"
[[ $(sed -n 2p "$r") == '## bench/x.sh: a title' ]] || fail "the record's heading" "$r"
grep -Eq '^- date: [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC$' "$r" || fail "the record has a UTC date" "$r"
grep -Eq "^- machine: $(nproc) CPUs \(.+\), [0-9.]+ GiB memory, kernel $(uname -r | sed 's/[.+]/\\&/g')$" "$r" || fail "the record names the machine" "$r"
grep -Fxq -- '- relay: relay v9.9.9-test (0123456789ab); tree unknown (not a git checkout)' "$r" || fail "the record names the relay version" "$r"
grep -Fxq -- '- run: N=3' "$r" || fail "the record has the run's parameters" "$r"
grep -Fxq -- '- anchors measured in the same run: postfix 2.00 ms' "$r" || fail "the record has the anchors" "$r"
# The report sits verbatim inside a fence right before the end marker.
tail -5 "$r" >"$T/tail"
printf '%s\n' '```' 'program    median ms' 'relay           1.00' '```' '<!-- bench/x.sh: end -->' >"$T/want"
expect "the report is copied verbatim, fenced" "$T/tail"
printf '%s\n' 'relay           2.00' >"$T/report"
BENCH_RESULTS=$T/rec.md results_record bench/x.sh "bench/x.sh: a title" "$T/fake-relay" "$T" "N=3" "none" "$T/report" 2>/dev/null
[[ $(grep -c '^<!-- bench/x.sh: begin -->$' "$r") == 1 ]] || fail "a second record replaces the first" "$r"
grep -Fxq 'relay           2.00' "$r" || fail "the second record's report is there" "$r"
if grep -Fxq 'relay           1.00' "$r"; then fail "the first record's report is gone" "$r"; fi

# 10. BENCH_RESULTS empty: nothing is written.
BENCH_RESULTS='' results_record bench/x.sh t "$T/fake-relay" "$T" p a "$T/report" 2>/dev/null
[[ ! -e $T/bench/RESULTS.md ]] || fail "an empty BENCH_RESULTS writes nothing"

# 11. results_count_median_p90: count, median (an even count: the mean of
# the two middle values) and nearest-rank p90 of unsorted input; none: 0 0 0.
[[ $(printf '3\n1\n2\n10\n' | results_count_median_p90) == "4 2.5 10" ]] || fail "count, median, p90 of an even count"
[[ $(seq 10 -1 1 | results_count_median_p90) == "10 5.5 9" ]] || fail "p90 is the nearest rank"
[[ $(printf '7\n' | results_count_median_p90) == "1 7 7" ]] || fail "one value"
[[ $(printf '' | results_count_median_p90) == "0 0 0" ]] || fail "no values"

if ((failures > 0)); then
	printf '%d case(s) failed\n' "$failures"
	exit 1
fi
echo "bench/results.sh: every case passed"
