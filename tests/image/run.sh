#!/usr/bin/env bash
# Image test (`make image-test`): builds the Petrel images with podman, starts
# the cluster of docker/compose.yaml as plain podman containers on a private
# network (PostgreSQL, Redis, the migration one-shot, 2 backends, 2
# frontends), creates an account with petrel-admin inside a backend
# container, then talks to both frontends from the host with real clients
# (Python's imaplib and poplib on published 127.0.0.1 ports): LOGIN, APPEND,
# FETCH, and the same message seen through the other frontend, over IMAPS
# (a throwaway certificate, verified) and over POP3; /readyz and /metrics.
# Everything it started is removed at the end, failure or not; the images stay
# as the build cache (see the last lines it prints).
#
# Where no container engine can run here it prints one "image-test: SKIP:"
# line with the reason and exits 0. Any other failure exits 1.
#
# Environment:
#   PETREL_IMAGE_TEST_INSTALL=0   do not apt-get install podman & co. when missing
#   PETREL_IMAGE_TAG=test         tag of the images it builds
#   BASE_IMAGE=...                base image; default: a local Debian 12 minbase
#                                 image made once with debootstrap
#                                 (tests/image/base-image.sh)
#   PETREL_IMAGE_TEST_KEEP=1      leave the containers running (debugging)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/image
TAG=${PETREL_IMAGE_TAG:-test}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm-slim}
RUN_ID=petrel-it-$$
NET=$RUN_ID
WAIT=90                 # seconds for each service to come up
PACKAGES="podman runc debootstrap netavark aardvark-dns fuse-overlayfs uidmap iptables openssl"
PYTHON=/usr/bin/python3
START=$SECONDS

say()  { echo "image-test: $*" >&2; }
# Podman without systemd logs an error about healthcheck timers on every
# container start and removal; the checks themselves work (wait_healthy).
podman() { command podman "$@" 2> >(grep -v -e 'unable to get systemd connection' -e 'failed to connect to syslog' >&2); }
skip() { echo "image-test: SKIP: $*"; exit 0; }
fail() { echo "image-test: FAIL: $*"; exit 1; }
step() { say "[$((SECONDS - START))s] $*"; }

