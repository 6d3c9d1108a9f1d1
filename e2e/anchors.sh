#!/bin/bash
# e2e/anchors.sh — the programs relay replaces (dma, nullmailer, msmtp),
# real Debian builds, run beside the e2e smarthost WITHOUT installing them:
# they conflict with Postfix as packages (one /usr/sbin/sendmail), and
# Postfix is the smarthost.
#
# Usage:
#   e2e/anchors.sh fetch
#       apt-get download dma, nullmailer, msmtp and whatever of their
#       Depends is not installed here, into $ANCHORS_DIR/deb, and unpack
#       each program (dpkg -x) into a private root $ANCHORS_DIR/root/PROG
#       (its missing libraries into $ANCHORS_DIR/libs/PROG). Idempotent:
#       a program already unpacked from the same .deb is left as it is.
#   e2e/anchors.sh run dma|nullmailer|msmtp [--config DIR] -- CMD ARGS...
#       run CMD in a private mount namespace (unshare -m) in which the
#       program's files sit at their compiled-in paths: `sendmail` on PATH
#       and /usr/sbin/sendmail (and /usr/lib/sendmail) are that program.
#       See "The namespace" below. Exit status: CMD's.
#   e2e/anchors.sh env dma|nullmailer|msmtp
#       print shell assignments (ANCHOR_*): version, private root, the
#       host path of its spool, its default configuration, its log, and
#       ANCHOR_BINARIES: the executables of its processes as the namespace
#       names them (a trailing / takes a directory; bench/psspeak -exe).
#   e2e/anchors.sh clear dma|nullmailer|msmtp
#       empty the program's spool (queued messages would be sent by the
#       next run otherwise).
#
# The namespace (built afresh by every `run`, gone when CMD and everything
# it started have ended; nothing of it is visible outside):
#   /etc, /usr/bin, /usr/sbin, /usr/lib
#                read-only overlays: the program's root over the host's
#                directory (the host's files stay visible where the program
#                has none; mounts below them are carried over); for
#                nullmailer /etc/mailname is anchors-nullmailer.example.test
#                (Debian's nullmailer takes its name from there)
#   /var/spool   the host's entries bound through, plus the program's
#                spool ($ANCHORS_DIR/state/PROG/spool/PROG, persistent)
#   config       dma: /etc/dma (dma.conf, auth.conf); nullmailer:
#                /etc/nullmailer (remotes, defaultdomain, ...); msmtp:
#                /etc/msmtprc. By default a configuration this script
#                writes for the e2e smarthost ($RELAY_E2E_DIR/env: STARTTLS
#                on $SMARTHOST_PORT_STARTTLS, AUTH as $SMARTHOST_USER, the
#                test CA or, for dma, the certificate's fingerprint; each
#                greets as anchors-PROG.example.test); with --config DIR,
#                DIR is bound there instead (dma, nullmailer: the
#                directory; msmtp: DIR/msmtprc).
#   nullmailer   nullmailer-send (which delivers the queue; the Debian
#                package runs it as a service) is started in the namespace
#                before CMD, in the background, log in
#                $ANCHORS_DIR/state/nullmailer/nullmailer-send.log.
#   after CMD    for dma and nullmailer the script waits (at most
#                $ANCHORS_DRAIN seconds) until the spool holds no message,
#                so what CMD queued is delivered before `run` returns; then
#                nullmailer-send is stopped. A spool not empty by then is
#                reported on stderr (CMD's exit status is kept).
#   missing libraries  (only when fetch had to download some) a private
#                /etc/ld.so.cache that also names $ANCHORS_DIR/libs/PROG.
# One `run` per program at a time: they share the program's spool (give
# each its own ANCHORS_DIR to run them side by side).
#
# Runs as root. Environment:
#   ANCHORS_DIR    cache and state (default /var/tmp/relay-anchors)
#   ANCHORS_DRAIN  seconds `run` waits for the spool to empty (default 60;
#                  0: do not wait)
#   RELAY_E2E_DIR  the smarthost's state directory (default /tmp/relay-e2e)

set -euo pipefail

A=${ANCHORS_DIR:-/var/tmp/relay-anchors}
E2E=${RELAY_E2E_DIR:-/tmp/relay-e2e}
DRAIN=${ANCHORS_DRAIN:-60}
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
PROGS=(dma nullmailer msmtp)
# Tools only the packages' maintainer scripts use; nothing is configured by
# them here, so they are never fetched.
SKIP_DEPS=" debconf cdebconf debconf-2.0 ucf adduser init-system-helpers lsb-base sensible-utils "

