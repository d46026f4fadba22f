#!/bin/sh
# Build the ringback image from the real Dockerfile without a Docker daemon and without Docker
# Hub: buildah (vfs storage, chroot isolation) and local stand-ins for the two base images,
# made from Debian's packages. Debian 12, as root; needs deb.debian.org and PyPI.
#
#   deploy/build-offline.sh            # stand-in python:3.11-slim-bookworm, then ringback:latest
#   deploy/build-offline.sh --postgres # also a stand-in postgres:15 for compose.yaml's db service
#
# Then, in the same shell (the printed exports select the storage used here):
#   podman run --rm ringback:latest --version
#   podman-compose up -d               # from the repository root; see docs/deployment.md
#
# The stand-ins are not the official images: Debian's python3.11 in /usr/bin (pip needs
# PIP_BREAK_SYSTEM_PACKAGES=1, set in the stand-in, not in the Dockerfile), and a minimal
# entrypoint for PostgreSQL (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA).
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${RINGBACK_OFFLINE_DIR:-/var/tmp/ringback-offline}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm
POSTGRES_IMAGE=docker.io/library/postgres:15

mkdir -p "$WORK/conf"
cat > "$WORK/conf/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
# Inside a VM or container without CAP_SYS_RESOURCE, podman's default rlimits (1048576) fail
# with "setrlimit RLIMIT_NOFILE: Operation not permitted"; runc with lower ones works.
cat > "$WORK/conf/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_STORAGE_CONF="$WORK/conf/storage.conf" CONTAINERS_CONF="$WORK/conf/containers.conf"

command -v buildah >/dev/null && command -v podman >/dev/null && command -v debootstrap >/dev/null \
  && command -v runc >/dev/null \
  || apt-get install -y --no-install-recommends buildah podman runc debootstrap podman-compose

if ! podman image exists "$PYTHON_IMAGE"; then
  ROOTFS="$WORK/rootfs"
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase --include=python3.11,python3-pip,python3-venv,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR"
  ln -sf python3 "$ROOTFS/usr/bin/python"
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$MIRROR" "$MIRROR" "$MIRROR" > "$ROOTFS/etc/apt/sources.list"
  # a TLS-intercepting proxy's CA (as on the machine this was written on) for pip inside the build
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
    chroot "$ROOTFS" update-ca-certificates
  fi
  chroot "$ROOTFS" apt-get clean
  rm -rf "$ROOTFS/var/lib/apt/lists/"*
  tar -C "$ROOTFS" -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    --change 'CMD ["python3"]' - "$PYTHON_IMAGE"
  rm -rf "$ROOTFS"
fi

if [ "${1:-}" = "--postgres" ] && ! podman image exists "$POSTGRES_IMAGE"; then
  CTX="$WORK/postgres"
  mkdir -p "$CTX"
  cat > "$CTX/entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
PGDATA=${PGDATA:-/var/lib/postgresql/data}
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "$POSTGRES_PASSWORD" > /tmp/pwfile && chown postgres /tmp/pwfile
  runuser -u postgres -- initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile=/tmp/pwfile \
    --auth-local=trust --auth-host=scram-sha-256
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  [ "$POSTGRES_DB" = postgres ] \
    || runuser -u postgres -- psql -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
  runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*'
EOF
  chmod +x "$CTX/entrypoint.sh"
  cat > "$CTX/Containerfile" <<EOF
FROM $PYTHON_IMAGE
RUN mkdir -p /etc/postgresql-common \\
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \\
 && apt-get update && apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/*
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PGDATA=/var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
EOF
  buildah bud --isolation chroot --pull=never --network host -t "$POSTGRES_IMAGE" "$CTX"
fi

# --format docker keeps the Dockerfile's HEALTHCHECK (the OCI format drops it)
buildah bud --isolation chroot --pull=never --network host --format docker \
  -t ringback:latest "$REPO"
buildah images
echo "export CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF CONTAINERS_CONF=$CONTAINERS_CONF"
