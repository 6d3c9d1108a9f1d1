#!/bin/bash
# e2e/smarthost.sh — a real, local test smarthost for relay's end-to-end tests.
#
# Postfix (SMTP server) + Dovecot (SASL only) on 127.0.0.1/::1, with a private
# CA, behaving like a strict submission service (Yandex-like): STARTTLS before
# AUTH, the envelope sender must belong to the login (553 5.7.1 at MAIL FROM),
# one recipient that is refused at RCPT (550), one deferred at RCPT every time
# (temp-fail@example.test, 450), and every accepted message delivered
# into ONE Maildir so tests can count and read what arrived.
#
# Nothing may leave the machine: every domain is a local virtual domain, the
# smtp/relay client transports do not exist in master.cf, and
# default_transport/relay_transport are "error" as a second safety net.
#
# Usage: e2e/smarthost.sh install|start|stop|status|wait-mail N [TIMEOUT]|count|clear
#
# Environment:
#   RELAY_E2E_DIR    state directory (default /tmp/relay-e2e); configuration,
#                    certificates, queue, logs and the Maildir all live here.
#   RELAY_E2E_MECHS  SASL mechanisms Dovecot offers (default "plain login
#                    cram-md5 scram-sha-256 xoauth2 oauthbearer": the
#                    passwd-file keeps {PLAIN} secrets, so every password
#                    mechanism works; XOAUTH2 and OAUTHBEARER tokens are
#                    checked by Dovecot's oauth2 passdb, by introspection
#                    at the authorization server the OAuth tests start on
#                    127.0.0.1:$OAUTH_AS_PORT). Postfix filters them per
#                    port: the first four ports offer PLAIN LOGIN, the AUTH
#                    ports below one mechanism each, all four password
#                    mechanisms, or the token mechanisms.
#   RELAY_E2E_HOSTS  set to 0 to leave /etc/hosts alone (by default "start"
#                    maps smarthost.test and wrong.test to 127.0.0.1).
#
# After "start", $RELAY_E2E_DIR/env holds shell variables (ports, CA files,
# fingerprints, test users) for the test suites: `. "$RELAY_E2E_DIR/env"`.

set -euo pipefail

DIR=${RELAY_E2E_DIR:-/tmp/relay-e2e}
MECHS=${RELAY_E2E_MECHS:-plain login cram-md5 scram-sha-256 xoauth2 oauthbearer}

# Fixed test ports: none is 25 (relay's own listener and the tests use their
# own), none below 1024 so nothing collides with a system MTA.
PORT_STARTTLS=2587   # submission, STARTTLS required before AUTH
PORT_TLS=2465        # submissions, implicit TLS
PORT_PLAIN=2526      # no TLS at all, AUTH in clear: relay must refuse it
PORT_WRONGNAME=2588  # like 2587, but the certificate is for wrong.test
PORT_NO8BIT=2527     # like 2587, but 8BITMIME is not offered (re-encoding tests)
PORT_STRICT=2589     # like 2587, but every sender the login does not own is refused (as Yandex, mail.ru)
# AUTH mechanism ports: like 2587 (STARTTLS before AUTH), each offering one
# SASL mechanism (smtpd_sasl_mechanism_filter), the last one all four.
AUTH_PORTS=(
	"2590:cram-md5"
	"2591:scram-sha-256"
	"2592:plain"
	"2593:login"
	"2594:plain,login,cram-md5,scram-sha-256"
	"2595:xoauth2,oauthbearer"
	"2596:xoauth2"
)
# The OAuth 2.0 authorization server of the OAuth tests (they start it, in
# the test process: internal/testoauth) listens here; Dovecot's oauth2
# passdb asks its introspection endpoint (RFC 7662) about every token.
OAUTH_AS_PORT=2579

HOSTNAME_OK=smarthost.test
HOSTNAME_WRONG=wrong.test

# Test users: login => password. Each login owns exactly its own address.
USERS=(
	"robot@example.test:s3cret-robot"
	"alice@example.test:s3cret-alice"
)
# A login whose password Dovecot keeps hashed (SHA512-CRYPT), as many
# servers do: PLAIN and LOGIN work, CRAM-MD5 and SCRAM cannot (relay's
# fallback to PLAIN). It owns its own address too.
HASHED_USER="hashed@example.test:s3cret-hashed"
REFUSED_RCPT=refuse@example.test
# One recipient deferred at RCPT with a temporary error, every time.
TEMPFAIL_RCPT=temp-fail@example.test

