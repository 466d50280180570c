# ovrclk/synapse: Synapse with the Go entrypoint as PID 1 (supervisor, config repository sync,
# Keybase login, health). Build it with scripts/image.sh, or by hand after `make build`:
#
#   make build && DOCKER_BUILDKIT=0 docker build -t ovrclk/synapse .
#
# Build arguments:
#   BASE             a Synapse image: the official one (python3 in /usr/local/bin), or any image
#                    with Synapse importable by `python3` on PATH, sh and coreutils (scripts/image.sh
#                    imports one made from Debian's matrix-synapse package, python3 in /usr/bin).
#   KEYBASE          "install" (default): Keybase from its Debian package; "skip": none
#                    (config repositories over https/ssh still work; keybase:// ones do not).
#   KEYBASE_DEB_URL  where the package comes from; KEYBASE_DEB_SHA256, when set, must match it.
#   KEYBASE_UID      uid/gid of the unprivileged `keybase` user the daemons run as.
#
# Only the classic builder's features are used (no BuildKit mounts or heredocs).

ARG BASE=matrixdotorg/synapse:v1.160.0
FROM ${BASE}

ARG KEYBASE=install
ARG KEYBASE_DEB_URL=https://prerelease.keybase.io/keybase_amd64.deb
ARG KEYBASE_DEB_SHA256=
ARG KEYBASE_UID=990

# Both bases find their python3 on this PATH (/usr/local/bin in the official image, /usr/bin in
# the Debian tree); an imported base has no ENV at all, so it is spelled out.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    SYNAPSE_DATA_DIR=/data

# Users: Synapse runs as 991:991 (the official image's default), the Keybase daemons as `keybase`,
# so KEYBASE_ALLOW_ROOT is never needed. useradd when the base has it, plain /etc/passwd lines
# otherwise (a minimal base may have no shadow tools).
COPY docker/image/add-users.sh /usr/local/lib/synapse-image/add-users.sh
RUN sh /usr/local/lib/synapse-image/add-users.sh "$KEYBASE_UID"

# Keybase from its Debian package (service, kbfsfuse, git-remote-keybase); its dependencies come
# from the base's apt sources. KEYBASE=skip leaves it out.
COPY docker/image/install-keybase.sh /usr/local/lib/synapse-image/install-keybase.sh
RUN sh /usr/local/lib/synapse-image/install-keybase.sh "$KEYBASE" "$KEYBASE_DEB_URL" "$KEYBASE_DEB_SHA256"

# The prebuilt static entrypoint (`make build`): no toolchain in the image.
COPY bin/entrypoint /usr/local/bin/entrypoint

# Synapse's port (client and federation on one listener, as `entrypoint init` writes it).
EXPOSE 8008
VOLUME /data

# On SIGTERM the entrypoint stops Synapse cleanly (exit 0; usually 0.1-2 s), within its budget
# SYNAPSE_STOP_TIMEOUT (20s), which fits Kubernetes'/Akash's 30 s grace period. Docker's default is
# 10 s: use `docker stop -t 30` (compose: stop_grace_period: 30s).
STOPSIGNAL SIGTERM

# Readiness from the entrypoint's status endpoint (STATUS_ADDR, default 127.0.0.1:8080): healthy
# once Synapse answered /health. The start period is long because database migrations run before
# Synapse listens and can take minutes (SYNAPSE_START_TIMEOUT is 10m); a success ends it early.
HEALTHCHECK --interval=15s --timeout=5s --start-period=5m --retries=3 \
    CMD ["/usr/local/bin/entrypoint", "healthcheck"]

LABEL org.opencontainers.image.title="ovrclk/synapse" \
      org.opencontainers.image.description="Matrix homeserver (Synapse) with a supervising PID-1 entrypoint" \
      org.opencontainers.image.source="https://github.com/ovrclk/synapse-entrypoint"

ENTRYPOINT ["/usr/local/bin/entrypoint"]
