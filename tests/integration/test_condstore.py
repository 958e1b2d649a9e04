"""CONDSTORE and QRESYNC (RFC 7162), and change reporting between sessions
on different frontends: flag changes at NOOP and in IDLE, HIGHESTMODSEQ,
FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE, SELECT (QRESYNC ...), VANISHED,
and tombstone pruning (too_old fallback)."""

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

from imap_util import TIMEOUT, Imap, code, fetches, flags_of, make_message, parse_fetch, quote


@pytest.fixture
def account(new_account):
    return new_account()


def connect(cluster, account, frontend=0):
    c = Imap(cluster.imap_ports[frontend])
    c.login(*account)
    return c


def fill(c, n, mailbox="INBOX", prefix="msg"):
    """Appends n messages with LITERAL+ in one pipelined send; returns UIDs."""
    msgs = [make_message(f"{prefix} {i}", f"Body {i}.\r\n") for i in range(n)]
    tags = [c.tag() for _ in msgs]
    c.send(b"".join(f"{t} APPEND {quote(mailbox)} {{{len(m)}+}}\r\n".encode() + m + b"\r\n"
                    for t, m in zip(tags, msgs)))
    uids = []
    for t in tags:
        _, tagged = c.read_until(t)
        m = re.search(rb"OK \[APPENDUID \d+ (\d+)\]", tagged)
        assert m, tagged
        uids.append(int(m.group(1)))
    return uids


def pipeline(c, commands):
    """Sends the commands at once; returns [(untagged, tagged)] in order."""
    tags = [c.tag() for _ in commands]
    c.send("".join(f"{t} {cmd}\r\n" for t, cmd in zip(tags, commands)))
    return [c.read_until(t) for t in tags]


def modseq_code(untagged):
    v = code(untagged, "HIGHESTMODSEQ")
    return int(v) if v is not None else None


def uid_set(text):
    out = set()
    for part in text.split(","):
        if ":" in part:
            a, b = map(int, part.split(":"))
            out.update(range(min(a, b), max(a, b) + 1))
        else:
            out.add(int(part))
    return out


def vanished(untagged, earlier):
    """The UIDs of every `* VANISHED [(EARLIER)] set` response of that kind."""
    out = set()
    prefix = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    for r in untagged:
        if r.startswith(prefix) and (earlier or not r.startswith(b"* VANISHED (")):
            out |= uid_set(r[len(prefix):].decode())
    return out


def fetch_lines(untagged):
    return [r for r in untagged if re.match(rb"\* \d+ FETCH ", r)]


def modseq_of(items):
    return int(items["MODSEQ"][0])


def account_id(cluster, address):
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("SELECT account_id FROM petrel_login_lookup(%s)", (address,))
        return cur.fetchone()[0]


def sql(cluster, query, *args):
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall() if cur.description else None


def next_line(c, timeout):
    c.sock.settimeout(timeout)
    try:
        return c.line()
    except (socket.timeout, TimeoutError):
        return None
    finally:
        c.sock.settimeout(TIMEOUT)


# ---- ENABLE and CAPABILITY ----------------------------------------------------------

def test_capability_and_enable(cluster, account):
    with Imap(cluster.imap_ports[0]) as c:
        caps = c.ok("CAPABILITY")[0].split()
        for cap in (b"ENABLE", b"CONDSTORE", b"QRESYNC"):
            assert cap in caps, caps
        _, tagged = c.cmd("ENABLE CONDSTORE")
        assert tagged.split()[1] == b"BAD", tagged   # not before login
        c.login(*account)
        assert c.ok("ENABLE CONDSTORE") == [b"* ENABLED CONDSTORE"]
        # Unknown: ignored; already on: not listed.
        assert c.ok("ENABLE X-NONSENSE CONDSTORE") == [b"* ENABLED"]
        assert c.ok("ENABLE QRESYNC") == [b"* ENABLED QRESYNC"]
        _, tagged = c.cmd("ENABLE")
        assert tagged.split()[1] == b"BAD", tagged


# ---- change reporting between frontends -------------------------------------------

