"""POP3 against a real cluster (RFC 1939, RFC 2449).

Messages are put into INBOX with the database function petrel_append (the
same one the backends use), so these tests depend only on the POP3 side.
Byte-exact checks use a raw socket client; curl checks interoperability.
"""

import base64
import socket
import subprocess
import time

import psycopg2
import pytest

from imap_util import Imap

TIMEOUT = 30


# ---- helpers ---------------------------------------------------------------

class Pop3:
    """A minimal byte-exact POP3 client."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """One response line without CRLF; raises EOFError when closed."""
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"connection closed; pending {self.buf[:200]!r}")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def multiline_raw(self):
        """The raw bytes of a multi-line body up to (without) the final .CRLF,
        still dot-stuffed."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                body, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return body
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("connection closed inside a multi-line response")
            self.buf += data

    def multiline(self):
        """A multi-line body, dot-unstuffed."""
        raw = self.multiline_raw()
        lines = raw.split(b"\r\n")
        assert lines[-1] == b""
        return b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in lines[:-1])

    def login(self, user, password):
        assert self.cmd(f"USER {user}").startswith(b"+OK")
        r = self.cmd(f"PASS {password}")
        assert r == b"+OK Logged in.", r
        return self

    def retr(self, n):
        r = self.cmd(f"RETR {n}")
        assert r.startswith(b"+OK"), r
        return r, self.multiline()

    def list(self):
        r = self.cmd("LIST")
        assert r.startswith(b"+OK"), r
        return {int(a): int(b) for a, b in (l.split() for l in self.multiline().splitlines())}

    def uidl(self):
        r = self.cmd("UIDL")
        assert r.startswith(b"+OK"), r
        return {int(a): b for a, b in (l.split() for l in self.multiline().splitlines())}

    def stat(self):
        r = self.cmd("STAT")
        ok, n, size = r.split()
        assert ok == b"+OK"
        return int(n), int(size)

    def closed(self, wait=TIMEOUT):
        """True once the server has closed the connection (after any pending
        lines, which are returned in self.rest)."""
        self.sock.settimeout(wait)
        rest = self.buf
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.rest = rest
                    return True
                rest += data
        except (ConnectionResetError, BrokenPipeError):
            self.rest = rest
            return True
        except socket.timeout:
            self.rest = rest
            return False

    def close(self):
        self.sock.close()


def header_size(data):
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            return i + len(sep)
    return len(data)


def account_id(cluster, address):
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("SELECT id FROM accounts WHERE address = %s", (address,))
        return cur.fetchone()[0]


def append(cluster, address, *messages, flags=0):
    """Appends messages (bytes) to the account's INBOX; returns their UIDs."""
    acct = account_id(cluster, address)
    uids = []
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        for m in messages:
            cur.execute("SELECT uid FROM petrel_append(%s, 'INBOX', %s, '{}', %s, 0, %s, %s)",
                        (acct, flags, int(time.time()), header_size(m), psycopg2.Binary(m)))
            uids.append(cur.fetchone()[0])
    return uids


def imap_append(cluster, address, password, *messages, mailbox="INBOX"):
    """Appends messages byte for byte through IMAP (so the backend counts
    their POP3 size, unlike petrel_append in SQL); imaplib would turn bare
    LF into CRLF."""
    with Imap(cluster.imap_ports[0]) as c:
        c.login(address, password)
        for m in messages:
            c.append_uid(mailbox, m)


def crlf(data):
    """What RETR sends for stored bytes, before dot-stuffing: bare LF as
    CRLF, an unterminated last line ended."""
    out = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if out and not out.endswith(b"\n"):
        out += b"\n" if out.endswith(b"\r") else b"\r\n"
    return out


def inbox_uids(cluster, address):
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("""SELECT m.uid, m.flags FROM messages m JOIN mailboxes b
                         ON b.account_id = m.account_id AND b.id = m.mailbox_id
                        WHERE m.account_id = %s AND b.name = 'INBOX' ORDER BY m.uid""",
                    (account_id(cluster, address),))
        return cur.fetchall()


def expunge_behind(cluster, address, uid):
    """Removes one message as another session (IMAP) would."""
    acct = account_id(cluster, address)
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("SELECT id FROM mailboxes WHERE account_id = %s AND name = 'INBOX'", (acct,))
        mbox = cur.fetchone()[0]
        cur.execute("SELECT * FROM petrel_expunge(%s, %s, %s, %s, false)",
                    (acct, mbox, [uid], [uid]))


