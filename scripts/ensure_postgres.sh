#!/usr/bin/env bash
# Installs Debian's `postgresql` server package when `initdb`/`pg_ctl` are missing: the loop's
# state tests (tests/loop/) run on a real PostgreSQL server that tests/postgres.py creates with
# initdb in a temporary folder and stops at the end. Only the binaries are needed: the cluster
# Debian creates with the package is not used (and not started here). Runs as root (CI) or
# through sudo; retries apt on a busy lock or a flaky mirror (scripts/apt_install.sh).
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"

have_postgres() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        return 0
    fi
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

apt_install "the loop's state tests" have_postgres postgresql
