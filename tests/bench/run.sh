#!/usr/bin/env bash
# `make bench`: Petrel against Debian's Dovecot, in the same run, on the same
# machine, with the same accounts, passwords and mail.
#
#   BENCH=short (default, under 3 minutes) | long
#   BENCH_USERS, BENCH_MESSAGES, BENCH_CLIENTS, BENCH_DURATION,
#   BENCH_IDLE_CLIENTS, BENCH_FANOUT_CLIENTS, BENCH_WORKLOADS (space-separated),
#   BENCH_ROUNDS (each workload runs this many times per server, alternating
#   which server goes first; the table shows the median),
#   BENCH_KEEP=1 (keep the temporary folder), BENCH_FRONTENDS/BENCH_BACKENDS
#   BENCH_BIG_MESSAGES: size of the one big INBOX of imap-big-mailbox
#     (short 20000, long 100000: issue #3's size)
#   BENCH_SCALE=1 (default with BENCH=long): afterwards, Petrel alone on a
#     cluster of frontends of 4 workers each + 1 backend: imap-idle-fanout
#     with BENCH_SCALE_FANOUT (10000) idlers, BENCH_SCALE_WATCHERS (10) per
#     account, from an APPEND on frontend 1 to the EXISTS on frontend 2; and
#     frontend memory per idle session at each of BENCH_SCALE_IDLE
#     ("10000 50000") sessions in cleartext and at BENCH_SCALE_TLS (10000)
#     over implicit TLS. Takes about 6 more minutes.
#
# Steps: build petrel-bench (and Petrel), start a local Petrel cluster and a
# Dovecot with a generated configuration under one temporary folder, create
# the accounts in Petrel and give Dovecot the very same password hashes, fill
# both with the same deterministic mail (petrel-bench --workload fill), run
# every workload against Petrel and then Dovecot, stop both, and print one
# table. Raw output is kept in build/bench/last/.
#
# Fairness:
#  - Passwords: Petrel stores yescrypt (libcrypt's default cost, ~20 ms per
#    check here). Dovecot gets each account's own Petrel hash as {CRYPT}
#    (Dovecot's CRYPT scheme is the same libcrypt), so both servers pay the
#    identical hash cost on every LOGIN/PASS. No side caches authentication
#    (Dovecot's auth_cache_size stays 0).
#  - Durability: Dovecot keeps mail_fsync = optimized (fsync of each saved
#    message), PostgreSQL keeps synchronous_commit = on; both on the same disk
#    (everything lives under one folder in /tmp).
#  - Dovecot runs its documented high-performance login mode (login processes
#    reused, service_count = 0, one per CPU) with limits raised so that no
#    connection is refused; imap/pop3 keep one process per session (its
#    default and the only supported mode for those).
#  - Petrel: 1 frontend + 1 backend supervisor (2 workers each: one per CPU
#    on this 2-core machine), its own PostgreSQL and Redis.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BENCH=${BENCH:-short}
case $BENCH in
    short) d_users=20 d_msgs=200 d_clients=16 d_dur=5 d_idle=200 d_fan=50 d_rounds=1 ;;
    long) d_users=50 d_msgs=500 d_clients=32 d_dur=20 d_idle=1000 d_fan=200 d_rounds=3 ;;
    *) echo "bench: BENCH must be short or long" >&2; exit 2 ;;
