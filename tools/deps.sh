#!/bin/sh
# Installs the Debian 12 packages that building, running and testing Petrel
# need. Called by `make deps` (and so by `make run` / `make test`), so it must
# be a quiet no-op, well under a second, when everything is already there:
# one dpkg-query call decides, and apt-get only runs for what is missing.
set -eu

# valgrind runs the unit tests and a cluster's servers under memcheck
# (tests/run, tests/integration/test_valgrind.py).
# dovecot-imapd is the reference server the differential tests compare
# Petrel with (tests/integration/test_dovecot_diff.py; they start their own
# on loopback, the packaged service is not used).
PACKAGES="
  build-essential pkg-config
  libssl-dev libpq-dev libhiredis-dev libev-dev libprotobuf-c-dev
  protobuf-c-compiler libcrypt-dev zlib1g-dev libunistring-dev
  postgresql redis-server
  python3 python3-pytest python3-psycopg2
  curl swaks fetchmail openssl
  clang libclang-rt-14-dev valgrind
  procps iproute2 util-linux
  haproxy
  dovecot-imapd
"
# JavaScript test tools (the Kubernetes manifest validator, the imapflow
# client) install their own npm packages from committed lock files; npm
# comes from Debian unless the machine already has one.
JS_DIRS="tests/js tools/k8s-validate"
for d in $JS_DIRS; do
    if [ -f "$d/package.json" ] && ! command -v npm >/dev/null 2>&1; then
        PACKAGES="$PACKAGES nodejs npm"
        break
    fi
done

# dpkg-query prints nothing for a package it has never heard of, so compare
# the wanted list against the names it reports as installed.
# shellcheck disable=SC2086 # word splitting of the package list is intended
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $PACKAGES 2>/dev/null |
    awk '$2 == "installed" { printf " %s ", $1 }')
missing=""
for p in $PACKAGES; do
    case "$installed" in
        *" $p "*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -n "$missing" ]; then
    echo "deps: installing:$missing" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "deps: missing packages:$missing (run as root or install sudo)" >&2
            exit 1
        }
        SUDO="sudo"
    fi
    # Wait for a concurrent apt/dpkg run instead of failing on its lock.
    APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300"
    $APT update >/dev/null
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    $APT install -y --no-install-recommends $missing >/dev/null
fi

# npm ci is slow even when nothing changed; rerun it only when the lock file's
# content differs from what the last install recorded (content, not mtime: a
# fresh checkout gives the lock file a new mtime). A node_modules that is a
# link is an install shared by several git worktrees: npm ci through it would
# empty it for all of them, so it is only reported, never reinstalled here.
for d in $JS_DIRS; do
    [ -f "$d/package.json" ] || continue
    if [ -L "$d/node_modules" ]; then
        [ -n "$(ls -A "$d/node_modules/" 2>/dev/null)" ] ||
            echo "deps: $d/node_modules links to an empty shared install; run npm ci where it points" >&2
        continue
    fi
    stamp="$d/node_modules/.petrel-lock.sha256"
    want=$(sha256sum <"$d/package-lock.json")
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "deps: npm ci in $d" >&2
        (cd "$d" && npm ci --silent --no-audit --no-fund)
        echo "$want" >"$stamp"
    fi
done