log() { printf 'anchors: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() {
	sed -n '2,/^$/p' "$SELF" | sed 's/^# \{0,1\}//' >&2
	exit 64
}

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (unshare -m, mount)"; }
known() {
	case ${1:-} in dma | nullmailer | msmtp) return 0 ;; esac
	die "unknown program '${1:-}' (dma, nullmailer or msmtp)"
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# ------------------------------------------------------------------ fetch --

# missing_deps PKG: the packages PKG needs (Depends and Pre-Depends, after
# the first alternative that is installed, else the first) which are not
# installed, recursively, one a line.
missing_deps() {
	local todo=("$1") seen=" $1 " p line alts=() a pick
	while ((${#todo[@]} > 0)); do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		pick=""
		while IFS= read -r line; do
			# "  Depends: x" starts a group; "  |Depends: x" says the
			# next line is an alternative of the same group.
			[[ $line =~ ^\ +(\|?)(Pre-)?Depends:\ +(.*)$ ]] || continue
			a=${BASH_REMATCH[3]}
			a=${a#<}
			a=${a%>}
			alts+=("$a")
			[[ -n ${BASH_REMATCH[1]} ]] && continue
			pick=""
			for a in "${alts[@]}"; do
				if installed "$a"; then pick=""; break; fi
				[[ -z $pick && $SKIP_DEPS != *" $a "* ]] && pick=$a
			done
			alts=()
			if [[ -n $pick && $seen != *" $pick "* ]]; then
				seen+="$pick "
				todo+=("$pick")
				printf '%s\n' "$pick"
			fi
		done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts \
			--no-breaks --no-replaces --no-enhances "$p" 2>/dev/null)
		alts=()
	done
}

# download PKG...: into $A/deb (the current directory), refreshing stale
# package lists once.
download() {
	if ! apt-get -o APT::Sandbox::User=root download "$@" >&2; then
		log "download failed; refreshing package lists and retrying once"
		apt-get -o DPkg::Lock::Timeout=900 update >&2
		apt-get -o APT::Sandbox::User=root download "$@" >&2
	fi
}

deb_of() { # PKG -> the newest .deb of PKG in $A/deb
	local f
	f=$(find "$A/deb" -maxdepth 1 -name "${1}_*.deb" | sort -V | tail -1)
	[[ -n $f ]] || die "no .deb of $1 in $A/deb"
	printf '%s\n' "$f"
}

fetch_one() {
	local prog=$1 root=$A/root/$1 libs=$A/libs/$1 st=$A/state/$1 deb deps=() d
	if [[ -f $root/.anchors-deb ]] && [[ -f $A/deb/$(cat "$root/.anchors-deb") ]]; then
		return 0
	fi
	(cd "$A/deb" && download "$prog")
	mapfile -t deps < <(missing_deps "$prog")
	if ((${#deps[@]} > 0)); then
		log "$prog needs, not installed here: ${deps[*]}"
		(cd "$A/deb" && download "${deps[@]}")
	fi
	deb=$(deb_of "$prog")
	rm -rf "${root:?}" "${libs:?}" "${st:?}/etc"
	mkdir -p "$root" "$libs" "$st/etc"
	dpkg -x "$deb" "$root"
	for d in "${deps[@]}"; do dpkg -x "$(deb_of "$d")" "$libs"; done
	if [[ $prog == msmtp ]]; then
		# As msmtp-mta does, but pointing into the private root: msmtp
		# has no compiled-in path of its own but /etc/msmtprc.
		mkdir -p "$root/usr/sbin" "$root/usr/lib"
		ln -s "$root/usr/bin/msmtp" "$root/usr/sbin/sendmail"
		ln -s "$root/usr/bin/msmtp" "$root/usr/lib/sendmail"
	fi
	# A private ld.so.cache naming the unpacked libraries, used only when
	# there are any (the namespace binds it over /etc/ld.so.cache; unlike
	# LD_LIBRARY_PATH it also serves set-id programs such as
	# nullmailer-queue).
	local dirs
	dirs=$(find "$libs" -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u)
	if [[ -n $dirs ]]; then
		{
			printf '%s\n' "$dirs"
			printf 'include /etc/ld.so.conf.d/*.conf\n'
		} >"$st/ld.so.conf"
		ldconfig -X -C "$st/etc/ld.so.cache" -f "$st/ld.so.conf"
	fi
	basename "$deb" >"$root/.anchors-deb"
	log "$prog: $(basename "$deb") unpacked in $root"
}

# The spool skeleton, as the packages' maintainer scripts make it.
make_spool() {
	local prog=$1 sp=$A/state/$1/spool
	case $prog in
	dma)
		mkdir -p "$sp/dma"
		chown root:mail "$sp/dma"
		chmod 2775 "$sp/dma"
		;;
	nullmailer)
		mkdir -p "$sp/nullmailer"/{queue,tmp,failed}
		[[ -p $sp/nullmailer/trigger ]] || mkfifo "$sp/nullmailer/trigger"
		chown -R mail:root "$sp/nullmailer"
		chmod 750 "$sp/nullmailer"/{queue,tmp}
		chmod 622 "$sp/nullmailer/trigger"
		# Debian's nullmailer takes its host name from /etc/mailname
		# (and ignores /etc/nullmailer/me).
		mkdir -p "$A/state/nullmailer/etc"
		printf 'anchors-nullmailer.example.test\n' >"$A/state/nullmailer/etc/mailname"
		;;
	msmtp)
		# /etc/msmtprc must exist in the overlay for the configuration
		# to be bound over it.
		mkdir -p "$sp" "$A/state/msmtp/etc"
		[[ -f $A/state/msmtp/etc/msmtprc ]] || : >"$A/state/msmtp/etc/msmtprc"
		;;
	esac
}

cmd_fetch() {
	need_root
	mkdir -p "$A/deb"
	local p
	for p in "${PROGS[@]}"; do
		fetch_one "$p"
		make_spool "$p"
	done
}

# ------------------------------------------------------------- config --

load_e2e_env() {
	[[ -r $E2E/env ]] || die "$E2E/env missing: bash e2e/smarthost.sh install && bash e2e/smarthost.sh start"
	# shellcheck source=/dev/null  # generated by e2e/smarthost.sh start
	. "$E2E/env"
}

# default_config PROG: (re)write the configuration for the e2e smarthost
# into $A/state/PROG/conf and print that directory.
default_config() {
	local prog=$1 c=$A/state/$1/conf
	load_e2e_env
	rm -rf "$c"
	mkdir -p "$c"
	case $prog in
	dma)
		# dma checks no certificate chain; FINGERPRINT pins the
		# smarthost's certificate, the closest it has to verification.
		cat >"$c/dma.conf" <<-EOF
			# written by e2e/anchors.sh for the e2e smarthost
			SMARTHOST $SMARTHOST_NAME
			PORT $SMARTHOST_PORT_STARTTLS
			AUTHPATH /etc/dma/auth.conf
			SECURETRANSFER
			STARTTLS
			FINGERPRINT $(tr 'a-f' 'A-F' <<<"$SMARTHOST_CERT_SHA256")
			MAILNAME anchors-dma.example.test
			NULLCLIENT
		EOF
		printf '%s|%s:%s\n' "$SMARTHOST_USER" "$SMARTHOST_NAME" "$SMARTHOST_PASS" >"$c/auth.conf"
		chown root:mail "$c/auth.conf"
		chmod 640 "$c/auth.conf"
		;;
	nullmailer)
		printf 'example.test\n' >"$c/defaultdomain"
		printf '%s smtp --port=%s --starttls --x509cafile=%s --user=%s --pass=%s\n' \
			"$SMARTHOST_NAME" "$SMARTHOST_PORT_STARTTLS" "$SMARTHOST_CA" \
			"$SMARTHOST_USER" "$SMARTHOST_PASS" >"$c/remotes"
		chown mail:root "$c/remotes"
		chmod 600 "$c/remotes"
		# Without a pause of its own nullmailer-send waits 60 s after a
		# failed attempt; the trigger wakes it for every new message.
		printf '5\n' >"$c/pausetime"
		;;
	msmtp)
		cat >"$c/msmtprc" <<-EOF
			# written by e2e/anchors.sh for the e2e smarthost
			defaults
			tls on
			tls_starttls on
			tls_trust_file $SMARTHOST_CA
			syslog off
			domain anchors-msmtp.example.test
			account default
			host $SMARTHOST_NAME
			port $SMARTHOST_PORT_STARTTLS
			auth plain
			user $SMARTHOST_USER
			password $SMARTHOST_PASS
		EOF
		chmod 600 "$c/msmtprc"
		;;
	esac
	printf '%s\n' "$c"
}