def test_noop_reports_flag_change_from_other_frontend(cluster, account):
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        fill(a, 3)
        a.select()
        b.select()
        b.ok("STORE 2 +FLAGS.SILENT (\\Flagged $Work)")
        untagged = a.ok("NOOP")
        f = fetches(untagged)
        assert list(f) == [2], untagged
        assert flags_of(f[2]["FLAGS"]) == {"\\Flagged", "$Work"}
        assert set(f[2]) == {"FLAGS"}, f   # plain client: no UID/MODSEQ
        assert fetches(a.ok("NOOP")) == {}   # reported once
        # Once CONDSTORE is on: UID and MODSEQ too (RFC 7162 3.1).
        a.ok("ENABLE CONDSTORE")
        b.ok("STORE 3 +FLAGS.SILENT (\\Seen)")
        f = fetches(a.ok("NOOP"))
        assert list(f) == [3] and f[3]["UID"] and modseq_of(f[3]) > 0, f


def test_noop_reports_expunge_append_and_flags_in_order(cluster, account):
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        uids = fill(a, 4)
        a.select()
        b.select()
        b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        b.ok("EXPUNGE")
        b.ok("STORE 3 +FLAGS.SILENT (\\Answered)")   # uid[3], seq 3 for b, 4 for a
        fill(b, 2)
        untagged = a.ok("NOOP")
        kinds = [r.split()[2] for r in untagged]
        assert kinds == [b"EXPUNGE", b"EXISTS", b"FETCH"], untagged
        assert untagged[0] == b"* 1 EXPUNGE"
        assert untagged[1] == b"* 5 EXISTS"
        seq, items = parse_fetch(untagged[2])
        assert seq == 3 and flags_of(items["FLAGS"]) == {"\\Answered"}, untagged
        f = a.fetch("1:*", "(UID)")
        assert [f[s]["UID"] for s in sorted(f)][:3] == uids[1:]


def test_own_store_is_not_reported_back(cluster, account):
    with connect(cluster, account, 0) as a:
        fill(a, 3)
        a.select()
        a.ok("STORE 1:2 +FLAGS (\\Seen)")
        a.ok("STORE 3 +FLAGS.SILENT (\\Flagged)")
        a.ok("UID EXPUNGE 99")
        assert fetches(a.ok("NOOP")) == {}
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        untagged = a.ok("EXPUNGE")
        assert untagged == [b"* 2 EXPUNGE"], untagged
        assert a.ok("NOOP") == []


def test_idle_gets_flag_change_from_other_frontend(cluster, account):
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        fill(a, 2)
        a.select()
        b.select()
        tag = a.tag()
        a.send(f"{tag} IDLE\r\n")
        assert a.line() == b"+ idling"
        b.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        deadline = time.monotonic() + 10
        got = None
        while time.monotonic() < deadline:
            line = next_line(a, deadline - time.monotonic())
            if line is None:
                break
            if line.startswith(b"* 2 FETCH"):
                got = line
                break
        assert got == b"* 2 FETCH (FLAGS (\\Flagged))", got
        a.send("DONE\r\n")
        _, tagged = a.read_until(tag)
        assert tagged.split()[1] == b"OK"


def test_idle_gets_seen_set_by_fetch_on_other_frontend(cluster, account):
    """A non-PEEK body FETCH sets \\Seen: other sessions hear of it as of a STORE."""
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        fill(a, 2)
        a.ok("ENABLE CONDSTORE")
        a.select()
        b.select()
        tag = a.tag()
        a.send(f"{tag} IDLE\r\n")
        assert a.line() == b"+ idling"
        b.ok("FETCH 1 (BODY[TEXT])")
        deadline = time.monotonic() + 10
        got = None
        while time.monotonic() < deadline:
            line = next_line(a, deadline - time.monotonic())
            if line is None or line.startswith(b"* 1 FETCH"):
                got = line
                break
        assert got and re.match(rb"\* 1 FETCH \(UID \d+ FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$", got), got
        a.send("DONE\r\n")
        _, tagged = a.read_until(tag)
        assert tagged.split()[1] == b"OK"


# ---- CONDSTORE --------------------------------------------------------------------