def msg(subject, body="Hello.\r\n", eol="\r\n"):
    text = (f"From: a@example.com{eol}To: b@example.com{eol}Subject: {subject}{eol}"
            f"Message-ID: <{subject}@example.com>{eol}{eol}") + body
    return text.encode()


@pytest.fixture
def mailbox(cluster, new_account):
    """A fresh account with three CRLF messages: (address, password, msgs)."""
    address, password = new_account()
    msgs = [msg("one", "First.\r\n"), msg("two", "Second line one.\r\nline two.\r\n"),
            msg("three", "Third.\r\n")]
    append(cluster, address, *msgs)
    return address, password, msgs


def pop(cluster, i=0):
    return Pop3(cluster.pop3_ports[i])


# ---- AUTHORIZATION ---------------------------------------------------------

def test_greeting_and_capa(cluster):
    c = pop(cluster)
    assert c.greeting == b"+OK Petrel ready."
    assert c.cmd("CAPA").startswith(b"+OK")
    caps = c.multiline().decode().split("\r\n")
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE",
                "EXPIRE NEVER", "LOGIN-DELAY 0", "IMPLEMENTATION Petrel"):
        assert cap in caps
    assert c.cmd("QUIT").startswith(b"+OK")
    assert c.closed()


def test_capa_in_transaction(cluster, new_account):
    """RFC 2449 5: what AUTHORIZATION announced (EXPIRE and LOGIN-DELAY
    without USER: the same for everybody) is announced after login too."""
    address, password = new_account()
    c = pop(cluster).login(address, password)
    assert c.cmd("CAPA").startswith(b"+OK")
    caps = c.multiline().decode().split("\r\n")
    for cap in ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "EXPIRE NEVER", "LOGIN-DELAY 0"):
        assert cap in caps
    assert "STLS" not in caps
    c.cmd("QUIT")


def test_login_good_and_bad(cluster, new_account):
    address, password = new_account()
    c = pop(cluster)
    assert c.cmd("STAT").startswith(b"-ERR")             # needs login
    assert c.cmd("PASS x").startswith(b"-ERR")           # no USER yet
    assert c.cmd(f"USER {address}") == b"+OK"
    assert c.cmd("PASS wrong") == b"-ERR [AUTH] Authentication failed."
    assert c.cmd("USER nobody@example.com") == b"+OK"
    assert c.cmd("PASS wrong") == b"-ERR [AUTH] Authentication failed."
    assert c.cmd(f"user {address}") == b"+OK"            # keywords are case-insensitive
    assert c.cmd(f"pass {password}") == b"+OK Logged in."
    assert c.stat() == (0, 0)
    assert c.cmd("USER x").startswith(b"-ERR")           # no longer AUTHORIZATION
    assert c.cmd("QUIT").startswith(b"+OK")
    assert c.closed()


def test_auth_plain(cluster, new_account):
    address, password = new_account()
    c = pop(cluster)
    good = base64.b64encode(f"\0{address}\0{password}".encode()).decode()
    bad = base64.b64encode(f"\0{address}\0nope".encode()).decode()
    assert c.cmd(f"AUTH PLAIN {bad}") == b"-ERR [AUTH] Authentication failed."
    assert c.cmd("AUTH PLAIN") == b"+ "
    assert c.cmd(good) == b"+OK Logged in."
    assert c.stat() == (0, 0)
    c.cmd("QUIT")


def test_too_many_auth_failures_closes(cluster, new_account):
    address, _ = new_account()
    c = pop(cluster)
    for _ in range(3):
        assert c.cmd(f"USER {address}") == b"+OK"
        assert c.cmd("PASS wrong") == b"-ERR [AUTH] Authentication failed."
    assert c.closed()


# ---- TRANSACTION -----------------------------------------------------------

def test_stat_list_uidl_consistent(cluster, mailbox):
    address, password, msgs = mailbox
    c = pop(cluster).login(address, password)
    assert c.stat() == (3, sum(map(len, msgs)))
    sizes = c.list()
    assert sizes == {i + 1: len(m) for i, m in enumerate(msgs)}
    for n, size in sizes.items():
        assert c.cmd(f"LIST {n}") == f"+OK {n} {size}".encode()
    uidls = c.uidl()
    assert sorted(uidls) == [1, 2, 3] and len(set(uidls.values())) == 3
    for n, u in uidls.items():
        assert c.cmd(f"UIDL {n}") == f"+OK {n} ".encode() + u
    for n, m in enumerate(msgs, 1):
        r, body = c.retr(n)
        assert r == f"+OK {len(m)} octets".encode()
        assert body == m                                   # byte-identical
    assert c.cmd("LIST 4") == b"-ERR There's no message 4."
    assert c.cmd("LIST 0").startswith(b"-ERR")
    assert c.cmd("RETR x").startswith(b"-ERR")
    assert c.cmd("NOOP") == b"+OK"
    c.cmd("QUIT")