# ------------------------------------------------------------ namespace --

# In the namespace only: a tmpfs for the scratch of the mounts below.
SCRATCH=""
scratch() {
	SCRATCH=$A/state/$1/ns
	mkdir -p "$SCRATCH"
	mount -t tmpfs -o mode=0755 anchors "$SCRATCH"
}

# overlay TARGET LAYER...: a read-only overlay of the LAYERs (first on
# top) over the host's TARGET; the mounts below TARGET are bound through.
overlay() {
	local target=$1 lower="" l subs=() s i=0 keep
	shift
	for l in "$@"; do [[ -d $l ]] && lower+="$l:"; done
	[[ -n $lower ]] || return 0
	mapfile -t subs < <(findmnt -rn -o TARGET | grep "^$target/" || true)
	keep=$SCRATCH/keep${target//\//_}
	mkdir -p "$keep"
	for s in "${subs[@]}"; do
		if [[ -d $s ]]; then mkdir "$keep/$i"; else : >"$keep/$i"; fi
		mount --bind "$s" "$keep/$i"
		i=$((i + 1))
	done
	mount -t overlay anchors -o "ro,lowerdir=$lower$target" "$target"
	i=0
	for s in "${subs[@]}"; do
		mount --bind "$keep/$i" "$s"
		i=$((i + 1))
	done
}

# graft TARGET LAYER: TARGET becomes a directory holding the entries of
# LAYER and, where LAYER has none of that name, the host's, each bound
# (writable) from where it is.
graft() {
	local target=$1 layer=$2 g=$SCRATCH/graft${1//\//_} e n
	mkdir -p "$g"
	for e in "$layer"/* "$target"/*; do
		[[ -e $e || -L $e ]] || continue
		n=${e##*/}
		[[ -e $g/$n || -L $g/$n ]] && continue
		if [[ -L $e ]]; then
			ln -s "$(readlink "$e")" "$g/$n"
			continue
		fi
		if [[ -d $e ]]; then mkdir "$g/$n"; else : >"$g/$n"; fi
		mount --rbind "$e" "$g/$n"
	done
	mount --rbind "$g" "$target"
}

spool_of() { # PROG -> the host path of its spool directory
	case $1 in
	dma) printf '%s\n' "$A/state/dma/spool/dma" ;;
	nullmailer) printf '%s\n' "$A/state/nullmailer/spool/nullmailer" ;;
	msmtp) printf '%s\n' "" ;;
	esac
}

