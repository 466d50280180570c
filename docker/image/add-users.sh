#!/bin/sh
# add-users.sh KEYBASE_UID — the image's accounts, run once by the Dockerfile.
#
#   991:991  Synapse (the entrypoint's UID/GID default, the official image's too). Kept as is when
#            the base already has that uid (the Debian tree has `synapse`).
#   keybase  the unprivileged user the entrypoint runs the Keybase daemons as when it is root, so
#            KEYBASE_ALLOW_ROOT is never needed; home /home/keybase (Keybase keeps its state there).
#
# POSIX sh only: useradd/groupadd when the base has them, plain account lines otherwise, because a
# minimal base may have neither the shadow tools nor grep.
set -eu

keybase_uid=${1:-990}

# has_id FILE ID: some entry of FILE (/etc/passwd or /etc/group) has ID in its third field.
has_id() {
	while IFS=: read -r _name _pw id _rest; do
		[ "$id" = "$2" ] && return 0
	done <"$1"
	return 1
}

# has_name FILE NAME: some entry of FILE is called NAME.
has_name() {
	while IFS=: read -r name _rest; do
		[ "$name" = "$2" ] && return 0
	done <"$1"
	return 1
}

# add_group NAME GID: a group with that gid unless one exists (whatever its name).
add_group() {
	if has_id /etc/group "$2"; then
		return 0
	fi
	if has_name /etc/group "$1"; then
		echo "add-users: group $1 exists with another gid than $2" >&2
		exit 1
	fi
	if command -v groupadd >/dev/null 2>&1; then
		groupadd --system --gid "$2" "$1"
	else
		printf '%s:x:%s:\n' "$1" "$2" >>/etc/group
	fi
}

# add_user NAME UID GID HOME: a system user without a login shell, and its home directory.
add_user() {
	if ! has_id /etc/passwd "$2"; then
		if has_name /etc/passwd "$1"; then
			echo "add-users: user $1 exists with another uid than $2" >&2
			exit 1
		fi
		if command -v useradd >/dev/null 2>&1; then
			useradd --system --uid "$2" --gid "$3" --home-dir "$4" --no-create-home \
				--shell /usr/sbin/nologin --comment "$1" "$1"
		else
			printf '%s:x:%s:%s:%s:%s:/usr/sbin/nologin\n' "$1" "$2" "$3" "$1" "$4" >>/etc/passwd
			if [ -f /etc/shadow ]; then
				printf '%s:!:::::::\n' "$1" >>/etc/shadow
			fi
		fi
	fi
	mkdir -p "$4"
	chown "$2:$3" "$4"
	chmod 0750 "$4"
}

# Synapse's account: only when uid 991 is free (the official image runs 991:991 without naming it).
add_group synapse 991
if ! has_id /etc/passwd 991; then
	add_user synapse 991 991 /var/lib/synapse
fi

add_group keybase "$keybase_uid"
if has_name /etc/passwd keybase; then
	echo "add-users: keeping the base's keybase user"
else
	add_user keybase "$keybase_uid" "$keybase_uid" /home/keybase
fi
