# shellcheck shell=bash
# Sourced by synapse-runtime.sh and image.sh: download Debian sid packages with a private apt
# state, so the host's apt configuration, lists, cache and dpkg status are neither read nor
# written (APT_CONFIG replaces /etc/apt/apt.conf; Dir::Etc::Parts points at an empty directory,
# so the host's apt.conf.d hooks, cleaners and pinning do not apply either). The sid index served
# here is a frozen copy whose Release file has expired, hence Check-Valid-Until=false.

readonly SID_SUITE_LINE='deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main'

# sid_download APT_ROOT PACKAGE...: download PACKAGEs and everything they depend on into
# APT_ROOT/cache/archives/*.deb.
sid_download() {
	local apt_root=$1 arch
	shift
	mkdir -p "$apt_root"/{state/lists/partial,cache/archives/partial,etc/apt.conf.d,etc/sources.list.d,etc/preferences.d}
	: >"$apt_root/state/status"
	printf '%s\n' "$SID_SUITE_LINE" >"$apt_root/etc/sources.list"
	arch=$(dpkg --print-architecture)
	cat >"$apt_root/etc/apt.conf" <<CONF
Dir::State "$apt_root/state";
Dir::State::status "$apt_root/state/status";
Dir::Cache "$apt_root/cache";
Dir::Etc "$apt_root/etc";
Dir::Etc::SourceList "$apt_root/etc/sources.list";
Dir::Etc::SourceParts "$apt_root/etc/sources.list.d";
Dir::Etc::Parts "$apt_root/etc/apt.conf.d";
Dir::Etc::Preferences "$apt_root/etc/preferences";
Dir::Etc::PreferencesParts "$apt_root/etc/preferences.d";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT::Sandbox::User "root";
CONF
	APT_CONFIG="$apt_root/etc/apt.conf" apt-get -q -o Acquire::Check-Valid-Until=false update >&2
	APT_CONFIG="$apt_root/etc/apt.conf" apt-get -q -o Acquire::Check-Valid-Until=false \
		install -y --download-only "$@" >&2
}