esac
USERS=${BENCH_USERS:-$d_users}
MESSAGES=${BENCH_MESSAGES:-$d_msgs}
CLIENTS=${BENCH_CLIENTS:-$d_clients}
DURATION=${BENCH_DURATION:-$d_dur}
IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-$d_idle}
FANOUT_CLIENTS=${BENCH_FANOUT_CLIENTS:-$d_fan}
ROUNDS=${BENCH_ROUNDS:-$d_rounds}
WORKLOADS=${BENCH_WORKLOADS:-"imap-sync imap-fetch-bodies pop3-download imap-idle-memory imap-idle-fanout imap-append lmtp-deliver imap-big-mailbox"}
if [[ $BENCH == long ]]; then d_big=100000 d_scale=1; else d_big=20000 d_scale=0; fi
BIG_MESSAGES=${BENCH_BIG_MESSAGES:-$d_big}
# The big INBOX starts from this many real APPENDs (bench_msg.c mail) and is
# grown from them in bulk (big_mailbox.sql; grow_maildir.py for Dovecot).
BIG_BASE=500
BIG_PATTERN='big%d@example.com'
SCALE=${BENCH_SCALE:-$d_scale}
SCALE_FANOUT=${BENCH_SCALE_FANOUT:-10000}
SCALE_WATCHERS=${BENCH_SCALE_WATCHERS:-10}
SCALE_IDLE=${BENCH_SCALE_IDLE:-"10000 50000"}
SCALE_TLS=${BENCH_SCALE_TLS:-10000}
TIMEOUT=10
PASSWORD=bench-Pa55
PATTERN='bench%d@example.com'
BENCH_BIN=$ROOT/build/bench/petrel-bench
OUT=$ROOT/build/bench/last
PYTHON=/usr/bin/python3

say() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
T0=$SECONDS

# ---------------------------------------------------------------- build
say "building Petrel and petrel-bench"
make --no-print-directory all >&2
make --no-print-directory -f tests/bench/bench.mk build/bench/petrel-bench >&2

# tools/deps.sh installs dovecot-imapd (tests/integration/test_dovecot_diff.py);
# this target also needs the POP3 and LMTP servers.
if ! command -v dovecot >/dev/null || [[ ! -x /usr/lib/dovecot/imap || ! -x /usr/lib/dovecot/pop3 || ! -x /usr/lib/dovecot/lmtp ]]; then
    ((EUID == 0)) || die "Dovecot is missing and we are not root: apt-get install dovecot-imapd dovecot-pop3d dovecot-lmtpd"
    say "installing Dovecot"
    DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends dovecot-imapd dovecot-pop3d dovecot-lmtpd >/dev/null
fi
((EUID == 0)) || die "run as root (Dovecot's master process needs it)"
id dovecot >/dev/null && id dovenull >/dev/null || die "the dovecot/dovenull users are missing"

# ---------------------------------------------------------------- set-up
W=$(mktemp -d /tmp/petrel-bench.XXXXXX)
chmod 755 "$W"
DOVECOT_PID=""
stop_dovecot() {
    if [[ -n $DOVECOT_PID ]] && kill -0 "$DOVECOT_PID" 2>/dev/null; then
        kill -TERM "$DOVECOT_PID"
        for _ in $(seq 50); do kill -0 "$DOVECOT_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$DOVECOT_PID" 2>/dev/null && kill -KILL "$DOVECOT_PID"
    fi
    DOVECOT_PID=""
}
cleanup() {
    local rc=$?
    set +e
    stop_dovecot
    fresh_frontend_stop
    deploy/local/cluster down --dir "$W/petrel" >/dev/null 2>&1
    deploy/local/cluster down --dir "$W/scale" >/dev/null 2>&1
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $W"; else rm -rf -- "$W"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting the Petrel cluster"
deploy/local/cluster up --frontends "${BENCH_FRONTENDS:-1}" --backends "${BENCH_BACKENDS:-1}" \
    --dir "$W/petrel" >"$W/petrel.env" 2>"$W/petrel-up.log" ||
    { cat "$W/petrel-up.log" >&2; die "the Petrel cluster did not start"; }
# shellcheck disable=SC1091
. "$W/petrel.env"
P_IMAP=${PETREL_IMAP_PORTS%%,*}
P_POP3=${PETREL_POP3_PORTS%%,*}
P_LMTP=${PETREL_LMTP_PORTS:-}
P_LMTP=${P_LMTP%%,*}

addr() { printf '%s' "${PATTERN/\%d/$1}"; }
say "creating $USERS accounts in Petrel"
for ((i = 1; i <= USERS; i++)); do
    bin/petrel-admin user add "$(addr "$i")" --password "$PASSWORD" >/dev/null
done
BIG_USER=${BIG_PATTERN/\%d/1}
bin/petrel-admin user add "$BIG_USER" --password "$PASSWORD" >/dev/null

# Dovecot: the same accounts with Petrel's own hashes.
D=$W/dovecot
mkdir -p "$D/mail" "$D/log" "$D/run" "$D/state"
chown nobody:nogroup "$D/mail"
read -r D_IMAP D_POP3 D_LMTP <<<"$("$PYTHON" - <<'EOF'
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
EOF
)"
NOBODY_UID=$(id -u nobody) NOGROUP_GID=$(getent group nogroup | cut -d: -f3)
psql "$PETREL_PG_URL" -X -q -tA -F ' ' -c "SELECT address, password_hash FROM accounts ORDER BY id" |
    while read -r a h; do
        [[ -n $a ]] && echo "$a:{CRYPT}$h:$NOBODY_UID:$NOGROUP_GID::$D/mail/$a::"
    done >"$D/passwd"
