#!/bin/bash
# Container health check for the Petrel images (Docker/Podman HEALTHCHECK).
#
#   petrel-healthcheck frontend   # PETREL_IMAP_LISTEN, PETREL_POP3_LISTEN
#   petrel-healthcheck backend    # PETREL_LISTEN
#
# Healthy: every protocol listener of the role accepts a TCP connection, and,
# where PETREL_HTTP_LISTEN is set, GET /readyz answers 200 (503 while no
# backend link is up, or while draining). A listener bound to 0.0.0.0, [::]
# or an empty host is probed on loopback. Only the environment is read (the
# images configure by PETREL_* variables); a listener set only in a --config
# file is not probed. bash's /dev/tcp does the I/O: no curl in the image.
set -u

say() { echo "petrel-healthcheck: $*" >&2; }

# Splits HOST:PORT into the globals host and port, loopback for a wildcard.
target() {
    port=${1##*:}
    host=${1%:*}
    host=${host#[}; host=${host%]}
    case $host in ''|0.0.0.0|'*') host=127.0.0.1 ;; ::) host=::1 ;; esac
}

probe() {  # probe HOST:PORT
    [[ -n $1 ]] || return 0              # listener switched off
    target "$1"
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    if ! timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; then
        say "nothing accepts connections on $host:$port"
        return 1
    fi
}

ready() {  # ready HOST:PORT -- GET /readyz must answer 200
    [[ -n $1 ]] || return 0              # no HTTP listener configured
    target "$1"
    local status
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    status=$(timeout 2 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3
        IFS= read -r line <&3 && printf "%s" "$line"' _ "$host" "$port" 2>/dev/null)
    if [[ $status != "HTTP/1."[01]" 200"* ]]; then
        say "http://$host:$port/readyz: ${status:-no answer}"
        return 1
    fi
}

case ${1:-} in
frontend)
    probe "${PETREL_IMAP_LISTEN-127.0.0.1:1143}" && probe "${PETREL_POP3_LISTEN-127.0.0.1:1110}" &&
        ready "${PETREL_HTTP_LISTEN-}"
    ;;
backend)
    probe "${PETREL_LISTEN-127.0.0.1:7100}" && ready "${PETREL_HTTP_LISTEN-}"
    ;;
*)
    echo "usage: petrel-healthcheck frontend|backend" >&2
    exit 2
    ;;
esac
