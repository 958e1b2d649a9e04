"""The servers under Valgrind's memcheck. A cluster whose frontend and
backend (supervisors and workers) run under it serves IMAP in cleartext
and over TLS, POP3 and LMTP along the paths that parse, stream and store,
and memcheck must report no error: no invalid read or write, no use of an
uninitialised value, no bad free. Leaks are left to the unit tests' memcheck
run (tests/run), as servers stopped mid-session hold memory on purpose.

A sanitizer build (make test SAN=1) cannot run under Valgrind: conftest.py
leaves this file out there."""

import imaplib
import poplib
import smtplib
import ssl
from pathlib import Path

import pytest

from conftest import BIN, _finish, cluster_up

MSG = (b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: memcheck\r\n"
       b"Message-ID: <vg@example.com>\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
       b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello memcheck\r\n"
       b"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       b"AAECAwQFBgcICQ==\r\n--b1--\r\n")
# Over one RPC chunk (rpc_chunk, 256 KiB): APPEND, FETCH and LMTP stream it.
BIG = MSG.replace(b"Hello memcheck\r\n", b"Hello memcheck\r\n" + (b"0123456789abcdef" * 4 + b"\r\n") * 5000)


@pytest.fixture
def memcheck(request, tmp_path):
    """(cluster, directory of memcheck's logs, one per process)."""
    logs = tmp_path / "valgrind"
    logs.mkdir()
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    for name in ("petrel-frontend", "petrel-backend"):
        w = wrappers / name
        w.write_text(f'#!/bin/sh\nexec valgrind -q --log-file="{logs}/{name}-%p.log" '
                     f'"{BIN / name}" "$@"\n')
        w.chmod(0o755)
    (wrappers / "petrel-admin").symlink_to(BIN / "petrel-admin")
    failed_before = request.session.testsfailed
    c = cluster_up(prefix="valgrind-", env={"PETREL_CLUSTER_BIN": str(wrappers)})
    try:
        yield c, logs
    finally:
        _finish(request, c, failed_before)


def imap_session(m, address, password):
    m.login(address, password)
    for body in (MSG, BIG):
        assert m.append("INBOX", None, None, body)[0] == "OK"
    assert m.create("Other")[0] == "OK"
    m.select("INBOX")
    typ, data = m.fetch("1:2", "(FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[1] BINARY.PEEK[2] "
                               "BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert typ == "OK" and b"Hello memcheck" in data[0][1], data
    typ, data = m.fetch("2", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == BIG
    assert m.search(None, "BODY", "memcheck")[1] == [b"1 2"]
    assert m.store("1", "+FLAGS", "\\Seen")[0] == "OK"
    assert m.copy("1:2", "Other")[0] == "OK"
    assert m.store("2", "+FLAGS", "\\Deleted")[0] == "OK"
    assert m.expunge()[1] == [b"2"]
    assert m.list()[0] == "OK"
    m.logout()


def test_servers_run_clean_under_memcheck(memcheck):
    cluster, logs = memcheck
    address, password = cluster.new_account()
    imap_session(imaplib.IMAP4("127.0.0.1", cluster.imap_ports[0], timeout=60), address, password)
    tls = ssl.create_default_context(cafile=cluster.tls_ca)
    imap_session(imaplib.IMAP4_SSL("127.0.0.1", cluster.imaps_ports[0], ssl_context=tls, timeout=60),
                 *cluster.new_account())
    with smtplib.LMTP("127.0.0.1", cluster.lmtp_ports[0], timeout=60) as lmtp:
        assert lmtp.sendmail("x@example.com", [address], MSG) == {}
        assert lmtp.sendmail("x@example.com", [address], BIG) == {}
    pop = poplib.POP3("127.0.0.1", cluster.pop3_ports[0], timeout=60)
    pop.user(address)
    pop.pass_(password)
    assert pop.stat()[0] == 3
    # LMTP adds Return-Path and Received in front.
    assert (b"\r\n".join(pop.retr(3)[1]) + b"\r\n").endswith(BIG)
    pop.quit()
    cluster.down()   # memcheck writes a process's errors by its exit at the latest
    reports = {p.name: p.read_text() for p in sorted(logs.glob("*.log")) if p.read_text().strip()}
    assert len(list(logs.glob("petrel-frontend-*.log"))) >= 2, "no frontend worker ran under memcheck"
    assert len(list(logs.glob("petrel-backend-*.log"))) >= 2, "no backend worker ran under memcheck"
    assert not reports, "memcheck reports:\n" + "\n".join(f"{k}:\n{v}" for k, v in reports.items())
