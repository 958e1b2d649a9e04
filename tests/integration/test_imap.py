"""IMAP against a real cluster (RFC 9051, RFC 3501; RFC 7888 literals;
RFC 4315 APPENDUID): two frontends, two backends, PostgreSQL and Redis.

Every test works with a fresh account. Exact protocol bytes go through the raw
socket client of imap_util; imaplib and curl check interoperability.
"""

import calendar
import imaplib
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from imap_util import (Closed, Imap, code, crlf_lines, fetches, flags_of, make_message,
                       parse_fetch, pop3_view, quote, status_of)
from test_ops import scrape_all, total, wait_for

# ---- helpers ---------------------------------------------------------------


@pytest.fixture
def account(new_account):
    return new_account()


def worker_deaths(cluster):
    """Lines of the frontends' logs that report a crashed worker."""
    out = []
    for log in sorted(Path(cluster.dir, "logs").glob("frontend*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "worker died" in line or "corrupt" in line or "double free" in line:
                out.append(f"{log.name}: {line}")
    return out


@pytest.fixture(autouse=True)
def no_frontend_crash(request):
    """Fails a test during which a frontend worker of the shared cluster
    crashed (the supervisor restarts it, so nothing else may notice)."""
    if "cluster" not in request.fixturenames:
        yield
        return
    cluster = request.getfixturevalue("cluster")
    before = len(worker_deaths(cluster))
    yield
    time.sleep(0.05)
    after = worker_deaths(cluster)
    assert len(after) == before, "frontend worker crashed:\n" + "\n".join(after[before:])


def connect(cluster, account, frontend=0):
    """A logged-in raw session on frontend number `frontend`."""
    c = Imap(cluster.imap_ports[frontend])
    c.login(*account)
    return c


def fill(c, n, mailbox="INBOX", prefix="msg"):
    """Appends n small messages with LITERAL+ in one pipelined send; returns
    their (message bytes, uid) in order."""
    msgs = [make_message(f"{prefix} {i}", f"Body {i}.\r\n") for i in range(n)]
    tags = [c.tag() for _ in msgs]
    data = b"".join(f"{t} APPEND {quote(mailbox)} {{{len(m)}+}}\r\n".encode() + m + b"\r\n"
                    for t, m in zip(tags, msgs))
    c.send(data)
    uids = []
    for t in tags:
        _, tagged = c.read_until(t)
        m = re.search(rb"OK \[APPENDUID \d+ (\d+)\]", tagged)
        assert m, tagged
        uids.append(int(m.group(1)))
    return list(zip(msgs, uids))


def simulate_expunges(uids, untagged):
    """Applies `* n EXPUNGE` responses to a list of UIDs in sequence order,
    as a client must; returns the list left (asserting every n is valid)."""
    uids = list(uids)
    for r in untagged:
        m = re.fullmatch(rb"\* (\d+) EXPUNGE", r)
        if m:
            n = int(m.group(1))
            assert 1 <= n <= len(uids), f"EXPUNGE {n} outside 1..{len(uids)}"
            del uids[n - 1]
    return uids


def expunge_lines(untagged):
    return [r for r in untagged if r.endswith(b" EXPUNGE")]


# ---- 1. acceptance: across frontends ------------------------------------------

ACCEPT_MSG = (b"Return-Path: <alice@example.com>\r\n"
              b"From: Alice <alice@example.com>\r\n"
              b"To: Bob <bob@example.com>\r\n"
              b"Subject: across the cluster\r\n"
              b"Date: Tue, 1 Apr 2025 10:00:00 +0000\r\n"
              b"MIME-Version: 1.0\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n"
              b"\r\n"
              b"First line.\r\n"
              b"  indented \xc3\xa9t\xc3\xa9 line\r\n"
              b"\r\n"
              b"Last line without dots.\r\n")


def test_append_on_one_frontend_fetch_on_the_other(cluster, account):
    with connect(cluster, account, 0) as c1:
        uidvalidity, uid = c1.append_uid("INBOX", ACCEPT_MSG)
    with connect(cluster, account, 1) as c2:
        untagged = c2.select()
        assert int(code(untagged, "UIDVALIDITY")) == uidvalidity
        assert b"* 1 EXISTS" in untagged
        f = c2.fetch("1", "(UID RFC822.SIZE BODY.PEEK[])")
        assert f[1]["UID"] == uid
        assert f[1]["RFC822.SIZE"] == len(ACCEPT_MSG)
        assert f[1]["BODY[]"] == ACCEPT_MSG
        f = c2.fetch(str(uid), "(RFC822)", uid=True)
        assert f[1]["RFC822"] == ACCEPT_MSG


def test_append_on_one_frontend_retr_by_pop3_on_the_other(cluster, account):
    import poplib
    with connect(cluster, account, 0) as c1:
        c1.append_uid("INBOX", ACCEPT_MSG)
    p = poplib.POP3("127.0.0.1", cluster.pop3_ports[1], timeout=30)
    try:
        p.user(account[0])
        p.pass_(account[1])
        count, size = p.stat()
        assert count == 1 and size == len(ACCEPT_MSG)
        resp, lines, octets = p.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == ACCEPT_MSG
        p.quit()
    finally:
        p.close()


# ---- 2. acceptance: concurrent APPENDs --------------------------------------

def test_concurrent_appends_through_both_frontends(cluster, account):
    conns_per_frontend, per_conn = 10, 20
    results = []          # (sent_at, answered_at, uid)
    errors = []
    lock = threading.Lock()
    start = threading.Barrier(2 * conns_per_frontend)

    def worker(frontend, n):
        try:
            with connect(cluster, account, frontend) as c:
                start.wait(timeout=30)
                for i in range(per_conn):
                    msg = make_message(f"concurrent {frontend}/{n}/{i}")
                    sent = time.monotonic()
                    _, uid = c.append_uid("INBOX", msg, nonsync=(i % 2 == 1))
                    got = time.monotonic()
                    with lock:
                        results.append((sent, got, uid))
        except BaseException as e:   # reported below, with the others
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(f, n))
               for f in (0, 1) for n in range(conns_per_frontend)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:5]
    total = 2 * conns_per_frontend * per_conn
    assert len(results) == total
    uids = [r[2] for r in results]
    assert len(set(uids)) == total, "duplicate UIDs"

    # An APPEND answered before another was sent committed first: its UID is lower.
    by_answer = sorted(results, key=lambda r: r[1])
    answered_max = []   # running max UID over by_answer
    m = 0
    for r in by_answer:
        m = max(m, r[2])
        answered_max.append(m)
    import bisect
    answer_times = [r[1] for r in by_answer]
    for sent, got, uid in results:
        k = bisect.bisect_left(answer_times, sent)
        if k:
            assert answered_max[k - 1] < uid, \
                f"UID {uid} sent after UID {answered_max[k - 1]} was answered"

    with connect(cluster, account, 1) as c:
        untagged = c.ok("STATUS INBOX (MESSAGES UIDNEXT)")
        m = re.search(rb"\(MESSAGES (\d+) UIDNEXT (\d+)\)", untagged[0])
        assert m, untagged
        assert int(m.group(1)) == total
        assert int(m.group(2)) == max(uids) + 1
        untagged = c.select()
        assert f"* {total} EXISTS".encode() in untagged
        assert int(code(untagged, "UIDNEXT")) == max(uids) + 1
        f = c.fetch("1:*", "(UID)")
        assert [f[s]["UID"] for s in sorted(f)] == sorted(uids)


# ---- 3. greeting, capability, login, states ----------------------------------

def test_greeting_and_capability(cluster):
    with Imap(cluster.imap_ports[0]) as c:
        assert re.fullmatch(rb"\* OK (\[CAPABILITY [^\]]*\] )?.+", c.greeting), c.greeting
        untagged, tagged = c.cmd("CAPABILITY")
        assert status_of(tagged) == b"OK"
        caps = [r for r in untagged if r.startswith(b"* CAPABILITY ")]
        assert len(caps) == 1
        words = caps[0].split()[2:]
        assert b"IMAP4rev1" in words
        assert b"LITERAL-" in words   # non-sync literals are capped before login
        # "CAPABILITY foo" is a syntax error
        _, tagged = c.cmd("CAPABILITY foo")
        assert status_of(tagged) == b"BAD"


def test_capability_advertises_uidplus_and_appendlimit(cluster, account):
    """APPEND answers with APPENDUID (RFC 4315), so UIDPLUS must be
    advertised; and the 50 MiB limit is announced (RFC 7889 APPENDLIMIT)."""
    with connect(cluster, account) as c:
        untagged = c.ok("CAPABILITY")
        words = untagged[0].split()[2:]
        assert b"UIDPLUS" in words, untagged[0]
        assert any(w.startswith(b"APPENDLIMIT") for w in words), untagged[0]


