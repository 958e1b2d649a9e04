"""Cluster-wide session state in Redis: the session registry behind
`petrel-admin sessions`, kicks, the POP3 maildrop lock across frontends,
change notifications pushed to IMAP IDLE, and how all of it degrades when
Redis goes away and recovers when it comes back.

Most tests use the shared 2x2 `cluster`; those that kill a process or stop
Redis bring up a cluster of their own with short timers
(PETREL_CLUSTER_FRONTEND_CONF, see deploy/local/cluster).
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

from conftest import ADMIN, clean_env
from imap_util import Imap, Lines

TIMEOUT = 30


# ---- helpers ---------------------------------------------------------------

class Pop3(Lines):
    def login(self, user, password):
        """The answer to PASS."""
        assert self.cmd(f"USER {user}").startswith(b"+OK")
        return self.cmd(f"PASS {password}")


def admin(cluster, *args):
    """petrel-admin with this cluster's database and Redis."""
    return subprocess.run([str(ADMIN), *args], capture_output=True, text=True, timeout=60,
                          env=clean_env(PETREL_PG_URL=cluster.pg_url,
                                        PETREL_REDIS_URL=cluster.redis_url))


def sessions(cluster, address=None):
    """Rows of `sessions list`: dicts id account protocol node client started mailbox."""
    r = admin(cluster, "sessions", "list", *([address] if address else []))
    assert r.returncode == 0, r.stderr
    cols = ("id", "account", "protocol", "node", "client", "started", "mailbox")
    return [dict(zip(cols, line.split("\t"))) for line in r.stdout.splitlines() if line]


def wait_for(cond, timeout, step=0.1):
    """Polls cond() until it is truthy (returned) or timeout (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


def redis(port, *args):
    """One Redis command over RESP; returns the decoded reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        req = f"*{len(args)}\r\n" + "".join(f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
        s.sendall(req.encode())
        f = s.makefile("rb")

        def read():
            line = f.readline().rstrip(b"\r\n")
            t, rest = line[:1], line[1:]
            if t in (b"+", b"-"):
                return rest.decode()
            if t == b":":
                return int(rest)
            if t == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)[:-2]
                return data.decode()
            if t == b"*":
                return [read() for _ in range(int(rest))]
            raise ValueError(line)
        return read()


def petrel_clients(port):
    """Names of Petrel's connections to Redis (CLIENT SETNAME)."""
    names = set()
    for line in redis(port, "CLIENT", "LIST").splitlines():
        for field in line.split():
            if field.startswith("name=petrel-"):
                names.add(field[5:])
    return names


def account_id(cluster, address):
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("SELECT id FROM accounts WHERE address = %s", (address,))
        return cur.fetchone()[0]


def db_append(cluster, address, message):
    """Stores a message straight in the database: no backend, so no
    notification is published."""
    acct = account_id(cluster, address)
    header_size = message.index(b"\r\n\r\n") + 4
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("SELECT uid FROM petrel_append(%s, 'INBOX', 0, '{}', %s, 0, %s, %s)",
                    (acct, int(time.time()), header_size, psycopg2.Binary(message)))


def message(n):
    return f"From: a@example.com\r\nSubject: m{n}\r\n\r\nbody {n}\r\n".encode()


def start_idle(imap):
    tag = imap.tag()
    imap.send(f"{tag} IDLE\r\n")
    assert imap.line() == b"+ idling"
    return tag


def next_line(imap, timeout):
    """The next response line within timeout, or None."""
    imap.sock.settimeout(timeout)
    try:
        return imap.line()
    except (socket.timeout, TimeoutError):
        return None
    finally:
        imap.sock.settimeout(TIMEOUT)


def wait_line(imap, want, timeout):
    """Reads lines until one equals want (returned with the seconds it took)
    or timeout passes (None). Keepalives and other untagged lines are skipped."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        line = next_line(imap, left)
        if line is None:
            return None
        if line == want:
            return time.monotonic() - t0


def worker_of_connection(supervisor_pid, server_port, client_port):
    """PID of the supervisor's child holding the TCP connection
    127.0.0.1:server_port <- 127.0.0.1:client_port."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for row in f:
                parts = row.split()
                local, remote = parts[1], parts[2]
                if (int(local.split(":")[1], 16) == server_port and
                        int(remote.split(":")[1], 16) == client_port):
                    inode = parts[9]
    assert inode, "connection not found in /proc/net/tcp"
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text().split()
    for pid in children:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no child of {supervisor_pid} holds socket {inode}")


# ---- registry ----------------------------------------------------------------