[[ $(wc -l <"$D/passwd") -ge $USERS ]] || die "could not read the password hashes from Petrel"
chmod 640 "$D/passwd"
chgrp dovecot "$D/passwd"
cat >"$D/dovecot.conf" <<EOF
# written by tests/bench/run.sh
base_dir = $D/run
state_dir = $D/state
log_path = $D/log/dovecot.log
info_log_path = $D/log/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_fsync = optimized
auth_cache_size = 0
passdb {
  driver = passwd-file
  args = $D/passwd
}
userdb {
  driver = passwd-file
  args = $D/passwd
}
default_process_limit = 5000
default_client_limit = 20000
default_vsz_limit = 1G
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $D_IMAP
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = $(nproc)
  client_limit = 10000
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $D_POP3
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = $(nproc)
  client_limit = 10000
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $D_LMTP
  }
}
service imap {
  process_limit = 5000
}
service pop3 {
  process_limit = 5000
}
service auth {
  client_limit = 30000
}
service anvil {
  client_limit = 30000
}
protocol imap {
  mail_max_userip_connections = 100000
}
protocol pop3 {
  mail_max_userip_connections = 100000
}
EOF
say "starting Dovecot $(dovecot --version | cut -d' ' -f1)"
ulimit -n 65536 2>/dev/null || true
dovecot -F -c "$D/dovecot.conf" >"$D/log/stdout.log" 2>&1 &
DOVECOT_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$D_IMAP") 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$D_POP3") 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$D_LMTP") 2>/dev/null && break
    kill -0 "$DOVECOT_PID" 2>/dev/null || { cat "$D/log/"* >&2; die "Dovecot exited"; }
    sleep 0.1
done

