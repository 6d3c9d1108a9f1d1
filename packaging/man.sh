#!/usr/bin/env bash
# packaging/man.sh OUTDIR: the manual pages, as OUTDIR/manN/NAME.N (roff,
# uncompressed), one per docs/NAME.N.md.
#
# STAND-IN of the packaging branch: the real script (go-md2man, with
# tables, links and mandoc-clean output) comes from the manual pages' own
# branch and replaces this one; the interface is the same. This one puts
# each Markdown page, unformatted, under a .TH title and a NAME section.
set -euo pipefail

if [[ $# -ne 1 || $1 == -* ]]; then
	echo "usage: packaging/man.sh OUTDIR" >&2
	exit 64
fi
out=$1
cd "$(dirname "$0")/.."
version=${RELAY_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo unknown)}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
date=$(date -u -d "@$epoch" +%Y-%m-%d)

shopt -s nullglob
for src in docs/*.[1-8].md; do
	base=${src##*/}
	base=${base%.md}
	name=${base%.*}
	section=${base##*.}
	title=$(head -n 1 "$src" | sed -E 's/^# [^:]*:? *//')
	mkdir -p "$out/man$section"
	{
		printf '.TH "%s" "%s" "%s" "relay %s"\n.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' \
			"${name^^}" "$section" "$date" "$version" "$name" "${title:-$name}"
		tail -n +2 "$src" | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
		printf '.fi\n'
	} >"$out/man$section/$base"
done
