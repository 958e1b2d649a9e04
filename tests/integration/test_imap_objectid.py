"""OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) against a real 2x2 cluster,
both frontends, and the migration that brings them (010_objectid_savedate.sql)
applied to a database that already holds mail.

Ids must look as RFC 8474 7 says (1-255 of [A-Za-z0-9_-]); MAILBOXID survives
RENAME and is never reused; EMAILID and THREADID survive COPY and MOVE;
THREADID follows Message-ID / In-Reply-To / References, also through LMTP
and when a reply arrives before its parent; SAVEDATE is the time of the save
into that mailbox.
"""

import datetime
import os
import re
import secrets
import smtplib
import subprocess
import threading
import time
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest

from imap_util import Imap, code, fetches, quote, status_of

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("PETREL_CLUSTER_BIN") or ROOT / "bin")
OBJECTID = re.compile(rb"^[A-Za-z0-9_-]{1,255}$")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def session(cluster, new_account, frontend=0, account=None):
    address, password = account or new_account()
    c = Imap(cluster.imap_ports[frontend % len(cluster.imap_ports)])
    c.login(address, password)
    return c, (address, password)


def message(msgid=None, in_reply_to=None, references=None, subject="s", body=b"body\r\n"):
    h = b"From: a@example.com\r\nSubject: " + subject.encode() + b"\r\n"
    if msgid:
        h += b"Message-ID: <" + msgid.encode() + b">\r\n"
    if in_reply_to:
        h += b"In-Reply-To: <" + in_reply_to.encode() + b">\r\n"
    if references:
        # Folded, as real clients write long References.
        h += b"References: " + b"\r\n ".join(b"<" + r.encode() + b">" for r in references) + b"\r\n"
    return h + b"\r\n" + body


def unique(prefix):
    return f"{prefix}.{secrets.token_hex(6)}@example.com"


def mailboxid_of(c, name):
    untagged = c.ok(f"STATUS {quote(name)} (MAILBOXID)")
    m = re.search(rb"\(MAILBOXID \(([^)]*)\)\)", untagged[0])
    assert m, untagged
    assert OBJECTID.match(m.group(1)), m.group(1)
    return m.group(1)


def ids(c, seqset="1:*", uid=False):
    """{uid: (EMAILID, THREADID)}; THREADID None for NIL."""
    out = {}
    for items in c.fetch(seqset, "(UID EMAILID THREADID)", uid=uid).values():
        e, t = items["EMAILID"], items["THREADID"]
        assert isinstance(e, list) and len(e) == 1 and OBJECTID.match(e[0]), items
        assert t is None or (isinstance(t, list) and len(t) == 1 and OBJECTID.match(t[0])), items
        out[items["UID"]] = (e[0], t[0] if t else None)
    return out


def search(c, criteria):
    untagged = c.ok(f"UID SEARCH {criteria}")
    line = [r for r in untagged if r.startswith(b"* SEARCH")]
    assert len(line) == 1, untagged
    return [int(x) for x in line[0].split()[2:]]


def parse_date(value):
    """An IMAP date-time as an aware datetime."""
    return datetime.datetime.strptime(value.decode(), "%d-%b-%Y %H:%M:%S %z")


def imap_day(d):
    return f"{d.day}-{MONTHS[d.month - 1]}-{d.year}"


# ---- capability -------------------------------------------------------------

def test_capability_advertised(cluster, new_account):
    for frontend in range(2):
        c, _ = session(cluster, new_account, frontend)
        with c:
            untagged = c.ok("CAPABILITY")
            caps = untagged[0].split()
            assert b"OBJECTID" in caps and b"SAVEDATE" in caps, untagged


# ---- MAILBOXID --------------------------------------------------------------