def test_highestmodseq_in_select_and_status_increases(cluster, account):
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        fill(a, 2)
        h0 = modseq_code(a.select())
        assert h0 and h0 > 1

        def status():
            untagged = b.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
            m = re.search(rb"HIGHESTMODSEQ (\d+)", untagged[0])
            assert m, untagged
            return int(m.group(1))

        assert status() == h0
        a.ok("STORE 1 +FLAGS (\\Seen)")
        h1 = status()
        assert h1 > h0
        a.ok("STORE 1 +FLAGS (\\Seen)")   # no change: no new modseq
        assert status() == h1
        fill(a, 1)
        h2 = status()
        assert h2 > h1
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        h3 = status()
        assert h3 > h2 + 1
        assert modseq_code(b.ok("EXAMINE INBOX")) == h3


def test_fetch_modseq_and_changedsince(cluster, account):
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        fill(a, 5)
        h0 = modseq_code(a.select())
        b.select()
        b.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        b.ok("STORE 4 +FLAGS.SILENT (\\Seen)")
        untagged = a.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h0)
        f = fetches(untagged)
        assert sorted(f) == [2, 4], untagged
        assert flags_of(f[2]["FLAGS"]) == {"\\Flagged"} and modseq_of(f[2]) > h0
        assert modseq_of(f[4]) > modseq_of(f[2])
        f = a.fetch("1:*", "(FLAGS) (CHANGEDSINCE %d)" % modseq_of(f[2]), uid=True)
        assert sorted(f) == [4] and "UID" in f[4] and "MODSEQ" in f[4], f
        f = a.fetch("1:5", "(MODSEQ)")
        assert sorted(f) == [1, 2, 3, 4, 5] and all(modseq_of(v) > 0 for v in f.values())
        assert a.fetch("1:*", "(FLAGS) (CHANGEDSINCE 999999999)") == {}
        _, tagged = a.cmd("FETCH 1 (FLAGS) (CHANGEDSINCE x)")
        assert tagged.split()[1] == b"BAD"
        _, tagged = a.cmd("FETCH 1 (FLAGS) (BOGUS 1)")
        assert tagged.split()[1] == b"BAD"


def test_fetch_setting_seen_reports_modseq_once_enabled(cluster, account):
    with connect(cluster, account, 0) as a:
        fill(a, 1)
        a.select()
        a.ok("ENABLE CONDSTORE")
        f = a.fetch("1", "(BODY[TEXT])")
        assert "MODSEQ" in f[1] and "UID" in f[1] and "\\Seen" in flags_of(f[1]["FLAGS"]), f
        assert fetches(a.ok("NOOP")) == {}   # its own \Seen is not reported again