# ---------------------------------------------------------------- running
bench() {  # bench LABEL IMAP POP3 LMTP [args...]
    local label=$1 imap=$2 pop3=$3 lmtp=$4
    shift 4
    "$BENCH_BIN" --label "$label" --imap-port "$imap" --pop3-port "$pop3" \
        ${lmtp:+--lmtp-port "$lmtp"} --user-pattern "$PATTERN" --users "$USERS" \
        --password "$PASSWORD" --timeout "$TIMEOUT" "$@"
}
# A memory figure needs a frontend that has had no sessions yet: a worker's
# heap keeps what earlier workloads freed and reuses it for the next
# sessions, which then look nearly free (2 KiB a session after the other
# workloads, against 5-9 on a fresh one). So with FRESH=1 Petrel's run
# gets a frontend of its own, started from the cluster's frontend
# configuration (same backends, Redis and workers) on another port, and
# stopped after. (Dovecot starts an imap process per session anyway.)
FRESH=0 FRESH_PID=""
fresh_frontend_start() {
    FRESH_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    grep -vE '^(node|[a-z0-9]+_listen) ' "$W/petrel/conf/frontend1.conf" >"$W/fresh.conf"
    printf 'node = fresh\nimap_listen = 127.0.0.1:%s\n' "$FRESH_PORT" >>"$W/fresh.conf"
    setsid bin/petrel-frontend --config "$W/fresh.conf" </dev/null >>"$W/fresh.log" 2>&1 &
    FRESH_PID=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$FRESH_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    die "a fresh frontend did not start (see $W/fresh.log)"
}
fresh_frontend_stop() {
    [[ -n $FRESH_PID ]] || return 0
    kill -TERM "$FRESH_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$FRESH_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$FRESH_PID" 2>/dev/null && kill -KILL "$FRESH_PID"
    FRESH_PID=""
}
run_one() {  # run_one SERVER NAME ROUND [args...]
    local s=$1 name=$2 r=$3
    shift 3
    # Each round its own messages (the same for both servers): with one seed
    # for every round, imap-append and lmtp-deliver sent round 1's bodies
    # again, which Petrel stores once per account (a reference instead of a
    # copy) while Dovecot writes each file anew, so Petrel's later rounds
    # were faster than a first delivery of new mail is. The fill uses seed 1.
    set -- "$@" --seed "$((100 + r))"
    if [[ $s == petrel && $FRESH == 1 ]]; then
        fresh_frontend_start
        bench petrel "$FRESH_PORT" "$P_POP3" "$P_LMTP" "$@" --pids "$FRESH_PID${PIDS_P:+,$PIDS_P}"
        fresh_frontend_stop
    elif [[ $s == petrel ]]; then
        bench petrel "$P_IMAP" "$P_POP3" "$P_LMTP" "$@" ${PIDS_P:+--pids "$PIDS_P"}
    else
        bench dovecot "$D_IMAP" "$D_POP3" "$D_LMTP" "$@" ${PIDS_D:+--pids "$PIDS_D"}
    fi >"$W/out-$s-$name-r$r.txt" 2>"$W/err-$s-$name-r$r.txt" || true
    grep -E '^(SUMMARY|SKIP) ' "$W/out-$s-$name-r$r.txt" >&2 || {
        say "$s $name: no result; its stderr:"
        tail -n 5 "$W/err-$s-$name-r$r.txt" >&2
    }
}
run_both() {  # run_both NAME [args...]: both servers, ROUNDS times, ABBA order
    local name=$1 r
    shift
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then
            run_one petrel "$name" "$r" "$@"
            run_one dovecot "$name" "$r" "$@"
        else
            run_one dovecot "$name" "$r" "$@"
            run_one petrel "$name" "$r" "$@"
        fi
    done
}

say "filling both: $USERS accounts x $MESSAGES messages of 5-50 KB (in parallel)"
bench petrel "$P_IMAP" "$P_POP3" "" --workload fill --messages "$MESSAGES" --clients 4 \
    --duration 600 --quiet >"$W/fill-petrel.txt" 2>&1 &
fp=$!
bench dovecot "$D_IMAP" "$D_POP3" "" --workload fill --messages "$MESSAGES" --clients 4 \
    --duration 600 --quiet >"$W/fill-dovecot.txt" 2>&1 &
fd=$!
# The base of the big INBOX, at the same time: small messages (2-4 KB).
bench petrel "$P_IMAP" "$P_POP3" "" --workload fill --messages "$BIG_BASE" --clients 1 \
    --user-pattern "$BIG_PATTERN" --users 1 --min-size 2000 --max-size 4000 \
    --duration 600 --quiet >"$W/fill-big-petrel.txt" 2>&1 &
fbp=$!
bench dovecot "$D_IMAP" "$D_POP3" "" --workload fill --messages "$BIG_BASE" --clients 1 \
    --user-pattern "$BIG_PATTERN" --users 1 --min-size 2000 --max-size 4000 \
    --duration 600 --quiet >"$W/fill-big-dovecot.txt" 2>&1 &