# Virtual deliveries run as this unprivileged user (virtual(8) refuses uid 0).
VUSER=nobody
VGROUP=nogroup

PACKAGES=(postfix dovecot-core openssl swaks ca-certificates
	# swaks needs Net::SSLeay for STARTTLS/implicit TLS and Authen::SASL for
	# some mechanisms, IO::Socket::INET6 to talk to [::1]; all only
	# "Recommends" of swaks.
	libnet-ssleay-perl libauthen-sasl-perl libio-socket-inet6-perl
	# The metrics suite (e2e/metrics_test.go) runs its own Prometheus and
	# node exporter on loopback; apt_install's policy-rc.d keeps the
	# packages' own services from starting.
	prometheus prometheus-node-exporter)

PF_CONF="$DIR/postfix"
PF_QUEUE="$DIR/postfix-queue"
PF_DATA="$DIR/postfix-data"
DC_CONF="$DIR/dovecot"
DC_RUN="$DIR/dovecot-run"
TLS="$DIR/tls"
MAILDIR="$DIR/maildir"
AUTH_SOCKET="$DC_RUN/auth-postfix"

log() { printf 'smarthost: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=e2e/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

need_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (Postfix and Dovecot need it)"
}

# ---------------------------------------------------------------- install --

cmd_install() {
	need_root
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
			missing+=("$p")
		fi
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "all packages already installed"
		return 0
	fi
	log "installing: ${missing[*]}"

	# "No configuration" keeps the Postfix installer from asking questions
	# and from writing a main.cf of its own; we run our own instance with
	# its own config directory anyway.
	debconf-set-selections <<-EOF
		postfix postfix/main_mailer_type select No configuration
		postfix postfix/mailname string $HOSTNAME_OK
	EOF

	# A fresh machine may never have fetched the package lists.
	if ! apt-cache policy postfix 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		apt-get update
	fi

	apt_install "${missing[@]}"
}

# ------------------------------------------------------------------- TLS --