def test_store_unchangedsince_and_modified(cluster, account):
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        uids = fill(a, 4)
        a.select()
        b.select()
        f = a.fetch("1:4", "(MODSEQ)")
        top = max(modseq_of(v) for v in f.values())
        b.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        untagged, tagged = a.cmd(f"STORE 1:3 (UNCHANGEDSINCE {top}) +FLAGS (\\Answered)")
        assert re.match(rb"t\d+ OK \[MODIFIED 2\] ", tagged), tagged
        f = fetches(untagged)
        assert sorted(f) == [1, 3], untagged   # not the one that failed
        assert all("MODSEQ" in v and "UID" in v for v in f.values()), f
        flags = a.fetch("1:3", "(FLAGS)")
        assert "\\Answered" not in flags_of(flags[2]["FLAGS"])
        assert "\\Answered" in flags_of(flags[1]["FLAGS"])
        # UID STORE names UIDs; 0 fails for every message; .SILENT still tells MODSEQ.
        untagged, tagged = a.cmd(f"UID STORE {uids[0]}:{uids[3]} (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
        assert tagged.startswith(b"t") and b"OK [MODIFIED " in tagged, tagged
        assert uid_set(re.search(rb"MODIFIED ([^\]]+)", tagged).group(1).decode()) == set(uids)
        assert fetch_lines(untagged) == []
        untagged = a.ok("STORE 4 (UNCHANGEDSINCE 99999999) +FLAGS.SILENT (\\Draft)")
        f = fetches(untagged)
        assert list(f) == [4] and set(f[4]) == {"UID", "MODSEQ"}, untagged
        _, tagged = a.cmd("STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)")
        assert tagged.split()[1] == b"BAD"


# ---- QRESYNC ----------------------------------------------------------------------

def test_vanished_replaces_expunge_after_enable_qresync(cluster, account):
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b, \
            connect(cluster, account, 0) as plain:
        uids = fill(a, 6)
        a.ok("ENABLE QRESYNC")
        a.select()
        b.select()
        plain.select()
        a.ok("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        untagged, tagged = a.cmd("EXPUNGE")
        assert untagged == [f"* VANISHED {uids[1]}:{uids[2]}".encode()], untagged
        assert re.match(rb"t\d+ OK \[HIGHESTMODSEQ \d+\]", tagged), tagged
        untagged = a.ok("MOVE 1 Trash")
        assert f"* VANISHED {uids[0]}".encode() in untagged, untagged
        assert not [r for r in untagged if r.endswith(b"EXPUNGE")]
        b.ok(f"UID STORE {uids[5]} +FLAGS.SILENT (\\Deleted)")
        b.ok(f"UID EXPUNGE {uids[5]}")
        untagged = a.ok("NOOP")
        assert untagged == [f"* VANISHED {uids[5]}".encode()], untagged
        # A session without QRESYNC still gets EXPUNGE.
        untagged = plain.ok("NOOP")
        assert untagged == [b"* 1 EXPUNGE", b"* 1 EXPUNGE", b"* 1 EXPUNGE", b"* 3 EXPUNGE"], untagged


def test_qresync_needs_enable(cluster, account):
    with connect(cluster, account) as a:
        _, tagged = a.cmd("SELECT INBOX (QRESYNC (1 1))")
        assert tagged.split()[1] == b"BAD", tagged
        a.ok("ENABLE QRESYNC")
        _, tagged = a.cmd("SELECT INBOX (QRESYNC (1))")
        assert tagged.split()[1] == b"BAD", tagged
        _, tagged = a.cmd("UID FETCH 1:* FLAGS (VANISHED)")
        assert tagged.split()[1] == b"BAD", tagged


def test_qresync_after_500_offline_changes(cluster, account):
    with connect(cluster, account, 0) as a:
        original = fill(a, 300)
        a.ok("ENABLE QRESYNC")
        untagged = a.select()
        uidvalidity = int(code(untagged, "UIDVALIDITY"))
        since = modseq_code(untagged)
    changes = 0
    with connect(cluster, account, 1) as b:
        b.select()
        new = fill(b, 150)                                             # 150 appends
        changes += 150
        flagged = original[::2][:120] + new[:30]                       # 150 flag changes
        replies = pipeline(b, [f"UID STORE {u} +FLAGS.SILENT (\\Flagged)" for u in flagged])
        assert all(t.split()[1] == b"OK" for _, t in replies)
        changes += len(flagged)
        gone = original[200:300] + new[100:150]                        # 150 expunges
        replies = pipeline(b, [f"UID STORE {u} +FLAGS.SILENT (\\Deleted)" for u in gone]
                           + [f"UID EXPUNGE {u}" for u in gone[:25]]
                           + [f"UID EXPUNGE {gone[25]}:{gone[-1]}"])
        assert all(t.split()[1] == b"OK" for _, t in replies)
        changes += len(gone) + 50
        assert changes >= 500
        final = b.fetch("1:*", "(UID FLAGS MODSEQ)")
    state = {v["UID"]: (flags_of(v["FLAGS"]), modseq_of(v)) for v in final.values()}
    want_fetch = {u for u, (_, m) in state.items() if m > since}
    assert want_fetch == (set(flagged) | set(new)) - set(gone)

    with connect(cluster, account, 0) as a:
        a.ok("ENABLE QRESYNC")
        known = f"{original[0]}:{original[-1]}"
        untagged = a.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {since} {known}))")
        assert vanished(untagged, earlier=True) == set(original[200:300]), untagged[:12]
        assert vanished(untagged, earlier=False) == set()
        lines = fetch_lines(untagged)
        f = {}
        for line in lines:
            seq, items = parse_fetch(line)
            assert set(items) == {"UID", "FLAGS", "MODSEQ"}, line
            f[items["UID"]] = (seq, flags_of(items["FLAGS"]), modseq_of(items))
        assert set(f) == want_fetch
        assert len(lines) == len(want_fetch)   # each once
        for uid, (seq, flags, modseq) in f.items():
            assert (flags, modseq) == state[uid], uid
        exists = [r for r in untagged if r.endswith(b" EXISTS")]
        assert exists == [f"* {len(state)} EXISTS".encode()]
        assert not [r for r in untagged if r.endswith(b" EXPUNGE")]
        # Nothing else is pending afterwards.
        assert a.ok("NOOP") == []
        seqs = a.fetch("1:*", "(UID)")
        assert {v["UID"] for v in seqs.values()} == set(state)
        for uid, (seq, _, _) in f.items():
            assert seqs[seq]["UID"] == uid

    with connect(cluster, account, 0) as a:
        # Without known-uids: at least the known ones gone, and only UIDs gone.
        a.ok("ENABLE QRESYNC")
        untagged = a.ok(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {since}))")
        v = vanished(untagged, earlier=True)
        assert set(original[200:300]) <= v <= set(gone), sorted(v - set(gone))[:10]
        # A wrong UIDVALIDITY: a plain SELECT.
        untagged = a.ok(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {since}))")
        assert not fetch_lines(untagged) and not vanished(untagged, earlier=True)