def test_mailboxid_create_select_status_rename_and_never_reused(cluster, new_account):
    a, account = session(cluster, new_account, 0)
    b, _ = session(cluster, new_account, 1, account)
    with a, b:
        _, tagged = a.cmd('CREATE "Projects/Petrel"')
        assert status_of(tagged) == b"OK", tagged
        m = re.match(rb"t\d+ OK \[MAILBOXID \(([^)]+)\)\] ", tagged)
        assert m and OBJECTID.match(m.group(1)), tagged
        created = m.group(1)
        # The other frontend (and so maybe the other backend) sees the same.
        assert mailboxid_of(b, "Projects/Petrel") == created
        untagged = b.ok('EXAMINE "Projects/Petrel"')
        assert code(untagged, "MAILBOXID") == f"({created.decode()})", untagged
        untagged = a.ok('SELECT "Projects/Petrel"')
        assert code(untagged, "MAILBOXID") == f"({created.decode()})", untagged
        a.ok("UNSELECT")

        # Distinct per mailbox, the parent CREATE made included.
        others = {mailboxid_of(a, n) for n in ("INBOX", "Sent", "Trash", "Projects")}
        assert len(others) == 4 and created not in others

        # RENAME keeps it, also for a mailbox moved along below the renamed one.
        a.ok('RENAME "Projects" "Work"')
        assert mailboxid_of(b, "Work/Petrel") == created
        a.ok('RENAME "Work/Petrel" "Petrel2"')
        assert mailboxid_of(a, "Petrel2") == created

        # DELETE + CREATE of the same name: a new mailbox, a new id.
        a.ok('DELETE "Petrel2"')
        _, tagged = b.cmd('CREATE "Petrel2"')
        again = re.search(rb"\[MAILBOXID \(([^)]+)\)\]", tagged).group(1)
        assert again != created and again not in others
        assert mailboxid_of(a, "Petrel2") == again

        # STATUS with other items, and LIST-STATUS carry the same ids.
        untagged = a.ok('STATUS "Petrel2" (MESSAGES MAILBOXID UIDNEXT)')
        assert re.fullmatch(rb'\* STATUS "?Petrel2"? \(MESSAGES 0 UIDNEXT 1 MAILBOXID \(' + again + rb"\)\)",
                            untagged[0]), untagged
        untagged = b.ok('LIST "" "*" RETURN (STATUS (MAILBOXID))')
        listed = {}
        for r in untagged:
            m = re.match(rb'\* STATUS "?([^"(]+?)"? \(MAILBOXID \(([^)]+)\)\)$', r)
            if m:
                listed[m.group(1)] = m.group(2)
        assert listed[b"Petrel2"] == again and listed[b"INBOX"] == mailboxid_of(a, "INBOX")
        assert len(set(listed.values())) == len(listed)

        _, tagged = a.cmd('STATUS "Nope" (MAILBOXID)')
        assert status_of(tagged) == b"NO", tagged


def test_status_mailboxid_with_deleted(cluster, new_account):
    """STATUS DELETED (IMAP4rev2) takes another statement; MAILBOXID comes
    with it too."""
    c, _ = session(cluster, new_account, 1)
    with c:
        inbox = mailboxid_of(c, "INBOX")
        c.append_uid("INBOX", message(unique("d")), flags="\\Deleted")
        c.ok("ENABLE IMAP4rev2")
        untagged = c.ok("STATUS INBOX (MAILBOXID DELETED MESSAGES)")
        assert re.search(rb"\(MESSAGES 1 DELETED 1 MAILBOXID \(" + inbox + rb"\)\)$", untagged[0]), untagged


# ---- EMAILID / THREADID -----------------------------------------------------

def test_emailid_kept_by_copy_and_move_distinct_otherwise(cluster, new_account):
    a, account = session(cluster, new_account, 0)
    b, _ = session(cluster, new_account, 1, account)
    with a, b:
        same_body = message(unique("same"))
        a.append_uid("INBOX", same_body)
        a.append_uid("INBOX", same_body)          # the same bytes, appended again
        a.append_uid("INBOX", message(unique("other")))
        a.select("INBOX")
        inbox = ids(a)
        assert len({e for e, _ in inbox.values()}) == 3, inbox
        a.ok("UID COPY 1 Archive")
        a.ok("UID MOVE 2:3 Trash")
        b.select("Archive")
        assert list(ids(b).values()) == [inbox[1]]
        b.select("Trash")
        assert list(ids(b).values()) == [inbox[2], inbox[3]]
        # A copy of the copy still has it.
        b.ok("UID COPY 1 Drafts")
        b.select("Drafts")
        assert list(ids(b).values()) == [inbox[2]]