def test_login_good_and_bad(cluster, account):
    address, password = account
    with Imap(cluster.imap_ports[0]) as c:
        _, tagged = c.cmd(f"LOGIN {quote(address)} {quote('wrong' + password)}")
        assert re.match(rb"t1 NO \[AUTHENTICATIONFAILED\] ", tagged), tagged
        _, tagged = c.cmd(f"LOGIN {quote('nobody-' + address)} {quote(password)}")
        assert re.match(rb"t2 NO \[AUTHENTICATIONFAILED\] ", tagged), tagged
        _, tagged = c.cmd("LOGIN onlyuser")
        assert status_of(tagged) == b"BAD"
        # still not authenticated
        _, tagged = c.cmd("SELECT INBOX")
        assert status_of(tagged) == b"BAD"
        # the password as a synchronizing literal
        c.send(f"t9 LOGIN {quote(address)} {{{len(password)}}}\r\n")
        assert c.line().startswith(b"+")
        c.send(password + "\r\n")
        _, tagged = c.read_until("t9")
        assert tagged.startswith(b"t9 OK"), tagged
        _, tagged = c.cmd("LOGIN a b")
        assert status_of(tagged) == b"BAD", "LOGIN in authenticated state"
        c.ok("NOOP")


def test_imaplib_login_select(cluster, account):
    m = imaplib.IMAP4("127.0.0.1", cluster.imap_ports[1], timeout=30)
    try:
        typ, _ = m.login(*account)
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"0"]
        typ, _ = m.append("INBOX", r"(\Seen)", None, make_message("imaplib"))
        assert typ == "OK"
        typ, data = m.fetch("1", "(FLAGS)")
        assert typ == "OK" and b"\\Seen" in data[0]
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def test_commands_in_wrong_state(cluster, account):
    with Imap(cluster.imap_ports[0]) as c:
        for cmd in ("SELECT INBOX", "EXAMINE INBOX", "LIST \"\" *", "STATUS INBOX (MESSAGES)",
                    "CREATE foo", "FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "EXPUNGE",
                    "CLOSE", "UID FETCH 1 FLAGS", "CHECK", "UNSELECT"):
            _, tagged = c.cmd(cmd)
            assert status_of(tagged) == b"BAD", (cmd, tagged)
        c.login(*account)
        for cmd in ("FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "EXPUNGE", "CLOSE",
                    "UID FETCH 1 FLAGS", "UNSELECT", "CHECK"):
            _, tagged = c.cmd(cmd)
            assert status_of(tagged) == b"BAD", (cmd, tagged)
        c.ok("NOOP")


def test_unknown_command(cluster, account):
    with Imap(cluster.imap_ports[0]) as c:
        _, tagged = c.cmd("FROBNICATE 1 2")
        assert status_of(tagged) == b"BAD"
        _, tagged = c.cmd("UID NOOP")
        assert status_of(tagged) == b"BAD"
        c.ok("NOOP")
        c.login(*account)
        _, tagged = c.cmd("XYZZY")
        assert status_of(tagged) == b"BAD"
        c.ok("NOOP")


def test_logout(cluster, account):
    with connect(cluster, account) as c:
        untagged, tagged = c.cmd("LOGOUT")
        assert untagged and untagged[0].startswith(b"* BYE"), untagged
        assert tagged.startswith(b"t2 OK"), tagged
        assert c.eof()
    with Imap(cluster.imap_ports[1]) as c:   # before login too
        untagged, tagged = c.cmd("LOGOUT")
        assert untagged[0].startswith(b"* BYE") and status_of(tagged) == b"OK"
        assert c.eof()


# ---- 4. SELECT / EXAMINE -----------------------------------------------------