def test_uid_fetch_changedsince_vanished(cluster, account):
    with connect(cluster, account, 0) as a:
        uids = fill(a, 5)
        a.ok("ENABLE QRESYNC")
        h0 = modseq_code(a.select())
        a.ok(f"UID STORE {uids[1]},{uids[3]} +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        a.ok(f"UID STORE {uids[4]} +FLAGS.SILENT (\\Seen)")
        untagged = a.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0} VANISHED)")
        assert untagged[0] == f"* VANISHED (EARLIER) {uids[1]},{uids[3]}".encode(), untagged
        f = fetches(untagged)
        assert [v["UID"] for v in f.values()] == [uids[4]], untagged
        untagged = a.ok(f"UID FETCH {uids[0]}:{uids[2]} (FLAGS) (CHANGEDSINCE {h0} VANISHED)")
        assert untagged == [f"* VANISHED (EARLIER) {uids[1]}".encode()], untagged


# ---- big changes, tombstone pruning ---------------------------------------------------

def bulk_append(cluster, acct, n, mailbox="INBOX"):
    body = "Subject: bulk\r\n\r\nbody\r\n"
    sql(cluster, "SELECT count(*) FROM generate_series(1, %s) g, "
        "LATERAL petrel_append(%s, %s, 0, '{}', 0, 0, 16, convert_to(%s || g, 'UTF8'))",
        n, acct, mailbox, body)


def test_big_changes_come_in_batches(cluster, new_account):
    address, password = account = new_account()
    acct = account_id(cluster, address)
    bulk_append(cluster, acct, 10000)
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        assert b"* 10000 EXISTS" in a.select()
        b.select()
        b.ok("STORE 1:* +FLAGS.SILENT (\\Seen)")
        untagged = a.ok("NOOP")
        f = fetches(untagged)
        assert len(f) == 10000 and all(flags_of(v["FLAGS"]) == {"\\Seen"} for v in f.values())
        b.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
        b.ok("EXPUNGE")
        a.ok("ENABLE QRESYNC")
        untagged = a.ok("NOOP")
        assert len(untagged) == 1 and len(vanished(untagged, earlier=False)) == 10000, untagged[:3]
        assert a.ok("NOOP") == []


