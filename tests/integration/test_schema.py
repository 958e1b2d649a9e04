"""The SQL data API (backend/migrations) and petrel-admin's account commands.

Runs against the PostgreSQL of the shared cluster (fixture `pg_url` from
conftest.py), or the server named by PETREL_TEST_PG_URL when set (no cluster
needed then), else PETREL_PG_URL. Every run works in a database of its own
created in that server, so migrations start from empty and listings hold only
this file's accounts.

Needs Debian's python3-pytest and python3-psycopg2.
"""

import ctypes
import ctypes.util
import hashlib
import os
import secrets
import subprocess
import threading
from pathlib import Path

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Path(os.environ.get("PETREL_ADMIN", Path(os.environ.get("PETREL_CLUSTER_BIN") or ROOT / "bin") / "petrel-admin"))
CHUNK = 262144
UID_MAX = 4294967295


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def server_url(request):
    url = os.environ.get("PETREL_TEST_PG_URL")
    if url:
        return url
    try:
        return request.getfixturevalue("pg_url")
    except pytest.FixtureLookupError:
        url = os.environ.get("PETREL_PG_URL")
        if not url:
            pytest.skip("no PostgreSQL: no pg_url fixture and PETREL_PG_URL unset")
        return url


def make_database(server_url):
    """A new empty database on the server; returns its conninfo string."""
    name = "petrel_schema_" + secrets.token_hex(4)
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
    conn.close()
    return name, psycopg2.extensions.make_dsn(server_url, dbname=name)


def drop_database(server_url, name):
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


@pytest.fixture(scope="module")
def fresh_db(server_url):
    """conninfo of an empty database, dropped after this module."""
    name, dsn = make_database(server_url)
    yield dsn
    drop_database(server_url, name)


@pytest.fixture(scope="module")
def db_url(fresh_db):
    """conninfo of this module's database, migrated."""
    r = admin(fresh_db, "migrate")
    assert r.returncode == 0, r.stderr
    return fresh_db


def connect(url):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


@pytest.fixture
def db(db_url):
    conn = connect(db_url)
    yield conn
    conn.close()


def admin(db_url, *args, input=None, env_extra=None):
    if not ADMIN.exists():
        pytest.fail(f"{ADMIN} is missing: run make first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETREL_")}
    if db_url is not None:
        env["PETREL_PG_URL"] = db_url
    env.update(env_extra or {})
    return subprocess.run([str(ADMIN), *args], input=input, capture_output=True, text=True,
                          env=env, timeout=60)