# Certificates are made once and kept across restarts, so fingerprints stay
# stable for a whole test run; delete $DIR/tls to get new ones.
make_certs() {
	mkdir -p "$TLS"
	chmod 755 "$TLS"
	if [[ -s $TLS/server.crt && -s $TLS/wrong.crt && -s $TLS/other-ca.crt ]]; then
		return 0
	fi
	log "creating private CAs and certificates in $TLS"
	local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
	local ca_ext=(-addext "basicConstraints=critical,CA:TRUE"
		-addext "keyUsage=critical,keyCertSign,cRLSign")

	# The CA that signs both server certificates.
	openssl req -x509 "${ec[@]}" -keyout "$TLS/ca.key" -out "$TLS/ca.crt" \
		-days 3650 -subj "/O=relay e2e/CN=relay e2e test CA" "${ca_ext[@]}" 2>/dev/null
	# A second CA that signed nothing we serve: "untrusted CA" tests.
	openssl req -x509 "${ec[@]}" -keyout "$TLS/other-ca.key" -out "$TLS/other-ca.crt" \
		-days 3650 -subj "/O=relay e2e/CN=relay e2e OTHER CA (signs nothing)" "${ca_ext[@]}" 2>/dev/null

	leaf() { # file-stem SAN-list CN
		local name=$1 san=$2
		openssl req -new "${ec[@]}" -keyout "$TLS/$name.key" -out "$TLS/$name.csr" \
			-subj "/O=relay e2e/CN=$3" 2>/dev/null
		printf '%s\n' \
			"basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=serverAuth" \
			"subjectAltName=$san" >"$TLS/$name.ext"
		openssl x509 -req -in "$TLS/$name.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" \
			-set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
			-extfile "$TLS/$name.ext" -out "$TLS/$name.crt" 2>/dev/null
		rm -f "$TLS/$name.csr" "$TLS/$name.ext"
	}
	leaf server "DNS:$HOSTNAME_OK,DNS:localhost,IP:127.0.0.1,IP:::1" "$HOSTNAME_OK"
	# Signed by the trusted CA, so the ONLY fault is the name.
	leaf wrong "DNS:$HOSTNAME_WRONG" "$HOSTNAME_WRONG"

	chmod 600 "$TLS"/*.key
	chmod 644 "$TLS"/*.crt
}

# Lower-case hex without colons of the SHA-256 of the certificate (DER).
cert_sha256() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# Base64 SHA-256 of the SubjectPublicKeyInfo (the usual "pin-sha256").
spki_sha256() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -binary | openssl base64 -A
}

# ---------------------------------------------------------------- config --

write_dovecot_conf() {
	mkdir -p "$DC_CONF"
	chmod 755 "$DC_CONF"
	# passwd-file with {PLAIN} secrets: PLAIN/LOGIN work now, and
	# CRAM-MD5/SCRAM can be switched on later, since both need the clear
	# secret (or a scheme-specific hash) on the server.
	local u
	: >"$DC_CONF/users.tmp"
	for u in "${USERS[@]}"; do
		printf '%s:{PLAIN}%s::::::\n' "${u%%:*}" "${u#*:}" >>"$DC_CONF/users.tmp"
	done
	printf '%s:{SHA512-CRYPT}%s::::::\n' "${HASHED_USER%%:*}" "$(openssl passwd -6 "${HASHED_USER#*:}")" >>"$DC_CONF/users.tmp"
	# The auth process runs as the "dovecot" user: it must read this file.
	chown root:dovecot "$DC_CONF/users.tmp"
	chmod 640 "$DC_CONF/users.tmp"
	mv -f "$DC_CONF/users.tmp" "$DC_CONF/users"

	cat >"$DC_CONF/oauth2.conf.ext" <<-EOF
		# Generated by e2e/smarthost.sh: the OAuth tests' authorization server.
		introspection_mode = post
		introspection_url = http://127.0.0.1:$OAUTH_AS_PORT/introspect
		force_introspection = yes
		username_attribute = username
		active_attribute = active
		active_value = true
		timeout_msecs = 5000
	EOF

	cat >"$DC_CONF/dovecot.conf" <<-EOF
		# Generated by e2e/smarthost.sh: Dovecot as SASL server for Postfix only.
		# No IMAP/POP3/LMTP, no TLS (Postfix does TLS), own base_dir and logs
		# so it never touches a system-wide Dovecot.
		protocols = none
		base_dir = $DC_RUN
		state_dir = $DIR/dovecot-state
		log_path = $DIR/dovecot.log
		info_log_path = $DIR/dovecot.log
		debug_log_path = $DIR/dovecot.log
		ssl = no
		# Postfix decides per port whether AUTH needs TLS; Dovecot must not
		# second-guess it (port $PORT_PLAIN offers AUTH in clear on purpose).
		disable_plaintext_auth = no
		auth_mechanisms = $MECHS
		auth_verbose = yes
		auth_verbose_passwords = no
		# Keep the full address as login name.
		auth_username_format = %Lu

		# XOAUTH2 and OAUTHBEARER: the token is checked by introspection
		# (POST token=...) at the tests' authorization server, which must
		# say active and name the login. Password mechanisms skip it.
		passdb {
		  driver = oauth2
		  mechanisms = xoauth2 oauthbearer
		  args = $DC_CONF/oauth2.conf.ext
		}
		passdb {
		  driver = passwd-file
		  args = scheme=PLAIN username_format=%Lu $DC_CONF/users
		}
		userdb {
		  driver = static
		  args = uid=$VUSER gid=$VGROUP home=/nonexistent
		}

		# No auth penalty: after a failed login Dovecot delays every later
		# AUTH from the same IP (all tests come from 127.0.0.1) by 2 to 15 s
		# for about 30 s, so a wrong-password test would slow down, and
		# skew the timings of, whatever test authenticates next. Without
		# this listener the penalty is off (auth_failure_delay stays).
		service anvil {
		  unix_listener anvil-auth-penalty {
		    mode = 0
		  }
		}

		service auth {
		  unix_listener auth-postfix {
		    mode = 0660
		    user = postfix
		    group = postfix
		  }
		}
	EOF
}

write_postfix_conf() {
	mkdir -p "$PF_CONF"
	chmod 755 "$PF_CONF"

	# Each login owns exactly its own address (reject_known_sender_login_mismatch).
	local u
	: >"$PF_CONF/sender_logins"
	for u in "${USERS[@]}"; do
		printf '%s\t%s\n' "${u%%:*}" "${u%%:*}" >>"$PF_CONF/sender_logins"
	done
	printf '%s\t%s\n' "${HASHED_USER%%:*}" "${HASHED_USER%%:*}" >>"$PF_CONF/sender_logins"
	# One recipient refused at RCPT with a permanent error, like an unknown
	# mailbox at a real provider.
	printf '%s\t550 5.1.1 User unknown\n' "$REFUSED_RCPT" >"$PF_CONF/recipient_access"
	printf '%s\t450 4.2.0 Mailbox temporarily unavailable (temp-fail)\n' "$TEMPFAIL_RCPT" >>"$PF_CONF/recipient_access"

	cat >"$PF_CONF/main.cf" <<-EOF
		# Generated by e2e/smarthost.sh — do not edit; rewritten by "start".
		compatibility_level = 3.6
		queue_directory = $PF_QUEUE
		data_directory = $PF_DATA
		# Log to a file of our own: no syslog needed (and none may run).
		maillog_file = $DIR/postfix.log
		maillog_file_prefixes = $DIR
		myhostname = $HOSTNAME_OK
		mydomain = example.test
		myorigin = \$myhostname
		biff = no
		append_dot_mydomain = no
		smtputf8_enable = yes

		# Loopback only; ports come from master.cf (there is no port 25).
		inet_interfaces = loopback-only
		inet_protocols = $INET_PROTOCOLS
		mynetworks = 127.0.0.0/8

		# Every domain at all is a local virtual domain delivered into ONE
		# Maildir; nothing is relayed. "error" transports are a safety net:
		# should anything ever be routed outwards it bounces locally.
		mydestination =
		relay_domains =
		local_recipient_maps =
		virtual_mailbox_domains = static:all
		virtual_mailbox_base = $DIR
		virtual_mailbox_maps = static:maildir/
		virtual_uid_maps = static:$(id -u "$VUSER")
		virtual_gid_maps = static:$(getent group "$VGROUP" | cut -d: -f3)
		virtual_minimum_uid = 1
		default_transport = error:nothing leaves this test machine
		relay_transport = error:nothing leaves this test machine
		# Bounces and postmaster notices would land in the Maildir and spoil
		# counts; there should be none, but do not add extra ones.
		notify_classes =

		# Large-message tests: 200 MB; mailbox limits off (they must not be
		# below message_size_limit).
		message_size_limit = 209715200
		mailbox_size_limit = 0
		virtual_mailbox_limit = 0

		# Answer at MAIL FROM / RCPT TO, not later (as Yandex does).
		smtpd_delay_reject = no
		smtpd_helo_required = no

		# SASL through Dovecot's socket (absolute path: smtpd is not chrooted).
		smtpd_sasl_type = dovecot
		smtpd_sasl_path = $AUTH_SOCKET
		smtpd_sasl_auth_enable = no
		smtpd_sasl_security_options = noanonymous
		# Dovecot offers every mechanism of auth_mechanisms; the ports of
		# the first tests offer only these (the AUTH ports override it).
		smtpd_sasl_mechanism_filter = plain, login
		smtpd_sasl_tls_security_options = noanonymous
		# Record the login in Received: so tests can see who authenticated.
		smtpd_sasl_authenticated_header = yes
		smtpd_sender_login_maps = texthash:$PF_CONF/sender_logins

		# Submission policy: an address owned by another login is refused
		# (553 5.7.1 ... not owned by user ..., as Yandex answers), other
		# senders pass, so tests can use several; no mail without AUTH.
		submission_sender_restrictions = reject_known_sender_login_mismatch, permit_sasl_authenticated, reject
		smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
		smtpd_recipient_restrictions = check_recipient_access texthash:$PF_CONF/recipient_access, permit

		# TLS: off unless a port in master.cf turns it on.
		smtpd_tls_security_level = none
		smtpd_tls_chain_files = $TLS/server.key, $TLS/server.crt
		wrong_tls_chain_files = $TLS/wrong.key, $TLS/wrong.crt
		smtpd_tls_loglevel = 1
		smtpd_tls_received_header = yes
		smtpd_tls_session_cache_database =
		tls_random_source = dev:/dev/urandom
	EOF

	# No chroot anywhere (the Debian default chroots smtpd, which would need
	# copies of /etc files); no "smtp inet" (port 25) and no smtp/relay
	# client transports at all, so nothing can connect out.
	cat >"$PF_CONF/master.cf" <<-EOF
		# Generated by e2e/smarthost.sh — do not edit; rewritten by "start".
		# service type  private unpriv  chroot  wakeup  maxproc command + args
		$PORT_STARTTLS inet n       -       n       -       -       smtpd
		  -o syslog_name=postfix/starttls-$PORT_STARTTLS
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_auth_only=yes
		  -o smtpd_sasl_auth_enable=yes
		  -o smtpd_sender_restrictions=\$submission_sender_restrictions
		$PORT_TLS inet n       -       n       -       -       smtpd
		  -o syslog_name=postfix/tls-$PORT_TLS
		  -o smtpd_tls_wrappermode=yes
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_auth_only=yes
		  -o smtpd_sasl_auth_enable=yes
		  -o smtpd_sender_restrictions=\$submission_sender_restrictions
		$PORT_PLAIN inet n       -       n       -       -       smtpd
		  -o syslog_name=postfix/plain-$PORT_PLAIN
		  -o smtpd_tls_security_level=none
		  -o smtpd_tls_auth_only=no
		  -o smtpd_sasl_auth_enable=yes
		  -o smtpd_sender_restrictions=\$submission_sender_restrictions
		$PORT_WRONGNAME inet n       -       n       -       -       smtpd
		  -o syslog_name=postfix/wrongname-$PORT_WRONGNAME
		  -o smtpd_tls_chain_files=\$wrong_tls_chain_files
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_auth_only=yes
		  -o smtpd_sasl_auth_enable=yes
		  -o smtpd_sender_restrictions=\$submission_sender_restrictions
		$PORT_NO8BIT inet n       -       n       -       -       smtpd
		  -o syslog_name=postfix/no8bit-$PORT_NO8BIT
		  -o smtpd_discard_ehlo_keywords=8bitmime
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_auth_only=yes
		  -o smtpd_sasl_auth_enable=yes
		  -o smtpd_sender_restrictions=\$submission_sender_restrictions
		$PORT_STRICT inet n       -       n       -       -       smtpd
		  -o syslog_name=postfix/strict-$PORT_STRICT
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_tls_auth_only=yes
		  -o smtpd_sasl_auth_enable=yes
		  -o smtpd_sender_restrictions=reject_sender_login_mismatch,permit_sasl_authenticated,reject
		$(auth_port_services)
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		tlsmgr    unix  -       -       n       1000?   1       tlsmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		proxywrite unix -       -       n       -       1       proxymap
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		local     unix  -       n       n       -       -       local
		virtual   unix  -       n       n       -       -       virtual
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
}

# The master.cf entries of AUTH_PORTS; syslog name auth-PORT.
auth_port_services() {
	local p
	for p in "${AUTH_PORTS[@]}"; do
		printf '%s inet n       -       n       -       -       smtpd\n' "${p%%:*}"
		printf '  -o %s\n' "syslog_name=postfix/auth-${p%%:*}" \
			"smtpd_sasl_mechanism_filter=${p#*:}" \
			smtpd_tls_security_level=encrypt smtpd_tls_auth_only=yes \
			smtpd_sasl_auth_enable=yes 'smtpd_sender_restrictions=$submission_sender_restrictions'
	done
}

# auth_port MECH: the AUTH port that offers exactly MECH.
auth_port() {
	local p
	for p in "${AUTH_PORTS[@]}"; do
		[[ ${p#*:} == "$1" ]] && { echo "${p%%:*}"; return 0; }
	done
	return 1
}

# The setgid helpers (postdrop, postqueue) accept a non-default config
# directory (MAIL_CONFIG / -C) only when the DEFAULT main.cf lists it. Touch
# just that one parameter; the default instance itself is never started.
register_alternate_config() {
	local main=/etc/postfix/main.cf
	[[ -e $main ]] || printf '# Postfix default instance: unused; see relay e2e/smarthost.sh\n' >"$main"
	local cur
	cur=$(postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null || true)
	case " ${cur//,/ } " in
	*" $PF_CONF "*) ;;
	*) postconf -c /etc/postfix -e "alternate_config_directories = ${cur:+$cur, }$PF_CONF" ;;
	esac
}

# Resolve the test names locally so clients can use host = "smarthost.test".
register_hosts() {
	[[ ${RELAY_E2E_HOSTS:-1} == 0 ]] && return 0
	if ! grep -Eq "^127\.0\.0\.1[[:space:]].*\b$HOSTNAME_OK\b" /etc/hosts; then
		printf '127.0.0.1\t%s %s\t# relay e2e/smarthost.sh\n' "$HOSTNAME_OK" "$HOSTNAME_WRONG" >>/etc/hosts ||
			log "warning: could not add $HOSTNAME_OK to /etc/hosts; use 127.0.0.1"
	fi
}

write_env() {
	local f="$DIR/env" tmp="$DIR/env.tmp" u1 u2
	u1=${USERS[0]} u2=${USERS[1]}
	{
		echo "# Generated by e2e/smarthost.sh start; source it: . $DIR/env"
		# KEY=value, single-quoted when needed: valid shell, and easy to
		# parse for a Go test too.
		kv() {
			if [[ $2 =~ ^[A-Za-z0-9_./:@+=-]*$ ]]; then
				printf '%s=%s\n' "$1" "$2"
			else
				printf "%s='%s'\n" "$1" "${2//\'/\'\\\'\'}"
			fi
		}
		kv RELAY_E2E_DIR "$DIR"
		kv SMARTHOST_HOST 127.0.0.1
		kv SMARTHOST_NAME "$HOSTNAME_OK"
		kv SMARTHOST_WRONG_NAME "$HOSTNAME_WRONG"
		kv SMARTHOST_PORT_STARTTLS "$PORT_STARTTLS"
		kv SMARTHOST_PORT_TLS "$PORT_TLS"
		kv SMARTHOST_PORT_PLAIN "$PORT_PLAIN"
		kv SMARTHOST_PORT_WRONGNAME "$PORT_WRONGNAME"
		kv SMARTHOST_PORT_NO8BITMIME "$PORT_NO8BIT"
		kv SMARTHOST_PORT_STRICT_SENDER "$PORT_STRICT"
		kv SMARTHOST_CA "$TLS/ca.crt"
		kv SMARTHOST_OTHER_CA "$TLS/other-ca.crt"
		kv SMARTHOST_CERT "$TLS/server.crt"
		kv SMARTHOST_CERT_SHA256 "$(cert_sha256 "$TLS/server.crt")"
		kv SMARTHOST_SPKI_SHA256 "$(spki_sha256 "$TLS/server.crt")"
		kv SMARTHOST_WRONG_CERT "$TLS/wrong.crt"
		kv SMARTHOST_WRONG_CERT_SHA256 "$(cert_sha256 "$TLS/wrong.crt")"
		kv SMARTHOST_USER "${u1%%:*}"
		kv SMARTHOST_PASS "${u1#*:}"
		kv SMARTHOST_USER2 "${u2%%:*}"
		kv SMARTHOST_PASS2 "${u2#*:}"
		kv SMARTHOST_REFUSED_RCPT "$REFUSED_RCPT"
		kv SMARTHOST_TEMPFAIL_RCPT "$TEMPFAIL_RCPT"
		kv SMARTHOST_MECHS "$MECHS"
		kv SMARTHOST_HASHED_USER "${HASHED_USER%%:*}"
		kv SMARTHOST_HASHED_PASS "${HASHED_USER#*:}"
		kv SMARTHOST_PORT_CRAM_MD5 "$(auth_port cram-md5)"
		kv SMARTHOST_PORT_SCRAM_SHA_256 "$(auth_port scram-sha-256)"
		kv SMARTHOST_PORT_AUTH_PLAIN "$(auth_port plain)"
		kv SMARTHOST_PORT_AUTH_LOGIN "$(auth_port login)"
		kv SMARTHOST_PORT_AUTH_ALL "$(auth_port plain,login,cram-md5,scram-sha-256)"
		kv SMARTHOST_PORT_OAUTH "$(auth_port xoauth2,oauthbearer)"
		kv SMARTHOST_PORT_XOAUTH2 "$(auth_port xoauth2)"
		kv SMARTHOST_OAUTH_AS_PORT "$OAUTH_AS_PORT"
		kv SMARTHOST_MAILDIR "$MAILDIR"
		kv SMARTHOST_POSTFIX_CONFIG "$PF_CONF"
		kv SMARTHOST_POSTFIX_LOG "$DIR/postfix.log"
		kv SMARTHOST_DOVECOT_LOG "$DIR/dovecot.log"
	} >"$tmp"
	chmod 644 "$tmp"
	mv -f "$tmp" "$f"
}

# ------------------------------------------------------------ start/stop --

# without_inherited_fds CMD...: runs CMD with only descriptors 0-2. Under
# `flock /tmp/relay-e2e.lock bash e2e/smarthost.sh start` the lock's
# descriptor is inherited; a daemon keeping it (Dovecot does) would hold
# the lock for as long as it runs, and every later e2e run would wait.
without_inherited_fds() {
	(
		local fd
		for fd in $(ls "/proc/$BASHPID/fd"); do
			((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
		done
		exec "$@"
	)
}

postfix_running() { postfix -c "$PF_CONF" status >/dev/null 2>&1; }

dovecot_pid() {
	local pid
	[[ -s $DC_RUN/master.pid ]] || return 1
	pid=$(<"$DC_RUN/master.pid")
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

cmd_start() {
	need_root
	if ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null; then
		die "Postfix/Dovecot missing: run '$0 install' first"
	fi

	# IPv6 loopback when the machine has it, so tests may use [::1].
	INET_PROTOCOLS=ipv4
	if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
		INET_PROTOCOLS=all
	fi

	mkdir -p "$DIR"
	chmod 755 "$DIR"
	mkdir -p "$MAILDIR"/{new,cur,tmp}
	chown -R "$VUSER:$VGROUP" "$MAILDIR"
	chmod 755 "$MAILDIR" "$MAILDIR"/{new,cur,tmp}
	# Postfix wants its queue directory owned by root; it creates and owns
	# the subdirectories itself ("postfix check" / post-install).
	mkdir -p "$PF_QUEUE" "$PF_DATA"
	chown root:root "$PF_QUEUE"
	chown postfix:postfix "$PF_DATA"
	touch "$DIR/postfix.log" "$DIR/dovecot.log"

	# Another instance (another RELAY_E2E_DIR, or a stale master) on our
	# ports would make the readiness check below pass for the wrong server:
	# refuse before starting anything.
	local port
	if ! postfix_running; then
		for port in "$PORT_STARTTLS" "$PORT_TLS" "$PORT_PLAIN" "$PORT_WRONGNAME" "$PORT_NO8BIT" "$PORT_STRICT" "${AUTH_PORTS[@]%%:*}"; do
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				die "port $port is already in use (another smarthost instance?); stop it first"
			fi
		done
	fi

	make_certs
	write_dovecot_conf
	write_postfix_conf
	register_alternate_config
	register_hosts

	# Dovecot first: smtpd connects to its auth socket on every connection.
	local pid
	if pid=$(dovecot_pid); then
		log "reloading Dovecot (pid $pid)"
		kill -HUP "$pid"
	else
		log "starting Dovecot"
		# Daemons must not inherit our stdout/stderr: a caller reading our
		# output through a pipe ($(...), | tee) would wait for EOF forever.
		without_inherited_fds dovecot -c "$DC_CONF/dovecot.conf" </dev/null >>"$DIR/dovecot.log" 2>&1 ||
			{ tail -20 "$DIR/dovecot.log" >&2; die "dovecot failed to start"; }
	fi

	if postfix_running; then
		log "reloading Postfix"
		postfix -c "$PF_CONF" reload </dev/null >>"$DIR/postfix.log" 2>&1
	else
		log "starting Postfix"
		# "postfix check" runs as part of start: creates the queue tree.
		without_inherited_fds postfix -c "$PF_CONF" start </dev/null >>"$DIR/postfix.log" 2>&1 ||
			{ tail -20 "$DIR/postfix.log" >&2; die "postfix start failed"; }
	fi

	write_env

	# Do not return before every listener greets: callers start right away.
	local i
	for ((i = 0; i < 100; i++)); do
		if cmd_status >/dev/null 2>&1; then
			log "ready: ports $PORT_STARTTLS $PORT_TLS $PORT_PLAIN $PORT_WRONGNAME $PORT_NO8BIT $PORT_STRICT ${AUTH_PORTS[*]%%:*}; env in $DIR/env"
			return 0
		fi
		sleep 0.2
	done
	cmd_status || true
	die "smarthost did not come up; see $DIR/postfix.log and $DIR/dovecot.log"
}

cmd_stop() {
	need_root
	if [[ -f $PF_CONF/main.cf ]] && postfix_running; then
		log "stopping Postfix"
		postfix -c "$PF_CONF" stop </dev/null >>"$DIR/postfix.log" 2>&1 || true
	fi
	local pid i
	if pid=$(dovecot_pid); then
		log "stopping Dovecot (pid $pid)"
		kill -TERM "$pid"
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	# Postfix's stop is asynchronous: wait until the master is gone so a
	# following "start" does not find the ports still bound.
	for ((i = 0; i < 50; i++)); do
		if [[ ! -f $PF_CONF/main.cf ]] || ! postfix_running; then break; fi
		sleep 0.1
	done
}

# ---------------------------------------------------------------- status --

# Print the first line the server sends (the greeting); $2=tls for implicit TLS.
greeting() {
	local port=$1 mode=${2:-}
	if [[ $mode == tls ]]; then
		printf 'QUIT\r\n' | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$port" \
			-servername "$HOSTNAME_OK" 2>/dev/null | head -n1 | tr -d '\r'
	else
		# Plain TCP: bash's /dev/tcp, in a subshell so fd 3 closes with it;
		# read -t bounds a listener that never greets.
		(
			exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
			IFS= read -r -t 5 line <&3 || exit 1
			printf 'QUIT\r\n' >&3
			printf '%s\n' "${line%$'\r'}"
		) 2>/dev/null
	fi
}

cmd_status() {
	local ok=0 p g
	for p in "$PORT_STARTTLS" "$PORT_PLAIN" "$PORT_WRONGNAME" "$PORT_NO8BIT" "$PORT_STRICT" "$PORT_TLS:tls" "${AUTH_PORTS[@]%%:*}"; do
		if [[ $p == *:tls ]]; then g=$(greeting "${p%:tls}" tls || true); else g=$(greeting "$p" || true); fi
		if [[ $g == 220* ]]; then
			printf 'port %s: %s\n' "${p%:tls}" "$g"
		else
			printf 'port %s: DOWN\n' "${p%:tls}"
			ok=1
		fi
	done
	if dovecot_pid >/dev/null && [[ -S $AUTH_SOCKET ]]; then
		echo "dovecot auth: $AUTH_SOCKET"
	else
		echo "dovecot auth: DOWN"
		ok=1
	fi
	return "$ok"
}

# --------------------------------------------------------------- Maildir --

# Messages in new/ and cur/ (tmp/ holds deliveries in progress). find, not
# a glob loop: flush tests put 10,000 messages here.
count_mail() {
	find "$MAILDIR/new" "$MAILDIR/cur" -mindepth 1 -maxdepth 1 -type f 2>/dev/null | wc -l
}

cmd_wait_mail() {
	local want=${1:?usage: wait-mail N [TIMEOUT_SECONDS]} timeout=${2:-30} n deadline
	[[ $want =~ ^[0-9]+$ ]] || die "wait-mail: N must be a number"
	deadline=$((SECONDS + timeout))
	while :; do
		n=$(count_mail)
		if ((n >= want)); then
			echo "$n"
			return 0
		fi
		if ((SECONDS >= deadline)); then
			echo "$n"
			log "wait-mail: timeout after ${timeout}s: $n of $want messages"
			return 1
		fi
		sleep 0.05
	done
}

cmd_clear() {
	[[ -d $MAILDIR ]] || return 0
	find "$MAILDIR/new" "$MAILDIR/cur" "$MAILDIR/tmp" -mindepth 1 -maxdepth 1 -type f -delete
}

# ------------------------------------------------------------------ main --

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2
	exit 2
}

case ${1:-} in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
restart) cmd_stop && cmd_start ;;
status) cmd_status ;;
wait-mail) shift; cmd_wait_mail "$@" ;;
count) count_mail ;;
clear) cmd_clear ;;
*) usage ;;
esac
