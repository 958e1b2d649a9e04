"""LMTP delivery against a real cluster (RFC 2033, RFC 2920 PIPELINING,
RFC 2034 ENHANCEDSTATUSCODES, RFC 1870 SIZE).

Messages go in over LMTP (a byte-exact raw client, Python's smtplib.LMTP
and swaks) and are read back over IMAP, so a delivery counts only once it is
visible to a mail client; the database is consulted for what IMAP cannot
show (nothing stored, staged bodies rolled back, one copy per mailbox).
"""

import hashlib
import imaplib
import smtplib
import socket
import subprocess
import time

import psycopg2
import pytest

from imap_util import Imap, crlf_lines, pop3_view

TIMEOUT = 60
MAX_SIZE = 52428800        # lmtp_max_message_size default
MAX_RECIPIENTS = 100       # lmtp_max_recipients default


# ---- helpers ---------------------------------------------------------------

class Lmtp:
    """A minimal byte-exact LMTP client."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """One reply line without CRLF; raises EOFError when closed."""
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"connection closed; pending {self.buf[:200]!r}")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        """One (possibly multi-line) reply as a list of lines."""
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return lines

    def cmd(self, text):
        """Sends one command and returns its (last) reply line."""
        self.send(text + "\r\n")
        return self.reply()[-1]

    def lhlo(self):
        r = self.cmd("LHLO client.example.net")
        assert r.startswith(b"250 "), r
        return self

    def close(self):
        self.sock.close()


def dot_stuff(message):
    """message (CRLF lines) as DATA: dot-stuffed, with the final dot."""
    lines = message.split(b"\r\n")
    assert lines[-1] == b"", "the message must end with CRLF"
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines[:-1]) + b".\r\n"


def make_message(subject="test", body=b"Hello.\r\n", extra=b""):
    return (b"From: sender@example.org\r\nTo: someone@example.com\r\nSubject: " +
            subject.encode() + b"\r\nMessage-ID: <" + hashlib.sha1(subject.encode() + body).hexdigest().encode() +
            b"@example.org>\r\n" + extra + b"\r\n" + body)


def split_trace(raw):
    """Splits a delivered message into (Return-Path line, Received header,
    the rest), checking the two trace headers are the first ones."""
    assert raw.startswith(b"Return-Path: <"), raw[:200]
    rp, rest = raw.split(b"\r\n", 1)
    assert rest.startswith(b"Received: "), rest[:200]
    i = rest.index(b"\r\n")
    while rest[i + 2:i + 3] in (b"\t", b" "):
        i = rest.index(b"\r\n", i + 2)
    return rp, rest[:i], rest[i + 2:]


def imap_messages(cluster, address, password, mailbox="INBOX", port_index=0):
    """Every message in mailbox, as raw bytes, by UID."""
    m = imaplib.IMAP4("127.0.0.1", cluster.imap_ports[port_index % len(cluster.imap_ports)])
    m.sock.settimeout(TIMEOUT)
    try:
        typ, _ = m.login(address, password)
        assert typ == "OK"
        typ, data = m.select(f'"{mailbox}"', readonly=True)
        assert typ == "OK", (mailbox, data)
        if int(data[0]) == 0:
            return []
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        return [item[1] for item in data if isinstance(item, tuple)]
    finally:
        try:
            m.logout()
        except Exception:
            pass


def db(cluster):
    conn = psycopg2.connect(cluster.pg_url)
    conn.autocommit = True
    return conn


def account_id(cluster, address):
    with db(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM accounts WHERE address = %s", (address,))
        return cur.fetchone()[0]


def counts(cluster, address):
    """(messages, blobs, staged blobs) of an account."""
    aid = account_id(cluster, address)
    with db(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM messages WHERE account_id = %s),"
                    "       (SELECT count(*) FROM blobs WHERE account_id = %s),"
                    "       (SELECT count(*) FROM blobs WHERE account_id = %s AND sha256 IS NULL)",
                    (aid, aid, aid))
        return cur.fetchone()


def transaction(port, sender, rcpts, message, pipelined=False):
    """A full transaction on a fresh connection; returns (RCPT replies,
    DATA-end replies)."""
    c = Lmtp(port).lhlo()
    try:
        if pipelined:
            c.send("".join([f"MAIL FROM:<{sender}>\r\n"] + [f"RCPT TO:<{r}>\r\n" for r in rcpts] +
                           ["DATA\r\n"]))
            assert c.reply()[-1].startswith(b"250 2.1.0"), "MAIL"
            rcpt_replies = [c.reply()[-1] for _ in rcpts]
        else:
            assert c.cmd(f"MAIL FROM:<{sender}>").startswith(b"250 2.1.0")
            rcpt_replies = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
            c.send("DATA\r\n")
        r = c.reply()[-1]
        assert r.startswith(b"354"), r
        c.send(dot_stuff(message))
        accepted = sum(1 for r in rcpt_replies if r.startswith(b"250"))
        data_replies = [c.reply()[-1] for _ in range(accepted)]
        assert c.cmd("QUIT").startswith(b"221 2.0.0")
        return rcpt_replies, data_replies
    finally:
        c.close()


def lmtp_port(cluster, i=0):
    ports = cluster.lmtp_ports
    assert ports, "the cluster exports no PETREL_LMTP_PORTS"
    return ports[i % len(ports)]


# ---- session basics ----------------------------------------------------------

def test_greeting_and_capabilities(cluster):
    c = Lmtp(lmtp_port(cluster))
    try:
        assert c.greeting.startswith(b"220 ") and c.greeting.endswith(b" Petrel LMTP ready"), c.greeting
        c.send("LHLO mx.example.net\r\n")
        lines = c.reply()
        assert all(l.startswith(b"250") for l in lines), lines
        caps = {l[4:] for l in lines[1:]}
        assert {b"PIPELINING", b"ENHANCEDSTATUSCODES", b"8BITMIME", b"SMTPUTF8",
                f"SIZE {MAX_SIZE}".encode()} <= caps, caps
        assert c.cmd("NOOP") == b"250 2.0.0 OK"
        assert c.cmd("QUIT").startswith(b"221 2.0.0")
        with pytest.raises(EOFError):
            c.line()
    finally:
        c.close()


def test_bad_sequences(cluster, new_account):
    address, _ = new_account()
    c = Lmtp(lmtp_port(cluster))
    try:
        assert c.cmd("MAIL FROM:<a@example.org>").startswith(b"503 5.5.1")
        assert c.cmd("EHLO mx.example.net").startswith(b"500 5.5.1")
        c.lhlo()
        assert c.cmd("RCPT TO:<x@example.com>").startswith(b"503 5.5.1")
        assert c.cmd("DATA").startswith(b"503 5.5.1")
        assert c.cmd("FROB").startswith(b"500 5.5.1")
        assert c.cmd("MAIL FROM:a@example.org").startswith(b"501 5.5.4")
        assert c.cmd("MAIL FROM:<a@example.org> FOO=BAR").startswith(b"555 5.5.4")
        assert c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8 SIZE=100") == b"250 2.1.0 OK"
        assert c.cmd("MAIL FROM:<b@example.org>").startswith(b"503 5.5.1")
        assert c.cmd("DATA").startswith(b"503 5.5.1")        # no valid recipients
        assert c.cmd("RCPT TO:<nobody-here@example.com>") == \
            b"550 5.1.1 <nobody-here@example.com> User doesn't exist"
        assert c.cmd("RCPT TO:<no-at-sign>").startswith(b"501 5.1.3")
        assert c.cmd(f"RCPT TO:<{address}>") == b"250 2.1.5 OK"
        assert c.cmd("X" * 5000).startswith(b"500 5.5.2")      # over-long command line
        assert c.cmd("NOOP") == b"250 2.0.0 OK"
    finally:
        c.close()


# ---- delivery ----------------------------------------------------------------

def test_deliver_one_recipient_byte_exact(cluster, new_account):
    address, password = new_account()
    message = make_message("one recipient", b"Line one.\r\n\r\nLine three, with \xc3\xa9 8-bit.\r\n")
    with smtplib.LMTP("127.0.0.1", lmtp_port(cluster), timeout=TIMEOUT) as s:
        refused = s.sendmail("sender@example.org", [address], message)
        assert refused == {}
    msgs = imap_messages(cluster, address, password)
    assert len(msgs) == 1
    rp, received, rest = split_trace(msgs[0])
    assert rp == b"Return-Path: <sender@example.org>"
    assert b"with LMTP" in received and f"for <{address}>".encode() in received, received
    assert rest == message
    assert msgs[0] == rp + b"\r\n" + received + b"\r\n" + message


def test_ten_recipients_one_unknown(cluster, new_account):
    accounts = [new_account() for _ in range(9)]
    rcpts = [a for a, _ in accounts]
    unknown = "nobody-" + rcpts[0]
    rcpts.insert(4, unknown)
    message = make_message("ten recipients")
    rcpt_replies, data_replies = transaction(lmtp_port(cluster, 1), "list@example.org", rcpts, message)
    assert rcpt_replies[4] == f"550 5.1.1 <{unknown}> User doesn't exist".encode()
    assert all(r == b"250 2.1.5 OK" for i, r in enumerate(rcpt_replies) if i != 4), rcpt_replies
    assert data_replies == [f"250 2.0.0 <{a}> Saved".encode() for a, _ in accounts]
    for a, p in accounts:
        msgs = imap_messages(cluster, a, p)
        assert len(msgs) == 1, a
        assert split_trace(msgs[0])[2] == message
        assert counts(cluster, a) == (1, 1, 0)


def test_dot_unstuffing(cluster, new_account):
    address, password = new_account()
    body = b".leading dot\r\n..two dots\r\n.\r\n \r\n.x\r\nend\r\n"
    message = make_message("dots", body)
    data = dot_stuff(message)
    assert b"\r\n..leading dot\r\n...two dots\r\n..\r\n" in data
    _, replies = transaction(lmtp_port(cluster), "dots@example.org", [address], message)
    assert replies == [f"250 2.0.0 <{address}> Saved".encode()]
    msgs = imap_messages(cluster, address, password)
    assert split_trace(msgs[0])[2] == message


def test_bare_lf_lines_get_crlf(cluster, new_account):
    address, password = new_account()
    c = Lmtp(lmtp_port(cluster)).lhlo()
    try:
        assert c.cmd("MAIL FROM:<>") == b"250 2.1.0 OK"
        assert c.cmd(f"RCPT TO:<{address}>") == b"250 2.1.5 OK"
        assert c.cmd("DATA").startswith(b"354")
        c.send(b"Subject: lf\n\nbody\n.\r\n")
        assert c.reply() == [f"250 2.0.0 <{address}> Saved".encode()]
    finally:
        c.close()
    rp, _, rest = split_trace(imap_messages(cluster, address, password)[0])
    assert rp == b"Return-Path: <>"
    assert rest == b"Subject: lf\r\n\r\nbody\r\n"


@pytest.mark.parametrize("repeat", [1, 20000], ids=["one-frame", "streamed"])
def test_line_ends_made_crlf(cluster, new_account, repeat):
    """DATA lines that end in runs of CRs, or hold a lone CR, are stored
    with the line ends Dovecot gives them (backend/crlf_norm.h), in one
    frame or streamed: IMAP RFC822.SIZE, BODY[], the BODYSTRUCTURE line
    count and POP3 LIST/RETR agree."""
    address, password = new_account()
    message = (b"Subject: line ends\r\r\nFrom: a@example.org\n\r\n"
               + b"bare LF\nCR CR LF\r\r\nthree CRs\r\r\r\nlone\rCR\r\n.dot\n" * repeat)
    data = message.replace(b"\n.", b"\n..") + b".\r\n"   # every line ends in LF
    c = Lmtp(lmtp_port(cluster)).lhlo()
    try:
        assert c.cmd("MAIL FROM:<>") == b"250 2.1.0 OK"
        assert c.cmd(f"RCPT TO:<{address}>") == b"250 2.1.5 OK"
        assert c.cmd("DATA").startswith(b"354")
        c.send(data)
        assert c.reply() == [f"250 2.0.0 <{address}> Saved".encode()]
    finally:
        c.close()
    want = crlf_lines(message)
    with Imap(cluster.imap_ports[1]) as imap:
        imap.login(address, password)
        imap.select()
        f = imap.fetch("1", "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE)")[1]
    rp, received, rest = split_trace(f["BODY[]"])
    assert rest == want
    assert f["RFC822.SIZE"] == len(f["BODY[]"])
    text = want.split(b"\r\n\r\n", 1)[1]
    assert f["BODYSTRUCTURE"][6:8] == [b"%d" % len(text), b"%d" % text.count(b"\n")]
    size = len(f["BODY[]"])
    assert pop3_view(cluster.pop3_ports[0], address, password) == {1: (size, size, f["BODY[]"])}


def test_plus_addressing(cluster, new_account):
    address, password = new_account()
    local, domain = address.split("@")
    with db(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT petrel_mailbox_create(%s, 'lists', NULL)", (account_id(cluster, address),))
    m1 = make_message("to the folder")
    m2 = make_message("no such folder")
    _, r = transaction(lmtp_port(cluster), "a@example.org", [f"{local}+lists@{domain}"], m1)
    assert r == [f"250 2.0.0 <{local}+lists@{domain}> Saved".encode()]
    _, r = transaction(lmtp_port(cluster), "a@example.org", [f"{local}+nosuch@{domain}"], m2)
    assert r == [f"250 2.0.0 <{local}+nosuch@{domain}> Saved".encode()]
    lists = imap_messages(cluster, address, password, "lists")
    inbox = imap_messages(cluster, address, password, "INBOX")
    assert [split_trace(m)[2] for m in lists] == [m1]
    assert [split_trace(m)[2] for m in inbox] == [m2]


def test_plus_addressing_folder_in_nfc(cluster, new_account):
    """The +detail is a mailbox name, so it is taken in NFC like IMAP's
    (RFC 9051 5.1): "+Cafe" and U+0301 (SMTPUTF8, RFC 6531) reaches the
    mailbox "Caf" U+00E9."""
    address, password = new_account()
    local, domain = address.split("@")
    with db(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT petrel_mailbox_create(%s, %s, NULL)", (account_id(cluster, address), "Caf\u00e9"))
    rcpt = f"{local}+Cafe\u0301@{domain}"
    message = make_message("decomposed detail")
    c = Lmtp(lmtp_port(cluster)).lhlo()
    try:
        assert c.cmd("MAIL FROM:<a@example.org> SMTPUTF8").startswith(b"250 2.1.0")
        assert c.cmd(f"RCPT TO:<{rcpt}>") == b"250 2.1.5 OK"
        assert c.cmd("DATA").startswith(b"354")
        c.send(dot_stuff(message))
        assert c.reply()[-1].startswith(b"250 2.0.0 ")
    finally:
        c.close()
    assert [split_trace(m)[2] for m in imap_messages(cluster, address, password, "Caf&AOk-")] == [message]
    assert imap_messages(cluster, address, password, "INBOX") == []


def test_same_mailbox_twice_stored_once(cluster, new_account):
    address, password = new_account()
    local, domain = address.split("@")
    other, other_pw = new_account()
    rcpts = [address, other, address.upper(), f"{local}+nosuch@{domain}"]
    message = make_message("duplicates")
    rcpt_replies, data_replies = transaction(lmtp_port(cluster), "d@example.org", rcpts, message)
    assert rcpt_replies == [b"250 2.1.5 OK"] * 4
    assert data_replies == [f"250 2.0.0 <{r}> Saved".encode() for r in rcpts]
    assert len(imap_messages(cluster, address, password)) == 1
    assert len(imap_messages(cluster, other, other_pw)) == 1
    assert counts(cluster, address) == (1, 1, 0)


def test_five_megabytes_several_accounts(cluster, new_account):
    """Streamed (over rpc_chunk): staged once, copied to the other account."""
    a, pa = new_account()
    b, pb = new_account()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-=+/0123456789"
    body = b"".join(b"%08d " % i + line + b"\r\n" for i in range(5 * 1024 * 1024 // (len(line) + 11)))
    message = make_message("five megabytes", body)
    assert len(message) > 5 * 1000 * 1000
    _, replies = transaction(lmtp_port(cluster), "big@example.org", [a, b], message)
    assert replies == [f"250 2.0.0 <{a}> Saved".encode(), f"250 2.0.0 <{b}> Saved".encode()]
    for addr, pw in ((a, pa), (b, pb)):
        msgs = imap_messages(cluster, addr, pw)
        assert len(msgs) == 1
        rest = split_trace(msgs[0])[2]
        assert len(rest) == len(message)
        assert hashlib.sha256(rest).digest() == hashlib.sha256(message).digest()
        assert counts(cluster, addr) == (1, 1, 0)


def test_size_parameter_over_limit(cluster, new_account):
    c = Lmtp(lmtp_port(cluster)).lhlo()
    try:
        r = c.cmd(f"MAIL FROM:<a@example.org> SIZE={MAX_SIZE + 1}")
        assert r.startswith(b"552 5.3.4"), r
        assert c.cmd(f"MAIL FROM:<a@example.org> SIZE={MAX_SIZE}") == b"250 2.1.0 OK"
    finally:
        c.close()


def test_data_over_size_limit(cluster, new_account):
    address, password = new_account()
    c = Lmtp(lmtp_port(cluster)).lhlo()
    try:
        assert c.cmd("MAIL FROM:<a@example.org>") == b"250 2.1.0 OK"
        assert c.cmd(f"RCPT TO:<{address}>") == b"250 2.1.5 OK"
        assert c.cmd("DATA").startswith(b"354")
        c.send(b"Subject: too big\r\n\r\n")
        block = (b"x" * 998 + b"\r\n") * 1024          # 1 MB
        for _ in range(MAX_SIZE // len(block) + 2):
            c.send(block)
        c.send(b".\r\n")
        r = c.reply()
        assert r[0].startswith(b"552 5.3.4"), r
        assert c.cmd("NOOP") == b"250 2.0.0 OK"            # the session goes on
    finally:
        c.close()
    assert counts(cluster, address)[0] == 0
    wait_no_staged(cluster, address)


def test_line_too_long_drops_message(cluster, new_account):
    address, _ = new_account()
    c = Lmtp(lmtp_port(cluster)).lhlo()
    try:
        assert c.cmd("MAIL FROM:<a@example.org>") == b"250 2.1.0 OK"
        assert c.cmd(f"RCPT TO:<{address}>") == b"250 2.1.5 OK"
        assert c.cmd("DATA").startswith(b"354")
        c.send(b"Subject: long\r\n\r\n" + b"y" * 10000 + b"\r\nafter\r\n.\r\n")
        r = c.reply()
        assert r[0].startswith(b"500 5.5.2"), r
        assert c.cmd("RSET") == b"250 2.0.0 OK"
    finally:
        c.close()
    assert counts(cluster, address)[0] == 0


def test_pipelining(cluster, new_account):
    a, pa = new_account()
    b, pb = new_account()
    message = make_message("pipelined")
    c = Lmtp(lmtp_port(cluster))
    try:
        # One write up to DATA (RFC 2920: DATA ends a group), one after.
        c.send(f"LHLO x.example.net\r\nMAIL FROM:<p@example.org>\r\nRCPT TO:<{a}>\r\n"
               f"RCPT TO:<nobody-{a}>\r\nRCPT TO:<{b}>\r\nDATA\r\n")
        assert c.reply()[-1].startswith(b"250 ")
        assert c.reply() == [b"250 2.1.0 OK"]
        assert c.reply() == [b"250 2.1.5 OK"]
        assert c.reply()[0].startswith(b"550 5.1.1")
        assert c.reply() == [b"250 2.1.5 OK"]
        assert c.reply()[0].startswith(b"354")
        c.send(dot_stuff(message) + f"MAIL FROM:<q@example.org>\r\nRCPT TO:<{a}>\r\nRSET\r\nNOOP\r\nQUIT\r\n".encode())
        assert c.reply() == [f"250 2.0.0 <{a}> Saved".encode()]
        assert c.reply() == [f"250 2.0.0 <{b}> Saved".encode()]
        assert c.reply() == [b"250 2.1.0 OK"]
        assert c.reply() == [b"250 2.1.5 OK"]
        assert c.reply() == [b"250 2.0.0 OK"]
        assert c.reply() == [b"250 2.0.0 OK"]
        assert c.reply()[0].startswith(b"221")
    finally:
        c.close()
    assert len(imap_messages(cluster, a, pa)) == 1
    assert len(imap_messages(cluster, b, pb)) == 1


def test_rset(cluster, new_account):
    a, pa = new_account()
    b, pb = new_account()
    message = make_message("after rset")
    c = Lmtp(lmtp_port(cluster)).lhlo()
    try:
        assert c.cmd("MAIL FROM:<r@example.org>") == b"250 2.1.0 OK"
        assert c.cmd(f"RCPT TO:<{a}>") == b"250 2.1.5 OK"
        assert c.cmd("RSET") == b"250 2.0.0 OK"
        assert c.cmd("DATA").startswith(b"503 5.5.1")            # no transaction any more
        assert c.cmd("MAIL FROM:<r2@example.org>") == b"250 2.1.0 OK"
        assert c.cmd(f"RCPT TO:<{b}>") == b"250 2.1.5 OK"
        assert c.cmd("DATA").startswith(b"354")
        c.send(dot_stuff(message))
        assert c.reply() == [f"250 2.0.0 <{b}> Saved".encode()]
    finally:
        c.close()
    assert imap_messages(cluster, a, pa) == []
    msgs = imap_messages(cluster, b, pb)
    assert len(msgs) == 1 and split_trace(msgs[0])[0] == b"Return-Path: <r2@example.org>"


def test_too_many_recipients(cluster, new_account):
    address, password = new_account()
    c = Lmtp(lmtp_port(cluster)).lhlo()
    try:
        assert c.cmd("MAIL FROM:<m@example.org>") == b"250 2.1.0 OK"
        c.send(f"RCPT TO:<{address}>\r\n" * (MAX_RECIPIENTS + 1))
        replies = [c.reply()[-1] for _ in range(MAX_RECIPIENTS + 1)]
        assert replies[:MAX_RECIPIENTS] == [b"250 2.1.5 OK"] * MAX_RECIPIENTS
        assert replies[-1] == b"452 4.5.3 Too many recipients"
        assert c.cmd("DATA").startswith(b"354")
        c.send(dot_stuff(make_message("many")))
        replies = [c.reply()[-1] for _ in range(MAX_RECIPIENTS)]
        assert replies == [f"250 2.0.0 <{address}> Saved".encode()] * MAX_RECIPIENTS
    finally:
        c.close()
    assert len(imap_messages(cluster, address, password)) == 1


def wait_no_staged(cluster, address, seconds=15):
    deadline = time.time() + seconds
    while True:
        msgs, blobs, staged = counts(cluster, address)
        if blobs == 0:
            return
        assert time.time() < deadline, f"staged body not rolled back: {blobs} blobs, {staged} staged"
        time.sleep(0.1)


@pytest.mark.parametrize("size", [10 * 1000, 2 * 1000 * 1000])
def test_client_vanishes_mid_data(cluster, new_account, size):
    """Nothing is stored, whether the message was still in the frontend
    (small) or already streaming into a transaction (2 MB)."""
    a, _ = new_account()
    b, _ = new_account()
    c = Lmtp(lmtp_port(cluster)).lhlo()
    assert c.cmd("MAIL FROM:<v@example.org>") == b"250 2.1.0 OK"
    assert c.cmd(f"RCPT TO:<{a}>") == b"250 2.1.5 OK"
    assert c.cmd(f"RCPT TO:<{b}>") == b"250 2.1.5 OK"
    assert c.cmd("DATA").startswith(b"354")
    c.send(b"Subject: vanishing\r\n\r\n" + (b"z" * 78 + b"\r\n") * (size // 80))
    time.sleep(0.5)   # let it reach the backend
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()         # RST, no final dot
    time.sleep(1.0)
    for addr in (a, b):
        wait_no_staged(cluster, addr)
        assert counts(cluster, addr) == (0, 0, 0)


def test_swaks(cluster, new_account):
    address, password = new_account()
    r = subprocess.run(
        ["swaks", "--to", address, "--from", "swaks@example.org", "--server", "127.0.0.1",
         "--port", str(lmtp_port(cluster)), "--protocol", "LMTP", "--header", "Subject: via swaks",
         "--body", "Sent by swaks.\n.with a leading dot\n"],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"250 2.0.0 <{address}> Saved" in r.stdout
    msgs = imap_messages(cluster, address, password)
    assert len(msgs) == 1
    rp, _, rest = split_trace(msgs[0])
    assert rp == b"Return-Path: <swaks@example.org>"
    assert b"Subject: via swaks\r\n" in rest
    assert b"\r\n\r\nSent by swaks.\r\n.with a leading dot\r\n" in rest
