"""Hostile clients: the cleartext password policy, authentication throttling
across frontends, connection limits, the HAProxy PROXY protocol (with a
real haproxy in front), and hostile IMAP input.

Every client here connects to 127.0.0.1 from a loopback address of its
choosing (127.0.0.0/8 is all loopback on Linux): the module's cluster trusts
only 127.0.0.1 (secure_networks, throttle_exempt), so 127.0.0.x (x > 1) is a
remote, untrusted client, and each test uses addresses of its own so the
per-address counters of one test never meet another's.
"""

import base64
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ADMIN, _finish, clean_env, cluster_up
from imap_util import Closed, Imap, Lines, quote

TIMEOUT = 30

DELAY_MS = 300         # auth_failure_delay_ms: 0, 0.3, 0.6, 1.2, 1.2 ... s
DELAY_MAX_MS = 1200
LOCKOUT_IP = 6
LOCKOUT_ACCOUNT = 4
PER_IP = 4
PER_ACCOUNT = 3

SECURITY_CONF = "; ".join([
    "secure_networks = 127.0.0.1/32",
    "throttle_exempt = 127.0.0.1/32",
    f"auth_failure_delay_ms = {DELAY_MS}",
    f"auth_failure_delay_max_ms = {DELAY_MAX_MS}",
    f"auth_lockout_ip = {LOCKOUT_IP}",
    f"auth_lockout_account = {LOCKOUT_ACCOUNT}",
    f"max_connections_per_ip = {PER_IP}",
    f"max_connections_per_account = {PER_ACCOUNT}",
])

# secure_networks stays 127.0.0.0/8 ::1: haproxy's clients are secure, the
# documentation addresses in forged headers are not.
PROXY_CONF = "; ".join([
    "proxy_protocol = imap,imaps",
    "proxy_trusted = 127.0.0.1/32",
    "proxy_timeout = 1",
    "throttle_exempt = 127.0.0.1/32",
])


@pytest.fixture(scope="module")
def sec(request):
    """2 frontends, 1 backend, trusting only 127.0.0.1."""
    failed = request.session.testsfailed
    c = cluster_up(frontends=2, backends=1, prefix="security-",
                   env={"PETREL_CLUSTER_FRONTEND_CONF": SECURITY_CONF})
    try:
        yield c
    finally:
        _finish(request, c, failed)


@pytest.fixture(scope="module")
def prx(request):
    """1 frontend whose imap and imaps listeners expect a PROXY header."""
    failed = request.session.testsfailed
    c = cluster_up(frontends=1, backends=1, prefix="proxy-",
                   env={"PETREL_CLUSTER_FRONTEND_CONF": PROXY_CONF})
    try:
        yield c
    finally:
        _finish(request, c, failed)


# ---- clients -------------------------------------------------------------------

def tls_context(cluster):
    ctx = ssl.create_default_context(cafile=cluster.tls_ca)
    ctx.check_hostname = False
    return ctx


def connect(port, src="127.0.0.1", prefix=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT, source_address=(src, 0))
    if prefix:
        s.sendall(prefix)
    return s


class Client(Imap):
    """An IMAP client from address src; tls: implicit TLS; prefix: bytes sent
    first (a PROXY header)."""

    def __init__(self, port, src="127.0.0.1", tls=None, prefix=b""):
        sock = connect(port, src, prefix)
        if tls:
            sock = tls.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.buf = b""
        self.tags = 0
        self.greeting = self.line()

    def starttls(self, ctx):
        _, tagged = self.cmd("STARTTLS")
        assert b" OK" in tagged, tagged
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def try_login(self, user, password):
        """(tagged line, seconds it took)."""
        t0 = time.monotonic()
        _, tagged = self.cmd(f"LOGIN {quote(user)} {quote(password)}")
        return tagged, time.monotonic() - t0