def test_retr_bare_lf_and_dots(cluster, new_account):
    address, password = new_account()
    lf = b"From: a@example.com\nSubject: lf\n\n.leading dot\nplain\n..two dots\n.\nend"
    crlf_msg = b"Subject: dots\r\n\r\n.\r\n.x\r\n..\r\nbare\rcr\r\nlast\r\n"
    imap_append(cluster, address, password, lf, crlf_msg)
    sent = (b"From: a@example.com\r\nSubject: lf\r\n\r\n.leading dot\r\nplain\r\n"
            b"..two dots\r\n.\r\nend\r\n")
    assert crlf(lf) == sent
    c = pop(cluster).login(address, password)
    # STAT, LIST and "+OK n octets" count what RETR sends (RFC 1939 11:
    # before dot-stuffing), not the stored bytes.
    assert c.stat() == (2, len(sent) + len(crlf_msg))
    assert c.list() == {1: len(sent), 2: len(crlf_msg)}
    assert c.cmd("LIST 1") == f"+OK 1 {len(sent)}".encode()
    r = c.cmd("RETR 1")
    assert r == f"+OK {len(sent)} octets".encode()
    raw = c.multiline_raw()
    # Bare LF sent as CRLF, leading dots doubled, CRLF added before the end.
    assert raw == (b"From: a@example.com\r\nSubject: lf\r\n\r\n..leading dot\r\nplain\r\n"
                   b"...two dots\r\n..\r\nend\r\n")
    r, body = c.retr(2)
    assert r == f"+OK {len(crlf_msg)} octets".encode()
    assert body == crlf_msg
    assert c.cmd("DELE 1").startswith(b"+OK")
    assert c.stat() == (1, len(crlf_msg))
    c.cmd("QUIT")


@pytest.mark.parametrize("body", [
    b"Subject: big\n\n" + b"".join(b"line %06d of a bare-LF body\n" % i for i in range(40000)),
    b"Subject: mixed\r\n\r\n" + b"crlf\r\nlf\nbare\rcr\r\n" * 40000 + b"ends with CR\r",
], ids=["streamed-lf", "streamed-mixed"])
def test_bare_lf_sizes_streamed_append(cluster, new_account, body):
    """A bare-LF message large enough that APPEND streams it (chunks written
    as they arrive, the count kept across frames)."""
    address, password = new_account()
    assert len(body) > 512 * 1024
    imap_append(cluster, address, password, body)
    c = pop(cluster, 1).login(address, password)
    want = crlf(body)
    assert c.stat() == (1, len(want))
    r, got = c.retr(1)
    assert r == f"+OK {len(want)} octets".encode()
    assert got == want
    c.cmd("QUIT")


def test_pop3_size_shared_and_fallback(cluster, new_account):
    """The POP3 size lives with the body: an IMAP COPY into INBOX keeps it.
    A body stored without it (here straight through SQL, as before migration
    009) reports its stored size."""
    address, password = new_account()
    lf = b"Subject: copied\n\nbare\nlines\n"
    with Imap(cluster.imap_ports[1]) as c:
        c.login(address, password)
        c.ok("CREATE Keep")
        c.append_uid("Keep", lf)
        c.select("Keep")
        c.ok("COPY 1 INBOX")
    old = b"Subject: old\n\nstored before\n"
    append(cluster, address, old)
    c = pop(cluster).login(address, password)
    assert c.list() == {1: len(crlf(lf)), 2: len(old)}
    assert c.retr(1)[1] == crlf(lf)
    c.cmd("QUIT")


