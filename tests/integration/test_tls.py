"""TLS: implicit TLS (imaps, pop3s), STARTTLS and STLS, protocol versions,
STARTTLS command injection (CVE-2011-0411) and certificate reload on SIGHUP.

Clients trust only the cluster's test CA (PETREL_TLS_CA) and check the host
name against the certificate (IP:127.0.0.1 and DNS:localhost).
"""

import imaplib
import os
import poplib
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from imap_util import Imap

TIMEOUT = 30
HOST = "127.0.0.1"
ROOT_BIN = Path(os.environ.get("PETREL_CLUSTER_BIN") or Path(__file__).resolve().parents[2] / "bin")


# ---- helpers ---------------------------------------------------------------

def client_context(cluster, **kw):
    ctx = ssl.create_default_context(cafile=cluster.tls_ca)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def tls_connect(cluster, port, hostname="localhost", ctx=None):
    """A TLS socket to 127.0.0.1:port verified for `hostname`."""
    ctx = ctx or client_context(cluster)
    raw = socket.create_connection((HOST, port), timeout=TIMEOUT)
    try:
        return ctx.wrap_socket(raw, server_hostname=hostname)
    except BaseException:
        raw.close()
        raise


def serial_of(cluster, port):
    """The serial number (hex) of the certificate a new connection gets."""
    with tls_connect(cluster, port) as s:
        return s.getpeercert()["serialNumber"]