def test_sessions_list_shows_imap_and_pop3_sessions(cluster, new_account):
    address, password = new_account()
    imap = Imap(cluster.imap_ports[0]).login(address, password)
    pop = Pop3(cluster.pop3_ports[1])
    try:
        assert pop.login(address, password) == b"+OK Logged in."
        rows = wait_for(lambda: len(sessions(cluster, address)) == 2 and sessions(cluster, address), 5)
        assert rows, sessions(cluster, address)
        by_proto = {r["protocol"]: r for r in rows}
        assert set(by_proto) == {"imap", "pop3"}
        assert by_proto["imap"]["node"] == "frontend1"
        assert by_proto["pop3"]["node"] == "frontend2"
        for r in rows:
            assert r["account"] == address
            assert r["client"] == "127.0.0.1"
            assert r["started"].endswith("Z")
        assert by_proto["imap"]["mailbox"] == "-"
        # The whole-cluster list has them too.
        ids = {r["id"] for r in sessions(cluster)}
        assert {r["id"] for r in rows} <= ids

        imap.select("INBOX")
        assert wait_for(lambda: any(r["protocol"] == "imap" and r["mailbox"] == "INBOX"
                                    for r in sessions(cluster, address)), 5)
        imap.ok("UNSELECT")
        assert wait_for(lambda: any(r["protocol"] == "imap" and r["mailbox"] == "-"
                                    for r in sessions(cluster, address)), 5)

        imap.ok("LOGOUT")
        assert pop.cmd("QUIT").startswith(b"+OK")
        assert wait_for(lambda: sessions(cluster, address) == [], 5)
    finally:
        imap.close()
        pop.close()


def test_kick_closes_sessions_on_every_frontend(cluster, new_account):
    address, password = new_account()
    other, other_pw = new_account()
    imaps = [Imap(p).login(address, password) for p in cluster.imap_ports]
    pop = Pop3(cluster.pop3_ports[0])
    bystander = Imap(cluster.imap_ports[1]).login(other, other_pw)
    try:
        assert pop.login(address, password) == b"+OK Logged in."
        assert wait_for(lambda: len(sessions(cluster, address)) == 3, 5)
        r = admin(cluster, "sessions", "kick", address)
        assert r.returncode == 0, r.stderr
        assert "kicked 3 live sessions" in r.stdout, r.stdout
        for imap in imaps:
            assert next_line(imap, 5) == b"* BYE Session kicked by administrator."
            assert imap.eof(5)
        assert pop.line() == b"-ERR Session kicked."
        assert wait_for(lambda: sessions(cluster, address) == [], 5)
        # Someone else's session stays.
        bystander.ok("NOOP")
        assert len(sessions(cluster, other)) == 1
    finally:
        for c in imaps + [pop, bystander]:
            c.close()


# ---- the POP3 lock --------------------------------------------------------------

def test_pop3_lock_across_frontends(cluster, new_account):
    address, password = new_account()
    first = Pop3(cluster.pop3_ports[0])
    second = Pop3(cluster.pop3_ports[1])
    try:
        assert first.login(address, password) == b"+OK Logged in."
        assert second.login(address, password) == \
            b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
        # Still in AUTHORIZATION: no session registered for the refused one.
        assert [r["node"] for r in sessions(cluster, address)] == ["frontend1"]
        assert first.cmd("QUIT") == b"+OK Logging out."
        # QUIT released the lock before answering: no waiting needed.
        assert second.login(address, password) == b"+OK Logged in."
        # IMAP is not affected by the POP3 lock.
        with Imap(cluster.imap_ports[0]) as imap:
            imap.login(address, password)
            imap.select("INBOX")
        assert second.cmd("QUIT") == b"+OK Logging out."
    finally:
        first.close()
        second.close()


def test_pop3_lock_and_sessions_expire_when_worker_is_killed(cluster_factory):
    c = cluster_factory(frontends=2, backends=1, env={
        "PETREL_CLUSTER_FRONTEND_CONF": "pop3_lock_ttl = 2; session_ttl = 3"})
    lock_ttl, session_ttl = 2, 3
    address, password = c.new_account()
    victim = Pop3(c.pop3_ports[0])
    assert victim.login(address, password) == b"+OK Logged in."
    assert len(sessions(c, address)) == 1
    pid = worker_of_connection(c.frontend_pids[0], c.pop3_ports[0],
                               victim.sock.getsockname()[1])
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    with pytest.raises((EOFError, ConnectionError)):
        victim.line()
    victim.close()

    def try_login():
        p = Pop3(c.pop3_ports[1])
        try:
            return p.login(address, password)
        finally:
            p.close()

    # Nobody released the lock: it is still there right after the kill...
    assert try_login() == b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
    # ...and expires on its own within its TTL.
    assert wait_for(lambda: try_login() == b"+OK Logged in.", lock_ttl + 3, step=0.2)
    assert time.monotonic() - killed <= lock_ttl + 3
    # The dead worker's registry entry expires too.
    assert wait_for(lambda: sessions(c, address) == [], session_ttl + 3)
    # The supervisor restarted the worker: the frontend still serves logins.
    for _ in range(4):
        with Imap(c.imap_ports[0]) as imap:
            imap.login(address, password)