fbd=$!
wait $fp || { cat "$W/fill-petrel.txt" >&2; die "filling Petrel failed"; }
wait $fd || { cat "$W/fill-dovecot.txt" >&2; die "filling Dovecot failed"; }
wait $fbp || { cat "$W/fill-big-petrel.txt" >&2; die "filling Petrel's big INBOX failed"; }
wait $fbd || { cat "$W/fill-big-dovecot.txt" >&2; die "filling Dovecot's big INBOX failed"; }
grep -h '^SUMMARY' "$W/fill-petrel.txt" "$W/fill-dovecot.txt" >&2

if [[ " $WORKLOADS " == *" imap-big-mailbox "* ]]; then
    say "growing $BIG_USER's INBOX to $BIG_MESSAGES messages in both"
    psql "$PETREL_PG_URL" -X -q -v address="$BIG_USER" -v total="$BIG_MESSAGES" \
        -f tests/bench/big_mailbox.sql >&2 || die "growing Petrel's big INBOX failed"
    "$PYTHON" tests/bench/grow_maildir.py "$D/mail/$BIG_USER/Maildir" "$BIG_MESSAGES" ||
        die "growing Dovecot's big INBOX failed"
fi
# SEARCH FROM the most frequent sender of the base messages (the same in
# both: the fill is deterministic).
SEARCH_FROM=$(psql "$PETREL_PG_URL" -X -tA -c "
    SELECT substring(t.h_from FROM '<([^>]+)>') FROM blob_text t
      JOIN accounts a ON a.id = t.account_id
     WHERE a.address = '$BIG_USER' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
[[ -n $SEARCH_FROM ]] || die "no sender found in $BIG_USER's INBOX"
say "set-up took $((SECONDS - T0)) s; running: $WORKLOADS"

for w in $WORKLOADS; do
    PIDS_P="" PIDS_D="" FRESH=0
    say "$w"
    case $w in
        imap-sync | imap-fetch-bodies | imap-append | pop3-download | lmtp-deliver)
            run_both "$w" --workload "$w" --clients "$CLIENTS" --duration "$DURATION" ;;
        imap-idle-fanout)
            run_both "$w" --workload "$w" --clients "$FANOUT_CLIENTS" --duration "$DURATION" ;;
        imap-idle-memory)
            # Petrel: a fresh frontend (see fresh_frontend_start) and the
            # backends, the counterpart of all of Dovecot's processes.
            FRESH=1 PIDS_P=$PETREL_BACKEND_PIDS PIDS_D=$DOVECOT_PID
            # The duration bounds the log-in phase; the run ends once memory
            # has been read.
            run_both "$w" --workload "$w" --clients "$IDLE_CLIENTS" \
                --duration $((DURATION > 40 ? DURATION : 40)) --use-idle ;;
        imap-big-mailbox)
            # Timings, then the memory of 20 sessions with that INBOX
            # selected: Petrel's frontends (where a session lives; issue #3:
            # under 1 MiB each), all of Dovecot (an imap process a session).
            run_both "$w" --workload "$w" --clients 1 --count 10 --warmup 1 --duration 600 \
                --timeout 120 --user-pattern "$BIG_PATTERN" --users 1 --search-from "$SEARCH_FROM"
            FRESH=1 PIDS_D=$DOVECOT_PID
            run_both "$w+mem" --workload imap-idle-memory --name "$w" --clients 20 \
                --duration 120 --timeout 60 --user-pattern "$BIG_PATTERN" --users 1 ;;
        *) die "unknown workload $w" ;;
    esac
done