def test_top(cluster, new_account):
    address, password = new_account()
    body = "".join(f"line {i}\r\n" for i in range(1, 11))
    m = msg("top", body)
    lf = b"Subject: lf\n\n.a\nb\nc\n"
    append(cluster, address, m, lf)
    head = m[:header_size(m)]
    c = pop(cluster).login(address, password)
    assert c.cmd("TOP 1 0") == b"+OK"
    assert c.multiline() == head
    assert c.cmd("TOP 1 3") == b"+OK"
    assert c.multiline() == head + b"line 1\r\nline 2\r\nline 3\r\n"
    assert c.cmd("TOP 1 100") == b"+OK"
    assert c.multiline() == m
    assert c.cmd("TOP 2 1") == b"+OK"
    assert c.multiline_raw() == b"Subject: lf\r\n\r\n..a\r\n"
    assert c.cmd("TOP 1").startswith(b"-ERR")
    assert c.cmd("TOP 1 x").startswith(b"-ERR")
    assert c.cmd("TOP 3 1").startswith(b"-ERR")
    c.cmd("QUIT")
    # TOP does not mark anything \Seen
    assert all(flags & 1 == 0 for _, flags in inbox_uids(cluster, address))


def test_dele_quit_deletes(cluster, mailbox):
    address, password, msgs = mailbox
    before = inbox_uids(cluster, address)
    c = pop(cluster).login(address, password)
    assert c.cmd("DELE 2") == b"+OK Marked to be deleted."
    assert c.cmd("DELE 2") == b"-ERR Message is deleted."
    assert c.cmd("RETR 2") == b"-ERR Message is deleted."
    assert c.cmd("LIST 2") == b"-ERR Message is deleted."
    assert c.stat() == (2, len(msgs[0]) + len(msgs[2]))
    assert sorted(c.list()) == [1, 3]                  # numbers do not shift
    assert sorted(c.uidl()) == [1, 3]
    r, body = c.retr(3)
    assert body == msgs[2]
    assert c.cmd("QUIT") == b"+OK Logging out, messages deleted."
    assert c.closed()
    after = inbox_uids(cluster, address)
    assert [u for u, _ in after] == [before[0][0], before[2][0]]
    # the RETR'd message became \Seen at QUIT, the other did not
    assert after[0][1] & 1 == 0 and after[1][1] & 1 == 1
    c = pop(cluster, 1).login(address, password)
    assert c.stat() == (2, len(msgs[0]) + len(msgs[2]))
    assert c.retr(2)[1] == msgs[2]
    c.cmd("QUIT")


def test_dele_then_drop_deletes_nothing(cluster, mailbox):
    address, password, msgs = mailbox
    c = pop(cluster).login(address, password)
    for n in (1, 2, 3):
        assert c.cmd(f"DELE {n}").startswith(b"+OK")
    assert c.stat() == (0, 0)
    # no QUIT: the client just goes away
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    time.sleep(0.3)
    assert len(inbox_uids(cluster, address)) == 3
    c = pop(cluster).login(address, password)
    assert c.stat()[0] == 3
    c.cmd("QUIT")


def test_rset(cluster, mailbox):
    address, password, msgs = mailbox
    c = pop(cluster).login(address, password)
    assert c.cmd("DELE 1").startswith(b"+OK")
    assert c.cmd("DELE 3").startswith(b"+OK")
    assert c.stat()[0] == 1
    assert c.cmd("RSET") == b"+OK"
    assert c.stat() == (3, sum(map(len, msgs)))
    assert c.retr(1)[1] == msgs[0]
    assert c.cmd("QUIT") == b"+OK Logging out."
    assert len(inbox_uids(cluster, address)) == 3


def test_uidl_stable_across_sessions_and_frontends(cluster, mailbox):
    address, password, msgs = mailbox
    assert len(cluster.pop3_ports) >= 2
    a = pop(cluster, 0).login(address, password)
    first = a.uidl()
    a.cmd("QUIT")
    b = pop(cluster, 1).login(address, password)
    assert b.uidl() == first
    b.cmd("DELE 1")
    b.cmd("QUIT")
    c = pop(cluster, 0).login(address, password)
    again = c.uidl()
    assert list(again.values()) == [first[2], first[3]]   # the same ids, renumbered
    append(cluster, address, msg("four"))
    c.cmd("QUIT")
    d = pop(cluster, 1).login(address, password)
    last = d.uidl()
    assert list(last.values())[:2] == [first[2], first[3]] and last[3] not in first.values()
    d.cmd("QUIT")


