#!/bin/bash
# Container health check for the Petrel images (Docker/Podman HEALTHCHECK).
# There is no HTTP health endpoint yet, so "healthy" means: every listener this
# role is configured with accepts a TCP connection.
#
#   petrel-healthcheck frontend   # PETREL_IMAP_LISTEN, PETREL_POP3_LISTEN
#   petrel-healthcheck backend    # PETREL_LISTEN
#
# A listener bound to 0.0.0.0 / [::] / empty host is probed on loopback.
# Only the environment is read (the images configure by PETREL_* variables);
# a listener set only in a --config file is not probed.
set -u

probe() {  # probe HOST:PORT
    local spec=$1 host port
    [[ -n $spec ]] || return 0              # listener switched off
    port=${spec##*:}
    host=${spec%:*}
    host=${host#[}; host=${host%]}
    case $host in ''|0.0.0.0|'*') host=127.0.0.1 ;; ::) host=::1 ;; esac
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    if ! timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; then
        echo "petrel-healthcheck: nothing accepts connections on $host:$port" >&2
        return 1
    fi
}

case ${1:-} in
frontend)
    probe "${PETREL_IMAP_LISTEN-127.0.0.1:1143}" && probe "${PETREL_POP3_LISTEN-127.0.0.1:1110}"
    ;;
backend)
    probe "${PETREL_LISTEN-127.0.0.1:7100}"
    ;;
*)
    echo "usage: petrel-healthcheck frontend|backend" >&2
    exit 2
    ;;
esac
