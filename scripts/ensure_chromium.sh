#!/usr/bin/env bash
# Installs Debian's `chromium` (and a font) when it is missing: the report's tests render the HTML
# report in real headless Chromium. Runs as root (CI) or through sudo; retries apt on a busy lock
# or a flaky mirror (scripts/apt_install.sh). Takes about half a minute on a fresh machine.
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"

have_chromium() {
    command -v chromium >/dev/null 2>&1
}

apt_install "the report's browser tests" have_chromium chromium fonts-dejavu-core