class Pop3(Lines):
    def __init__(self, port, src="127.0.0.1", tls=None):
        sock = connect(port, src)
        if tls:
            sock = tls.wrap_socket(sock, server_hostname="localhost")
        super().__init__(sock=sock)

    def multiline(self, text):
        first = self.cmd(text)
        lines = []
        if first.startswith(b"+OK"):
            while (line := self.line()) != b".":
                lines.append(line)
        return first, lines


def closed_without_greeting(port, src="127.0.0.1", prefix=b"", timeout=5):
    """True when the server closes the connection and sends nothing."""
    s = connect(port, src, prefix)
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return got == b""
            got += data
    except ConnectionResetError:
        return got == b""
    except (socket.timeout, TimeoutError):
        return False
    finally:
        s.close()


def redis_cli(cluster, *args):
    r = subprocess.run(["redis-cli", "-p", str(cluster.redis_port), *map(str, args)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def sessions(cluster, address):
    r = subprocess.run([str(ADMIN), "sessions", "list", address], capture_output=True, text=True,
                       timeout=60, env=clean_env(PETREL_PG_URL=cluster.pg_url,
                                                 PETREL_REDIS_URL=cluster.redis_url))
    assert r.returncode == 0, r.stderr
    cols = ("id", "account", "protocol", "node", "client", "started", "mailbox")
    return [dict(zip(cols, line.split("\t"))) for line in r.stdout.splitlines() if line]


def wait_for(cond, timeout=5, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def frontend_logs(cluster):
    return "".join(p.read_text(errors="replace")
                   for p in sorted(Path(cluster.dir, "logs").glob("frontend*.log")))


def worker_pids(cluster):
    """The frontend worker processes (children of the supervisors)."""
    sup = set(cluster.frontend_pids)
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid in sup:
            pids.append(int(d.name))
    return pids


def rss_kb(pids):
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def status(tagged):
    return tagged.split(b" ", 2)[1]


# ---- cleartext policy ----------------------------------------------------------

def test_plaintext_refused_from_untrusted_address(sec):
    address, password = sec.new_account()
    c = Client(sec.imap_ports[0], src="127.0.0.4")
    caps = re.split(rb"[ \[\]]", c.greeting)
    assert b"LOGINDISABLED" in caps, c.greeting
    assert not any(w.startswith(b"AUTH=") for w in caps), c.greeting
    assert b"STARTTLS" in caps
    tagged, _ = c.try_login(address, password)
    assert re.match(rb"t\d+ NO \[PRIVACYREQUIRED\] ", tagged), tagged
    _, tagged = c.cmd("AUTHENTICATE PLAIN " + base64.b64encode(
        f"\0{address}\0{password}".encode()).decode())
    assert re.match(rb"t\d+ NO \[PRIVACYREQUIRED\] ", tagged), tagged
    _, tagged = c.cmd("SELECT INBOX")          # still not logged in
    assert status(tagged) == b"BAD"
    # STARTTLS makes the same connection secure.
    ctx = tls_context(sec)
    c.starttls(ctx)
    untagged = c.ok("CAPABILITY")
    assert b"LOGINDISABLED" not in untagged[0] and b"AUTH=PLAIN" in untagged[0]
    c.login(address, password)
    c.close()
    # Implicit TLS from the same address.
    with Client(sec.imaps_ports[1], src="127.0.0.4", tls=ctx) as t:
        assert b"LOGINDISABLED" not in t.greeting
        t.login(address, password)
    # The trusted address may log in without TLS.
    with Client(sec.imap_ports[1], src="127.0.0.1") as t:
        assert b"LOGINDISABLED" not in t.greeting
        t.login(address, password)


def test_pop3_plaintext_refused_from_untrusted_address(sec):
    address, password = sec.new_account()
    p = Pop3(sec.pop3_ports[0], src="127.0.0.4")
    first, caps = p.multiline("CAPA")
    assert first.startswith(b"+OK")
    assert b"USER" not in caps and not any(c.startswith(b"SASL") for c in caps), caps
    assert b"STLS" in caps
    refused = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections."
    assert p.cmd(f"USER {address}") == refused
    assert p.cmd("AUTH PLAIN " + base64.b64encode(f"\0{address}\0{password}".encode()).decode()) == refused
    p.close()
    p = Pop3(sec.pop3s_ports[0], src="127.0.0.4", tls=tls_context(sec))
    assert p.cmd(f"USER {address}") == b"+OK"
    assert p.cmd(f"PASS {password}") == b"+OK Logged in."
    p.cmd("QUIT")
    p.close()


# ---- throttling ----------------------------------------------------------------

def test_failures_from_one_address_are_throttled_across_frontends(sec):
    address, password = sec.new_account()
    src = "127.0.0.2"
    ctx = tls_context(sec)
    delays = []
    for i in range(LOCKOUT_IP):
        # A different (unknown) account each time: only the address counts.
        port = sec.imaps_ports[i % 2]
        with Client(port, src=src, tls=ctx) as c:
            tagged, took = c.try_login(f"nobody{i}-{address}", "wrong")
        assert re.match(rb"t1 NO \[AUTHENTICATIONFAILED\] ", tagged), (i, tagged)
        delays.append(took)
    # 0, 0.3, 0.6, 1.2 (capped), 1.2, 1.2 s
    expected = [min(DELAY_MS * 2 ** (n - 1), DELAY_MAX_MS) / 1000 if n else 0
                for n in range(LOCKOUT_IP)]
    for got, want in zip(delays, expected):
        assert want - 0.05 <= got <= want + 1.0, (delays, expected)
    assert redis_cli(sec, "GET", f"petrel:authfail:ip:{src}") == str(LOCKOUT_IP)
    # Locked: even the right password is not checked, and the answer does
    # not say whether it was right.
    for port in sec.imap_ports:
        with Client(port, src=src) as c:
            c.starttls(ctx)
            tagged, took = c.try_login(address, password)
            assert re.match(rb"t2 NO \[UNAVAILABLE\] ", tagged), tagged
            assert took < 0.5
    p = Pop3(sec.pop3s_ports[1], src=src, tls=ctx)
    assert p.cmd(f"USER {address}") == b"+OK"
    assert p.cmd(f"PASS {password}").startswith(b"-ERR [SYS/TEMP] ")
    p.close()
    # Other addresses are not affected.
    with Client(sec.imaps_ports[0], src="127.0.0.12", tls=ctx) as c:
        tagged, took = c.try_login(address, password)
        assert status(tagged) == b"OK" and took < 0.5


def test_account_lockout_and_success_resets(sec):
    """The account's counter is cluster-wide and keyed by the account: failures
    from several addresses add up; a success resets it."""
    address, password = sec.new_account()
    ctx = tls_context(sec)
    srcs = iter(f"127.0.1.{i}" for i in range(1, 50))

    def attempt(pw, user=address):
        with Client(sec.imaps_ports[0], src=next(srcs), tls=ctx) as c:
            return c.try_login(user, pw)[0]

    for _ in range(LOCKOUT_ACCOUNT - 1):
        assert b"NO [AUTHENTICATIONFAILED]" in attempt("wrong")
    assert redis_cli(sec, "GET", f"petrel:authfail:user:{address}") == str(LOCKOUT_ACCOUNT - 1)
    # Upper case is the same account (and the same counter).
    assert status(attempt(password, address.upper())) == b"OK"
    assert redis_cli(sec, "EXISTS", f"petrel:authfail:user:{address}") == "0"
    for _ in range(LOCKOUT_ACCOUNT):
        assert b"NO [AUTHENTICATIONFAILED]" in attempt("wrong")
    tagged = attempt(password)
    assert re.match(rb"t1 NO \[UNAVAILABLE\] ", tagged), tagged
    # Another account is not locked.
    other, other_pw = sec.new_account()
    assert status(attempt(other_pw, other)) == b"OK"
    redis_cli(sec, "DEL", f"petrel:authfail:user:{address}")
    assert status(attempt(password)) == b"OK"


# ---- connection limits ---------------------------------------------------------

def test_connections_per_address(sec):
    src = "127.0.0.3"
    held = [Client(sec.imap_ports[i % 2], src=src) for i in range(PER_IP - 1)]
    held.append(Pop3(sec.pop3_ports[0], src=src))
    for h in held:
        assert h.greeting.startswith((b"* OK", b"+OK")), h.greeting
    c = connect(sec.imap_ports[1], src)
    c.settimeout(5)
    data = c.recv(4096)
    assert data == b"* BYE [LIMIT] Too many connections from your address.\r\n", data
    assert c.recv(4096) == b""
    c.close()
    p = connect(sec.pop3_ports[1], src)
    p.settimeout(5)
    assert p.recv(4096).startswith(b"-ERR [SYS/TEMP] Too many connections")
    p.close()
    # Other addresses, and the trusted one, are not limited.
    others = [Client(sec.imap_ports[0], src="127.0.0.13") for _ in range(PER_IP)]
    others += [Client(sec.imap_ports[0]) for _ in range(PER_IP + 2)]
    for o in others:
        o.close()
    # A closed connection frees its place (on any frontend).
    held.pop(0).close()
    assert wait_for(lambda: redis_cli(sec, "ZCARD", f"petrel:conn:ip:{src}") == str(PER_IP - 1))
    held.append(Client(sec.imap_ports[1], src=src))
    assert held[-1].greeting.startswith(b"* OK")
    for h in held:
        h.close()


def test_connections_per_account_and_address(sec):
    address, password = sec.new_account()
    ctx = tls_context(sec)
    src = "127.0.0.8"
    held = [Client(sec.imaps_ports[i % 2], src=src, tls=ctx).login(address, password)
            for i in range(PER_ACCOUNT)]
    c = Client(sec.imaps_ports[0], src=src, tls=ctx)
    tagged, _ = c.try_login(address, password)
    assert re.match(rb"t1 NO \[LIMIT\] ", tagged), tagged
    _, tagged = c.cmd("SELECT INBOX")
    assert status(tagged) == b"BAD"          # not logged in
    # The same account from another address is fine.
    Client(sec.imaps_ports[1], src="127.0.0.9", tls=ctx).login(address, password).close()
    held.pop().close()
    key = f"petrel:conn:user:{src}/{address}"
    assert wait_for(lambda: redis_cli(sec, "ZCARD", key) == str(PER_ACCOUNT - 1))
    assert status(c.try_login(address, password)[0]) == b"OK"
    for h in held + [c]:
        h.close()


# ---- PROXY protocol ------------------------------------------------------------

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, dst="127.0.0.1", sport=40000, dport=143, local=False, tlvs=b""):
    if local:
        return V2_SIG + b"\x20\x00" + struct.pack(">H", 0)
    if ":" in src:
        body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = b"\x21"
    else:
        body = socket.inet_aton(src) + socket.inet_aton(dst)
        fam = b"\x11"
    body += struct.pack(">HH", sport, dport) + tlvs
    return V2_SIG + b"\x21" + fam + struct.pack(">H", len(body)) + body


# PP2_TYPE_SSL with PP2_CLIENT_SSL: the client spoke TLS to the proxy.
SSL_TLV = b"\x20\x00\x05\x01\x00\x00\x00\x00"


def test_proxy_v2_from_trusted_address_sets_client(prx):
    address, password = prx.new_account()
    # The client address is the header's: a remote one, so no cleartext
    # password (the peer, 127.0.0.1, would be secure).
    with Client(prx.imap_ports[0], prefix=proxy_v2("203.0.113.7")) as c:
        assert b"LOGINDISABLED" in c.greeting
        assert b"[PRIVACYREQUIRED]" in c.try_login(address, password)[0]
    # Unless the proxy vouches for TLS; an AWS NLB TLV (0xEA) is skipped.
    hdr = proxy_v2("203.0.113.7", tlvs=b"\xea\x00\x05\x01vpce" + SSL_TLV)
    c = Client(prx.imap_ports[0], prefix=hdr)
    assert c.greeting.startswith(b"* OK") and b"LOGINDISABLED" not in c.greeting
    c.login(address, password)
    rows = wait_for(lambda: sessions(prx, address))
    assert [r["client"] for r in rows] == ["203.0.113.7"], rows
    c.close()
    # IPv6 and v1.
    c = Client(prx.imap_ports[0], prefix=b"PROXY TCP6 ::ffff:127.0.0.78 ::1 5555 143\r\n")
    c.login(address, password)
    assert wait_for(lambda: any(r["client"] == "::ffff:127.0.0.78" for r in sessions(prx, address)))
    c.close()
    # Throttling is keyed by the PROXY address.
    with Client(prx.imap_ports[0], prefix=proxy_v2("198.51.100.9", tlvs=SSL_TLV)) as c:
        assert b"AUTHENTICATIONFAILED" in c.try_login(address, "wrong")[0]
    assert redis_cli(prx, "GET", "petrel:authfail:ip:198.51.100.9") == "1"
    # A LOCAL header (a health check) keeps the real address.
    with Client(prx.imap_ports[0], prefix=proxy_v2("", local=True)) as c:
        c.login(address, password)
        assert wait_for(lambda: any(r["client"] == "127.0.0.1" for r in sessions(prx, address)))
    # On the implicit-TLS port the header comes before the handshake.
    with Client(prx.imaps_ports[0], prefix=proxy_v2("192.0.2.44"), tls=tls_context(prx)) as c:
        c.login(address, password)
        assert wait_for(lambda: any(r["client"] == "192.0.2.44" for r in sessions(prx, address)))
    assert "client=203.0.113.7" in frontend_logs(prx)


def test_proxy_header_refused(prx):
    port = prx.imap_ports[0]
    # From an address not in proxy_trusted, even with a valid header.
    assert closed_without_greeting(port, src="127.0.0.2", prefix=proxy_v2("203.0.113.8"))
    # No header: closed after proxy_timeout (1 s), nothing sent.
    t0 = time.monotonic()
    assert closed_without_greeting(port)
    assert 0.8 <= time.monotonic() - t0 < 4
    # A client that talks IMAP straight away.
    assert closed_without_greeting(port, prefix=b"a1 LOGIN x y\r\n")
    # Truncated, overlong and malformed headers.
    assert closed_without_greeting(port, prefix=b"PROXY TCP4 1.2.3.4")
    assert closed_without_greeting(port, prefix=b"PROXY UNKNOWN " + b"x" * 200 + b"\r\n")
    assert closed_without_greeting(port, prefix=b"PROXY TCP4 1.2.3.400 1.2.3.4 1 2\r\n")
    assert closed_without_greeting(port, prefix=V2_SIG + b"\x21\x11\xff\xff" + b"\0" * 64)
    assert closed_without_greeting(port, prefix=V2_SIG + b"\x21\x11\x00\x04" + b"\0" * 4)
    logs = frontend_logs(prx)
    assert "peer not in proxy_trusted" in logs and "no PROXY header in time" in logs
    # The listener still works.
    with Client(port, prefix=proxy_v2("203.0.113.10")) as c:
        c.ok("NOOP")


HAPROXY_CONF = """
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend v1
    bind 127.0.0.1:{p1}
    default_backend v1
backend v1
    server f 127.0.0.1:{imap} send-proxy
frontend v2
    bind 127.0.0.1:{p2}
    default_backend v2
backend v2
    server f 127.0.0.1:{imap} send-proxy-v2 check inter 500ms check-send-proxy
frontend v2tls
    bind 127.0.0.1:{p3}
    default_backend v2tls
backend v2tls
    server f 127.0.0.1:{imaps} send-proxy-v2
"""


@pytest.fixture
def haproxy(prx, tmp_path):
    if not shutil.which("haproxy"):
        pytest.skip("haproxy is not installed (tools/deps.sh installs it)")
    socks = []
    for _ in range(3):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CONF.format(p1=ports[0], p2=ports[1], p3=ports[2],
                                       imap=prx.imap_ports[0], imaps=prx.imaps_ports[0]))
    log = open(tmp_path / "haproxy.log", "w")
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for p in ports:
            assert wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", p)) == 0, 10), \
                (tmp_path / "haproxy.log").read_text()
        yield ports
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_haproxy_v1_and_v2(prx, haproxy):
    p1, p2, p3 = haproxy
    address, password = prx.new_account()
    for port, src, tls in ((p1, "127.0.0.21", None), (p2, "127.0.0.22", None),
                           (p3, "127.0.0.23", tls_context(prx))):
        c = Client(port, src=src, tls=tls)
        assert c.greeting.startswith(b"* OK"), c.greeting
        c.login(address, password)
        assert wait_for(lambda: any(r["client"] == src for r in sessions(prx, address))), \
            (src, sessions(prx, address))
        c.close()
    logs = frontend_logs(prx)
    for src in ("127.0.0.21", "127.0.0.22", "127.0.0.23"):
        assert f"client={src}" in logs
    # Throttling keyed by the address haproxy reports.
    with Client(p2, src="127.0.0.24") as c:
        assert b"AUTHENTICATIONFAILED" in c.try_login(address, "wrong")[0]
    assert redis_cli(prx, "GET", "petrel:authfail:ip:127.0.0.24") == "1"


# ---- hostile input -------------------------------------------------------------

@pytest.fixture
def logged_in(sec):
    address, password = sec.new_account()
    c = Client(sec.imap_ports[0]).login(address, password)
    yield c
    c.close()


def alive(sec):
    with Client(sec.imap_ports[0]) as c:
        c.ok("NOOP")
    return True


def test_gigabyte_literal_refused_without_memory_growth(sec, logged_in):
    pids = worker_pids(sec)
    assert pids
    before = rss_kb(pids)
    c = logged_in
    c.send(b"t9 APPEND INBOX {1073741824}\r\n")
    tagged = c.line()
    assert re.match(rb"t9 NO \[TOOBIG\] ", tagged), tagged
    c.ok("NOOP")
    # Announced, then a flood of bytes anyway: never buffered.
    c.send(b"t10 APPEND INBOX {1073741824}\r\n" + b"x" * (8 << 20))
    assert c.line().startswith(b"t10 NO [TOOBIG]")
    try:
        c.cmd("NOOP")
    except (Closed, OSError):
        pass
    assert rss_kb(pids) - before < 16 * 1024, (before, rss_kb(pids))
    assert alive(sec)


def test_huge_nonsync_literal_is_bye(sec, logged_in):
    c = logged_in
    c.send(b"t9 APPEND INBOX {1073741824+}\r\nabc")
    line = c.line()
    assert line.startswith(b"* BYE") or line.startswith(b"t9 BAD"), line
    assert c.eof(5)
    # Before login even a small one is too big (LITERAL-: BAD [TOOBIG]).
    with Client(sec.imap_ports[1]) as p:
        p.send(b"t1 LOGIN {100000+}\r\n")
        assert p.line().startswith(b"t1 BAD [TOOBIG]")
        assert p.line().startswith(b"* BYE")
        assert p.eof(5)
    assert alive(sec)


def test_many_literals_in_one_command(sec, logged_in):
    c = logged_in
    cmd = b"t9 STATUS" + b"".join(b" {1+}\r\nx" for _ in range(200)) + b"\r\n"
    c.send(cmd)
    resp = c.line()
    assert re.match(rb"(t9|\*) (BAD|BYE) ", resp), resp
    assert alive(sec)


def test_deep_parentheses(sec, logged_in):
    c = logged_in
    _, tagged = c.cmd(b"FETCH 1 " + b"(" * 10000 + b")" * 10000)
    assert status(tagged) == b"BAD", tagged
    c.ok("NOOP")
    # Before login the line is too long anyway.
    with Client(sec.imap_ports[0]) as p:
        p.send(b"t1 ID " + b"(" * 10000 + b"\r\n")
        assert re.match(rb"(t1|\*) (BAD|BYE) ", p.line())


def test_huge_quoted_string(sec, logged_in):
    c = logged_in
    c.send(b't9 SELECT "' + b"x" * (2 << 20) + b'"\r\n')
    line = c.line()
    assert re.match(rb"(t9|\*) (BAD|BYE) ", line), line[:200]
    assert alive(sec)


def test_nul_in_literal_and_quoted(sec, logged_in):
    address, password = sec.new_account()
    with Client(sec.imap_ports[0]) as c:
        c.send(b"t1 LOGIN {" + str(len(address) + 2).encode() + b"}\r\n")
        assert c.line().startswith(b"+")
        c.send(address.encode() + b"\0x {" + str(len(password)).encode() + b"+}\r\n"
               + password.encode() + b"\r\n")
        _, tagged = c.read_until("t1")
        assert status(tagged) in (b"BAD", b"NO"), tagged
        _, tagged = c.cmd(b'SELECT "IN\0BOX"')
        assert status(tagged) == b"BAD", tagged
    c = logged_in
    _, tagged = c.cmd(b'SELECT "IN\0BOX"')
    assert status(tagged) == b"BAD", tagged
    _, tagged = c.cmd(b"SELECT {6+}\r\nIN\0BOX")
    assert status(tagged) in (b"BAD", b"NO"), tagged
    c.ok("NOOP")


def test_deep_mime_nesting(sec, logged_in):
    depth = 10000
    parts = [b"From: a@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"]
    for i in range(depth):
        parts.append(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i))
    parts.append(b"Content-Type: text/plain\r\n\r\nbottom\r\n")
    for i in reversed(range(depth)):
        parts.append(b"--b%d--\r\n" % i)
    msg = b"".join(parts)
    c = logged_in
    tagged = c.append("INBOX", msg)
    assert status(tagged) == b"OK", tagged
    c.select("INBOX")
    t0 = time.monotonic()
    untagged, tagged = c.cmd("FETCH 1 (BODYSTRUCTURE)")
    assert status(tagged) == b"OK", tagged
    assert time.monotonic() - t0 < 10
    assert untagged and b"BODYSTRUCTURE (" in untagged[0]
    # Nesting is cut off (the parser's max_depth): no 10,000-deep answer.
    bs = untagged[0].split(b"BODYSTRUCTURE ", 1)[1]
    assert len(bs) - len(bs.lstrip(b"(")) <= 200, bs[:300]
    assert len(untagged[0]) < 200000
    _, tagged = c.cmd("FETCH 1 (BODY[1.1.1.1] BINARY.SIZE[1])")
    assert status(tagged) in (b"OK", b"NO", b"BAD"), tagged
    assert alive(sec)


# ---- settings ------------------------------------------------------------------

@pytest.mark.parametrize("setting, message", [
    ("plaintext_auth = sometimes", "plaintext_auth"),
    ("plaintext_auth = loopback,imap4=always", "plaintext_auth"),
    ("secure_networks = 10.0.0.0/33", "secure_networks"),
    ("throttle_exempt = example.com", "throttle_exempt"),
    ("proxy_protocol = imap", "proxy_trusted is empty"),
    ("proxy_protocol = smtp\nproxy_trusted = 10.0.0.0/8", "proxy_protocol"),
])
def test_invalid_security_settings_refused(tmp_path, setting, message):
    from conftest import BIN
    conf = tmp_path / "frontend.conf"
    conf.write_text(f"workers = 1\nimap_listen = 127.0.0.1:0\npop3_listen =\nlmtp_listen =\n{setting}\n")
    r = subprocess.run([str(BIN / "petrel-frontend"), "--config", str(conf)], capture_output=True,
                       text=True, env=clean_env(), timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