class Lines:
    """Line reader over a socket that can be swapped for its TLS wrapper."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"closed; pending {self.buf!r}")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data):
        self.sock.sendall(data)

    def until(self, prefix):
        """Lines up to and including the first starting with prefix."""
        out = []
        while True:
            out.append(self.line())
            if out[-1].startswith(prefix):
                return out


def caps_of(line):
    """The capability words of a greeting, a CAPABILITY response or an OK
    [CAPABILITY ...] line."""
    text = line.decode() if isinstance(line, bytes) else line
    if "[CAPABILITY " in text:
        text = text.split("[CAPABILITY ", 1)[1].split("]", 1)[0]
    elif text.startswith("* CAPABILITY "):
        text = text[len("* CAPABILITY "):]
    return text.upper().split()


# ---- implicit TLS ------------------------------------------------------------

def test_imaps_login(cluster, new_account):
    assert cluster.tls_ca and cluster.imaps_ports
    user, password = new_account()
    ctx = client_context(cluster)
    for port in cluster.imaps_ports:
        with imaplib.IMAP4_SSL(HOST, port, ssl_context=ctx, timeout=TIMEOUT) as m:
            assert "STARTTLS" not in caps_of(m.welcome)
            assert "STARTTLS" not in m.capabilities
            assert m.login(user, password)[0] == "OK"
            typ, data = m.select("INBOX")
            assert typ == "OK"
            assert m.noop()[0] == "OK"
            assert m.sock.version() in ("TLSv1.2", "TLSv1.3")


def test_imaps_hostname_localhost(cluster):
    with tls_connect(cluster, cluster.imaps_ports[0], hostname="localhost") as s:
        f = Lines(s)
        assert f.line().startswith(b"* OK ")
        s.sendall(b"a LOGOUT\r\n")
        assert f.until(b"a ")[-1].startswith(b"a OK")


def test_imaps_wrong_hostname_rejected(cluster):
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(cluster, cluster.imaps_ports[0], hostname="mail.example.invalid").close()


def test_pop3s_login(cluster, new_account):
    assert cluster.pop3s_ports
    user, password = new_account()
    ctx = client_context(cluster)
    for port in cluster.pop3s_ports:
        p = poplib.POP3_SSL(HOST, port, context=ctx, timeout=TIMEOUT)
        try:
            assert p.getwelcome().startswith(b"+OK")
            assert "STLS" not in p.capa()
            p.user(user)
            assert p.pass_(password).startswith(b"+OK")
            assert p.stat() == (0, 0)
        finally:
            p.quit()


# ---- STARTTLS / STLS ----------------------------------------------------------

def test_imap_starttls(cluster, new_account):
    user, password = new_account()
    ctx = client_context(cluster)
    with imaplib.IMAP4(HOST, cluster.imap_ports[0], timeout=TIMEOUT) as m:
        assert "STARTTLS" in caps_of(m.welcome)
        assert "STARTTLS" in m.capabilities
        typ, _ = m.starttls(ssl_context=ctx)   # re-reads CAPABILITY over TLS
        assert typ == "OK"
        assert "STARTTLS" not in m.capabilities
        typ, data = m.capability()
        assert "STARTTLS" not in data[0].decode().upper().split()
        assert m.login(user, password)[0] == "OK"
        assert m.select("INBOX")[0] == "OK"


def test_pop3_stls(cluster, new_account):
    user, password = new_account()
    ctx = client_context(cluster)
    p = poplib.POP3(HOST, cluster.pop3_ports[0], timeout=TIMEOUT)
    try:
        assert "STLS" in p.capa()
        assert p.stls(context=ctx).startswith(b"+OK")
        assert "STLS" not in p.capa()
        p.user(user)
        assert p.pass_(password).startswith(b"+OK")
        assert p.stat() == (0, 0)
        assert "STLS" not in p.capa()
    finally:
        p.quit()


def s_client(cluster, proto, port, script):
    r = subprocess.run(
        ["openssl", "s_client", "-starttls", proto, "-connect", f"{HOST}:{port}",
         "-CAfile", cluster.tls_ca, "-verify_return_error", "-verify_hostname", "localhost",
         "-quiet"],
        input=script, capture_output=True, timeout=TIMEOUT)
    return r.returncode, r.stdout, r.stderr


def test_openssl_s_client_starttls_imap(cluster, new_account):
    user, password = new_account()
    rc, out, err = s_client(cluster, "imap", cluster.imap_ports[0],
                            f"x1 LOGIN {user} {password}\r\nx2 NOOP\r\nx3 LOGOUT\r\n".encode())
    assert rc == 0, err
    assert b"x1 OK" in out and b"x2 OK" in out and b"x3 OK" in out, (out, err)


def test_openssl_s_client_starttls_pop3(cluster, new_account):
    user, password = new_account()
    rc, out, err = s_client(cluster, "pop3", cluster.pop3_ports[0],
                            f"USER {user}\r\nPASS {password}\r\nSTAT\r\nQUIT\r\n".encode())
    assert rc == 0, err
    assert b"+OK 0 0" in out, (out, err)


def test_capability_after_starttls_has_no_starttls(cluster):
    ctx = client_context(cluster)
    with Imap(cluster.imap_ports[0]) as c:
        assert "STARTTLS" in caps_of(c.greeting)
        untagged, tagged = c.cmd("CAPABILITY")
        assert "STARTTLS" in caps_of(untagged[0])
        assert c.cmd("STARTTLS")[1].startswith(b"t2 OK")
        assert c.buf == b""
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        untagged, tagged = c.cmd("CAPABILITY")
        assert tagged.startswith(b"t3 OK")
        caps = caps_of(untagged[0])
        assert "IMAP4REV1" in caps and "STARTTLS" not in caps


def test_starttls_after_login_is_bad(cluster, new_account):
    user, password = new_account()
    with Imap(cluster.imap_ports[0]) as c:
        c.login(user, password)
        untagged, _ = c.cmd("CAPABILITY")
        assert "STARTTLS" not in caps_of(untagged[0])
        _, tagged = c.cmd("STARTTLS")
        assert tagged.split(b" ", 2)[1] == b"BAD", tagged
        c.ok("NOOP")   # still a working cleartext session


def test_starttls_twice_is_bad(cluster):
    ctx = client_context(cluster)
    with Imap(cluster.imap_ports[0]) as c:
        assert c.cmd("STARTTLS")[1].startswith(b"t1 OK")
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        _, tagged = c.cmd("STARTTLS")
        assert tagged.split(b" ", 2)[1] == b"BAD", tagged
        c.ok("NOOP")


def test_starttls_on_imaps_is_bad(cluster):
    with tls_connect(cluster, cluster.imaps_ports[0]) as s:
        f = Lines(s)
        f.line()
        s.sendall(b"a STARTTLS\r\nb NOOP\r\n")
        assert f.until(b"a ")[-1].startswith(b"a BAD")
        assert f.until(b"b ")[-1].startswith(b"b OK")


def test_stls_twice_and_on_pop3s(cluster):
    ctx = client_context(cluster)
    with tls_connect(cluster, cluster.pop3s_ports[0]) as s:
        f = Lines(s)
        assert f.line().startswith(b"+OK")
        s.sendall(b"STLS\r\n")
        assert f.line().startswith(b"-ERR")
    raw = socket.create_connection((HOST, cluster.pop3_ports[0]), timeout=TIMEOUT)
    f = Lines(raw)
    f.line()
    raw.sendall(b"STLS\r\n")
    assert f.line().startswith(b"+OK")
    f.sock = ctx.wrap_socket(raw, server_hostname="localhost")
    f.send(b"STLS\r\n")
    assert f.line().startswith(b"-ERR")
    f.send(b"QUIT\r\n")
    assert f.line().startswith(b"+OK")
    f.sock.close()


# ---- STARTTLS command injection (CVE-2011-0411) -------------------------------

def test_imap_starttls_injection_is_dropped(cluster):
    ctx = client_context(cluster)
    raw = socket.create_connection((HOST, cluster.imap_ports[0]), timeout=TIMEOUT)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = Lines(raw)
    assert f.line().startswith(b"* OK")
    raw.sendall(b"A STARTTLS\r\nB NOOP\r\n")   # one packet
    assert f.line().startswith(b"A OK")
    assert f.buf == b""   # B was not answered in cleartext either
    f.sock = ctx.wrap_socket(raw, server_hostname="localhost")
    f.send(b"C NOOP\r\n")
    lines = f.until(b"C ")
    f.send(b"D NOOP\r\n")
    lines += f.until(b"D ")
    assert not any(x.startswith(b"B ") for x in lines), lines
    assert lines[-1].startswith(b"D OK") and any(x.startswith(b"C OK") for x in lines)
    f.sock.close()


def test_imap_starttls_injected_literal_is_dropped(cluster):
    """An injected command that is still incomplete (a literal announced)
    must not leave the reader half-way: inside TLS a new command starts."""
    ctx = client_context(cluster)
    raw = socket.create_connection((HOST, cluster.imap_ports[0]), timeout=TIMEOUT)
    f = Lines(raw)
    f.line()
    raw.sendall(b"A STARTTLS\r\nB LOGIN {5+}\r\nab")
    assert f.line().startswith(b"A OK")
    f.sock = ctx.wrap_socket(raw, server_hostname="localhost")
    f.send(b"C NOOP\r\n")
    lines = f.until(b"C ")
    assert lines == [lines[-1]] and lines[-1].startswith(b"C OK"), lines
    f.sock.close()


def test_pop3_stls_injection_is_dropped(cluster):
    ctx = client_context(cluster)
    raw = socket.create_connection((HOST, cluster.pop3_ports[0]), timeout=TIMEOUT)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = Lines(raw)
    assert f.line().startswith(b"+OK")
    raw.sendall(b"STLS\r\nCAPA\r\n")
    assert f.line().startswith(b"+OK")
    assert f.buf == b""
    f.sock = ctx.wrap_socket(raw, server_hostname="localhost")
    f.send(b"USER probe@example.com\r\n")
    # The first line inside TLS answers USER, not an injected CAPA.
    assert f.line() == b"+OK"
    f.send(b"QUIT\r\n")
    assert f.line().startswith(b"+OK")
    f.sock.close()


def test_cleartext_after_starttls_breaks_handshake(cluster):
    """Bytes sent in cleartext after the OK (not pipelined with STARTTLS)
    reach the TLS layer as garbage: the connection ends, nothing runs."""
    raw = socket.create_connection((HOST, cluster.imap_ports[0]), timeout=TIMEOUT)
    f = Lines(raw)
    f.line()
    raw.sendall(b"A STARTTLS\r\n")
    assert f.line().startswith(b"A OK")
    raw.sendall(b"B NOOP\r\n")
    raw.settimeout(10)
    data = b""
    try:
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionError:
        pass
    assert b"B OK" not in data and b"B " not in data[:2]
    raw.close()


# ---- protocol versions --------------------------------------------------------

def _handshake(cluster, port, version, seclevel0=False):
    ctx = client_context(cluster)
    ctx.minimum_version = version
    ctx.maximum_version = version
    if seclevel0:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    with tls_connect(cluster, port, ctx=ctx) as s:
        return s.version()


@pytest.mark.parametrize("kind", ["imaps", "pop3s"])
def test_tls12_and_tls13_accepted(cluster, kind):
    port = getattr(cluster, f"{kind}_ports")[0]
    assert _handshake(cluster, port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(cluster, port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_refused(cluster, version):
    v = getattr(ssl.TLSVersion, version)
    # The same client settings do work with TLS 1.2: the refusal is the server's.
    assert _handshake(cluster, cluster.imaps_ports[0], ssl.TLSVersion.TLSv1_2, True) == "TLSv1.2"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(cluster, cluster.imaps_ports[0], v, seclevel0=True)


def test_old_tls_refused_openssl_cli(cluster):
    r = subprocess.run(
        ["openssl", "s_client", "-connect", f"{HOST}:{cluster.imaps_ports[0]}", "-tls1_1",
         "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", cluster.tls_ca],
        input=b"", capture_output=True, timeout=TIMEOUT)
    assert r.returncode != 0
    assert b"alert protocol version" in r.stderr, r.stderr   # the server said no


def test_handshake_garbage_closes(cluster):
    raw = socket.create_connection((HOST, cluster.imaps_ports[0]), timeout=TIMEOUT)
    raw.sendall(b"a LOGIN x y\r\n")   # cleartext on a TLS port
    raw.settimeout(10)
    data = b""
    try:
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionError:
        pass
    assert b"OK" not in data and b"BAD" not in data
    raw.close()


# ---- big transfers: records bigger than one read, pending bytes ----------------

def test_imaps_large_pipelined_input(cluster, new_account):
    """Many commands in one TLS write: OpenSSL holds more decrypted bytes than
    one read takes; all of them must be answered without further input."""
    user, password = new_account()
    with tls_connect(cluster, cluster.imaps_ports[0]) as s:
        f = Lines(s)
        f.line()
        n = 2000
        s.sendall(f"l LOGIN {user} {password}\r\n".encode() +
                  b"".join(f"n{i} NOOP\r\n".encode() for i in range(n)))
        assert f.until(b"l ")[-1].startswith(b"l OK")
        last = f.until(f"n{n - 1} ".encode())
        assert last[-1].startswith(f"n{n - 1} OK".encode())


def test_imaps_large_append_and_fetch(cluster, new_account):
    user, password = new_account()
    body = b"Subject: big\r\n\r\n" + b"".join(
        b"line %06d " % i + b"x" * 60 + b"\r\n" for i in range(20000))   # ~1.4 MB
    ctx = client_context(cluster)
    with imaplib.IMAP4_SSL(HOST, cluster.imaps_ports[0], ssl_context=ctx, timeout=TIMEOUT) as m:
        m.login(user, password)
        assert m.append("INBOX", None, None, body)[0] == "OK"
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK"
        assert data[0][1] == body


# ---- SIGHUP: new certificate for new connections, old sessions go on -------------

def make_cert(tls_dir, name):
    """A new server certificate for 127.0.0.1/localhost signed by the test CA;
    returns (cert path, key path)."""
    key, csr, crt = (os.path.join(tls_dir, f"{name}.{x}") for x in ("key", "csr", "pem"))
    ext = os.path.join(tls_dir, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(tls_dir, "ca.pem"),
        "-CAkey", os.path.join(tls_dir, "ca.key"), "-set_serial",
        str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-extfile", ext, "-out", crt)
    return crt, key


def wait_for_serial(cluster, port, serial, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        got = serial_of(cluster, port)
        if got == serial or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_sighup_reloads_certificate(cluster_factory):
    c = cluster_factory(frontends=1, backends=1)
    user, password = c.new_account()
    tls_dir = os.path.join(c.dir, "tls")
    port, pop_port = c.imaps_ports[0], c.pop3s_ports[0]
    old_serial = serial_of(c, port)

    # Sessions opened before the reload, one per worker if we are lucky.
    ctx = client_context(c)
    before = [imaplib.IMAP4_SSL(HOST, port, ssl_context=ctx, timeout=TIMEOUT) for _ in range(4)]
    for m in before:
        assert m.login(user, password)[0] == "OK"
    starttls = Imap(c.imap_ports[0])
    assert starttls.cmd("STARTTLS")[1].split(b" ")[1] == b"OK"
    starttls.sock = ctx.wrap_socket(starttls.sock, server_hostname="localhost")

    crt, key = make_cert(tls_dir, "reloaded")
    new_serial = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-serial"],
                                check=True, capture_output=True, text=True
                                ).stdout.strip().split("=", 1)[1]
    os.replace(key, os.path.join(tls_dir, "server.key"))
    os.replace(crt, os.path.join(tls_dir, "server.pem"))
    os.kill(c.frontend_pids[0], signal.SIGHUP)

    assert wait_for_serial(c, port, new_serial).lstrip("0") == new_serial.lstrip("0")
    # Every worker reloaded: many new connections, all with the new certificate.
    for _ in range(12):
        assert serial_of(c, port).lstrip("0") == new_serial.lstrip("0")
        assert serial_of(c, pop_port).lstrip("0") == new_serial.lstrip("0")
    assert old_serial != new_serial

    # Sessions from before go on, on their old context.
    for m in before:
        assert m.sock.getpeercert()["serialNumber"] == old_serial
        assert m.noop()[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
        m.logout()
    starttls.ok("NOOP")
    starttls.login(user, password)
    starttls.close()

    # The supervisor and its workers survived the signal.
    os.kill(c.frontend_pids[0], 0)

    # A broken file on reload keeps the current certificate.
    with open(os.path.join(tls_dir, "server.pem"), "w") as f:
        f.write("not a certificate\n")
    os.kill(c.frontend_pids[0], signal.SIGHUP)
    time.sleep(1)
    for _ in range(4):
        assert serial_of(c, port).lstrip("0") == new_serial.lstrip("0")
    with imaplib.IMAP4_SSL(HOST, port, ssl_context=ctx, timeout=TIMEOUT) as m:
        assert m.login(user, password)[0] == "OK"


# ---- SNI: extra certificates chosen by server name (tls_certs) ----------------

def test_sni_selects_certificate(tmp_path):
    """A frontend of its own (no backend needed for the handshake) with a
    default certificate and one extra for *.b.example.test."""
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60, cwd=tmp_path)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=SNI test CA", "-keyout", "ca.key", "-out", "ca.pem")
    for name in ("a", "b"):
        (tmp_path / f"{name}.ext").write_text(
            f"subjectAltName = DNS:{name}.example.test, DNS:*.{name}.example.test\n")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", str(10 + ord(name)), "-days", "2", "-extfile", f"{name}.ext",
            "-out", f"{name}.pem")
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    # Every other listener off (their defaults are fixed ports).
    usage = subprocess.run([str(ROOT_BIN / "petrel-frontend"), "--help"],
                           capture_output=True, text=True, timeout=30).stdout
    off = "".join(f"{w} =\n" for w in (line.split()[0] for line in usage.splitlines() if line)
                  if w.endswith("_listen") and w != "imaps_listen")
    conf = tmp_path / "frontend.conf"
    conf.write_text(
        f"workers = 1\n{off}"
        f"imaps_listen = {HOST}:{port}\nbackends = 127.0.0.1:1\n"
        f"tls_cert = {tmp_path}/a.pem\ntls_key = {tmp_path}/a.key\n"
        f"tls_certs = {tmp_path}/b.pem:{tmp_path}/b.key\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETREL_")}
    with open(tmp_path / "frontend.log", "wb") as log:
        proc = subprocess.Popen([str(ROOT_BIN / "petrel-frontend"), "--config", str(conf)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "frontend.log").read_text()
                assert time.monotonic() < deadline, "frontend did not listen"
                time.sleep(0.1)
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))

        def subject_for(server_name, check=True):
            c = ctx
            if not check:
                c = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
                c.check_hostname = False
            with socket.create_connection((HOST, port), timeout=TIMEOUT) as raw:
                with c.wrap_socket(raw, server_hostname=server_name) as t:
                    assert Lines(t).line().startswith(b"* OK")
                    return dict(x[0] for x in t.getpeercert()["subject"])["commonName"]

        assert subject_for("a.example.test") == "a"
        assert subject_for("imap.a.example.test") == "a"
        assert subject_for("b.example.test") == "b"
        assert subject_for("mail.b.example.test") == "b"
        assert subject_for("unknown.example.test", check=False) == "a"   # the default
    finally:
        proc.terminate()
        proc.wait(timeout=30)
