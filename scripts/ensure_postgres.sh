#!/usr/bin/env bash
# Installs Debian's `postgresql` server package when `initdb`/`pg_ctl` are missing: the loop's
# state tests (tests/loop/) run on a real PostgreSQL server that tests/postgres.py creates with
# initdb in a temporary folder and stops at the end. Only the binaries are needed: the cluster
# Debian creates with the package is not used (and not started here). Runs as root (CI) or
# through sudo; retries apt on a busy lock or a flaky mirror.
set -euo pipefail

have_postgres() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        return 0
    fi
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_postgres; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "PostgreSQL is missing and this user cannot install it: apt-get install postgresql" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL is missing and this is not a Debian system: install its server by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
echo "installing postgresql (Debian package) for the loop's state tests…" >&2
for attempt in 1 2 3; do
    if "${SUDO[@]}" apt-get "${APT[@]}" update -qq \
        && "${SUDO[@]}" apt-get "${APT[@]}" install -y -qq --no-install-recommends \
            postgresql >/dev/null; then
        if have_postgres; then
            exit 0
        fi
    fi
    echo "apt-get failed (attempt $attempt of 3); retrying…" >&2
    sleep $((attempt * 10))
done
echo "could not install postgresql with apt-get" >&2
exit 1
