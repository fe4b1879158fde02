#!/usr/bin/env bash
# Sourced by scripts/ensure_*.sh: `apt_install WHAT CHECK PACKAGE…` installs Debian PACKAGEs for
# WHAT (a phrase for the messages) unless the command CHECK already succeeds, as root (CI) or
# through sudo, retrying apt on a busy lock or a flaky mirror; exits 0 once CHECK succeeds.

apt_install() {
    local what=$1 check=$2
    shift 2
    if "$check"; then
        exit 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "$* missing and this user cannot install it: apt-get install $*" >&2
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$* missing and this is not a Debian system: install it by hand" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local apt=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
    echo "installing $* (Debian packages) for $what…" >&2
    local attempt
    for attempt in 1 2 3; do
        if "${sudo[@]}" apt-get "${apt[@]}" update -qq \
            && "${sudo[@]}" apt-get "${apt[@]}" install -y -qq --no-install-recommends "$@" \
                >/dev/null && "$check"; then
            exit 0
        fi
        echo "apt-get failed (attempt $attempt of 3); retrying…" >&2
        sleep $((attempt * 10))
    done
    echo "could not install $* with apt-get" >&2
    exit 1
}