# ---------------------------------------------------------------- scale
# Petrel alone (Dovecot's process per session does not fit 10,000 sessions
# on this machine; its memory per idle session is the imap-idle-memory row
# above, at BENCH_IDLE_CLIENTS). A cluster of its own: two frontends, so the
# fan-out crosses from one to the other through Redis, and 4 workers each,
# because a worker may hold at most RLIMIT_NOFILE descriptors (the hard limit
# here may be as low as 20,000, and only a privileged process can raise it).
SCALE_WORKLOADS=""
scale_run() {  # scale_run NAME [args...]: Petrel's scale cluster, one round
    local name=$1
    shift
    "$BENCH_BIN" --label petrel --name "$name" --user-pattern "$PATTERN" \
        --users "$SCALE_ACCOUNTS" --password "$PASSWORD" "$@" \
        >"$W/out-petrel-$name-r1.txt" 2>"$W/err-petrel-$name-r1.txt" || true
    grep -E '^(SUMMARY|SKIP) ' "$W/out-petrel-$name-r1.txt" >&2 || {
        say "$name: no result; its stderr:"
        tail -n 5 "$W/err-petrel-$name-r1.txt" >&2
    }
    SCALE_WORKLOADS+=" $name"
}
kname() { if (($1 % 1000)); then echo "$1"; else echo "$(($1 / 1000))k"; fi; }
if ((SCALE)); then
    say "scale: stopping Dovecot and the comparison cluster; Petrel alone from here"
    stop_dovecot
    deploy/local/cluster down --dir "$W/petrel" >/dev/null 2>&1
    # Frontends 1 and 2 for the fan-out, then a fresh one per memory run:
    # a worker's heap keeps (and reuses) what sessions before freed, so a
    # frontend that had sessions already would understate the next run.
    mem_runs=$(wc -w <<<"$SCALE_IDLE")
    ((SCALE_TLS > 0)) && mem_runs=$((mem_runs + 1))
    PETREL_CLUSTER_FRONTEND_CONF="workers = 4" deploy/local/cluster up \
        --frontends $((2 + mem_runs)) --backends 1 --dir "$W/scale" >"$W/scale.env" \
        2>"$W/scale-up.log" || { cat "$W/scale-up.log" >&2; die "the scale cluster did not start"; }
    # shellcheck disable=SC1091
    . "$W/scale.env"
    nth() { cut -d, -f"$2" <<<"$1"; }   # nth LIST N: the Nth of a comma-separated list
    # SCALE_WATCHERS idlers per account, created in bulk (one petrel-admin
    # call each would take minutes) through the function petrel-admin uses.
    # Their hash is SHA512-CRYPT (5000 rounds, ~3 ms) rather than yescrypt
    # (~20 ms, far more on a loaded machine): nothing here compares logins,
    # and tens of thousands of them on 2 cores would otherwise take longer
    # than everything measured (the backends' auth cache helps only per
    # worker and for auth_cache_ttl).
    SCALE_ACCOUNTS=$((SCALE_FANOUT / SCALE_WATCHERS))
    ((SCALE_ACCOUNTS >= 100)) || SCALE_ACCOUNTS=100
    SCALE_HASH=$(openssl passwd -6 -salt petrelbenchscale "$PASSWORD")
    psql "$PETREL_PG_URL" -X -q -tA -c "
        SELECT count(petrel_account_create(replace('$PATTERN', '%d', g::text), '$SCALE_HASH'))
          FROM generate_series(1, $SCALE_ACCOUNTS) g" >/dev/null ||
        die "creating $SCALE_ACCOUNTS accounts failed"
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    FD=$(ulimit -n)
    procs() { echo $((($1 + FD - 1000) / (FD - 1000))); }   # sessions per process < limit
    addrs() { echo $(($1 / 20000 + 1)); }                    # < 28,000 ports per address

    say "scale: imap-idle-fanout, $SCALE_FANOUT idlers on frontend 2, APPEND on frontend 1"
    scale_run "idle-fanout-$(kname "$SCALE_FANOUT")" --workload imap-idle-fanout \
        --imap-port "$(nth "$PETREL_IMAP_PORTS" 1)" --idle-port "$(nth "$PETREL_IMAP_PORTS" 2)" \
        --clients "$SCALE_FANOUT" \
        --fanout-accounts "$SCALE_ACCOUNTS" --duration 20 --setup 600 --ramp 128 \
        --timeout 30 --source-addrs "$(addrs "$SCALE_FANOUT")"
    fe=3
    for n in $SCALE_IDLE; do
        say "scale: imap-idle-memory, $n idle sessions (cleartext) on frontend $fe"
        scale_run "idle-memory-$(kname "$n")" --workload imap-idle-memory --use-idle \
            --imap-port "$(nth "$PETREL_IMAP_PORTS" $fe)" --pids "$(nth "$PETREL_FRONTEND_PIDS" $fe)" \
            --clients "$n" --duration 600 --ramp 128 --timeout 30 --settle 5 \
            --procs "$(procs "$n")" --source-addrs "$(addrs "$n")"
        fe=$((fe + 1))
    done
    if ((SCALE_TLS > 0)); then
        say "scale: imap-idle-memory, $SCALE_TLS idle sessions over TLS on frontend $fe"
        scale_run "idle-memory-tls-$(kname "$SCALE_TLS")" --workload imap-idle-memory \
            --use-idle --tls --tls-ca "$PETREL_TLS_CA" \
            --imap-port "$(nth "$PETREL_IMAPS_PORTS" $fe)" --pids "$(nth "$PETREL_FRONTEND_PIDS" $fe)" \
            --clients "$SCALE_TLS" --duration 600 --ramp 128 --timeout 30 --settle 5 \
            --procs "$(procs "$SCALE_TLS")" --source-addrs "$(addrs "$SCALE_TLS")"
    fi