def one(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def rows(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def new_account(conn):
    address = f"t{secrets.token_hex(5)}@example.com"
    return one(conn, "SELECT petrel_account_create(%s, 'x')", address)[0]


def mailbox_id(conn, acct, name="INBOX"):
    return one(conn, "SELECT mailbox_id FROM petrel_select(%s, %s)", acct, name)[0]


def append(conn, acct, body, mailbox="INBOX", flags=0, keywords=None, header_size=0):
    return one(conn, "SELECT * FROM petrel_append(%s, %s, %s, %s, 0, 0, %s, %s)",
               acct, mailbox, flags, keywords, header_size, body)


def sqlstate(conn, sql, *args):
    """Runs sql expecting an error; returns its SQLSTATE."""
    with pytest.raises(psycopg2.Error) as e:
        with conn.cursor() as cur:
            cur.execute(sql, args)
    return e.value.pgcode


def unpack_uids(data):
    data = bytes(data)
    return [int.from_bytes(data[i:i + 4], "big") for i in range(0, len(data), 4)]


def crypt(password, setting):
    lib = ctypes.CDLL(ctypes.util.find_library("crypt"))
    lib.crypt.restype = ctypes.c_char_p
    return lib.crypt(password.encode(), setting.encode()).decode()


def one_error_line(r, code):
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("petrel-admin: "), r.stderr
    return lines[0]


# ---------------------------------------------------------------- migrations

def test_migrate_twice_is_a_noop(db_url):
    conn = connect(db_url)
    before = rows(conn, "SELECT version, name, applied_at FROM schema_migrations ORDER BY 1")
    # Every migration the binary carries, by number (numbers are handed out
    # per branch, so one may be missing until its branch merges).
    carried = sorted(int(f.name.split("_", 1)[0]) for f in (ROOT / "backend/migrations").glob("*.sql"))
    assert [v for v, _, _ in before] == carried
    r = admin(db_url, "migrate")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "(0 migrations applied)" in r.stdout
    assert rows(conn, "SELECT version, name, applied_at FROM schema_migrations ORDER BY 1") == before
    conn.close()


def test_concurrent_migrate_applies_each_once(server_url):
    name, dsn = make_database(server_url)
    try:
        procs = [subprocess.Popen([str(ADMIN), "--db", dsn, "migrate"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
        assert all(rc == 0 for _, _, rc in results), results
        applied = [int(out.split("(")[1].split()[0]) for out, _, _ in results]
        conn = connect(dsn)
        n = one(conn, "SELECT count(*) FROM schema_migrations")[0]
        conn.close()
        assert sorted(applied) == [0, 0, 0, n]
    finally:
        drop_database(server_url, name)


def test_commands_refuse_unmigrated_database(server_url):
    name, dsn = make_database(server_url)
    try:
        line = one_error_line(admin(dsn, "user", "list"), 1)
        assert "petrel-admin migrate" in line
    finally:
        drop_database(server_url, name)


# ---------------------------------------------------------------- petrel-admin user

def test_user_add_list_passwd_del(db_url, db):
    address = f"Admin{secrets.token_hex(3)}@Example.COM"
    r = admin(db_url, "user", "add", address, "--password", "first pw")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    acct, stored, hash1 = one(db, "SELECT * FROM petrel_login_lookup(%s)", address.upper())
    assert stored == address.lower()
    assert hash1.startswith("$y$") and crypt("first pw", hash1) == hash1
    assert address.lower() in admin(db_url, "user", "list").stdout.splitlines()
    names = [n for n, *_ in rows(db, "SELECT * FROM petrel_list(%s)", acct)]
    assert names == ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]

    r = admin(db_url, "user", "passwd", address.lower(), "--password-stdin", input="second pw\n")
    assert r.returncode == 0, r.stderr
    hash2 = one(db, "SELECT password_hash FROM petrel_login_lookup(%s)", address)[0]
    assert hash2 != hash1 and crypt("second pw", hash2) == hash2

    r = admin(db_url, "user", "del", address)
    assert r.returncode == 0, r.stderr
    assert rows(db, "SELECT * FROM petrel_login_lookup(%s)", address) == []
    assert one(db, "SELECT count(*) FROM mailboxes WHERE account_id = %s", acct)[0] == 0
    assert address.lower() not in admin(db_url, "user", "list").stdout.splitlines()


def test_user_add_password_stdin(db_url, db):
    address = f"stdin{secrets.token_hex(3)}@example.com"
    r = admin(db_url, "user", "add", address, "--password-stdin", input="pa ss\r\n")
    assert r.returncode == 0, r.stderr
    h = one(db, "SELECT password_hash FROM petrel_login_lookup(%s)", address)[0]
    assert crypt("pa ss", h) == h


def test_user_errors(db_url, db):
    address = f"dup{secrets.token_hex(3)}@example.com"
    assert admin(db_url, "user", "add", address, "--password", "x").returncode == 0
    assert "already exists" in one_error_line(
        admin(db_url, "user", "add", address.upper(), "--password", "y"), 1)
    unknown = f"nobody{secrets.token_hex(3)}@example.com"
    assert "no such account" in one_error_line(admin(db_url, "user", "del", unknown), 1)
    assert "no such account" in one_error_line(
        admin(db_url, "user", "passwd", unknown, "--password", "x"), 1)
    for bad in ["plain", "a@b@c", "@example.com", "x@", ".a@example.com", "a..b@example.com",
                "a b@example.com", "a@-x.com", "a@exa_mple.com", "a@example..com",
                "é@example.com", "a" * 65 + "@example.com", "a@" + "b" * 64 + ".com"]:
        assert "invalid address" in one_error_line(
            admin(db_url, "user", "add", bad, "--password", "x"), 2), bad
    one_error_line(admin(db_url, "user", "add", "ok@example.com"), 2)
    one_error_line(admin(db_url, "user", "add", "ok@example.com", "--password", ""), 2)
    one_error_line(admin(db_url, "user", "add", "ok@example.com", "--password-stdin", input=""), 2)
    one_error_line(admin(db_url, "user", "add", "ok@example.com", "--password", "x",
                         "--password-stdin", input="y\n"), 2)
    one_error_line(admin(db_url, "user", "add", "ok@example.com", "--password", "x" * 1025), 2)
    one_error_line(admin(db_url, "user", "frob"), 2)
    one_error_line(admin(db_url, "user", "del"), 2)
    one_error_line(admin(db_url), 2)
    assert rows(db, "SELECT * FROM petrel_login_lookup('ok@example.com')") == []
    line = one_error_line(admin("postgresql://nobody@127.0.0.1:1/none", "user", "list"), 1)
    assert "cannot connect" in line
    one_error_line(admin(None, "user", "list"), 1)


# ---------------------------------------------------------------- mailboxes

def test_mailbox_create(db):
    acct = new_account(db)
    inbox = one(db, "SELECT * FROM petrel_select(%s, 'inbox')", acct)
    assert inbox[0] == mailbox_id(db, acct, "INBOX")
    mid = one(db, "SELECT petrel_mailbox_create(%s, 'Work/2024/Q1', NULL)", acct)[0]
    listing = {n: (su, sub, kids) for n, su, sub, kids in rows(db, "SELECT * FROM petrel_list(%s)", acct)}
    assert listing["Work"] == (None, False, True)
    assert listing["Work/2024"] == (None, False, True)
    assert listing["Work/2024/Q1"] == (None, False, False)
    assert listing["Sent"] == ("\\Sent", True, False)
    assert sqlstate(db, "SELECT petrel_mailbox_create(%s, 'Work/2024/Q1', NULL)", acct) == "23505"
    assert sqlstate(db, "SELECT petrel_mailbox_create(%s, 'iNbOx', NULL)", acct) == "23505"
    for bad in ["", "/x", "x/", "a//b", "a*", "b%", "c\x01"]:
        assert sqlstate(db, "SELECT petrel_mailbox_create(%s, %s, NULL)", acct, bad) == "22023", bad
    assert sqlstate(db, "SELECT petrel_mailbox_create(%s, 'x', '\\Bogus')", acct) == "22023"
    uv = one(db, "SELECT uidvalidity FROM petrel_select(%s, 'Work/2024/Q1')", acct)[0]
    db.cursor().execute("DELETE FROM mailboxes WHERE account_id = %s AND id = %s", (acct, mid))
    one(db, "SELECT petrel_mailbox_create(%s, 'Work/2024/Q1', '\\Flagged')", acct)
    assert one(db, "SELECT uidvalidity FROM petrel_select(%s, 'Work/2024/Q1')", acct)[0] > uv
    assert rows(db, "SELECT * FROM petrel_select(%s, 'Nope')", acct) == []
    assert rows(db, "SELECT * FROM petrel_status(%s, 'Nope')", acct) == []


def test_append_to_missing_mailbox_is_trycreate(db):
    acct = new_account(db)
    assert sqlstate(db, "SELECT * FROM petrel_append(%s, 'Nope', 0, NULL, 0, 0, 0, 'x')",
                    acct) == "P0002"
    blob = one(db, "SELECT petrel_blob_begin(%s)", acct)[0]
    assert sqlstate(db, "SELECT * FROM petrel_append_blob(%s, 'Nope', 0, NULL, 0, 0, 0, %s, 0, %s)",
                    acct, blob, hashlib.sha256(b"").digest()) == "P0002"


# ---------------------------------------------------------------- append

def test_concurrent_appends_get_distinct_uids_in_commit_order(db_url, db):
    acct = new_account(db)
    mbox = mailbox_id(db, acct)
    results, errors = [[], []], []
    shared_body = b"Subject: same\r\n\r\nidentical body\r\n"
    done = threading.Event()
    snapshots = []

    def writer(k):
        conn = connect(db_url)
        try:
            for i in range(200):
                body = shared_body if i % 2 else f"Subject: {k}-{i}\r\n\r\nx\r\n".encode()
                results[k].append(append(conn, acct, body, header_size=10))
        except Exception as e:  # reported below: a thread cannot fail the test itself
            errors.append(e)
        finally:
            conn.close()

    def watcher():
        # Commit order = UID order exactly when every snapshot sees a prefix
        # 1..k of the UIDs: a later UID committed first would show a gap.
        conn = connect(db_url)
        while not done.is_set():
            snapshots.append(unpack_uids(one(conn, "SELECT uids FROM petrel_select(%s, 'INBOX')",
                                             acct)[0]))
        conn.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    w = threading.Thread(target=watcher)
    w.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    w.join()
    assert not errors, errors
    uids = [r[1] for res in results for r in res]
    assert sorted(uids) == list(range(1, 401))
    for res in results:  # each connection's own appends come back increasing
        assert [r[1] for r in res] == sorted(r[1] for r in res)
    assert all(r[2] == mbox for res in results for r in res)
    assert len(snapshots) > 5
    for s in snapshots:
        assert s == list(range(1, len(s) + 1))
    sel = one(db, "SELECT uidnext, uids, highestmodseq FROM petrel_select(%s, 'INBOX')", acct)
    assert sel[0] == 401 and unpack_uids(sel[1]) == list(range(1, 401))
    modseqs = sorted(r[3] for res in results for r in res)
    assert len(set(modseqs)) == 400 and sel[2] == modseqs[-1]
    # The 200 identical bodies share one blob.
    shared = one(db, "SELECT id, refs FROM blobs WHERE account_id = %s AND sha256 = %s",
                 acct, hashlib.sha256(shared_body).digest())
    assert shared[1] == 200
    assert one(db, "SELECT count(*) FROM blobs WHERE account_id = %s", acct)[0] == 201


def test_dedupe_and_blob_lifetime(db):
    acct = new_account(db)
    body = os.urandom(600000)
    a = append(db, acct, body, "INBOX")
    b = append(db, acct, body, "Archive")
    meta = lambda mb, uid: one(db, "SELECT blob_id, size FROM petrel_meta(%s, %s, %s, %s, false)",
                               acct, mb, [uid], [uid])
    assert meta(a[2], a[1])[0] == meta(b[2], b[1])[0]
    blob = meta(a[2], a[1])[0]
    assert one(db, "SELECT refs, size FROM blobs WHERE account_id = %s AND id = %s", acct, blob) == (2, 600000)
    assert rows(db, "SELECT seq, octet_length(data) FROM blob_chunks WHERE account_id = %s "
                "AND blob_id = %s ORDER BY seq", acct, blob) == [(0, CHUNK), (1, CHUNK), (2, 600000 - 2 * CHUNK)]
    # Another account's identical body is its own copy.
    other = new_account(db)
    c = append(db, other, body)
    assert one(db, "SELECT blob_id FROM petrel_meta(%s, %s, NULL, NULL, false)", other, c[2])[0] != blob

    # A streamed append of the same body drops its staged copy.
    staged = one(db, "SELECT petrel_blob_begin(%s)", acct)[0]
    for seq in range(3):
        db.cursor().execute("SELECT petrel_blob_put(%s, %s, %s, %s)",
                            (acct, staged, seq, body[seq * CHUNK:(seq + 1) * CHUNK]))
    d = one(db, "SELECT * FROM petrel_append_blob(%s, 'Trash', 0, NULL, 0, 0, 0, %s, %s, %s)",
            acct, staged, len(body), hashlib.sha256(body).digest())
    assert meta(d[2], d[1])[0] == blob
    assert one(db, "SELECT count(*) FROM blobs WHERE account_id = %s AND id = %s", acct, staged)[0] == 0
    assert one(db, "SELECT refs FROM blobs WHERE account_id = %s AND id = %s", acct, blob)[0] == 3

    for m in (a, b):
        assert rows(db, "SELECT * FROM petrel_expunge(%s, %s, NULL, NULL, false)", acct, m[2]) == [(m[1],)]
    assert one(db, "SELECT refs FROM blobs WHERE account_id = %s AND id = %s", acct, blob)[0] == 1
    rows(db, "SELECT * FROM petrel_expunge(%s, %s, NULL, NULL, false)", acct, d[2])
    assert one(db, "SELECT count(*) FROM blobs WHERE account_id = %s AND id = %s", acct, blob)[0] == 0
    assert one(db, "SELECT count(*) FROM blob_chunks WHERE account_id = %s AND blob_id = %s",
               acct, blob)[0] == 0


def test_append_fields_and_argument_errors(db):
    acct = new_account(db)
    r = one(db, "SELECT * FROM petrel_append(%s, 'INBOX', 5, %s, 1700000000, -300, 3, 'ab\r\nbody')",
            acct, ["$Label1", "$label1", "Work"])
    m = one(db, "SELECT * FROM petrel_meta(%s, %s, %s, %s, false)", acct, r[2], [r[1]], [r[1]])
    assert m == (r[1], 5, ["$Label1", "Work"], 1700000000, -300, 8, 3, r[3], m[8])
    bad = [("'INBOX', 32, NULL, 0, 0, 0, 'x'", "22023"),        # unknown flag bit
           ("'INBOX', 0, '{\\\\Seen}', 0, 0, 0, 'x'", "22023"),  # system flag as keyword
           ("'INBOX', 0, '{\"a b\"}', 0, 0, 0, 'x'", "22023"),   # not an atom
           ("'INBOX', 0, NULL, 0, 0, 2, 'x'", "22023")]         # header past the end
    for args, state in bad:
        assert sqlstate(db, f"SELECT * FROM petrel_append(%s, {args})", acct) == state, args


def test_uids_past_2_31_and_exhaustion(db):
    acct = new_account(db)
    mbox = mailbox_id(db, acct)
    db.cursor().execute("UPDATE mailboxes SET uidnext = 3000000000 WHERE account_id = %s AND id = %s",
                        (acct, mbox))
    assert append(db, acct, b"x")[1] == 3000000000
    db.cursor().execute("UPDATE mailboxes SET uidnext = %s WHERE account_id = %s AND id = %s",
                        (UID_MAX, acct, mbox))
    assert append(db, acct, b"y")[1] == UID_MAX
    assert unpack_uids(one(db, "SELECT uids FROM petrel_select(%s, 'INBOX')", acct)[0]) == [3000000000, UID_MAX]
    assert sqlstate(db, "SELECT * FROM petrel_append(%s, 'INBOX', 0, NULL, 0, 0, 0, 'z')", acct) == "54000"


def append_message(conn, acct, body, mailbox="INBOX", flags=0, header_size=0, tree=b"t1",
                   headers="from: a <a@example.com>\nsubject: one\nsubject: two\n",
                   msgid=None):
    """petrel_append_message with a whole body and the 21 arguments that
    previous-release backends pass (010; 020 keeps them as a wrapper)."""
    return one(conn, "SELECT * FROM petrel_append_message(%s, %s, %s, NULL, 0, 0, %s, %s, NULL,"
               " NULL, NULL, %s, 'env', 'bs', 'body', %s, 'text', NULL, %s, %s, NULL)",
               acct, mailbox, flags, header_size, body, tree, headers, len(body) + 1, msgid)


def test_append_message_rows_errors_and_shared_bodies(db):
    """The function APPEND runs: its row, its errors (nothing of a failed
    call stays), and a body stored twice keeping its first parse."""
    acct = new_account(db)
    r = append_message(db, acct, b"hello", msgid="m1@x")
    assert r[1] == 1 and r[2] == mailbox_id(db, acct)
    blob = one(db, "SELECT blob_id FROM messages WHERE account_id = %s AND mailbox_id = %s AND uid = 1",
               acct, r[2])[0]
    assert one(db, "SELECT size, refs, convert_from(mime_tree, 'UTF8'), crlf_size FROM blobs WHERE account_id = %s"
               " AND id = %s", acct, blob) == (5, 1, "t1", 6)
    assert one(db, "SELECT h_from, h_subject, h_to FROM blob_text WHERE account_id = %s"
               " AND blob_id = %s", acct, blob) == ("a <a@example.com>", "one\ntwo", "")
    again = append_message(db, acct, b"hello", "Archive", tree=b"t2")
    assert one(db, "SELECT blob_id FROM messages WHERE account_id = %s AND mailbox_id = %s"
               " AND uid = %s", acct, again[2], again[1])[0] == blob
    assert one(db, "SELECT refs, convert_from(mime_tree, 'UTF8') FROM blobs WHERE account_id = %s AND id = %s",
               acct, blob) == (2, "t1")

    def count():
        return one(db, "SELECT (SELECT count(*) FROM blobs WHERE account_id = %s),"
                   " (SELECT count(*) FROM message_threads WHERE account_id = %s)", acct, acct)
    before = count()
    cases = [("Nope", 0, 0, "P0002"),        # no such mailbox: TRYCREATE
             ("INBOX", 32, 0, "22023"),      # unknown flag bit
             ("INBOX", 0, 99, "22023")]      # header past the end
    for mailbox, flags, hs, state in cases:
        with pytest.raises(psycopg2.Error) as e:
            append_message(db, acct, b"other body", mailbox, flags, hs, msgid="m2@x")
        assert e.value.pgcode == state, (mailbox, flags, hs)
        db.rollback()
        assert count() == before
    db.cursor().execute("UPDATE mailboxes SET uidnext = %s WHERE account_id = %s AND id = %s",
                        (UID_MAX + 1, acct, r[2]))
    with pytest.raises(psycopg2.Error) as e:
        append_message(db, acct, b"third body")
    assert e.value.pgcode == "54000"
    db.rollback()
    assert count() == before


def test_append_message_takes_header_fields_from_the_backend(db):
    """The 26-argument form (020) stores the five fields as given; the
    21-argument one of the previous release finds the same from headers."""
    acct = new_account(db)
    headers = "from: a <a@example.com>\nto: b@example.com\nsubject: one\nsubject: two\n"
    fields = ("a <a@example.com>", "b@example.com", "", "", "one\ntwo")
    r = one(db, "SELECT * FROM petrel_append_message(%s, 'INBOX', 0, NULL, 0, 0, 0, 'x', NULL,"
            " NULL, NULL, 't', 'env', 'bs', 'body', %s, 'text', NULL, 1, NULL, NULL,"
            " %s, %s, %s, %s, %s)", acct, headers, *fields)
    old = append_message(db, acct, b"y", headers=headers)
    for m in (r, old):
        assert one(db, "SELECT t.h_from, t.h_to, t.h_cc, t.h_bcc, t.h_subject FROM messages m"
                   " JOIN blob_text t ON t.account_id = m.account_id AND t.blob_id = m.blob_id"
                   " WHERE m.account_id = %s AND m.mailbox_id = %s AND m.uid = %s",
                   acct, m[2], m[1]) == fields


# ---------------------------------------------------------------- streamed append and read

def test_streamed_append_checks_chunks(db):
    acct = new_account(db)
    body = os.urandom(CHUNK + 100)
    digest = hashlib.sha256(body).digest()

    def staged(pieces):
        blob = one(db, "SELECT petrel_blob_begin(%s)", acct)[0]
        for seq, piece in pieces:
            db.cursor().execute("SELECT petrel_blob_put(%s, %s, %s, %s)", (acct, blob, seq, piece))
        return blob

    finish = "SELECT * FROM petrel_append_blob(%s, 'INBOX', 0, NULL, 0, 0, 0, %s, %s, %s)"
    assert sqlstate(db, "SELECT petrel_blob_put(%s, %s, 0, %s)", acct,
                    staged([]), b"x" * (CHUNK + 1)) == "22023"
    short_first = staged([(0, body[:100]), (1, body[100:])])
    assert sqlstate(db, finish, acct, short_first, len(body), digest) == "22023"
    missing = staged([(1, body[CHUNK:])])
    assert sqlstate(db, finish, acct, missing, len(body), digest) == "22023"
    good = staged([(0, body[:CHUNK]), (1, body[CHUNK:])])
    assert sqlstate(db, finish, acct, good, len(body) + 1, digest) == "22023"
    r = one(db, finish, acct, good, len(body), digest)
    assert bytes(one(db, "SELECT petrel_read(%s, %s, %s, 0, %s)", acct, r[2], r[1], len(body))[0]) == body
    # The staged blob became the message's body; it is no longer staged.
    assert sqlstate(db, "SELECT petrel_blob_put(%s, %s, 2, 'x')", acct, good) == "22023"


def test_read_partial_ranges(db):
    acct = new_account(db)
    size = 1000003
    body = os.urandom(size)
    r = append(db, acct, body)
    read = lambda off, n: one(db, "SELECT petrel_read(%s, %s, %s, %s, %s)", acct, r[2], r[1], off, n)[0]
    for off, n in [(0, 10), (CHUNK - 4, 10), (CHUNK, 1), (CHUNK - 1, 1), (2 * CHUNK - 1, 2),
                   (100000, 600000), (0, size), (size - 10, 100), (3 * CHUNK, size),
                   (12345, 0)]:
        assert bytes(read(off, n)) == body[off:off + n], (off, n)
    assert bytes(read(size, 10)) == b""
    assert bytes(read(size + 5, 1)) == b""
    assert one(db, "SELECT petrel_read(%s, %s, %s, 0, 1)", acct, r[2], r[1] + 1)[0] is None
    assert sqlstate(db, "SELECT petrel_read(%s, %s, %s, -1, 1)", acct, r[2], r[1]) == "22023"
    assert sqlstate(db, "SELECT petrel_read(%s, %s, %s, 0, -1)", acct, r[2], r[1]) == "22023"
    # Another account cannot read it by guessing ids.
    other = new_account(db)
    assert one(db, "SELECT petrel_read(%s, %s, %s, 0, 1)", other, r[2], r[1])[0] is None


# ---------------------------------------------------------------- meta, store, expunge

def filled(db, n=6):
    acct = new_account(db)
    for i in range(n):
        r = append(db, acct, f"Subject: {i}\r\n\r\n".encode())
    return acct, r[2]


def highest(db, acct):
    return one(db, "SELECT highestmodseq FROM petrel_select(%s, 'INBOX')", acct)[0]


def test_meta_ranges_and_set_seen(db):
    acct, mbox = filled(db)
    q = "SELECT uid FROM petrel_meta(%s, %s, %s, %s, false)"
    assert [u for u, in rows(db, q, acct, mbox, [5, 1, 2], [6, 2, 3])] == [1, 2, 3, 5, 6]
    assert [u for u, in rows(db, q, acct, mbox, [4], [UID_MAX])] == [4, 5, 6]
    assert [u for u, in rows(db, q, acct, mbox, [3], [1])] == [1, 2, 3]
    assert sqlstate(db, q, acct, mbox, [1, 2], [3]) == "22023"
    assert sqlstate(db, q, acct, mbox + 1000000, [1], [3]) == "P0002"
    before = highest(db, acct)
    seen = rows(db, "SELECT uid, flags, modseq FROM petrel_meta(%s, %s, %s, %s, true)",
                acct, mbox, [2], [3])
    assert [(u, f) for u, f, _ in seen] == [(2, 1), (3, 1)]
    assert {m for _, _, m in seen} == {before + 1} and highest(db, acct) == before + 1
    again = rows(db, "SELECT uid, modseq FROM petrel_meta(%s, %s, %s, %s, true)", acct, mbox, [2], [3])
    assert {m for _, m in again} == {before + 1} and highest(db, acct) == before + 1
    sel = one(db, "SELECT unseen, first_unseen_uid FROM petrel_select(%s, 'INBOX')", acct)
    assert sel == (4, 1)


def test_store_modes_and_modseq(db):
    acct, mbox = filled(db, 4)
    store = "SELECT * FROM petrel_store(%s, %s, %s, %s, %s, %s, %s)"
    hm = highest(db, acct)
    # add \Flagged to 1:2 and keyword Foo
    r = rows(db, store, acct, mbox, [1], [2], 1, 4, ["Foo"])
    assert r == [(1, 4, ["Foo"], hm + 1), (2, 4, ["Foo"], hm + 1)]
    assert highest(db, acct) == hm + 1
    # add again to 1:3: only 3 changes; every matched row comes back
    r = rows(db, store, acct, mbox, [1], [3], 1, 4, ["FOO"])
    assert [(u, f, k) for u, f, k, _ in r] == [(1, 4, ["Foo"]), (2, 4, ["Foo"]), (3, 4, ["FOO"])]
    assert [m for *_, m in r] == [hm + 1, hm + 1, hm + 2] and highest(db, acct) == hm + 2
    # remove \Flagged and foo from 2:4 (4 has neither: unchanged)
    r = rows(db, store, acct, mbox, [2], [4], 2, 4, ["foo"])
    assert [(u, f, k) for u, f, k, _ in r] == [(2, 0, []), (3, 0, []), (4, 0, [])]
    assert [m for *_, m in r][2] < hm + 3 and highest(db, acct) == hm + 3
    # replace on 1 and 4
    r = rows(db, store, acct, mbox, [1, 4], [1, 4], 0, 1 | 2, ["b", "A"])
    assert [(u, f, k) for u, f, k, _ in r] == [(1, 3, ["A", "b"]), (4, 3, ["A", "b"])]
    assert highest(db, acct) == hm + 4
    # a call that changes nothing leaves highestmodseq alone
    rows(db, store, acct, mbox, [1], [4], 1, 0, None)
    assert highest(db, acct) == hm + 4
    assert sqlstate(db, store, acct, mbox, [1], [1], 3, 0, None) == "22023"
    assert sqlstate(db, store, acct, mbox, [1], [1], 1, 64, None) == "22023"
    assert sqlstate(db, store, acct, mbox + 1000000, [1], [1], 1, 1, None) == "P0002"


def test_expunge_and_tombstones(db):
    acct, mbox = filled(db, 6)
    store = "SELECT * FROM petrel_store(%s, %s, %s, %s, 1, 8, NULL)"
    rows(db, store, acct, mbox, [2, 4], [2, 5])
    hm = highest(db, acct)
    assert rows(db, "SELECT * FROM petrel_expunge(%s, %s, NULL, NULL, true)", acct, mbox) == [(2,), (4,), (5,)]
    assert highest(db, acct) == hm + 1
    assert rows(db, "SELECT uid, modseq FROM expunged WHERE account_id = %s AND mailbox_id = %s "
                "ORDER BY uid", acct, mbox) == [(2, hm + 1), (4, hm + 1), (5, hm + 1)]
    # nothing \Deleted left: no new modseq
    assert rows(db, "SELECT * FROM petrel_expunge(%s, %s, NULL, NULL, true)", acct, mbox) == []
    assert highest(db, acct) == hm + 1
    # POP3-style: given uids, \Deleted or not
    assert rows(db, "SELECT * FROM petrel_expunge(%s, %s, %s, %s, false)", acct, mbox, [6, 1], [9, 1]) == [(1,), (6,)]
    assert unpack_uids(one(db, "SELECT uids FROM petrel_select(%s, 'INBOX')", acct)[0]) == [3]
    st = one(db, "SELECT messages, uidnext, highestmodseq FROM petrel_status(%s, 'INBOX')", acct)
    assert st == (1, 7, hm + 2)
    assert one(db, "SELECT count(*) FROM blobs WHERE account_id = %s", acct)[0] == 1
    assert sqlstate(db, "SELECT * FROM petrel_expunge(%s, %s, NULL, NULL, true)", acct, mbox + 1000000) == "P0002"


def test_status(db):
    acct, mbox = filled(db, 3)
    rows(db, "SELECT * FROM petrel_meta(%s, %s, %s, %s, true)", acct, mbox, [1], [1])
    st = one(db, "SELECT * FROM petrel_status(%s, 'inbox')", acct)
    size = sum(len(f"Subject: {i}\r\n\r\n") for i in range(3))
    assert st == (3, 4, st[2], 2, highest(db, acct), size)


def test_account_isolation(db):
    a, mbox = filled(db, 2)
    b = new_account(db)
    assert sqlstate(db, "SELECT * FROM petrel_meta(%s, %s, NULL, NULL, false)", b, mbox) == "P0002"
    assert sqlstate(db, "SELECT * FROM petrel_store(%s, %s, NULL, NULL, 1, 1, NULL)", b, mbox) == "P0002"
    assert sqlstate(db, "SELECT * FROM petrel_expunge(%s, %s, NULL, NULL, false)", b, mbox) == "P0002"
    assert len(rows(db, "SELECT * FROM petrel_meta(%s, %s, NULL, NULL, false)", a, mbox)) == 2
