#!/usr/bin/env bash
# packaging/build.sh OUTDIR: builds relay's Debian packages and RPMs, for
# amd64 and arm64, from this checkout, with nfpm (a pinned Go tool
# dependency: go tool nfpm). Writes OUTDIR/relay_VERSION_ARCH.deb and
# OUTDIR/relay-VERSION-1.ARCH.rpm (RPM names its architectures x86_64 and
# aarch64). See packaging/README.md.
#
# VERSION comes from git (packaging/version.sh: the tag, else git describe
# made a valid package version; a dirty tree adds +dirty). The binary is
# stamped with the same string: `relay version` prints what dpkg and rpm
# show.
#
# Environment: RELAY_VERSION replaces the version from git (the tests build
# an upgrade with it); RELAY_ARCHS the architectures ("amd64 arm64").
set -euo pipefail

die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is missing: $2"; }

[[ $# -eq 1 && -n $1 ]] || die "usage: packaging/build.sh OUTDIR"
out=$1
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cd "$top"

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	PATH=$PATH:/usr/local/go/bin
fi
need go "install Go 1.26 (https://go.dev/dl/), or put /usr/local/go/bin in PATH"
need gzip "apt-get install gzip"

version=${RELAY_VERSION:-$(bash "$here/version.sh")} || die "no version (see above)"
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version \"$version\" is not a valid package version (digits first; letters, digits, . + ~)"
archs=${RELAY_ARCHS:-amd64 arm64}

# Reproducible: every file's time is the commit's (dirty or not).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The nfpm binary once, not once per package (go tool would check the
# module graph each time).
go build -o "$stage/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm || die "go tool nfpm does not build: go mod download (nfpm is a tool dependency in go.mod)"

# Manual pages: packaging/man.sh (go-md2man) writes them uncompressed
# under OUTDIR/manN. The Debian package installs them under their own
# names; the RPM gives sendmail, mailq and newaliases the names of
# relay's alternative (sendmail.relay.8.gz ...) since the names
# themselves belong to the mta alternative's links.
RELAY_VERSION=$version bash "$here/man.sh" "$stage/man" || die "packaging/man.sh failed"
mkdir -p "$stage/share"
cp -r "$stage/man" "$stage/share/deb"
cp -r "$stage/man" "$stage/share/rpm"
for page in man8/sendmail.8 man1/mailq.1 man8/newaliases.8; do
	[[ -f $stage/man/$page ]] || die "packaging/man.sh made no $page"
	base=${page#*/}
	mv "$stage/share/rpm/$page" "$stage/share/rpm/${page%/*}/${base%.*}.relay.${base##*.}"
done
find "$stage/share" -type f -exec gzip -9n {} +

# Debian documentation: the changelog gets an entry for this version when
# the newest one is older, dated like the commit.
mkdir -p "$stage/doc"
cp "$here/deb/copyright" "$stage/doc/copyright"
{
	top_version=$(sed -n '1s/^relay (\([^)]*\)).*/\1/p' "$here/deb/changelog")
	if [[ $top_version != "$version" ]]; then
		printf 'relay (%s) unstable; urgency=medium\n\n  * Built from git %s.\n\n -- %s  %s\n\n' \
			"$version" "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
			"$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$here/deb/changelog" | head -1)" \
			"$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
	fi
	cat "$here/deb/changelog"
} | gzip -9n >"$stage/doc/changelog.gz"

# Copies, not links: nfpm packages a source that is a link as a link,
# which would point into this build tree on the installed system.
mkdir -p "$stage/src"
cp -r "$top/dist" "$top/packaging" "$top/relay.toml.example" "$stage/src/"

for arch in $archs; do
	bin=$stage/bin-$arch
	mkdir -p "$bin"
	# The OAuth helper (cmd/relay-oauth: the HTTP client relay itself does
	# not link) is no command for people: it goes to /usr/libexec/relay,
	# and the packaged relay is told where.
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= -X main.buildVersion=$version -X github.com/relaymail/relay/oauth.HelperPath=/usr/libexec/relay/relay-oauth" \
		-o "$bin/relay" . ||
		die "go build for $arch failed"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid=" -o "$bin/relay-oauth" ./cmd/relay-oauth ||
		die "go build of relay-oauth for $arch failed"
	case $arch in
	amd64) rpmarch=x86_64 ;;
	arm64) rpmarch=aarch64 ;;
	*) rpmarch=$arch ;;
	esac
	for fmt in deb rpm; do
		if [[ $fmt == deb ]]; then
			target=$out/relay_${version}_${arch}.deb
		else
			target=$out/relay-${version}-1.${rpmarch}.rpm
		fi
		# nfpm reads the sources relative to the working directory,
		# src/, which shows it the checkout's dist/, packaging/ and
		# relay.toml.example; RELAY_STAGE and RELAY_BIN name the rest.
		# Not the checkout itself: nfpm stats a symlink's target as a
		# path there, and the package relay/ made /usr/sbin/sendmail -> relay
		# a directory.
		(cd "$stage/src" && RELAY_VERSION=$version RELAY_ARCH=$arch RELAY_STAGE=$stage RELAY_BIN=$bin \
			"$stage/nfpm" package --config packaging/nfpm.yaml --packager "$fmt" --target "$target" >/dev/null) ||
			die "nfpm could not build the $fmt package for $arch"
		printf '%s\n' "$target"
	done
done