def test_threadid_follows_replies_across_mailboxes_and_frontends(cluster, new_account):
    a, account = session(cluster, new_account, 0)
    b, _ = session(cluster, new_account, 1, account)
    root, reply, reply2, late_parent, early_child, lone = (
        unique(x) for x in ("root", "reply", "reply2", "late", "early", "lone"))
    with a, b:
        a.append_uid("INBOX", message(root))
        b.append_uid("Sent", message(reply, in_reply_to=root, references=[root]))
        a.append_uid("INBOX", message(reply2, in_reply_to=reply, references=[root, reply]))
        # Only In-Reply-To (no References), as some clients write.
        b.append_uid("INBOX", message(unique("irt"), in_reply_to=reply2))
        a.append_uid("INBOX", message(lone))
        a.append_uid("INBOX", message(None))                       # no Message-ID at all
        # A reply that arrives before the message it answers.
        a.append_uid("INBOX", message(early_child, references=[late_parent]))
        b.append_uid("INBOX", message(late_parent))

        a.select("INBOX")
        inbox = ids(a)
        b.select("Sent")
        sent = ids(b)
        thread = inbox[1][1]
        assert thread is not None
        assert sent[1][1] == thread and inbox[2][1] == thread and inbox[3][1] == thread
        assert inbox[4][1] not in (None, thread) and inbox[5][1] not in (None, thread)
        assert inbox[4][1] != inbox[5][1]
        assert inbox[6][1] == inbox[7][1] and inbox[6][1] != thread
        # EMAILID and THREADID are different kinds of id.
        assert {e for e, _ in inbox.values()}.isdisjoint({t for _, t in inbox.values()})

        # SEARCH THREADID / EMAILID, also combined and negated.
        assert search(a, f"THREADID {thread.decode()}") == [1, 2, 3]
        assert search(b, f"THREADID {thread.decode()}") == [1]
        assert search(a, f"EMAILID {inbox[2][0].decode()}") == [2]
        assert search(a, f"NOT EMAILID {inbox[2][0].decode()}") == [1, 3, 4, 5, 6, 7]
        assert search(a, f"OR EMAILID {inbox[4][0].decode()} THREADID {inbox[6][1].decode()}") == [4, 6, 7]
        # A THREADID is no EMAILID; well-formed ids we never made match nothing.
        assert search(a, f"EMAILID {thread.decode()}") == []
        assert search(a, "THREADID T00000000000000000000000000000000") == []
        assert search(a, "EMAILID x") == []
        for bad in ("EMAILID", "EMAILID a!b", "THREADID (T1)", "EMAILID " + "a" * 256):
            _, tagged = a.cmd(f"SEARCH {bad}")
            assert status_of(tagged) == b"BAD", (bad, tagged)

        # LMTP delivery of a reply joins the thread.
        with smtplib.LMTP("127.0.0.1", cluster.lmtp_ports[1 % len(cluster.lmtp_ports)]) as s:
            assert s.sendmail("x@example.org", [account[0]],
                              message(unique("lmtp"), in_reply_to=reply2, references=[root, reply2])) == {}
        a.ok("NOOP")
        delivered = ids(a, "8")
        assert list(delivered.values())[0][1] == thread