def test_message_expunged_by_another_session(cluster, mailbox):
    address, password, msgs = mailbox
    c = pop(cluster).login(address, password)
    uids = [u for u, _ in inbox_uids(cluster, address)]
    expunge_behind(cluster, address, uids[1])
    assert c.cmd("RETR 2") == b"-ERR Message was deleted by another session."
    assert c.cmd("TOP 2 0") == b"-ERR Message was deleted by another session."
    assert c.retr(1)[1] == msgs[0]                    # the session goes on
    assert c.cmd("DELE 2").startswith(b"+OK")
    assert c.cmd("QUIT").startswith(b"+OK")
    assert [u for u, _ in inbox_uids(cluster, address)] == [uids[0], uids[2]]


def test_large_retr(cluster, new_account):
    address, password = new_account()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.......\r\n"
    body = b"".join(b"%07d " % i + line for i in range(5 * 1024 * 1024 // len(line)))
    m = msg("large").replace(b"Hello.\r\n", b"") + body
    m += b".starts with a dot\r\n"
    append(cluster, address, m)
    c = pop(cluster).login(address, password)
    assert c.stat() == (1, len(m))
    r, got = c.retr(1)
    assert r == f"+OK {len(m)} octets".encode()
    assert len(got) == len(m) and got == m
    c.cmd("QUIT")


def test_slow_reader_large_retr(cluster, new_account):
    """A client that does not read: the frontend must not buffer the whole
    message (checked indirectly: the transfer completes once it reads)."""
    address, password = new_account()
    m = msg("slow") + b"x" * 998 + b"\r\n"
    m = m + (b"y" * 998 + b"\r\n") * 3000
    append(cluster, address, m)
    c = pop(cluster).login(address, password)
    c.send("RETR 1\r\nNOOP\r\n")
    time.sleep(1.0)
    r = c.line()
    assert r.startswith(b"+OK")
    assert c.multiline() == m
    assert c.line() == b"+OK"                          # pipelined NOOP answered after
    c.cmd("QUIT")


def test_pipelining(cluster, mailbox):
    address, password, msgs = mailbox
    c = pop(cluster)
    c.send(f"USER {address}\r\nPASS {password}\r\nSTAT\r\nLIST\r\nRETR 1\r\nTOP 2 1\r\n"
           "UIDL 3\r\nDELE 3\r\nNOOP\r\nRETR 3\r\nRSET\r\nSTAT\r\nQUIT\r\n")
    assert c.line() == b"+OK"
    assert c.line() == b"+OK Logged in."
    assert c.line() == f"+OK 3 {sum(map(len, msgs))}".encode()
    assert c.line().startswith(b"+OK")
    assert len(c.multiline().splitlines()) == 3
    assert c.line().startswith(b"+OK")
    assert c.multiline() == msgs[0]
    assert c.line() == b"+OK"
    assert c.multiline() == msgs[1][:header_size(msgs[1])] + b"Second line one.\r\n"
    assert c.line().startswith(b"+OK 3 ")
    assert c.line().startswith(b"+OK")
    assert c.line() == b"+OK"
    assert c.line() == b"-ERR Message is deleted."
    assert c.line() == b"+OK"
    assert c.line() == f"+OK 3 {sum(map(len, msgs))}".encode()
    assert c.line().startswith(b"+OK Logging out")
    assert c.closed()


def test_pipelined_quit_then_close(cluster, mailbox):
    """QUIT followed at once by the client's close still deletes (UPDATE
    state is entered when QUIT is read)."""
    address, password, msgs = mailbox
    c = pop(cluster).login(address, password)
    c.send("DELE 1\r\nQUIT\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.line().startswith(b"+OK")
    assert c.line().startswith(b"+OK Logging out")
    assert c.closed()
    assert len(inbox_uids(cluster, address)) == 2


# ---- limits and errors -----------------------------------------------------

def test_overlong_line_then_valid_command(cluster, mailbox):
    address, password, msgs = mailbox
    c = pop(cluster).login(address, password)
    c.send("NOOP " + "x" * 100000 + "\r\n")
    assert c.line() == b"-ERR Line too long."
    assert c.cmd("STAT")[:5] == b"+OK 3"
    c.send("LIST " + "9" * 600 + "\r\nNOOP\r\n")
    assert c.line() == b"-ERR Line too long."
    assert c.line() == b"+OK"
    c.cmd("QUIT")


def test_unknown_and_bad_commands(cluster, new_account):
    c = pop(cluster)
    assert c.cmd("FOO") == b"-ERR Unknown command."
    assert c.cmd("") .startswith(b"-ERR")
    assert c.cmd("RETR 1").startswith(b"-ERR")
    assert c.cmd("CAPA").startswith(b"+OK")
    c.multiline()
    for _ in range(7):
        c.send("XYZZ\r\n")
    for _ in range(7):
        c.line()
    assert c.closed()
    assert b"-ERR" in c.rest


def test_lf_only_commands(cluster, mailbox):
    address, password, msgs = mailbox
    c = pop(cluster)
    c.send(f"USER {address}\nPASS {password}\nSTAT\n")
    assert c.line() == b"+OK"
    assert c.line() == b"+OK Logged in."
    assert c.line().startswith(b"+OK 3 ")
    c.cmd("QUIT")


# ---- curl ------------------------------------------------------------------

def curl(*args):
    return subprocess.run(["curl", "-s", "-S", "--max-time", "30", *args],
                          capture_output=True, timeout=60)


def test_curl_list_and_retrieve(cluster, mailbox):
    address, password, msgs = mailbox
    port = cluster.pop3_ports[0]
    r = curl(f"pop3://127.0.0.1:{port}/", "-u", f"{address}:{password}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\r\n")[:3] == [f"{i + 1} {len(m)}" for i, m in enumerate(msgs)]
    r = curl(f"pop3://127.0.0.1:{port}/2", "-u", f"{address}:{password}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == msgs[1]
    r = curl(f"pop3://127.0.0.1:{port}/1", "-u", f"{address}:nope")
    assert r.returncode != 0
    # curl's custom request: DELE through -X, then the message is gone
    r = curl(f"pop3://127.0.0.1:{cluster.pop3_ports[1]}/1", "-u", f"{address}:{password}",
             "-X", "DELE", "-I")
    assert r.returncode == 0, r.stderr
    assert len(inbox_uids(cluster, address)) == 2


def test_curl_custom_commands(cluster, mailbox):
    """curl's -X sends a custom command and prints its multi-line answer."""
    address, password, msgs = mailbox
    url = f"pop3://127.0.0.1:{cluster.pop3_ports[0]}/"
    user = ["-u", f"{address}:{password}"]
    r = curl(url, *user, "-X", "TOP 1 0")
    assert r.returncode == 0, r.stderr
    assert r.stdout == msgs[0][:header_size(msgs[0])]
    r = curl(url, *user, "-X", "TOP 2 1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == msgs[1][:header_size(msgs[1])] + b"Second line one.\r\n"
    r = curl(url, *user, "-X", "UIDL")
    assert r.returncode == 0, r.stderr
    assert [l.split()[0] for l in r.stdout.splitlines()] == [b"1", b"2", b"3"]
    r = curl(url, *user, "-X", "CAPA")
    assert r.returncode == 0, r.stderr
    assert b"EXPIRE NEVER\r\n" in r.stdout and b"LOGIN-DELAY 0\r\n" in r.stdout
    # TOP needs a line count: -ERR, which curl reports as a failure.
    r = curl(url + "1", *user, "-X", "TOP")
    assert r.returncode != 0
    # TOP marks nothing \Seen.
    assert all(flags & 1 == 0 for _, flags in inbox_uids(cluster, address))


def test_backends_down(cluster_factory):
    """With every backend gone: login fails with [SYS/TEMP]; a logged-in
    session keeps its maildrop listing, RETR fails cleanly and QUIT says that
    nothing was deleted."""
    import os
    import signal
    c = cluster_factory(frontends=1, backends=1)
    address, password = c.new_account()
    append(c, address, msg("a"), msg("b"))
    s = Pop3(c.pop3_ports[0]).login(address, password)
    for pid in c.backend_pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            for pid in c.backend_pids:
                os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    assert s.stat()[0] == 2
    assert sorted(s.list()) == [1, 2]
    assert s.cmd("RETR 1").startswith(b"-ERR [SYS/TEMP]")
    assert s.cmd("DELE 1").startswith(b"+OK")
    assert s.cmd("QUIT").startswith(b"-ERR [SYS/TEMP]")
    assert s.closed()
    n = Pop3(c.pop3_ports[0])
    assert n.cmd(f"USER {address}") == b"+OK"
    assert n.cmd(f"PASS {password}").startswith(b"-ERR [SYS/TEMP]")
    assert n.cmd("QUIT").startswith(b"+OK")


# ---- AUTH LOGIN (RFC 5034 with the LOGIN mechanism) -------------------------

def b64(text):
    return base64.b64encode(text.encode()).decode()


def poplib_client(cluster):
    import poplib
    return poplib.POP3("127.0.0.1", cluster.pop3_ports[0], timeout=TIMEOUT)


def test_auth_login_advertised(cluster):
    c = pop(cluster)
    assert c.cmd("CAPA").startswith(b"+OK")
    caps = c.multiline().decode().split("\r\n")
    assert "SASL PLAIN LOGIN" in caps
    assert c.cmd("AUTH") == b"+OK"          # the pre-RFC 5034 mechanism list
    assert c.multiline() == b"PLAIN\r\nLOGIN\r\n"
    c.cmd("QUIT")


def test_auth_login_challenges(cluster, new_account):
    """AUTH LOGIN without an initial response: Username:, then Password:."""
    address, password = new_account()
    p = poplib_client(cluster)
    p._putcmd("AUTH LOGIN")
    assert p._getresp() == b"+ VXNlcm5hbWU6"       # "Username:"
    p._putcmd(b64(address))
    assert p._getresp() == b"+ UGFzc3dvcmQ6"       # "Password:"
    assert p._shortcmd(b64(password)) == b"+OK Logged in."
    assert p.stat() == (0, 0)
    p.quit()


def test_auth_login_initial_response(cluster, new_account):
    """AUTH LOGIN <user>: only the Password prompt follows; lower-case works."""
    address, password = new_account()
    p = poplib_client(cluster)
    p._putcmd(f"auth login {b64(address)}")
    assert p._getresp() == b"+ UGFzc3dvcmQ6"
    assert p._shortcmd(b64(password)) == b"+OK Logged in."
    assert p.stat() == (0, 0)
    p.quit()


def test_auth_login_wrong_password(cluster, new_account):
    import poplib
    address, password = new_account()
    p = poplib_client(cluster)
    p._putcmd(f"AUTH LOGIN {b64(address)}")
    assert p._getresp() == b"+ UGFzc3dvcmQ6"
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] Authentication failed\."):
        p._shortcmd(b64("wrong"))
    # The user name of the failed exchange is not kept for a bare PASS.
    with pytest.raises(poplib.error_proto, match="No username given"):
        p._shortcmd(f"PASS {password}")
    p._putcmd("AUTH LOGIN")
    assert p._getresp() == b"+ VXNlcm5hbWU6"
    p._putcmd(b64(address))
    assert p._getresp() == b"+ UGFzc3dvcmQ6"
    assert p._shortcmd(b64(password)) == b"+OK Logged in."
    p.quit()


def test_auth_login_cancel_and_bad_base64(cluster, new_account):
    import poplib
    address, password = new_account()
    p = poplib_client(cluster)
    # Cancelled at the user name prompt.
    p._putcmd("AUTH LOGIN")
    assert p._getresp() == b"+ VXNlcm5hbWU6"
    with pytest.raises(poplib.error_proto, match=r"-ERR Authentication aborted"):
        p._shortcmd("*")
    # Cancelled at the password prompt: the user name is forgotten.
    p._putcmd(f"AUTH LOGIN {b64(address)}")
    assert p._getresp() == b"+ UGFzc3dvcmQ6"
    with pytest.raises(poplib.error_proto, match=r"-ERR Authentication aborted"):
        p._shortcmd("*")
    with pytest.raises(poplib.error_proto, match="No username given"):
        p._shortcmd(f"PASS {password}")
    # Bad base64: as initial response, as user name and as password.
    with pytest.raises(poplib.error_proto, match=r"-ERR Invalid base64"):
        p._shortcmd("AUTH LOGIN !!!")
    p._putcmd("AUTH LOGIN")
    assert p._getresp() == b"+ VXNlcm5hbWU6"
    with pytest.raises(poplib.error_proto, match=r"-ERR Invalid base64"):
        p._shortcmd("abc")
    p._putcmd(f"AUTH LOGIN {b64(address)}")
    assert p._getresp() == b"+ UGFzc3dvcmQ6"
    with pytest.raises(poplib.error_proto, match=r"-ERR Invalid base64"):
        p._shortcmd("@@@@")
    # Still in AUTHORIZATION and usable (no [AUTH] failure was counted).
    assert p._shortcmd(f"AUTH LOGIN {b64(address)}") == b"+ UGFzc3dvcmQ6"
    assert p._shortcmd(b64(password)) == b"+OK Logged in."
    p.quit()