# ---- change notifications and IDLE ----------------------------------------------

def test_idle_is_advertised_and_ends_with_done(cluster, new_account):
    address, password = new_account()
    with Imap(cluster.imap_ports[0]) as imap:
        assert b" IDLE" in imap.ok("CAPABILITY")[0]
        imap.login(address, password)
        tag = start_idle(imap)
        imap.send("DONE\r\n")
        assert imap.read_until(tag) == ([], f"{tag} OK Idle completed.".encode())
        # Anything but DONE ends it with BAD.
        tag = start_idle(imap)
        imap.send("NOOP\r\n")
        assert imap.read_until(tag)[1] == f"{tag} BAD Expected DONE.".encode()
        imap.ok("NOOP")
        # Pipelined right behind IDLE.
        tag = imap.tag()
        imap.send(f"{tag} IDLE\r\nDONE\r\n")
        assert imap.line() == b"+ idling"
        assert imap.read_until(tag)[1] == f"{tag} OK Idle completed.".encode()


def test_idle_pushes_append_and_expunge_from_other_frontend(cluster, new_account):
    address, password = new_account()
    idler = Imap(cluster.imap_ports[0]).login(address, password)
    writer = Imap(cluster.imap_ports[1]).login(address, password)
    try:
        idler.select("INBOX")
        writer.select("INBOX")
        tag = start_idle(idler)
        time.sleep(0.2)
        writer.append_uid("INBOX", message(1))
        took = wait_line(idler, b"* 1 EXISTS", 1.0)
        assert took is not None, "no EXISTS within 1 s of the APPEND"
        writer.append_uid("INBOX", message(2))
        assert wait_line(idler, b"* 2 EXISTS", 1.0) is not None
        writer.ok("NOOP")
        writer.ok("STORE 1 +FLAGS (\\Deleted)")
        writer.ok("EXPUNGE")
        assert wait_line(idler, b"* 1 EXPUNGE", 1.0) is not None
        # A burst: every message is reported, in as few resyncs as it takes.
        for n in range(3, 8):
            writer.append_uid("INBOX", message(n), nonsync=True)
        deadline = time.monotonic() + 3
        seen = []
        while time.monotonic() < deadline:
            line = next_line(idler, 0.5)
            if line:
                seen.append(line)
            if seen and seen[-1] == b"* 6 EXISTS":
                break
        assert seen and seen[-1] == b"* 6 EXISTS", seen
        idler.send("DONE\r\n")
        assert idler.read_until(tag)[1] == f"{tag} OK Idle completed.".encode()
        # The session's map agrees with the server.
        assert idler.ok("NOOP") == []
    finally:
        idler.close()
        writer.close()


def test_changes_while_not_idling_come_with_next_idle(cluster, new_account):
    address, password = new_account()
    a = Imap(cluster.imap_ports[0]).login(address, password)
    b = Imap(cluster.imap_ports[1]).login(address, password)
    try:
        a.select("INBOX")
        b.append_uid("INBOX", message(1))
        time.sleep(0.3)   # the notification marks a's mailbox changed
        tag = start_idle(a)
        assert wait_line(a, b"* 1 EXISTS", 2.0) is not None
        a.send("DONE\r\n")
        a.read_until(tag)
    finally:
        a.close()
        b.close()