# ---------------------------------------------------------------- engine

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing="$missing $p"
done
if [[ -n $missing ]]; then
    if [[ ${PETREL_IMAGE_TEST_INSTALL:-1} == 0 || $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        skip "container tools missing:$missing (as root: apt-get install$missing)"
    fi
    step "installing:$missing"
    APT="env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300"
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    if ! { $APT update >/dev/null && $APT install -y --no-install-recommends $missing >/dev/null; }; then
        skip "could not install:$missing"
    fi
fi
if [[ $EUID -ne 0 ]]; then
    skip "needs root (rootful podman with runc; see CONTAINERS.md in the shared notes)"
fi

# runc (crun 1.8 fails here) and ulimits no higher than ours: the kernel
# refuses to raise a hard limit even for root.
if [[ -z ${CONTAINERS_CONF:-} ]]; then
    nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
    [[ $nofile == unlimited || $nofile -gt 20000 ]] && nofile=20000
    [[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
    conf=$(mktemp /tmp/petrel-containers.XXXXXX.conf)
    sed -e "s/nofile=20000:20000/nofile=$nofile:$nofile/" \
        -e "s/nproc=32768:32768/nproc=$nproc:$nproc/" "$HERE/containers.conf" >"$conf"
    export CONTAINERS_CONF=$conf
fi

if ! podman info >/dev/null 2>&1; then
    skip "podman cannot run here: $(podman info 2>&1 | tail -n 1)"
fi
if [[ $BASE_IMAGE == localhost/debian:bookworm-slim ]]; then
    step "base image $BASE_IMAGE"
    "$HERE/base-image.sh" "$BASE_IMAGE" || skip "cannot make the base image (debootstrap failed)"
elif ! podman image exists "$BASE_IMAGE"; then
    podman pull -q "$BASE_IMAGE" >/dev/null 2>&1 || skip "base image $BASE_IMAGE not available"
fi
if ! out=$(podman run --rm --network none "$BASE_IMAGE" true 2>&1); then
    skip "podman cannot start a container here: $(tail -n 1 <<<"$out")"
fi

# ---------------------------------------------------------------- teardown

cleanup() {
    local rc=$?
    if [[ ${PETREL_IMAGE_TEST_KEEP:-0} == 1 ]]; then
        say "left running (PETREL_IMAGE_TEST_KEEP=1): podman ps --filter name=$RUN_ID; remove with:"
        say "  podman rm -f -t 0 \$(podman ps -aq --filter name=$RUN_ID) && podman network rm $NET"
        return
    fi
    if ((rc != 0)); then
        for c in $(podman ps -a --filter "name=^$RUN_ID-" --format '{{.Names}}' 2>/dev/null); do
            echo "---- last log lines of $c (status $(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$c" 2>/dev/null)):"
            podman logs --tail 20 "$c" 2>&1 | sed 's/^/    /'
        done
    fi
    local ids
    ids=$(podman ps -aq --filter "name=^$RUN_ID-" 2>/dev/null || true)
    # shellcheck disable=SC2086 # one word per container id
    [[ -z $ids ]] || podman rm -f -t 0 $ids >/dev/null 2>&1 || true
    podman network rm -f "$NET" >/dev/null 2>&1 || true
    podman volume rm -f "$RUN_ID-pgdata" >/dev/null 2>&1 || true
    if [[ -n ${TLS_DIR:-} ]]; then rm -rf "$TLS_DIR"; fi
    if [[ -n ${conf:-} ]]; then rm -f "$conf"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build

build() {  # build TARGET-OR-- DOCKERFILE IMAGE
    local target=$1 file=$2 image=$3 log
    log=$(mktemp)
    # --format docker: the OCI image format has no HEALTHCHECK.
    local args=(build --format docker --isolation=chroot -f "$file" --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$image")
    [[ $target != - ]] && args+=(--target "$target")
    if ! podman "${args[@]}" "$ROOT" >"$log" 2>&1; then
        tail -n 30 "$log"
        rm -f "$log"
        fail "podman build of $image failed"
    fi
    rm -f "$log"
}
FRONTEND=localhost/petrel-frontend:$TAG
BACKEND=localhost/petrel-backend:$TAG
POSTGRES=localhost/petrel-postgres:15
REDIS=localhost/petrel-redis:7
step "building the build stage's toolchain (kept as localhost/petrel-build-deps:cache)"
build build-deps "$ROOT/docker/Dockerfile" localhost/petrel-build-deps:cache
step "building $BACKEND"
build backend "$ROOT/docker/Dockerfile" "$BACKEND"
step "building $FRONTEND"
build frontend "$ROOT/docker/Dockerfile" "$FRONTEND"
step "building $POSTGRES and $REDIS (stand-ins for postgres:15 and redis:7)"
build - "$ROOT/docker/Dockerfile.postgres" "$POSTGRES"
build - "$ROOT/docker/Dockerfile.redis" "$REDIS"

# ---------------------------------------------------------------- cluster

free_ports() {
    "$PYTHON" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Waits until the container's own HEALTHCHECK passes (run on demand: podman
# runs periodic checks only under systemd).
wait_healthy() {
    local c=$RUN_ID-$1 deadline=$((SECONDS + WAIT))
    until podman healthcheck run "$c" >/dev/null 2>&1; do
        if [[ $(podman inspect -f '{{.State.Running}}' "$c" 2>/dev/null) != true ]]; then
            fail "$1 exited (status $(podman inspect -f '{{.State.ExitCode}}' "$c" 2>/dev/null))"
        fi
        ((SECONDS < deadline)) || fail "$1 not healthy after $WAIT s"
        sleep 1
    done
}

PG_URL=postgresql://petrel:petrel@postgres:5432/petrel
REDIS_URL=redis://redis:6379
run() {  # run NAME [podman run options...] IMAGE [args...]
    local name=$1
    shift
    # --health-interval disable: no systemd timer here; wait_healthy runs the
    # image's HEALTHCHECK on demand.
    podman run -d --name "$RUN_ID-$name" --network "$NET" --network-alias "$name" \
        --health-interval disable \
        --hostname "$name" "$@" >/dev/null
}

step "network $NET; postgres, redis"
podman network create "$NET" >/dev/null
run postgres -e POSTGRES_USER=petrel -e POSTGRES_PASSWORD=petrel -e POSTGRES_DB=petrel \
    -v "$RUN_ID-pgdata:/var/lib/postgresql/data" "$POSTGRES"
run redis "$REDIS"
wait_healthy postgres
wait_healthy redis

step "migrate (one-shot petrel-admin migrate)"
if ! out=$(podman run --rm --name "$RUN_ID-migrate" --network "$NET" -e PETREL_PG_URL="$PG_URL" \
        --read-only --entrypoint /usr/local/bin/petrel-admin "$BACKEND" migrate 2>&1); then
    printf '%s\n' "$out"
    fail "migration failed"
fi

step "backends"
for b in backend1 backend2; do
    run "$b" --read-only -e PETREL_PG_URL="$PG_URL" -e PETREL_REDIS_URL="$REDIS_URL" \
        -e PETREL_NODE="$b" -e PETREL_WORKERS=2 "$BACKEND"
done
wait_healthy backend1
wait_healthy backend2

# frontend2 also serves IMAPS with a throwaway certificate, mounted
# read-only as the Kubernetes Secret petrel-tls would be.
TLS_DIR=$(mktemp -d /tmp/petrel-it-tls.XXXXXX)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$TLS_DIR/tls.key" -out "$TLS_DIR/tls.crt" >/dev/null 2>&1 \
    || fail "openssl could not make a test certificate"
chmod 0755 "$TLS_DIR" && chmod 0644 "$TLS_DIR/tls.key" "$TLS_DIR/tls.crt"  # the image's uid 10001 reads them

read -r IMAP1 POP1 IMAP2 POP2 IMAPS2 HTTP2 <<<"$(free_ports 6)"
step "frontends (IMAP 127.0.0.1:$IMAP1 and :$IMAP2, POP3 :$POP1 and :$POP2, IMAPS :$IMAPS2, HTTP :$HTTP2)"
for spec in "frontend1 $IMAP1 $POP1" "frontend2 $IMAP2 $POP2"; do
    read -r name imap pop <<<"$spec"
    tls=()
    if [[ $name == frontend2 ]]; then
        tls=(-v "$TLS_DIR:/etc/petrel/tls:ro" -e PETREL_TLS_CERT=/etc/petrel/tls/tls.crt
             -e PETREL_TLS_KEY=/etc/petrel/tls/tls.key -e PETREL_IMAPS_LISTEN=0.0.0.0:993
             -p "127.0.0.1:$IMAPS2:993" -p "127.0.0.1:$HTTP2:8080")
    fi
    # The test's client reaches the container through podman's port
    # forwarding, so it arrives from the container network's gateway, not
    # loopback: that private network counts as secure for cleartext logins.
    run "$name" --read-only --sysctl net.ipv4.ip_unprivileged_port_start=0 \
        -e PETREL_SECURE_NETWORKS="127.0.0.0/8 ::1 10.0.0.0/8" \
        -e PETREL_BACKENDS=backend1:7100,backend2:7100 -e PETREL_REDIS_URL="$REDIS_URL" \
        -e PETREL_NODE="$name" -e PETREL_WORKERS=2 "${tls[@]}" \
        -p "127.0.0.1:$imap:143" -p "127.0.0.1:$pop:110" "$FRONTEND"
done
wait_healthy frontend1
wait_healthy frontend2

# ---------------------------------------------------------------- client

ADDRESS="image-test@example.com"
PASSWORD=pw-$RANDOM$RANDOM
step "petrel-admin user add $ADDRESS (in backend1)"
# Retried a few times: right after a container joins the network,
# aardvark-dns may answer one lookup with a temporary failure.
for attempt in 1 2 3 4 5; do
    out=$(printf '%s\n' "$PASSWORD" | podman exec -i "$RUN_ID-backend1" \
              petrel-admin user add "$ADDRESS" --password-stdin 2>&1) && break
    [[ $out == *"name resolution"* && $attempt -lt 5 ]] || { printf '%s\n' "$out"; fail "petrel-admin user add failed"; }
    say "retrying after: $out"
    sleep 1
done
podman exec "$RUN_ID-backend1" petrel-admin user list | grep -qF "$ADDRESS" \
    || fail "petrel-admin user list does not show $ADDRESS"

step "IMAP and POP3 clients from the host"
"$PYTHON" - "$ADDRESS" "$PASSWORD" "$IMAP1" "$IMAP2" "$POP2" "$IMAPS2" "$HTTP2" "$TLS_DIR/tls.crt" <<'EOF' || fail "client session failed"
import imaplib, poplib, ssl, sys, time, urllib.request
address, password = sys.argv[1], sys.argv[2]
imap1, imap2, pop2, imaps2, http2 = map(int, sys.argv[3:8])
tls = ssl.create_default_context(cafile=sys.argv[8])

def connect(port, secure=False):
    # The container is healthy, but its first backend link may still be
    # connecting: retry a refused login briefly.
    for attempt in range(20):
        if secure:
            m = imaplib.IMAP4_SSL("localhost", port, ssl_context=tls, timeout=10)
        else:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        try:
            m.login(address, password)
            return m
        except imaplib.IMAP4.error as e:
            m.logout()
            if attempt == 19:
                raise
            time.sleep(0.5)

body = (b"From: image-test@example.com\r\nTo: image-test@example.com\r\n"
        b"Subject: image test\r\nMessage-ID: <image-test@petrel>\r\n\r\n"
        b"Hello from the image test.\r\n")

m = connect(imap1)
typ, data = m.append("INBOX", None, None, body)
assert typ == "OK", (typ, data)
typ, data = m.select("INBOX")
assert typ == "OK" and int(data[0]) == 1, (typ, data)
typ, data = m.fetch("1", "(RFC822)")
assert typ == "OK" and data[0][1] == body, (typ, data)
m.logout()
print(f"image-test: frontend1 :{imap1}: LOGIN, APPEND, SELECT, FETCH ok")

m = connect(imap2)
typ, data = m.select("INBOX", readonly=True)
assert typ == "OK" and int(data[0]) == 1, (typ, data)
typ, data = m.fetch("1", "(BODY.PEEK[])")
assert typ == "OK" and data[0][1] == body, (typ, data)
m.logout()
print(f"image-test: frontend2 :{imap2}: the message appended through frontend1 is there")

m = connect(imaps2, secure=True)
typ, data = m.select("INBOX", readonly=True)
assert typ == "OK" and int(data[0]) == 1, (typ, data)
print(f"image-test: frontend2 IMAPS :{imaps2}: {m.sock.version()}, certificate verified, LOGIN, SELECT ok")
m.logout()

p = poplib.POP3("127.0.0.1", pop2, timeout=10)
p.user(address)
p.pass_(password)
count, size = p.stat()
assert count == 1, (count, size)
resp, lines, octets = p.retr(1)
assert b"Hello from the image test." in lines, lines
p.quit()
print(f"image-test: frontend2 POP3 :{pop2}: STAT, RETR ok")

with urllib.request.urlopen(f"http://127.0.0.1:{http2}/readyz", timeout=5) as r:
    assert r.status == 200, r.status
with urllib.request.urlopen(f"http://127.0.0.1:{http2}/metrics", timeout=5) as r:
    metrics = r.read().decode()
assert "petrel_frontend_connections" in metrics, metrics[:500]
print(f"image-test: frontend2 HTTP :{http2}: /readyz 200, /metrics has petrel_frontend_connections")
EOF

# A graceful stop: SIGTERM to PID 1 (the supervisor) ends it with status 0
# well within the grace period.
step "stopping frontend1 with SIGTERM"
t0=$SECONDS
podman stop -t 30 "$RUN_ID-frontend1" >/dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$RUN_ID-frontend1")
((code == 0)) || fail "frontend1 exited with status $code on SIGTERM"
say "frontend1 stopped in $((SECONDS - t0)) s, status 0"

step "done"
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
    | grep -E "^(localhost/petrel-(frontend|backend):$TAG|$BASE_IMAGE) " | sed 's/^/image-test: size /' >&2 || true
# Untagged images (earlier builds, intermediate stages) would pile up with
# every source change; the tagged ones keep the layer cache.
podman image prune -f >/dev/null 2>&1 || true
say "images kept as build cache; remove with:"
say "  podman rmi $FRONTEND $BACKEND $POSTGRES $REDIS localhost/petrel-build-deps:cache $BASE_IMAGE"
echo "image-test: PASS in $((SECONDS - START)) s"