# queued PROG: how many messages its spool holds (from the host's side).
queued() {
	local sp
	sp=$(spool_of "$1")
	case $1 in
	dma) find "$sp" -maxdepth 1 -name 'Q*' 2>/dev/null | wc -l ;;
	nullmailer) find "$sp/queue" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l ;;
	*) echo 0 ;;
	esac
}

# Inside the namespace (run as "__inner PROG CONFDIR -- CMD..." by
# `run` through unshare -m).
cmd_inner() {
	local prog=$1 conf=$2 root=$A/root/$1 libs=$A/libs/$1 st=$A/state/$1 rc=0 pid="" i
	shift 3
	mount --make-rprivate /
	scratch "$prog"
	overlay /etc "$st/etc" "$root/etc"
	overlay /usr/bin "$root/usr/bin"
	overlay /usr/sbin "$root/usr/sbin"
	overlay /usr/lib "$root/usr/lib"
	graft /var/spool "$st/spool"
	case $prog in
	dma) mount --bind "$conf" /etc/dma ;;
	nullmailer) mount --bind "$conf" /etc/nullmailer ;;
	msmtp)
		[[ -f $conf/msmtprc ]] || die "no msmtprc in $conf"
		mount --bind "$conf/msmtprc" /etc/msmtprc
		;;
	esac
	# `sendmail` on PATH is the program's, whatever else PATH names.
	mkdir -p "$SCRATCH/bin"
	ln -s /usr/sbin/sendmail "$SCRATCH/bin/sendmail"
	[[ $prog == msmtp ]] && ln -s "$root/usr/bin/msmtp" "$SCRATCH/bin/msmtp"
	[[ $prog == nullmailer ]] && ln -s "$root/usr/bin/mailq" "$SCRATCH/bin/mailq"
	export PATH="$SCRATCH/bin:$PATH"

	if [[ $prog == nullmailer ]]; then
		/usr/sbin/nullmailer-send >>"$st/nullmailer-send.log" 2>&1 &
		pid=$!
	fi
	"$@" || rc=$?
	if [[ $prog != msmtp && $DRAIN != 0 ]]; then
		for ((i = 0; i < DRAIN * 20; i++)); do
			(($(queued "$prog") == 0)) && break
			# nullmailer-send reads the trigger when it is idle
			[[ $prog == nullmailer && $((i % 20)) == 19 ]] &&
				{ timeout 1 sh -c 'printf x >/var/spool/nullmailer/trigger' 2>/dev/null || true; }
			sleep 0.05
		done
		n=$(queued "$prog")
		((n == 0)) || log "$prog: $n message(s) still in its spool $(spool_of "$prog") after ${DRAIN}s"
	fi
	if [[ -n $pid ]]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	return "$rc"
}