def test_select_and_examine_responses(cluster, account):
    with connect(cluster, account) as c:
        c.append_uid("INBOX", make_message("one"), flags="\\Seen")
        c.append_uid("INBOX", make_message("two"))
        uidvalidity, last = c.append_uid("INBOX", make_message("three"), flags="\\Seen")
        untagged, tagged = c.cmd("SELECT INBOX")
        assert re.match(rb"t\d+ OK \[READ-WRITE\]", tagged), tagged
        assert b"* 3 EXISTS" in untagged
        flags = [r for r in untagged if r.startswith(b"* FLAGS ")]
        assert len(flags) == 1
        assert {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"} <= \
            set(flags[0][9:-1].decode().split())
        perm = code(untagged, "PERMANENTFLAGS")
        assert perm is not None and "\\*" in perm and "\\Seen" in perm
        assert int(code(untagged, "UIDVALIDITY")) == uidvalidity
        assert int(code(untagged, "UIDNEXT")) == last + 1
        unseen = code(untagged, "UNSEEN")
        assert unseen is None or unseen == "2"   # optional in RFC 9051; if sent, right

        untagged, tagged = c.cmd("EXAMINE INBOX")
        assert re.match(rb"t\d+ OK \[READ-ONLY\]", tagged), tagged
        assert b"* 3 EXISTS" in untagged
        assert int(code(untagged, "UIDVALIDITY")) == uidvalidity
        perm = code(untagged, "PERMANENTFLAGS")
        assert perm == "()", perm
        _, tagged = c.cmd("STORE 1 +FLAGS (\\Flagged)")
        assert status_of(tagged) == b"NO", tagged
        _, tagged = c.cmd("EXPUNGE")
        assert status_of(tagged) == b"NO", tagged


def test_select_missing_mailbox(cluster, account):
    with connect(cluster, account) as c:
        _, tagged = c.cmd("SELECT nosuchbox")
        assert status_of(tagged) == b"NO", tagged
        # a failed SELECT leaves no mailbox selected
        c.select()
        _, tagged = c.cmd("SELECT nosuchbox")
        assert status_of(tagged) == b"NO"
        _, tagged = c.cmd("FETCH 1:* FLAGS")
        assert status_of(tagged) == b"BAD", tagged
        # inbox is case-insensitive
        untagged = c.ok("SELECT inbox")
        assert b"* 0 EXISTS" in untagged


def test_create_list_status(cluster, account):
    with connect(cluster, account) as c:
        c.ok('CREATE "Work"')
        c.ok('CREATE "Work/Reports"')
        _, tagged = c.cmd('CREATE "Work"')
        assert status_of(tagged) == b"NO", tagged
        untagged = c.ok('LIST "" "*"')
        names = set()
        for r in untagged:
            m = re.fullmatch(rb'\* LIST \(([^)]*)\) "/" (.+)', r)
            assert m, r
            names.add(m.group(2).strip(b'"'))
        assert {b"INBOX", b"Work", b"Work/Reports"} <= names
        untagged = c.ok('LIST "" "%"')
        assert not any(b"Work/Reports" in r for r in untagged)
        untagged = c.ok('LIST "" ""')
        assert untagged == [b'* LIST (\\Noselect) "/" ""']
        c.append_uid("Work", make_message("w1"))
        c.append_uid("Work", make_message("w2"), flags="\\Seen")
        untagged = c.ok('STATUS "Work" (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)')
        m = re.fullmatch(rb'\* STATUS "?Work"? \((.*)\)', untagged[0])
        assert m, untagged
        words = m.group(1).split()
        items = dict(zip(words[::2], words[1::2]))   # any order (RFC 9051 7.3.4)
        assert len(words) == 8 and items[b"MESSAGES"] == b"2" and items[b"UNSEEN"] == b"1"
        assert items[b"UIDNEXT"] == b"3" and int(items[b"UIDVALIDITY"]) > 0
        _, tagged = c.cmd('STATUS "Nope" (MESSAGES)')
        assert status_of(tagged) == b"NO"


def test_create_invalid_names(cluster, account):
    """Names the server cannot take are a permanent NO [CANNOT], never a
    temporary [UNAVAILABLE] that invites the client to retry forever."""
    with connect(cluster, account) as c:
        for name in ("a%b", "x*y", "/lead", "a//b"):
            _, tagged = c.cmd(f"CREATE {quote(name)}")
            assert re.match(rb"t\d+ NO \[CANNOT\]", tagged), (name, tagged)
        _, tagged = c.cmd('CREATE "INBOX"')
        assert status_of(tagged) == b"NO", tagged
        _, tagged = c.cmd('CREATE ""')
        assert status_of(tagged) in (b"NO", b"BAD"), tagged
        c.ok("NOOP")


def test_mailbox_names_are_modified_utf7(cluster, account):
    """IMAP4rev1 without UTF8=ACCEPT: mailbox names are modified UTF-7
    (RFC 3501 5.1.3). "Caf&AOk-" is "Café"; a raw 8-bit name or invalid
    modified UTF-7 is refused, never stored as a second, different mailbox."""
    with connect(cluster, account) as c:
        c.ok('CREATE "Caf&AOk-"')
        untagged = c.ok('LIST "" "Caf*"')
        assert untagged == [b'* LIST (\\HasNoChildren) "/" Caf&AOk-'], untagged
        c.append_uid("Caf&AOk-", make_message("utf7"))
        assert c.ok('STATUS "Caf&AOk-" (MESSAGES)') == [b"* STATUS Caf&AOk- (MESSAGES 1)"]
        _, tagged = c.cmd('CREATE "Caf\xc3\xa9"'.encode("latin-1"))
        assert status_of(tagged) in (b"NO", b"BAD"), tagged
        _, tagged = c.cmd('CREATE "bad&name"')
        assert status_of(tagged) in (b"NO", b"BAD"), tagged
        names = c.ok('LIST "" "*"')
        assert not any(b"\xc3\xa9" in r or b"bad&name" in r for r in names), names


def test_inbox_children_case_insensitive(cluster, account):
    """INBOX is case-insensitive, also as the head of a hierarchy (Dovecot):
    inbox/sub and INBOX/sub are one mailbox, listed as INBOX/sub."""
    with connect(cluster, account) as c:
        c.ok('CREATE "inbox/sub"')
        _, tagged = c.cmd('CREATE "INBOX/sub"')
        assert re.match(rb"t\d+ NO \[ALREADYEXISTS\]", tagged), tagged
        untagged = c.ok('LIST "" "INBOX/*"')
        assert untagged == [b'* LIST (\\HasNoChildren) "/" INBOX/sub'], untagged


# ---- 5. APPEND -----------------------------------------------------------------

def test_append_flags_and_date(cluster, account):
    with connect(cluster, account) as c:
        msg = make_message("dated")
        _, uid = c.append_uid("INBOX", msg, flags="\\Flagged $Forwarded \\Seen",
                              date="14-Jul-2020 10:11:12 +0200")
        _, uid2 = c.append_uid("INBOX", msg, date=" 4-Jan-2021 23:59:59 -0530")
        c.select()
        f = c.fetch("1:2", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
        assert f[1]["UID"] == uid and f[2]["UID"] == uid2
        assert flags_of(f[1]["FLAGS"]) == {"\\Flagged", "$Forwarded", "\\Seen"}
        assert f[1]["INTERNALDATE"] == b"14-Jul-2020 10:11:12 +0200"
        assert f[2]["INTERNALDATE"] in (b" 4-Jan-2021 23:59:59 -0530",
                                        b"04-Jan-2021 23:59:59 -0530")
        assert flags_of(f[2]["FLAGS"]) == set()
        assert f[1]["RFC822.SIZE"] == len(msg)
        # a bad date or flag is a syntax error, and nothing is stored
        assert status_of(c.append("INBOX", msg, date="31-Foo-2020 10:11:12 +0200")) == b"BAD"
        assert status_of(c.append("INBOX", msg, flags="\\Bogus")) == b"BAD"
        untagged = c.ok("NOOP")
        assert not any(r.endswith(b"EXISTS") for r in untagged), untagged


def internaldate_epoch(value):
    """Seconds since the epoch of an INTERNALDATE value."""
    t = time.strptime(value.decode().strip(), "%d-%b-%Y %H:%M:%S %z")
    return calendar.timegm(t) - t.tm_gmtoff


def test_append_default_internaldate_is_now(cluster, account):
    with connect(cluster, account) as c:
        c.append_uid("INBOX", make_message("now"))
        c.select()
        f = c.fetch("1", "INTERNALDATE")
        assert abs(internaldate_epoch(f[1]["INTERNALDATE"]) - time.time()) < 120


def test_internaldate_is_cut_to_the_second(cluster, account):
    """INTERNALDATE has whole seconds; the server's own time (an APPEND
    without a date) has fractions, which are cut, never rounded up: a
    message stored at hh:mm:ss.6 was not there at hh:mm:ss+1. Every FETCH
    path: metadata alone, with an inline body, and CHANGEDSINCE."""
    with connect(cluster, account) as c:
        _, uid = c.append_uid("INBOX", make_message("now"))
    conn = psycopg2.connect(cluster.pg_url)
    conn.autocommit = True
    where = ("FROM messages m JOIN accounts a ON a.id = m.account_id "
             "WHERE a.address = %s AND m.uid = %s")
    with conn.cursor() as cur:
        cur.execute("SELECT extract(epoch FROM m.internaldate)::float8 " + where, (account[0], uid))
        stored = cur.fetchone()[0]
    with connect(cluster, account) as c:
        c.select()
        assert internaldate_epoch(c.fetch("1", "INTERNALDATE")[1]["INTERNALDATE"]) == int(stored)
    # The case that rounding got wrong, made certain: .6 of a second, on the
    # last second of a day, which SEARCH counts in that day.
    with conn.cursor() as cur:
        cur.execute("UPDATE messages m SET internaldate = '2026-03-04 23:59:59.6+00', tz_offset = 0 "
                    "FROM accounts a WHERE a.id = m.account_id AND a.address = %s AND m.uid = %s",
                    (account[0], uid))
    conn.close()
    with connect(cluster, account) as c:
        c.select()
        for items in ("INTERNALDATE", "(INTERNALDATE BODY.PEEK[])", "(INTERNALDATE) (CHANGEDSINCE 0)"):
            got = c.fetch("1", items)[1]["INTERNALDATE"]
            assert got == b"04-Mar-2026 23:59:59 +0000", (items, got)
        assert c.ok("SEARCH ON 4-Mar-2026") == [b"* SEARCH 1"]
        assert c.ok("SEARCH SINCE 5-Mar-2026") == [b"* SEARCH"]


def test_append_to_missing_mailbox_trycreate(cluster, account):
    with connect(cluster, account) as c:
        tagged = c.append("NoSuchMailbox", make_message("x"))
        assert re.match(rb"t\d+ NO \[TRYCREATE\]", tagged), tagged
        tagged = c.append("NoSuchMailbox", make_message("x"), nonsync=True)
        assert re.match(rb"t\d+ NO \[TRYCREATE\]", tagged), tagged
        c.ok("NOOP")


def test_append_to_missing_mailbox_trycreate_imaplib(cluster, account):
    """RFC 3501 6.3.11 / RFC 9051 6.3.12: NO [TRYCREATE] on both APPEND
    paths: a small message (one frame to the backend) and one streamed in
    chunks, which the client has uploaded in full when the answer comes
    (imaplib sends the literal, then reads). Nothing is created."""
    m = imaplib.IMAP4("127.0.0.1", cluster.imap_ports[0])
    m.login(*account)
    small = make_message("small")
    big = make_message("big", (b"y" * 76 + b"\r\n") * 10000)   # 780 KB: three chunks
    assert len(big) > 2 * 262144
    for msg in (small, big):
        typ, data = m.append("NoSuchMailbox", None, None, msg)
        assert typ == "NO" and data[0].startswith(b"[TRYCREATE]"), (typ, data)
    typ, data = m.append("NoSuchMailbox/Child", "(\\Seen)", None, big)
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]"), (typ, data)
    typ, data = m.list(pattern="NoSuch*")
    assert data == [None], data
    # The client does what TRYCREATE asks: CREATE, then APPEND again.
    assert m.create("NoSuchMailbox")[0] == "OK"
    for msg in (small, big):
        assert m.append("NoSuchMailbox", None, None, msg)[0] == "OK"
    typ, data = m.status("NoSuchMailbox", "(MESSAGES)")
    assert b"MESSAGES 2" in data[0], data
    m.logout()


def test_append_literal_plus(cluster, account):
    with connect(cluster, account) as c:
        msg = make_message("nonsync", "line\r\n" * 1000)
        # no continuation request may come for {n+}: the OK is the next line
        c.send(f"A1 APPEND INBOX (\\Draft) {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
        line = c.response()
        assert re.match(rb"A1 OK \[APPENDUID \d+ \d+\]", line), line
        c.select()
        f = c.fetch("1", "(FLAGS BODY.PEEK[])")
        assert f[1]["BODY[]"] == msg
        assert flags_of(f[1]["FLAGS"]) == {"\\Draft"}


def test_append_5mb_round_trip(cluster, account):
    body = bytearray()
    i = 0
    while len(body) < 5 * 1024 * 1024:
        body += b"%08d " % i + bytes(range(0x41, 0x5b)) * 2 + b"\xe2\x82\xac\r\n"
        i += 1
    msg = make_message("big", bytes(body))
    with connect(cluster, account, 0) as c:
        _, uid = c.append_uid("INBOX", msg)
    with connect(cluster, account, 1) as c:
        c.select()
        f = c.fetch(str(uid), "(RFC822.SIZE BODY.PEEK[])", uid=True)
        assert f[1]["RFC822.SIZE"] == len(msg)
        assert f[1]["BODY[]"] == msg
        f = c.fetch("1", "(BODY.PEEK[]<4000000.100>)")
        assert f[1]["BODY[]<4000000>"] == msg[4000000:4000100]


def test_append_bare_lf_and_8bit(cluster, account):
    """8-bit and control bytes are kept as sent; the lines get CRLF."""
    msg = (b"From: a@example.com\nSubject: bare LF \xe9\xff\n\n"
           b"body line 1\nline 2 \x80\x81\xfe\r\nmixed\n\x01\x7f ctl\n")
    want = (b"From: a@example.com\r\nSubject: bare LF \xe9\xff\r\n\r\n"
            b"body line 1\r\nline 2 \x80\x81\xfe\r\nmixed\r\n\x01\x7f ctl\r\n")
    with connect(cluster, account) as c:
        _, uid = c.append_uid("INBOX", msg)
        c.select()
        f = c.fetch("1", "(RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
        assert f[1]["BODY[]"] == want
        assert f[1]["RFC822.SIZE"] == len(want)
        header = b"From: a@example.com\r\nSubject: bare LF \xe9\xff\r\n\r\n"
        assert f[1]["BODY[HEADER]"] == header
        assert f[1]["BODY[TEXT]"] == want[len(header):]


# Every line end RFC 5322 does not allow, in a header and a body: what
# Dovecot 2.3 makes of each is in backend/crlf_norm.h and crlf_lines().
RAGGED_HEADER = (b"From: a@example.com\nSubject: ragged\r\r\n  folded\rline\n"
                 b"Message-ID: <ragged@example.com>\r\r\r\n\r\r\n")
RAGGED_BODY = b"bare LF\nCR CR LF\r\r\nthree CRs\r\r\r\nlone\rCR\r\n\n\r\nlast line, CR\r"


def check_crlf_message(f, pop, sent):
    """f: one message's FETCH, pop: its POP3 view; sent: the bytes APPENDed
    as one text/plain message (header RAGGED_HEADER)."""
    want = crlf_lines(sent)
    body = want[len(crlf_lines(RAGGED_HEADER)):]
    assert f["BODY[]"] == want
    assert f["RFC822.SIZE"] == len(want)
    assert f["BODY[HEADER]"] == crlf_lines(RAGGED_HEADER)
    assert f["BODY[TEXT]"] == body
    # size and lines of the body part, counted on the CRLF form
    assert f["BODYSTRUCTURE"][6:8] == [str(len(body)).encode(), str(body.count(b"\n")).encode()]
    assert f["BINARY.SIZE[1]"] == str(len(body)).encode()
    # POP3 ends the last line (RFC 1939 3) and counts what it sends
    assert not want.endswith(b"\r")
    lines = want if want.endswith(b"\n") else want + b"\r\n"
    assert pop == (len(lines), len(lines), lines)


def test_append_line_ends_made_crlf(cluster, account):
    """Bare LF, runs of CRs before LF, a lone CR and a CR at the end: stored
    with CRLF lines as Dovecot stores them (one frame and streamed alike);
    IMAP sizes, BODYSTRUCTURE, BINARY.SIZE, STATUS SIZE and POP3 LIST/RETR
    agree. A message sent with bare LF and the same in CRLF are one body:
    the SHA-256 is taken of the stored form."""
    sent = RAGGED_HEADER + RAGGED_BODY
    streamed = RAGGED_HEADER + RAGGED_BODY * 40000   # over rpc_chunk: streamed
    assert len(streamed) > 1024 * 1024
    lf = b"Subject: same body\n\nbare LF\nCR CR LF\r\r\n"
    with connect(cluster, account) as c:
        uids = [c.append_uid("INBOX", m)[1] for m in (sent, streamed, lf, crlf_lines(lf))]
        c.select()
        f = c.fetch("1:2", "(RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
                           "BODYSTRUCTURE BINARY.SIZE[1])")
        c.ok("UNSELECT")
        status = c.ok("STATUS INBOX (SIZE)")
    pop = pop3_view(cluster.pop3_ports[1], *account)
    check_crlf_message(f[1], pop[1], sent)
    check_crlf_message(f[2], pop[2], streamed)
    total = len(crlf_lines(sent)) + len(crlf_lines(streamed)) + 2 * len(crlf_lines(lf))
    assert status == [b"* STATUS INBOX (SIZE %d)" % total]
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("""SELECT count(DISTINCT m.blob_id) FROM messages m
                         JOIN accounts a ON a.id = m.account_id
                        WHERE a.address = %s AND m.uid = ANY(%s)""", (account[0], uids[2:]))
        assert cur.fetchone()[0] == 1


PIECE = 4096   # rpc_chunk of the cluster below: its least


def chunk_edge_message():
    """About 20 KB, two parts; the first holds every kind of line end, and
    where a PIECE-byte piece ends, a CR or two end it and an LF, another
    CR or a letter starts the next. The last byte is a CR."""
    head = (b"From: a@example.com\nSubject: chunk edges\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n")
    text = bytearray(b"words and more words\ncrcr\r\r\nlone\rcr\r\nthree\r\r\r\n" * 400)
    edges = {1: (b"\r", b"\n"), 2: (b"\r", b"x"), 3: (b"\r\r", b"\n"), 4: (b"\r\r", b"\r\n")}
    for k, (before, after) in edges.items():
        at = PIECE * k - len(head)
        text[at - len(before):at + len(after)] = before + after
    msg = head + bytes(text) + b"\n--b\nContent-Type: text/plain\n\nsecond\n--b--\nend\r"
    assert len(head) < PIECE and len(head) + len(text) > 4 * PIECE + 2
    return msg


def append_paced(c, messages):
    """APPENDs messages in one command (MULTIAPPEND when several), each
    literal sent PIECE bytes at a time with a pause, so the frontend's
    pieces end where the message's PIECE-byte slices do."""
    tag = c.tag()
    c.send(f"{tag} APPEND INBOX".encode())
    for m in messages:
        c.send(b" {%d}\r\n" % len(m))
        assert c.response().startswith(b"+")
        for i in range(0, len(m), PIECE):
            c.send(m[i:i + PIECE])
            time.sleep(0.05)
    c.send(b"\r\n")
    _, tagged = c.read_until(tag)
    assert status_of(tagged) == b"OK", tagged


CHUNK_EDGE_ITEMS = ("(RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODYSTRUCTURE ENVELOPE "
                    "BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BINARY.PEEK[1] BINARY.SIZE[1])")


def test_append_chunk_edges_change_nothing(cluster, cluster_factory, account):
    """The same message sent with odd line ends, whole in one frame and in
    4 KiB frames whose edges split CR from LF (APPEND and MULTIAPPEND),
    is stored and answered identically, with CRLF lines."""
    msg = chunk_edge_message()
    with connect(cluster, account) as c:
        c.append_uid("INBOX", msg)
        c.select()
        whole = c.fetch("1", CHUNK_EDGE_ITEMS)[1]
    assert whole["BODY[]"] == crlf_lines(msg)
    assert whole["RFC822.SIZE"] == len(crlf_lines(msg))
    small = cluster_factory(1, 1, env={"PETREL_CLUSTER_FRONTEND_CONF": f"rpc_chunk = {PIECE}"})
    address, password = small.new_account()
    with Imap(small.imap_ports[0]) as c:
        c.login(address, password)
        append_paced(c, [msg])
        append_paced(c, [msg, msg])
        c.select()
        pieces = c.fetch("1:3", CHUNK_EDGE_ITEMS)
    for n in (1, 2, 3):
        assert pieces[n] == whole, f"message {n} differs from the one-frame APPEND"
    want = crlf_lines(msg)
    assert pop3_view(small.pop3_ports[0], address, password) == \
        {n: (len(want) + 2, len(want) + 2, want + b"\r\n") for n in (1, 2, 3)}


def test_append_header_only_and_tiny(cluster, account):
    header_only = b"Subject: no body\r\nFrom: a@example.com\r\n"
    tiny = b"x"
    with connect(cluster, account) as c:
        c.append_uid("INBOX", header_only)
        c.append_uid("INBOX", tiny)
        c.select()
        f = c.fetch("1:2", "(RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
        assert f[1]["BODY[]"] == header_only
        assert f[1]["RFC822.SIZE"] == len(header_only)
        assert f[1]["BODY[HEADER]"] == header_only
        assert f[1]["BODY[TEXT]"] == b""
        assert f[2]["BODY[]"] == tiny
        assert f[2]["RFC822.SIZE"] == 1


def test_append_empty_message_is_refused(cluster, account):
    """A zero-length literal is valid syntax but no message: refused with NO
    as Dovecot does, synchronizing or not, and nothing is stored."""
    with connect(cluster, account) as c:
        tagged = c.append("INBOX", b"")
        assert b" NO [CANNOT] Can't save a zero byte message." in tagged, tagged
        c.send(b"N1 APPEND INBOX {0+}\r\n\r\n")
        _, tagged = c.read_until("N1")
        assert tagged.startswith(b"N1 NO [CANNOT]"), tagged
        untagged = c.ok("STATUS INBOX (MESSAGES)")
        assert b"MESSAGES 0" in untagged[0], untagged


def test_appenduid_matches_uid_fetch(cluster, account):
    with connect(cluster, account) as c:
        pairs = fill(c, 5)
        untagged = c.select()
        uidvalidity = int(code(untagged, "UIDVALIDITY"))
        uids = [u for _, u in pairs]
        assert uids == sorted(uids) and len(set(uids)) == 5
        for msg, uid in pairs:
            f = c.fetch(str(uid), "BODY.PEEK[]", uid=True)
            assert len(f) == 1
            (_, items), = f.items()
            assert items["UID"] == uid and items["BODY[]"] == msg
        # APPENDUID of an append to the selected mailbox also announces EXISTS
        tagged = c.append("INBOX", make_message("six"))
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged)
        assert int(m.group(1)) == uidvalidity and int(m.group(2)) == uids[-1] + 1


def test_append_to_selected_mailbox_reports_exists(cluster, account):
    with connect(cluster, account) as c:
        fill(c, 2)
        c.select()
        tag = c.tag()
        msg = make_message("third")
        c.send(f"{tag} APPEND INBOX {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
        untagged, tagged = c.read_until(tag)
        assert b"* 3 EXISTS" in untagged, untagged
        assert status_of(tagged) == b"OK"
        f = c.fetch("3", "BODY.PEEK[]")
        assert f[3]["BODY[]"] == msg


def test_append_with_data_after_literal_stores_nothing(cluster, account):
    """`APPEND mbox {n}` + message + garbage: the command is BAD, so nothing
    may be stored (a client retrying after BAD would duplicate the message)."""
    msg = make_message("trailing garbage")
    with connect(cluster, account) as c:
        c.send(f"z1 APPEND INBOX {{{len(msg)}}}\r\n")
        assert c.response().startswith(b"+")
        c.send(msg)
        time.sleep(0.3)   # the message has reached the backend meanwhile
        c.send(b" garbage\r\n")
        _, tagged = c.read_until("z1")
        assert status_of(tagged) == b"BAD", tagged
        c.ok("NOOP")
        assert c.ok("STATUS INBOX (MESSAGES)") == [b"* STATUS INBOX (MESSAGES 0)"]


def test_append_mailbox_name_as_literal(cluster, account):
    """The mailbox of APPEND is an astring (RFC 3501 9), so it may come as a
    literal, synchronizing or not, before the message literal."""
    msg = make_message("literal mailbox")
    with connect(cluster, account) as c:
        c.send(b"s1 APPEND {5}\r\n")
        r = c.response()
        assert r.startswith(b"+"), r
        c.send(b"INBOX {%d}\r\n" % len(msg))
        r = c.response()
        assert r.startswith(b"+"), r
        c.send(msg + b"\r\n")
        _, tagged = c.read_until("s1")
        assert re.match(rb"s1 OK \[APPENDUID \d+ \d+\]", tagged), tagged
        c.send(b"s2 APPEND {5+}\r\nINBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        _, tagged = c.read_until("s2")
        assert re.match(rb"s2 OK \[APPENDUID \d+ \d+\]", tagged), tagged
        assert c.ok("STATUS INBOX (MESSAGES)") == [b"* STATUS INBOX (MESSAGES 2)"]


def test_literals_in_other_commands(cluster, account):
    with connect(cluster, account) as c:
        c.send(b"s1 SELECT {5}\r\n")
        assert c.response().startswith(b"+")
        c.send(b"INBOX\r\n")
        _, tagged = c.read_until("s1")
        assert tagged.startswith(b"s1 OK [READ-WRITE]"), tagged
        c.send(b"s2 STATUS {5+}\r\nINBOX (MESSAGES)\r\n")
        untagged, tagged = c.read_until("s2")
        assert untagged == [b"* STATUS INBOX (MESSAGES 0)"] and status_of(tagged) == b"OK"
        # a literal beyond what a non-APPEND command may hold: refused, not read
        c.send(b"s3 STATUS {70000}\r\n")
        r = c.response()
        assert re.match(rb"s3 (BAD|NO)", r), r
        c.ok("NOOP")


def test_uids_are_never_reused(cluster, account):
    with connect(cluster, account) as c:
        pairs = fill(c, 3)
        c.select()
        c.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
        assert int(code(c.select(), "UIDNEXT")) == pairs[2][1] + 1
        _, uid = c.append_uid("INBOX", make_message("next"))
        assert uid == pairs[2][1] + 1


# ---- 6. FETCH ---------------------------------------------------------------------

def test_fetch_sections_and_partials(cluster, account):
    header = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: parts\r\n\r\n")
    text = b"0123456789abcdefghij\r\nsecond line\r\n"
    msg = header + text
    with connect(cluster, account) as c:
        _, uid = c.append_uid("INBOX", msg)
        c.select()
        untagged = c.ok("FETCH 1 (BODY.PEEK[]<0.10> BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
                        "BODY.PEEK[TEXT]<5.7> BODY.PEEK[]<1000.10> BODY.PEEK[]<60.1000> "
                        "RFC822.HEADER)")
        assert len(untagged) == 1
        seq, f = parse_fetch(untagged[0])
        assert seq == 1
        assert f["BODY[]<0>"] == msg[:10]
        assert f["BODY[HEADER]"] == header
        assert f["BODY[TEXT]"] == text
        assert f["BODY[TEXT]<5>"] == text[5:12]
        assert f["BODY[]<1000>"] == b""
        assert f["BODY[]<60>"] == msg[60:]
        assert f["RFC822.HEADER"] == header
        # the exact bytes of one partial, as the RFC spells the response
        untagged = c.ok("FETCH 1 (BODY.PEEK[]<0.10>)")
        assert untagged == [b"* 1 FETCH (BODY[]<0> {10}\r\n" + msg[:10] + b")"]
        f = c.fetch("1", "(RFC822.TEXT)")
        assert f[1]["RFC822.TEXT"] == text
        # case-insensitive item names
        f = c.fetch("1", "(body.peek[header] rfc822.size)")
        assert f[1]["BODY[HEADER]"] == header and f[1]["RFC822.SIZE"] == len(msg)
        # bad items are BAD
        for bad in ("(BODY.PEEK[]<0.0>)", "(NOSUCHITEM)", "()", "(BODY[HEADER)"):
            _, tagged = c.cmd(f"FETCH 1 {bad}")
            assert status_of(tagged) == b"BAD", (bad, tagged)
        for bad in ("0", "1:x", "abc"):
            _, tagged = c.cmd(f"FETCH {bad} FLAGS")
            assert status_of(tagged) == b"BAD", (bad, tagged)


def test_fetch_body_sets_seen_peek_does_not(cluster, account):
    with connect(cluster, account) as c:
        fill(c, 3)
        c.select()
        f = c.fetch("1", "(BODY.PEEK[] FLAGS)")
        assert flags_of(f[1]["FLAGS"]) == set()
        f = c.fetch("1", "FLAGS")
        assert flags_of(f[1]["FLAGS"]) == set()
        untagged = c.ok("FETCH 2 BODY[]")
        f = fetches(untagged)
        assert "BODY[]" in f[2]
        f = c.fetch("1:3", "FLAGS")
        assert flags_of(f[1]["FLAGS"]) == set()
        assert flags_of(f[2]["FLAGS"]) == {"\\Seen"}
        assert flags_of(f[3]["FLAGS"]) == set()
        c.fetch("3", "RFC822.TEXT")
        f = c.fetch("3", "FLAGS")
        assert flags_of(f[3]["FLAGS"]) == {"\\Seen"}
        c.fetch("1", "RFC822.HEADER")   # RFC822.HEADER is a peek
        f = c.fetch("1", "FLAGS")
        assert flags_of(f[1]["FLAGS"]) == set()


def test_fetch_body_reports_new_seen_flag(cluster, account):
    """RFC 9051 6.4.5: when BODY[] sets \\Seen, the change SHOULD be reported
    in the FETCH response (Dovecot adds FLAGS)."""
    with connect(cluster, account) as c:
        fill(c, 1)
        c.select()
        f = fetches(c.ok("FETCH 1 BODY[]"))
        assert "FLAGS" in f[1] and "\\Seen" in flags_of(f[1]["FLAGS"]), f


def test_examine_never_sets_seen(cluster, account):
    with connect(cluster, account) as c:
        fill(c, 2)
        c.ok("EXAMINE INBOX")
        c.fetch("1", "BODY[]")
        c.fetch("2", "RFC822")
        c.fetch("1:2", "BODY[TEXT]")
        f = c.fetch("1:2", "FLAGS")
        assert flags_of(f[1]["FLAGS"]) == set() and flags_of(f[2]["FLAGS"]) == set()
        c.select()
        f = c.fetch("1:2", "FLAGS")
        assert flags_of(f[1]["FLAGS"]) == set() and flags_of(f[2]["FLAGS"]) == set()


def test_uid_fetch_includes_uid(cluster, account):
    with connect(cluster, account) as c:
        pairs = fill(c, 3)
        c.select()
        uids = [u for _, u in pairs]
        f = c.fetch(f"{uids[1]}:*", "FLAGS", uid=True)
        assert sorted(f) == [2, 3]
        assert f[2]["UID"] == uids[1] and f[3]["UID"] == uids[2]
        f = c.fetch(f"{uids[0]},{uids[2]}", "(RFC822.SIZE)", uid=True)
        assert sorted(f) == [1, 3] and all("UID" in v for v in f.values())
        # UID FETCH of UIDs that do not exist: OK and nothing
        untagged = c.ok(f"UID FETCH {uids[2] + 100}:{uids[2] + 200} FLAGS")
        assert untagged == []
        # n:* where n > highest UID matches the highest (RFC 9051 6.4.8)
        f = c.fetch(f"{uids[2] + 100}:*", "FLAGS", uid=True)
        assert list(f) == [3] and f[3]["UID"] == uids[2]


def test_fetch_fifty_messages(cluster, account):
    with connect(cluster, account) as c:
        pairs = fill(c, 50)
        c.select()
        f = c.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])")
        assert sorted(f) == list(range(1, 51))
        for seq, (msg, uid) in enumerate(pairs, 1):
            assert f[seq]["UID"] == uid
            assert f[seq]["RFC822.SIZE"] == len(msg)
            assert f[seq]["BODY[]"] == msg
        f = c.fetch("1:*", "FAST")
        assert all({"FLAGS", "INTERNALDATE", "RFC822.SIZE"} <= set(v) for v in f.values())
        f = c.fetch("48:*,2,5:6", "UID")
        assert sorted(f) == [2, 5, 6, 48, 49, 50]
        f = c.fetch("*:49", "UID")   # reversed range
        assert sorted(f) == [49, 50]


# ---- 7. STORE ------------------------------------------------------------------

def test_store_flags(cluster, account):
    with connect(cluster, account) as c:
        pairs = fill(c, 3)
        c.select()
        f = fetches(c.ok("STORE 1 +FLAGS (\\Flagged \\Answered)"))
        assert flags_of(f[1]["FLAGS"]) == {"\\Flagged", "\\Answered"}
        f = fetches(c.ok("STORE 1 -FLAGS (\\Answered)"))
        assert flags_of(f[1]["FLAGS"]) == {"\\Flagged"}
        f = fetches(c.ok("STORE 1:2 FLAGS (\\Seen $Forwarded Custom_kw)"))
        assert flags_of(f[1]["FLAGS"]) == {"\\Seen", "$Forwarded", "Custom_kw"}
        assert flags_of(f[2]["FLAGS"]) == {"\\Seen", "$Forwarded", "Custom_kw"}
        f = fetches(c.ok("STORE 2 -FLAGS ($Forwarded)"))
        assert flags_of(f[2]["FLAGS"]) == {"\\Seen", "Custom_kw"}
        f = fetches(c.ok("STORE 3 +FLAGS \\Draft"))   # a single flag without parens
        assert flags_of(f[3]["FLAGS"]) == {"\\Draft"}
        # .SILENT: no untagged FETCH
        untagged = c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        assert not any(b"FETCH" in r for r in untagged), untagged
        untagged = c.ok("STORE 1 FLAGS.SILENT ()")
        assert not any(b"FETCH" in r for r in untagged), untagged
        untagged = c.ok("STORE 2 -FLAGS.SILENT (\\Deleted Custom_kw)")
        assert not any(b"FETCH" in r for r in untagged), untagged
        f = c.fetch("1:3", "FLAGS")
        assert flags_of(f[1]["FLAGS"]) == set()
        assert flags_of(f[2]["FLAGS"]) == {"\\Seen"}
        assert flags_of(f[3]["FLAGS"]) == {"\\Draft", "\\Deleted"}
        # UID STORE answers with the UID
        uid = pairs[1][1]
        f = fetches(c.ok(f"UID STORE {uid} +FLAGS ($Junk)"))
        assert f[2]["UID"] == uid and flags_of(f[2]["FLAGS"]) == {"\\Seen", "$Junk"}
        # flags persist for another session, through the other frontend
        with connect(cluster, account, 1) as c2:
            c2.ok("EXAMINE INBOX")
            f = c2.fetch("1:3", "FLAGS")
            assert flags_of(f[2]["FLAGS"]) == {"\\Seen", "$Junk"}
            assert flags_of(f[3]["FLAGS"]) == {"\\Draft", "\\Deleted"}


def test_store_errors(cluster, account):
    with connect(cluster, account) as c:
        fill(c, 1)
        c.select()
        for bad in ("STORE 1 +FLAGS (\\Bogus)", "STORE 1 +FLAGS (foo(bar)",
                    "STORE 1 XFLAGS (\\Seen)", "STORE 1 +FLAGS", "STORE 1",
                    "STORE 5x +FLAGS (\\Seen)", 'STORE 1 +FLAGS ("quoted")'):
            _, tagged = c.cmd(bad)
            assert status_of(tagged) == b"BAD", (bad, tagged)
        # \Recent may not be stored; Dovecot ignores it silently
        _, tagged = c.cmd("STORE 1 +FLAGS (\\Recent)")
        assert status_of(tagged) in (b"OK", b"BAD"), tagged
        c.ok("NOOP")


def test_store_keyword_case_and_many(cluster, account):
    with connect(cluster, account) as c:
        fill(c, 1)
        c.select()
        kws = [f"kw{i}" for i in range(30)]
        f = fetches(c.ok(f"STORE 1 +FLAGS ({' '.join(kws)})"))
        assert flags_of(f[1]["FLAGS"]) == set(kws)
        # system flags are case-insensitive
        f = fetches(c.ok("STORE 1 FLAGS (\\SEEN \\flagged)"))
        assert flags_of(f[1]["FLAGS"]) == {"\\Seen", "\\Flagged"}


# ---- 8. EXPUNGE / CLOSE ---------------------------------------------------------

def test_expunge_sequence_numbers(cluster, account):
    with connect(cluster, account) as c:
        pairs = fill(c, 6)
        uids = [u for _, u in pairs]
        c.select()
        c.ok("STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
        untagged = c.ok("EXPUNGE")
        lines = expunge_lines(untagged)
        assert len(lines) == 3, untagged
        left = simulate_expunges(uids, untagged)
        assert left == [uids[0], uids[3], uids[5]], (lines, uids)
        f = c.fetch("1:*", "UID")
        assert [f[s]["UID"] for s in sorted(f)] == left
        # EXPUNGE with nothing deleted: OK, nothing said
        untagged = c.ok("EXPUNGE")
        assert expunge_lines(untagged) == []


def test_expunge_descending_order_dovecot_style(cluster, account):
    """Deleting 2,3,5 of 6: Dovecot sends * 5, * 3, * 2 EXPUNGE ... or the
    ascending form * 2, * 2, * 3. Both are correct; this pins that the numbers
    are the adjusted ones, whichever order."""
    with connect(cluster, account) as c:
        fill(c, 6)
        c.select()
        c.ok("STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
        lines = expunge_lines(c.ok("EXPUNGE"))
        assert lines in ([b"* 2 EXPUNGE", b"* 2 EXPUNGE", b"* 3 EXPUNGE"],
                         [b"* 5 EXPUNGE", b"* 3 EXPUNGE", b"* 2 EXPUNGE"]), lines


def test_close_expunges_silently(cluster, account):
    with connect(cluster, account) as c:
        pairs = fill(c, 4)
        c.select()
        c.ok("STORE 1,4 +FLAGS.SILENT (\\Deleted)")
        untagged = c.ok("CLOSE")
        assert expunge_lines(untagged) == [], untagged
        _, tagged = c.cmd("FETCH 1 FLAGS")
        assert status_of(tagged) == b"BAD"   # no mailbox selected any more
        untagged = c.select()
        assert b"* 2 EXISTS" in untagged
        f = c.fetch("1:*", "UID")
        assert [f[1]["UID"], f[2]["UID"]] == [pairs[1][1], pairs[2][1]]
        # UNSELECT does not expunge
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.ok("UNSELECT")
        assert b"* 2 EXISTS" in c.select()
        # CLOSE on EXAMINE does not expunge
        c.ok("EXAMINE INBOX")
        c.ok("CLOSE")
        assert b"* 2 EXISTS" in c.select()


def test_other_session_sees_expunge_and_exists(cluster, account):
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        pairs = fill(a, 5)
        uids = [u for _, u in pairs]
        a.select()
        assert b"* 5 EXISTS" in b.select()
        a.ok("STORE 1,4 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        untagged = b.ok("NOOP")
        assert len(expunge_lines(untagged)) == 2, untagged
        left = simulate_expunges(uids, untagged)
        assert left == [uids[1], uids[2], uids[4]]
        # new mail through the other session
        _, new_uid = a.append_uid("INBOX", make_message("new"))
        untagged = b.ok("NOOP")
        assert b"* 4 EXISTS" in untagged, untagged
        f = b.fetch("4", "UID")
        assert f[4]["UID"] == new_uid
        untagged = b.ok("CHECK")
        assert untagged == []


def test_noop_reports_flag_changes_of_other_session(cluster, account):
    """RFC 3501 5.2: flag updates by another session SHOULD be sent
    unsolicited (Dovecot sends * n FETCH (FLAGS ...) at NOOP)."""
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        fill(a, 2)
        a.select()
        b.select()
        a.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        f = fetches(b.ok("NOOP"))
        assert 2 in f and flags_of(f[2]["FLAGS"]) == {"\\Flagged"}, f


def test_fetch_after_other_session_expunge(cluster, account):
    """B fetches a message A has expunged and B has not been told about yet:
    either the data still comes, or the FETCH is answered without it (RFC 9051
    allows NO or OK); the session survives either way."""
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        fill(a, 3)
        a.select()
        b.select()
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        untagged, tagged = b.cmd("FETCH 1:3 (UID BODY.PEEK[])")
        assert status_of(tagged) in (b"OK", b"NO"), tagged
        # no EXPUNGE may arrive during FETCH (RFC 9051 7.5.1)
        assert not expunge_lines(untagged), untagged
        untagged = b.ok("NOOP")
        assert expunge_lines(untagged) == [b"* 2 EXPUNGE"]


# ---- 9. pipelining -----------------------------------------------------------------

def test_pipelining(cluster, account):
    with connect(cluster, account) as c:
        fill(c, 2)
        c.select()
        c.send(b"a NOOP\r\nb CAPABILITY\r\nc FETCH 1 FLAGS\r\nd STORE 2 +FLAGS (\\Seen)\r\n"
               b"e FETCH 2 (FLAGS)\r\nf BOGUS\r\ng NOOP\r\n")
        order = []
        for tag in b"abcdefg":
            untagged, tagged = c.read_until(bytes([tag]))
            order.append(tagged.split(b" ")[0])
            if tag == ord("b"):
                assert any(r.startswith(b"* CAPABILITY") for r in untagged)
            if tag == ord("c"):
                assert untagged == [b"* 1 FETCH (FLAGS ())"], untagged
            if tag == ord("e"):
                assert untagged == [b"* 2 FETCH (FLAGS (\\Seen))"], untagged
            if tag == ord("f"):
                assert status_of(tagged) == b"BAD"
        assert order == [b"a", b"b", b"c", b"d", b"e", b"f", b"g"]


def test_pipelined_login_select_fetch_logout(cluster, account):
    with connect(cluster, account) as c:
        fill(c, 1)
    with Imap(cluster.imap_ports[1]) as c:
        c.send(f"1 LOGIN {quote(account[0])} {quote(account[1])}\r\n2 SELECT INBOX\r\n"
               "3 FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT] RFC822.SIZE)\r\n4 FETCH 1 RFC822.SIZE\r\n"
               "5 LOGOUT\r\n")
        _, t1 = c.read_until("1")
        assert t1.startswith(b"1 OK")
        untagged, t2 = c.read_until("2")
        assert t2.startswith(b"2 OK") and b"* 1 EXISTS" in untagged
        _, t3 = c.read_until("3")
        assert t3.startswith(b"3 BAD")
        untagged, t4 = c.read_until("4")
        assert t4.startswith(b"4 OK") and len(untagged) == 1
        untagged, t5 = c.read_until("5")
        assert untagged[0].startswith(b"* BYE") and t5.startswith(b"5 OK")
        assert c.eof()


def test_pipelined_fetches_with_slow_reader(cluster, account):
    """Many large FETCHes pipelined while the client reads nothing: all are
    answered, in order, byte-exact (the server must apply back-pressure, not
    buffer without bound or drop)."""
    big = make_message("big", b"z" * 65536 + b"\r\n")
    with connect(cluster, account) as c:
        c.append_uid("INBOX", big)
        c.select()
        n = 200
        c.send(b"".join(b"p%d FETCH 1 BODY.PEEK[]\r\n" % i for i in range(n)))
        time.sleep(0.5)
        for i in range(n):
            untagged, tagged = c.read_until(b"p%d" % i)
            assert status_of(tagged) == b"OK"
            assert fetches(untagged)[1]["BODY[]"] == big
        c.ok("NOOP")


@pytest.mark.parametrize("item,label", [(b"BODY.PEEK[]", b"BODY[]"),
                                        (b"BINARY.PEEK[1]", b"BINARY[1]")])
def test_disconnect_mid_fetch_ends_the_stream(cluster, account, item, label):
    """A client that leaves in the middle of a FETCH of a 24 MB body (more
    than the kernel's socket buffers take in on loopback): the backend's
    request ends whether the client leaves before the stream starts, while
    a read is in flight, or while the stream waits for the client to read
    on; and the same body is served whole after."""
    big = make_message("big", (b"y" * 998 + b"\r\n") * 24000)
    with connect(cluster, account) as c:
        _, uid = c.append_uid("INBOX", big)
    for keep, pause in ((200, 0), (300000, 0), (300000, 1.0)):
        c = connect(cluster, account)
        c.select()
        c.send(b"f UID FETCH %d %s\r\n" % (uid, item))
        got = b""
        while len(got) < keep:
            got += c.sock.recv(65536)
        assert label in got[:200]
        time.sleep(pause)   # 1 s: the stream has stopped for the client
        c.close()
        wait_for(lambda: total(scrape_all(cluster.backend_http_ports),
                               "petrel_backend_requests_inflight") == 0,
                 10, f"the backend to end the cancelled stream ({keep}, {pause})")
    with connect(cluster, account) as c:
        c.select()
        untagged, tagged = c.cmd(f"UID FETCH {uid} BODY.PEEK[]")
        assert status_of(tagged) == b"OK"
        assert fetches(untagged)[1]["BODY[]"] == big


def test_login_password_quoting(cluster):
    password = 'p"w\\x y{3}'
    address, _ = cluster.new_account(password=password)
    with Imap(cluster.imap_ports[0]) as c:
        c.login(address, password)
    with Imap(cluster.imap_ports[1]) as c:   # LITERAL+ before login
        pw = password.encode()
        c.send(b"a LOGIN " + address.upper().encode() + b" {%d+}\r\n" % len(pw) + pw + b"\r\n")
        _, tagged = c.read_until("a")
        assert tagged.startswith(b"a OK"), tagged
    with Imap(cluster.imap_ports[1]) as c:
        _, tagged = c.cmd(f"LOGIN {quote(address)} {quote(password[:-1])}")
        assert re.match(rb"t1 NO \[AUTHENTICATIONFAILED\]", tagged)


def test_lf_only_command_lines(cluster, account):
    """Dovecot accepts a bare LF as line end; a client doing so gets answers."""
    with Imap(cluster.imap_ports[0]) as c:
        c.send(b"a NOOP\n")
        _, tagged = c.read_until("a")
        assert status_of(tagged) in (b"OK", b"BAD")
        c.ok("NOOP")


# ---- 10. hostile input --------------------------------------------------------------

def test_overlong_line_before_login(cluster, account):
    with Imap(cluster.imap_ports[0]) as c:
        c.send(b"x1 NOOP " + b"a" * 9000 + b"\r\n")
        r = c.response()
        assert re.match(rb"(x1|\*) BAD ", r), r
        c.ok("NOOP")
        c.login(*account)
        c.ok("NOOP")


def test_overlong_line_after_login(cluster, account):
    with connect(cluster, account) as c:
        c.send(b"x1 NOOP " + b"a" * (70 * 1024) + b"\r\n")
        r = c.response()
        assert re.match(rb"(x1|\*) BAD ", r), r
        c.ok("NOOP")
        # a line of 60 KiB is still fine
        untagged, tagged = c.cmd("FETCH 1:" + "1," * 30000 + "1 FLAGS")
        assert status_of(tagged) == b"BAD"     # no mailbox selected: BAD, not cut off
        c.ok("NOOP")


def test_huge_literal_size_is_fatal(cluster, account):
    with connect(cluster, account) as c:
        c.send(b"x1 APPEND INBOX {99999999999999999999}\r\n")
        lines = []
        try:
            while True:
                lines.append(c.line())
        except (Closed, ConnectionError):
            pass
        assert lines and lines[-1].startswith(b"* BYE"), lines
        assert not any(l.startswith(b"+") for l in lines), lines
    with Imap(cluster.imap_ports[0]) as c:   # before login too
        c.send(b"x1 LOGIN {99999999999999999999}\r\n")
        lines = []
        try:
            while True:
                lines.append(c.line())
        except (Closed, ConnectionError):
            pass
        assert lines and lines[-1].startswith(b"* BYE"), lines


def test_append_bigger_than_appendlimit(cluster, account):
    limit = 50 * 1024 * 1024
    with connect(cluster, account) as c:
        c.send(f"x1 APPEND INBOX {{{limit + 1}}}\r\n")
        r = c.response()
        assert re.match(rb"x1 NO \[TOOBIG\]", r), r
        c.ok("NOOP")
        untagged = c.ok("STATUS INBOX (MESSAGES)")
        assert untagged == [b'* STATUS INBOX (MESSAGES 0)'], untagged
        # exactly at the limit is not refused up front (we do not send it)
        c.send(f"x2 APPEND INBOX {{{limit}}}\r\n")
        r = c.response()
        assert r.startswith(b"+"), r
        # abandon it: the connection is dropped below


def test_nonsync_literal_bigger_than_appendlimit(cluster, account):
    """LITERAL+ bigger than APPENDLIMIT: the client sends it anyway; the
    server refuses (RFC 7888 4: BAD or NO [TOOBIG]) and reads on, or closes."""
    limit = 50 * 1024 * 1024
    with connect(cluster, account) as c:
        c.send(f"x1 APPEND INBOX {{{limit + 1}+}}\r\n")
        chunk = b"x" * (1 << 20)
        sent = 0
        try:
            while sent < limit + 1:
                n = min(len(chunk), limit + 1 - sent)
                c.sock.sendall(chunk[:n])
                sent += n
            c.send(b"\r\nx2 NOOP\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            r = c.response()
        except ConnectionResetError:
            r = b"* BYE (reset)"
        if r.startswith(b"* BYE"):   # RFC 7888 4 also allows closing
            assert c.eof()
        else:
            assert re.match(rb"x1 (BAD|NO)", r), r
            try:
                untagged, tagged = c.read_until("x2")
                assert status_of(tagged) == b"OK"
                c.ok("NOOP")
            except Closed as e:
                assert b"BYE" in e.pending
    with connect(cluster, account) as c:
        assert c.ok("STATUS INBOX (MESSAGES)") == [b'* STATUS INBOX (MESSAGES 0)']


@pytest.mark.parametrize("garbage", [
    b"\x00\x01\x02\r\n",
    b"x1 NOOP\x00\r\n",
    b"x1 \x00NOOP\r\n",
    b"\xff\xfe\xfd garbage\r\n",
    b"x1 STATUS INBOX (MESSAGES\r\n",
    b"x1 STATUS INBOX MESSAGES)\r\n",
    b"x1 STATUS INBOX ((MESSAGES)\r\n",
    b"x1 LIST \"\r\n",
    b"x1\r\n",
    b"x1 \r\n",
    b"+ NOOP\r\n",
    b"* NOOP\r\n",
    b"x1 NOOP\rx2 NOOP\r\n",
])
def test_garbage_is_bad(cluster, account, garbage):
    with connect(cluster, account) as c:
        c.send(garbage)
        r = c.response()
        assert re.match(rb"[^ ]* BAD", r), (garbage, r)
        c.ok("NOOP")


def test_empty_line_is_harmless(cluster, account):
    """An empty line is not a command: answered with BAD or ignored."""
    with connect(cluster, account) as c:
        c.send(b"\r\n\r\n")
        untagged, tagged = c.cmd("NOOP")
        assert all(re.match(rb"\* BAD", r) for r in untagged), untagged
        assert status_of(tagged) == b"OK"


def test_deep_nesting_and_many_args(cluster, account):
    with connect(cluster, account) as c:
        _, tagged = c.cmd("STATUS INBOX " + "(" * 100 + "MESSAGES" + ")" * 100)
        assert status_of(tagged) == b"BAD"
        _, tagged = c.cmd("STATUS INBOX (" + "MESSAGES " * 12000 + ")")
        assert status_of(tagged) == b"BAD"
        c.ok("NOOP")


def test_disconnect_mid_append_literal(cluster, account):
    msg = make_message("partial", b"y" * (2 * 1024 * 1024))
    # sessions on every worker of both frontends, which must survive
    bystanders = [connect(cluster, account, i % 2) for i in range(8)]
    try:
        with connect(cluster, account) as c:
            c.send(f"x1 APPEND INBOX {{{len(msg)}}}\r\n")
            assert c.response().startswith(b"+")
            c.send(msg[:len(msg) // 2])
            time.sleep(0.3)
        # a LITERAL+ one, cut short too
        with connect(cluster, account, 1) as c:
            c.send(f"x1 APPEND INBOX {{{len(msg)}+}}\r\n".encode() + msg[:3 * len(msg) // 4])
            time.sleep(0.3)
        time.sleep(0.5)
        for i in range(6):   # some allocation traffic on every worker
            with connect(cluster, account, i % 2) as c:
                c.ok("STATUS INBOX (MESSAGES)")
        with connect(cluster, account, 1) as c:
            untagged = c.ok("STATUS INBOX (MESSAGES UIDNEXT)")
            assert re.match(rb"\* STATUS INBOX \(MESSAGES 0 UIDNEXT \d+\)", untagged[0]), untagged
            assert b"* 0 EXISTS" in c.select()
            # the mailbox still works
            c.append_uid("INBOX", make_message("after"))
            c.ok("NOOP")
        for b in bystanders:
            b.ok("NOOP")
    finally:
        for b in bystanders:
            b.close()


def test_disconnect_right_after_append(cluster, account):
    """A client that sends a whole APPEND and hangs up before the tagged
    answer (a phone losing signal): the frontend must not fall over; the
    message is stored or not, never half."""
    msg = make_message("sent then gone", b"v" * 100000)
    bystanders = [connect(cluster, account, i % 2) for i in range(8)]
    try:
        for i in range(3):
            c = connect(cluster, account, i % 2)
            c.send(b"x APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
            c.close()
        time.sleep(0.5)
        for b in bystanders:
            b.ok("NOOP")
        with connect(cluster, account, 1) as c:
            untagged = c.select()
            f = c.fetch("1:*", "(RFC822.SIZE)") if b"* 0 EXISTS" not in untagged else {}
            assert all(v["RFC822.SIZE"] == len(msg) for v in f.values())
    finally:
        for b in bystanders:
            b.close()


def test_twenty_bads_in_a_row_end_the_session(cluster, account):
    with connect(cluster, account) as c:
        for i in range(19):
            _, tagged = c.cmd(f"BOGUS{i}")
            assert status_of(tagged) == b"BAD"
        c.ok("NOOP")   # resets the count
        for i in range(19):
            _, tagged = c.cmd(f"BOGUS{i}")
            assert status_of(tagged) == b"BAD"
        c.send(b"last BOGUS\r\n")
        lines = []
        try:
            while True:
                lines.append(c.line())
        except (Closed, ConnectionError):
            pass
        assert lines[0].startswith(b"last BAD"), lines
        assert lines[-1].startswith(b"* BYE"), lines
    with Imap(cluster.imap_ports[0]) as c:   # garbage before login, pipelined
        c.send(b"\x01garbage\r\n" * 25)
        lines = []
        try:
            while True:
                lines.append(c.line())
        except (Closed, ConnectionError):
            pass
        assert sum(1 for l in lines if b" BAD " in l) == 20, lines
        assert lines[-1].startswith(b"* BYE"), lines


# ---- 11. database down --------------------------------------------------------------

PG_BIN = "/usr/lib/postgresql/15/bin"


def as_pg(args):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def pg_ctl(cluster, *args, timeout=60):
    data = str(Path(cluster.dir) / "pg" / "data")
    cmd = [f"{PG_BIN}/pg_ctl", *args, "-D", data, "-w", "-t", "30"]
    if args[0] == "start":
        cmd += ["-l", str(Path(cluster.dir) / "pg" / "postgres.log")]
    return subprocess.run(as_pg(cmd), capture_output=True, text=True, timeout=timeout)


def pg_running(cluster):
    return pg_ctl(cluster, "status").returncode == 0


def record_pg_pid(cluster):
    """Rewrites the cluster's record of the PostgreSQL postmaster (PID and
    start time, as deploy/local/cluster keeps them), so `down` stops the
    restarted server."""
    pid = int((Path(cluster.dir) / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    pids = Path(cluster.dir) / "pids"
    (pids / "postgres.pid").write_text(f"{pid}\n")
    (pids / "postgres.start").write_text(f"{stat[19]}\n")


def test_database_down_and_back(cluster_factory):
    c = cluster_factory(1, 1)
    account = c.new_account()
    stopped = False
    try:
        s = Imap(c.imap_ports[0])
        s.login(*account)
        s.append_uid("INBOX", make_message("before"))
        s.select()
        s.fetch("1", "BODY.PEEK[]")

        r = pg_ctl(c, "stop", "-m", "fast")
        assert r.returncode == 0, r.stderr
        stopped = True

        t0 = time.monotonic()
        _, tagged = s.cmd("FETCH 1 (FLAGS BODY.PEEK[])")
        assert re.match(rb"t\d+ NO \[UNAVAILABLE\]", tagged), tagged
        assert time.monotonic() - t0 < 20
        _, tagged = s.cmd("SELECT INBOX")
        assert re.match(rb"t\d+ NO \[UNAVAILABLE\]", tagged), tagged
        _, tagged = s.cmd("STATUS INBOX (MESSAGES)")
        assert re.match(rb"t\d+ NO \[UNAVAILABLE\]", tagged), tagged
        tagged = s.append("INBOX", make_message("during"))
        assert re.match(rb"t\d+ NO \[UNAVAILABLE\]", tagged), tagged
        s.ok("NOOP")   # the session stays

        # a new login cannot be checked: NO [UNAVAILABLE], not AUTHENTICATIONFAILED
        with Imap(c.imap_ports[0]) as s2:
            _, tagged = s2.cmd(f"LOGIN {quote(account[0])} {quote(account[1])}")
            assert re.match(rb"t1 NO \[UNAVAILABLE\]", tagged), tagged

        r = pg_ctl(c, "start")
        assert r.returncode == 0, r.stderr
        stopped = False
        record_pg_pid(c)

        deadline = time.monotonic() + 10
        while True:
            untagged, tagged = s.cmd("SELECT INBOX")
            if status_of(tagged) == b"OK" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status_of(tagged) == b"OK", tagged
        assert b"* 1 EXISTS" in untagged
        f = s.fetch("1", "BODY.PEEK[]")
        assert f[1]["BODY[]"].startswith(b"From: Alice")
        s.append_uid("INBOX", make_message("after"))
        s.close()
        assert worker_deaths(c) == []
    finally:
        if stopped or not pg_running(c):
            pg_ctl(c, "start")
            record_pg_pid(c)


# ---- 12. curl ----------------------------------------------------------------------

def curl(port, path, account, *extra):
    r = subprocess.run(["curl", "-s", "-S", "--max-time", "20", *extra,
                        f"imap://127.0.0.1:{port}/{path}", "-u", f"{account[0]}:{account[1]}"],
                       capture_output=True, timeout=30)
    return r


def test_curl_list_and_fetch(cluster, account):
    msg = make_message("for curl", "Hello curl.\r\n")
    with connect(cluster, account) as c:
        c.ok("CREATE Stuff")
        _, uid = c.append_uid("INBOX", msg)
    port = cluster.imap_ports[1]
    r = curl(port, "", account)
    assert r.returncode == 0, r.stderr
    assert b"INBOX" in r.stdout and b"Stuff" in r.stdout
    r = curl(port, f"INBOX;UID={uid}", account)
    assert r.returncode == 0, r.stderr
    assert r.stdout == msg
    r = curl(port, "INBOX", account, "-X", "FETCH 1 FLAGS")
    assert r.returncode == 0, r.stderr
    assert re.search(rb"\* 1 FETCH \(FLAGS \([^)]*\\Seen[^)]*\)\)", r.stdout), r.stdout
    r = curl(port, "INBOX", account, "-X", "UID FETCH 1:* (RFC822.SIZE)")
    assert r.returncode == 0, r.stderr
    assert f"RFC822.SIZE {len(msg)}".encode() in r.stdout
    # wrong password: curl fails with a login error (67)
    r = curl(port, "INBOX", (account[0], "wrong"))
    assert r.returncode == 67, (r.returncode, r.stderr)


def test_curl_append(cluster, account, tmp_path):
    msg = make_message("uploaded by curl", "Uploaded.\r\n")
    f = tmp_path / "msg.eml"
    f.write_bytes(msg)
    r = curl(cluster.imap_ports[0], "INBOX", account, "-T", str(f))
    assert r.returncode == 0, r.stderr
    with connect(cluster, account, 1) as c:
        c.select()
        got = c.fetch("1", "BODY.PEEK[]")
        assert got[1]["BODY[]"] == msg