fi

# ---------------------------------------------------------------- the table
mkdir -p "$OUT"
rm -f "$OUT"/*.txt
cp "$W"/out-*.txt "$W"/err-*.txt "$W"/fill-*.txt "$OUT"/
cat "$W"/out-*.txt >"$OUT/results.txt"
shopt -s nullglob
{
    echo "Petrel vs Dovecot $(dovecot --version | cut -d' ' -f1), BENCH=$BENCH: $USERS accounts x" \
        "$MESSAGES messages, $CLIENTS clients, ${DURATION}s per workload x $ROUNDS round(s)," \
        "$(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine" \
        "makes every figure noisier)"
    for w in $WORKLOADS $SCALE_WORKLOADS; do
        # "$w+..." files are more runs reported under the same workload name.
        cat /dev/null "$W/out-petrel-$w-r"*.txt "$W/out-petrel-$w+"*.txt \
            "$W/out-dovecot-$w-r"*.txt "$W/out-dovecot-$w+"*.txt
        echo "END $w"
    done | awk '
        function errs(s, w,   k) { k = s SUBSEP w; return (k in E) ? E[k] : 0 }
        $1 == "RESULT" {
            delete kv
            for (i = 2; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
            E[kv["server"], kv["workload"]] += kv["errors"] + kv["timeouts"]
            SRV[kv["server"]] = 1
        }
        $1 == "SUMMARY" {
            delete kv
            for (i = 2; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
            SRV[kv["server"]] = 1
            k = kv["workload"] SUBSEP kv["metric"]
            if (!(k in seen)) { seen[k] = 1; order[++n] = k; better[k] = kv["better"] }
            # Every round'"'"'s value; the table shows their median.
            i = ++NV[kv["server"], k]
            VS[kv["server"], k, i] = kv["value"] + 0
        }
        $1 == "SKIP" {
            delete kv
            for (i = 2; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
            S[kv["server"], kv["workload"]] = 1
        }
        $1 == "END" {
            # A workload that gave no figure at all (skipped or failed on
            # both sides) still gets its row.
            found = 0
            for (i = 1; i <= n; i++) { split(order[i], p, SUBSEP); if (p[1] == $2) found = 1 }
            if (!found) { k = $2 SUBSEP "-"; order[++n] = k; better[k] = "" }
        }
        function median(s, k,   m, i, j, t, a) {
            m = NV[s, k]
            for (i = 1; i <= m; i++) a[i] = VS[s, k, i]
            for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
        }
        # The targets of issues #3 (a 100,000-message INBOX) and #5.
        function target(w, m) {
            if (w == "imap-big-mailbox") {
                if (m ~ /^select_/) return 100
                if (m ~ /^uid_fetch_/) return 1000
                if (m ~ /^(unseen|from)_/) return 200
                if (m == "kib_per_client_uss") return 1024
            }
            if (w ~ /^idle-fanout/ && m == "after_ok_p50_ms") return 5
            if (w ~ /^idle-fanout/ && m == "after_ok_p99_ms") return 50
            if (w ~ /^idle-memory-[0-9]/ && m == "kib_per_client_rss") return 16
            return ""
        }
        END {
            for (i = 1; i <= n; i++) for (s in SRV) if (NV[s, order[i]] > 0) V[s, order[i]] = median(s, order[i])
            printf "%-18s %-19s %11s %11s %9s  %-8s %-10s %s\n", "workload", "metric", "Petrel", "Dovecot", "P/D", "better", "errors P/D", "Petrel target"
            for (i = 1; i <= n; i++) {
                k = order[i]; split(k, p, SUBSEP); w = p[1]; m = p[2]
                pv = ((("petrel", k) in V)) ? sprintf("%.1f", V["petrel", k]) : (S["petrel", w] ? "SKIP" : "n/a")
                dv = ((("dovecot", k) in V)) ? sprintf("%.1f", V["dovecot", k]) : (S["dovecot", w] ? "SKIP" : "n/a")
                ratio = "-"; win = "-"
                if ((("petrel", k) in V) && (("dovecot", k) in V) && V["dovecot", k] + 0 > 0) {
                    r = V["petrel", k] / V["dovecot", k]; ratio = sprintf("%.2fx", r)
                    if (better[k] == "higher") win = (r >= 1) ? "Petrel" : "Dovecot"
                    else win = (r <= 1) ? "Petrel" : "Dovecot"
                }
                t = target(w, m); tv = ""
                if (t != "" && (("petrel", k) in V)) tv = sprintf("<= %s %s", t, V["petrel", k] <= t ? "met" : "MISSED")
                printf "%-18s %-19s %11s %11s %9s  %-8s %-10s %s\n", w, m, pv, dv, ratio, win, errs("petrel", w) "/" errs("dovecot", w), tv
            }
        }'
    echo "(P/D = Petrel / Dovecot; 'better' says who wins given the metric's direction;"
    echo " errors = failed + timed-out operations of that workload; raw output in build/bench/last/)"
    echo "imap-big-mailbox: one INBOX of $BIG_MESSAGES messages (the targets are for 100,000), 10"
    echo " rounds after 1 uncounted; kib_per_client_*: 20 sessions with it selected, Petrel's"
    echo " frontends against all of Dovecot's processes."
    if [[ -n $SCALE_WORKLOADS ]]; then
        echo "idle-*: Petrel alone, 4 workers a frontend; idle-fanout: $(((SCALE_FANOUT + SCALE_ACCOUNTS - 1) / SCALE_ACCOUNTS)) of its idlers"
        echo " watch the APPENDed INBOX (after_ok_*: from the APPEND's tagged OK on frontend 1 to"
        echo " the EXISTS on frontend 2), the rest idle on accounts 2..$SCALE_ACCOUNTS;"
        echo " idle-memory-*: a fresh frontend's memory per idle session (Dovecot: imap-idle-memory at"
        echo " $IDLE_CLIENTS sessions)."
        # How many sessions each scale figure really had.
        for w in $SCALE_WORKLOADS; do
            awk -v w="$w" '$1 == "RESULT" && ($4 == "op=idlers" || $4 == "op=memory") {
                for (i = 5; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
                if ($4 == "op=idlers") printf " %s: %d of %d idlers idling when measured\n", w, kv["idling"], kv["of"]
                else printf " %s: %d sessions ready when measured\n", w, kv["clients"]
            }' "$W/out-petrel-$w-r1.txt"
        done
    fi
    echo "total time: $((SECONDS - T0)) s"
} | tee "$OUT/table.txt"