cmd_run() {
	need_root
	local prog=${1:-} conf=""
	known "$prog"
	shift
	while (($# > 0)); do
		case $1 in
		--config)
			[[ -n ${2:-} && -d $2 ]] || die "--config needs a directory"
			conf=$(cd "$2" && pwd)
			shift 2
			;;
		--) shift; break ;;
		*) die "run $prog: unexpected '$1' (want [--config DIR] -- CMD ARGS...)" ;;
		esac
	done
	(($# > 0)) || die "run $prog: no command (want [--config DIR] -- CMD ARGS...)"
	[[ -f $A/root/$prog/.anchors-deb ]] || die "$prog not fetched: bash e2e/anchors.sh fetch"
	make_spool "$prog"
	[[ -n $conf ]] || conf=$(default_config "$prog")
	exec unshare -m --propagation private bash "$SELF" __inner "$prog" "$conf" -- "$@"
}

cmd_env() {
	local prog=${1:-} v
	known "$prog"
	v=$(cat "$A/root/$prog/.anchors-deb" 2>/dev/null || true)
	v=${v#*_}
	v=${v%_*}
	printf 'ANCHOR_NAME=%s\n' "$prog"
	printf 'ANCHOR_VERSION=%s\n' "${v//%3a/:}"
	printf 'ANCHOR_ROOT=%s\n' "$A/root/$prog"
	printf 'ANCHOR_LIBS=%s\n' "$A/libs/$prog"
	printf 'ANCHOR_SPOOL=%s\n' "$(spool_of "$prog")"
	printf 'ANCHOR_CONFIG=%s\n' "$A/state/$prog/conf"
	case $prog in
	dma) printf 'ANCHOR_CONFIG_PATH=/etc/dma\nANCHOR_BINARIES="/usr/sbin/dma /usr/lib/dma/"\n' ;;
	nullmailer)
		printf 'ANCHOR_CONFIG_PATH=/etc/nullmailer\nANCHOR_BINARIES="/usr/sbin/sendmail /usr/bin/nullmailer-inject /usr/sbin/nullmailer-queue /usr/sbin/nullmailer-send /usr/lib/nullmailer/"\n'
		printf 'ANCHOR_LOG=%s\n' "$A/state/nullmailer/nullmailer-send.log"
		;;
	msmtp) printf 'ANCHOR_CONFIG_PATH=/etc/msmtprc\nANCHOR_BINARIES="%s"\n' "$A/root/msmtp/usr/bin/msmtp" ;;
	esac
}

cmd_clear() {
	need_root
	local prog=${1:-} sp
	known "$prog"
	sp=$(spool_of "$prog")
	[[ -n $sp ]] || return 0
	case $prog in
	dma) find "$sp" -mindepth 1 -maxdepth 1 -type f -delete ;;
	nullmailer) find "$sp/queue" "$sp/tmp" -mindepth 1 -maxdepth 1 -type f -delete ;;
	esac
}

case ${1:-} in
fetch) cmd_fetch ;;
run) shift; cmd_run "$@" ;;
env) shift; cmd_env "$@" ;;
clear) shift; cmd_clear "$@" ;;
__inner) shift; cmd_inner "$@" ;;
*) usage ;;
esac
