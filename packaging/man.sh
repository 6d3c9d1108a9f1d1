#!/usr/bin/env bash
# packaging/man.sh OUTDIR: build the manual pages.
#
# Every docs/NAME.SECTION.md becomes OUTDIR/manSECTION/NAME.SECTION (roff,
# uncompressed: packaging/build.sh compresses). The pages are Markdown that
# reads on GitHub too; go-md2man (a Go tool dependency pinned in go.mod)
# turns them into roff. Around it, this script:
#   - replaces the first line, "# NAME(SECTION)", with the title line
#     go-md2man makes .TH of: NAME in capitals, the section, the date and
#     "relay VERSION";
#   - turns a link to another page, [relay.toml(5), Files](relay.toml.5.md#files),
#     into the reference a manual page makes, \fBrelay.toml\fP(5), Files;
#     other relative links keep their text only (a man page has no links);
#   - after go-md2man: "|" for the "\|" a Markdown table needs, the widest
#     column of every table takes the rest of the line (lx), text lines
#     folded at 80 bytes (mandoc -T lint's limit).
# VERSION is $RELAY_VERSION, else `git describe`; the date is
# $SOURCE_DATE_EPOCH, else the last commit's, so that a rebuild of the same
# commit makes the same pages.
set -euo pipefail

if [[ $# -ne 1 || $1 == -* ]]; then
	echo "usage: packaging/man.sh OUTDIR" >&2
	exit 64
fi
# OUTDIR as the caller meant it, before the cd to the checkout.
mkdir -p "$1"
out=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

shopt -s nullglob
pages=(docs/*.[1-8].md)
if [[ ${#pages[@]} -eq 0 ]]; then
	echo "man.sh: no docs/NAME.SECTION.md in $root" >&2
	exit 66
fi
# Every page has its title before anything is built.
for src in "${pages[@]}"; do
	base=${src##*/}
	base=${base%.md}
	first=$(head -n 1 "$src")
	if [[ $first != "# ${base%.*}(${base##*.})" ]]; then
		echo "man.sh: $src: the first line must be the title \"# ${base%.*}(${base##*.})\", not \"$first\"" >&2
		exit 65
	fi
done
if ! command -v go >/dev/null; then
	echo "man.sh: go is missing: install Go 1.26 from https://go.dev/dl/ and add /usr/local/go/bin to PATH" >&2
	exit 69
fi
if ! go tool go-md2man -in /dev/null -out /dev/null >/dev/null 2>&1; then
	echo "man.sh: go-md2man is missing: it is a tool of go.mod; fetch it with 'go mod download github.com/cpuguy83/go-md2man/v2' (needs the Go module proxy)" >&2
	exit 69
fi

version=${RELAY_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo unknown)}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
date=$(date -u -d "@$epoch" +%Y-%m-%d)

# The roff of go-md2man, made to pass mandoc -T lint: characters beyond
# ASCII as \[uXXXX] (mandoc counts them so, and groff reads them without
# preconv); the widest column of a table takes the rest of the line (lx); a
# table cell over 30 bytes becomes a text block T{ T}, which go-md2man
# does only when the cell begins with 30 bytes of plain text; text lines
# folded at spaces to 80 bytes; hyphenation off (relay.toml(5) is no
# word to break).
fix='
BEGIN { for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i }
function uni(s,   out, i, c, b, n, cp, k) {
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		b = ord[c]
		if (b < 128) { out = out c; continue }
		if (b >= 240) { n = 3; cp = b - 240 } else if (b >= 224) { n = 2; cp = b - 224 } else { n = 1; cp = b - 192 }
		for (k = 1; k <= n; k++) cp = cp * 64 + ord[substr(s, i + k, 1)] - 128
		i += n
		out = out sprintf("\\[u%04X]", cp)
	}
	return out
}
function fold(s,   p, i) {
	if (s ~ /^[.\047]/) s = "\\&" s
	while (length(s) > 80) {
		p = 0
		for (i = 81; i > 1; i--)
			if (substr(s, i, 1) == " " && substr(s, i - 1, 1) != "\\") { p = i; break }
		if (p == 0) break
		print substr(s, 1, p - 1)
		s = substr(s, p + 1)
		if (s ~ /^[.\047]/) s = "\\&" s
	}
	print s
}
function row(   n, f, i, cur, sep) {
	n = split($0, f, "\t")
	cur = ""
	for (i = 1; i <= n; i++) {
		sep = i > 1 ? "\t" : ""
		if (f[i] == "T{" && i == n) { print cur sep "T{"; block = 1; return }
		if (i == 1 && f[i] ~ /^T\}/) { cur = f[i]; continue }
		if (length(f[i]) > 30) { print cur sep "T{"; fold(f[i]); cur = "T}"; continue }
		cur = cur sep f[i]
	}
	print cur
}
# cell measures the cell f (a text block T{ opens it) in column col.
function cell(f, col) {
	if (f == "T{") { blk = 1; cl = 0 } else if (length(f) > mx[col]) mx[col] = length(f)
}
# table writes the table held in tb[1..nt] ("allbox;", the two format
# lines, the rows), its widest column (in its longest cell) expanding.
function table(   i, j, k, n, f, col, s, ncol, best, fl) {
	split("", mx)
	blk = 0
	for (i = 4; i <= nt; i++) {
		s = tb[i]
		if (blk && s !~ /^T\}/) { cl += length(s) + 1; continue }
		if (blk) {
			blk = 0
			if (cl > mx[col]) mx[col] = cl
			n = split(substr(s, 3), f, "\t")
			for (j = 2; j <= n; j++) cell(f[j], ++col)
			continue
		}
		n = split(s, f, "\t")
		col = 0
		for (j = 1; j <= n; j++) cell(f[j], ++col)
	}
	ncol = split(tb[2], f, " ")
	best = ncol
	for (j = ncol - 1; j >= 1; j--) if (mx[j] > mx[best]) best = j
	print tb[1]
	for (k = 2; k <= 3; k++) {
		fl = ""
		for (j = 1; j <= ncol; j++) fl = fl (j > 1 ? " " : "") (j == best || mx[j] > 30 ? "lx" : "l")
		print fl (k == 3 ? "." : "")
	}
	block = 0
	for (i = 4; i <= nt; i++) {
		$0 = tb[i]
		if (!block) row()
		else if ($0 ~ /^T\}/) { block = 0; row() }
		else fold($0)
	}
}
{ $0 = uni($0) }
# go-md2man turns hyphenation off before .TH, which turns it on again.
/^\.nh$/ { next }
/^\.TH / { print; print ".nr HY 0"; print ".nh"; next }
/^\.TS/ { tbl = 1; nt = 0; print; next }
/^\.TE/ { table(); tbl = 0; print ".TE"; next }
tbl { tb[++nt] = $0; next }
/^\.EX/ { ex = 1 }
/^\.EE/ { ex = 0; print; next }
ex || /^[.\047]/ { print; next }
{ fold($0) }
'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for src in "${pages[@]}"; do
	base=${src##*/}
	base=${base%.md}     # relay.toml.5
	name=${base%.*}      # relay.toml
	section=${base##*.}  # 5
	{
		printf '# %s %s "%s" "relay %s"\n' "${name^^}" "$section" "$date" "$version"
		tail -n +2 "$src" | sed -z -E \
			-e 's/\[([A-Za-z0-9._-]+)\(([1-8])\)([^]]*)\]\([^):]*\)/**\1**(\2)\3/g' \
			-e 's/\[([^]]*)\]\([^):]*\)/\1/g'
	} >"$tmp/$base.md"
	# go-md2man drops what it cannot render (an HTML block) with a
	# warning: that is an error here, not a page with a hole.
	go tool go-md2man -in "$tmp/$base.md" -out "$tmp/$base.roff" 2>"$tmp/warnings"
	if [[ -s $tmp/warnings ]]; then
		echo "man.sh: $src: $(head -n 1 "$tmp/warnings")" >&2
		exit 65
	fi
	mkdir -p "$out/man$section"
	sed -E -e 's/\\\\\|/|/g' "$tmp/$base.roff" | LC_ALL=C awk "$fix" >"$out/man$section/$base"
done