def test_redis_outage_degrades_to_polling_and_push_resumes(cluster_factory):
    poll = 1
    c = cluster_factory(frontends=2, backends=1, env={
        "PETREL_CLUSTER_FRONTEND_CONF": f"imap_idle_poll = {poll}"})
    address, password = c.new_account()
    redis_port = c.redis_port
    clients_before = petrel_clients(redis_port)
    assert any(n.endswith("-subscriber") for n in clients_before), clients_before
    assert any(n.endswith("-notify") for n in clients_before), clients_before

    idler = Imap(c.imap_ports[0]).login(address, password)
    writer = Imap(c.imap_ports[1]).login(address, password)
    restarted = None
    try:
        idler.select("INBOX")
        writer.select("INBOX")
        tag = start_idle(idler)
        writer.append_uid("INBOX", message(1))
        assert wait_line(idler, b"* 1 EXISTS", 1.0) is not None

        # Redis goes away.
        redis_pid = int((c.dir / "pids" / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGTERM)
        assert wait_for(lambda: not Path(f"/proc/{redis_pid}").exists(), 10)

        # IDLE learns of changes by polling.
        writer.append_uid("INBOX", message(2))
        took = wait_line(idler, b"* 2 EXISTS", poll + 2)
        assert took is not None, "IDLE did not poll without Redis"

        # Logins go on, IMAP and POP3 (the lock is skipped, degraded).
        with Imap(c.imap_ports[1]) as other:
            other.login(address, password)
            other.select("INBOX")
        pop = Pop3(c.pop3_ports[0])
        assert pop.login(address, password) == b"+OK Logged in."
        assert pop.cmd("QUIT").startswith(b"+OK")
        pop.close()
        r = admin(c, "sessions", "list")
        assert r.returncode != 0 and "Redis" in r.stderr

        # Redis comes back on the same port; every link reconnects by itself.
        restarted = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
             "--daemonize", "no", "--dir", str(c.dir / "redis"), "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def all_back():
            try:
                return petrel_clients(redis_port) >= clients_before
            except OSError:
                return False
        assert wait_for(all_back, 20, step=0.2), "Petrel did not reconnect to Redis"
        acct = account_id(c, address)
        assert wait_for(lambda: redis(redis_port, "PUBSUB", "NUMSUB",
                                      f"petrel:account:{acct}")[1] >= 2, 10)
        # The sessions are registered again without reconnecting.
        assert wait_for(lambda: len(sessions(c, address)) == 2, 10)
        # Drain the resync that re-subscribing triggers (nothing new).
        while next_line(idler, 0.5) is not None:
            pass

        # Push mode again: polling stopped, so a change made behind the
        # backends' back (no notification) goes unnoticed...
        db_append(c, address, message(3))
        assert wait_line(idler, b"* 3 EXISTS", poll * 3) is None
        # ...while one through a backend arrives at once, with the other.
        writer.append_uid("INBOX", message(4))
        assert wait_line(idler, b"* 4 EXISTS", 1.0) is not None
        idler.send("DONE\r\n")
        assert idler.read_until(tag)[1] == f"{tag} OK Idle completed.".encode()
    finally:
        idler.close()
        writer.close()
        if restarted:
            restarted.terminate()
            try:
                restarted.wait(10)
            except subprocess.TimeoutExpired:
                restarted.kill()


def test_account_subscription_follows_sessions(cluster_factory):
    """A frontend listens to an account's channel only while it has sessions
    of it; a session arriving while the unsubscribe is in flight still gets
    its pushes."""
    c = cluster_factory(frontends=1, backends=1, env={
        # the registry tick (a third of the smaller TTL) drops subscriptions
        "PETREL_CLUSTER_FRONTEND_CONF": "pop3_lock_ttl = 3; session_ttl = 3"})
    address, password = c.new_account()
    channel = f"petrel:account:{account_id(c, address)}"

    def subscribers():
        return redis(c.redis_port, "PUBSUB", "NUMSUB", channel)[1]

    writer = Imap(c.imap_ports[0]).login(address, password)
    assert wait_for(lambda: subscribers() >= 1, 5)
    writer.ok("LOGOUT")
    writer.close()
    assert wait_for(lambda: subscribers() == 0, 5), "still subscribed without sessions"

    for i in range(8):
        # log in around the moment the idle subscription is dropped
        time.sleep(0.15 * i)
        idler = Imap(c.imap_ports[0]).login(address, password)
        writer = Imap(c.imap_ports[0]).login(address, password)
        try:
            exists = int(next(l for l in idler.select("INBOX") if l.endswith(b" EXISTS")).split()[1])
            tag = start_idle(idler)
            # IDLE polls until the subscription is confirmed, then pushes.
            assert wait_for(lambda: subscribers() >= 1, 5)
            time.sleep(0.2)
            writer.append_uid("INBOX", message(i))
            assert wait_line(idler, f"* {exists + 1} EXISTS".encode(), 1.5) is not None, i
            idler.send("DONE\r\n")
            idler.read_until(tag)
        finally:
            idler.close()
            writer.close()


def test_idle_pushes_lmtp_delivery_and_move(cluster, new_account):
    import smtplib
    if not cluster.lmtp_ports:
        pytest.skip("no LMTP listener")
    address, password = new_account()
    idler = Imap(cluster.imap_ports[0]).login(address, password)
    mover = Imap(cluster.imap_ports[1]).login(address, password)
    try:
        idler.select("INBOX")
        tag = start_idle(idler)
        time.sleep(0.2)
        with smtplib.LMTP("127.0.0.1", cluster.lmtp_ports[1]) as lmtp:
            lmtp.sendmail("sender@example.org", [address], message(1))
        assert wait_line(idler, b"* 1 EXISTS", 1.0) is not None
        mover.ok('CREATE "Moved"')
        mover.select("INBOX")
        mover.ok('MOVE 1 "Moved"')
        assert wait_line(idler, b"* 1 EXPUNGE", 1.0) is not None
        idler.send("DONE\r\n")
        assert idler.read_until(tag)[1] == f"{tag} OK Idle completed.".encode()
    finally:
        idler.close()
        mover.close()