def test_concurrent_message_and_reply_share_a_thread(cluster, new_account):
    """A message and its reply stored at the same moment through different
    frontends and backends: neither sees the other committed, yet they must
    land in one thread (010: ids are inserted before they are read back)."""
    account = new_account()
    pairs = [(unique(f"p{i}"), unique(f"c{i}")) for i in range(15)]
    barrier = threading.Barrier(2)
    errors = []

    def writer(frontend, make):
        try:
            c, _ = session(cluster, new_account, frontend, account)
            with c:
                for root, child in pairs:
                    barrier.wait(timeout=30)
                    c.append_uid("INBOX", make(root, child))
        except Exception as e:   # reported below, in the test's thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(0, lambda r, c: message(r, subject=r))),
               threading.Thread(target=writer, args=(1, lambda r, c: message(c, in_reply_to=r,
                                                                              references=[r], subject=r)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    c, _ = session(cluster, new_account, 0, account)
    with c:
        c.select("INBOX")
        by_subject = {}
        for items in c.fetch("1:*", "(THREADID BODY.PEEK[HEADER.FIELDS (SUBJECT)])").values():
            subject = items["BODY[HEADER.FIELDS (SUBJECT)]"].split(b":", 1)[1].strip()
            by_subject.setdefault(subject, set()).add(items["THREADID"][0])
        assert len(by_subject) == len(pairs)
        assert all(len(t) == 1 for t in by_subject.values()), by_subject
        assert len({next(iter(t)) for t in by_subject.values()}) == len(pairs)


# ---- SAVEDATE ---------------------------------------------------------------

def test_savedate_is_the_save_into_this_mailbox(cluster, new_account):
    a, account = session(cluster, new_account, 0)
    b, _ = session(cluster, new_account, 1, account)
    with a, b:
        before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        a.append_uid("INBOX", message(unique("old")), date="01-Jan-2000 12:00:00 +0000")
        a.select("INBOX")
        f = a.fetch("1", "(INTERNALDATE SAVEDATE)")[1]
        saved = parse_date(f["SAVEDATE"])
        assert parse_date(f["INTERNALDATE"]).year == 2000
        assert before <= saved <= datetime.datetime.now(datetime.timezone.utc)
        time.sleep(1.5)   # SAVEDATE has whole seconds
        a.ok("COPY 1 Archive")
        b.select("Archive")
        copied = parse_date(b.fetch("1", "(SAVEDATE)")[1]["SAVEDATE"])
        assert copied > saved
        time.sleep(1.1)
        b.ok("MOVE 1 Junk")
        b.select("Junk")
        moved = parse_date(b.fetch("1", "SAVEDATE")[1]["SAVEDATE"])
        assert moved > copied
        # UID FETCH reports it too, and alongside other items.
        f = b.fetch("1", "(SAVEDATE EMAILID FLAGS)", uid=True)[1]
        assert parse_date(f["SAVEDATE"]) == moved and "FLAGS" in f

        # The SAVED* keys compare the save date's UTC day, unlike BEFORE.
        day = saved.astimezone(datetime.timezone.utc).date()
        today, tomorrow = imap_day(day), imap_day(day + datetime.timedelta(days=1))
        assert search(a, f"SAVEDON {today}") == [1]
        assert search(a, f"SAVEDSINCE {today}") == [1]
        assert search(a, f"SAVEDBEFORE {today}") == []
        assert search(a, f"SAVEDBEFORE {tomorrow}") == [1]
        assert search(a, f"SAVEDSINCE {tomorrow}") == []
        assert search(a, f'SAVEDON "{imap_day(day - datetime.timedelta(days=1))}"') == []
        assert search(a, f"BEFORE {today}") == [1]               # INTERNALDATE is in 2000
        assert search(a, "SAVEDATESUPPORTED") == [1]
        assert search(a, "NOT SAVEDATESUPPORTED") == []
        _, tagged = a.cmd("SEARCH SAVEDON 32-Jan-2020")
        assert status_of(tagged) == b"BAD", tagged


# ---- the migration on a database that already has mail ----------------------

def apply_sql(conn, version, path):
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(path.read_text())
        cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (version, path.stem))
        cur.execute("COMMIT")


def test_migration_on_existing_mail(pg_url):
    name = "petrel_oid_" + secrets.token_hex(4)
    server = psycopg2.connect(pg_url)
    server.autocommit = True
    with server.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
    dsn = psycopg2.extensions.make_dsn(pg_url, dbname=name)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                        " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        files = sorted((ROOT / "backend" / "migrations").glob("*.sql"))
        for f in files:
            if int(f.stem.split("_")[0]) < 10:
                apply_sql(conn, int(f.stem.split("_")[0]), f)

        # Mail as the release before 010 stored it.
        cur = conn.cursor()
        cur.execute("SELECT petrel_account_create('old@example.com', 'x')")
        acct = cur.fetchone()[0]
        body = message("old-1@example.com")
        for b in (body, body, message("old-2@example.com")):
            cur.execute("SELECT * FROM petrel_append(%s, 'INBOX', 0, NULL, 0, 0, 0, %s)", (acct, b))
        cur.execute("SELECT mailbox_id FROM petrel_select(%s, 'INBOX')", (acct,))
        inbox = cur.fetchone()[0]
        cur.execute("SELECT * FROM petrel_copy(%s, %s, '{3}', '{3}', 'Archive', false)", (acct, inbox))
        cur.execute("SELECT mailbox_id, uid, savedate FROM messages WHERE account_id = %s ORDER BY 1, 2",
                    (acct,))
        saved_before = cur.fetchall()

        env = {k: v for k, v in os.environ.items() if not k.startswith("PETREL_")}
        env["PETREL_PG_URL"] = dsn
        r = subprocess.run([str(BIN / "petrel-admin"), "migrate"], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        cur.execute("SELECT max(version) FROM schema_migrations")
        assert cur.fetchone()[0] >= 10

        # Every mailbox got its own id.
        cur.execute("SELECT count(*), count(DISTINCT objectid) FROM mailboxes WHERE account_id = %s", (acct,))
        n, distinct = cur.fetchone()
        assert n == distinct and n >= 6
        # Save dates are the ones the rows already had.
        cur.execute("SELECT mailbox_id, uid, savedate FROM messages WHERE account_id = %s ORDER BY 1, 2",
                    (acct,))
        assert cur.fetchall() == saved_before
        # EMAILID per stored body: the copy and the identical re-append share
        # one; THREADID unknown (NIL), never invented.
        cur.execute("SELECT uid, emailid, threadid, savedate FROM petrel_meta_objectid(%s, %s, NULL, NULL)",
                    (acct, inbox))
        rows = cur.fetchall()
        assert [r[0] for r in rows] == [1, 2, 3]
        assert rows[0][1] == rows[1][1] != rows[2][1]
        assert all(r[2] is None and r[3] > 0 for r in rows)
        cur.execute("SELECT mailbox_id FROM petrel_select(%s, 'Archive')", (acct,))
        archive = cur.fetchone()[0]
        cur.execute("SELECT emailid, threadid FROM petrel_meta_objectid(%s, %s, NULL, NULL)", (acct, archive))
        assert cur.fetchall() == [(rows[2][1], None)]

        # New mail after it is threaded; the old functions still work for a
        # backend of the previous release during a rolling restart.
        cur.execute("SELECT uid FROM petrel_append_message(%s, 'INBOX', 0, NULL, 0, 0, 0, %s, NULL, NULL,"
                    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'new@x', '{old-2@example.com}')",
                    (acct, message("new@x")))
        new_uid = cur.fetchone()[0]
        cur.execute("SELECT uid FROM petrel_append(%s, 'INBOX', 0, NULL, 0, 0, 0, %s)",
                    (acct, message("legacy@x")))
        legacy_uid = cur.fetchone()[0]
        cur.execute("SELECT uid, emailid, threadid FROM petrel_meta_objectid(%s, %s, %s, %s)",
                    (acct, inbox, f"{{{new_uid}}}", f"{{{legacy_uid}}}"))
        new, legacy = cur.fetchall()
        assert new[2] is not None and legacy[2] is None and new[1] != legacy[1]
        cur.close()
    finally:
        conn.close()
        with server.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        server.close()