def test_tombstone_pruning_and_too_old_fallback(cluster, new_account):
    address, password = account = new_account()
    acct = account_id(cluster, address)
    with connect(cluster, account, 0) as a, connect(cluster, account, 1) as b:
        uids = fill(a, 6)
        a.ok("ENABLE QRESYNC")
        untagged = a.select()
        uidvalidity, since = int(code(untagged, "UIDVALIDITY")), modseq_code(untagged)
        mbox = sql(cluster, "SELECT mailbox_id FROM petrel_select(%s, 'INBOX')", acct)[0][0]
        b.select()
        b.ok("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        b.ok("EXPUNGE")
        b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
        # The changes function sees the tombstones ...
        rows = sql(cluster, "SELECT kind, uid, flags FROM petrel_changes(%s, %s, %s)",
                   acct, mbox, since)
        assert rows[0][0] == 0 and rows[0][2] == 0   # not too old
        assert sorted(r[1] for r in rows if r[0] == 2) == uids[1:3]
        assert [r[1] for r in rows if r[0] == 1] == [uids[0]]
        # ... until they are pruned: then too_old, and sessions compare UID lists.
        assert sql(cluster, "SELECT petrel_prune_tombstones(%s, now() + interval '1 day')",
                   acct)[0][0] == 2
        rows = sql(cluster, "SELECT kind, flags FROM petrel_changes(%s, %s, %s)", acct, mbox, since)
        assert rows[0] == (0, 1) and not [r for r in rows if r[0] == 2]
        untagged = a.ok("NOOP")
        assert vanished(untagged, earlier=False) == set(uids[1:3]), untagged
        f = fetches(untagged)
        assert list(f) == [1] and flags_of(f[1]["FLAGS"]) == {"\\Flagged"}, untagged
        assert a.ok("NOOP") == []
    with connect(cluster, account, 0) as a:
        a.ok("ENABLE QRESYNC")
        untagged = a.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {since} {uids[0]}:{uids[-1]}))")
        assert vanished(untagged, earlier=True) == set(uids[1:3]), untagged
        f = fetches(untagged)
        assert [v["UID"] for v in f.values()] == [uids[0]]


def test_expunge_prunes_old_tombstones(cluster, new_account):
    address, password = account = new_account()
    acct = account_id(cluster, address)
    with connect(cluster, account, 0) as a:
        uids = fill(a, 4)
        a.select()
        a.ok(f"UID STORE {uids[0]}:{uids[1]} +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        mbox = sql(cluster, "SELECT mailbox_id FROM petrel_select(%s, 'INBOX')", acct)[0][0]
        # Age them past expunge_tombstone_days (30 by default).
        sql(cluster, "UPDATE expunged SET expunged_at = now() - interval '40 days' "
            "WHERE account_id = %s AND mailbox_id = %s", acct, mbox)
        a.ok(f"UID STORE {uids[2]} +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        left = sql(cluster, "SELECT uid FROM expunged WHERE account_id = %s AND mailbox_id = %s",
                   acct, mbox)
        assert [r[0] for r in left] == [uids[2]]
        pruned = sql(cluster, "SELECT tombstones_pruned_modseq FROM mailboxes "
                     "WHERE account_id = %s AND id = %s", acct, mbox)[0][0]
        assert pruned > 0
        rows = sql(cluster, "SELECT kind, flags FROM petrel_changes(%s, %s, %s)", acct, mbox,
                   pruned - 1)
        assert rows[0] == (0, 1)
        rows = sql(cluster, "SELECT kind, flags FROM petrel_changes(%s, %s, %s)", acct, mbox, pruned)
        assert rows[0] == (0, 0)


# ---- a real client ------------------------------------------------------------------

JS_DIR = Path(__file__).resolve().parents[1] / "js"


@pytest.mark.skipif(not shutil.which("node") or not (JS_DIR / "node_modules" / "imapflow").exists(),
                    reason="node or tests/js/node_modules missing (make deps)")
def test_imapflow_condstore_qresync(cluster, account):
    """imapflow ENABLEs CONDSTORE and QRESYNC itself and resynchronises with
    SELECT (QRESYNC ...); tests/js/condstore.mjs checks what it sees."""
    r = subprocess.run(["node", str(JS_DIR / "condstore.mjs"), str(cluster.imap_ports[0]),
                        str(cluster.imap_ports[1]), *account],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
