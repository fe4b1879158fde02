#!/usr/bin/env bash
# Installs Debian's `chromium` (and a font) when it is missing: the report's tests render the HTML
# report in real headless Chromium. Runs as root (CI) or through sudo; retries apt on a busy lock
# or a flaky mirror. Takes about half a minute on a fresh machine.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "chromium is missing and this user cannot install it: apt-get install chromium" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing and this is not a Debian system: install Chromium by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
echo "installing chromium (Debian package) for the report's browser tests…" >&2
for attempt in 1 2 3; do
    if "${SUDO[@]}" apt-get "${APT[@]}" update -qq \
        && "${SUDO[@]}" apt-get "${APT[@]}" install -y -qq --no-install-recommends \
            chromium fonts-dejavu-core >/dev/null; then
        if command -v chromium >/dev/null 2>&1; then
            exit 0
        fi
    fi
    echo "apt-get failed (attempt $attempt of 3); retrying…" >&2
    sleep $((attempt * 10))
done
echo "could not install chromium with apt-get" >&2
exit 1
