#!/usr/bin/python3
"""Timing check (not a test) of the hot SQL functions on a big mailbox.

Usage: PETREL_PG_URL=postgresql://... bench_schema.py [MESSAGES]

Needs a migrated database (petrel-admin migrate). Creates a throwaway
account, fills its INBOX with MESSAGES (default 100000) small messages in
bulk, times each call as the backend makes it (one statement, all rows
fetched to the client), then deletes the account.
"""
import hashlib
import os
import sys
import time
import uuid

import psycopg2


def timed(cur, label, sql, args, repeat=5):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        cur.execute(sql, args)
        rows = cur.fetchall()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    print(f"{label:<48} {best * 1000:8.1f} ms  ({len(rows)} rows)")
    return rows


def big_read(conn, cur, acct, size=50 * 1024 * 1024):
    """Streams a 50 MiB body in as the backend does, then reads pieces: a
    partial read must cost about the same whatever the body's size."""
    chunk = 262144
    body = os.urandom(chunk) * (size // chunk)
    t0 = time.perf_counter()
    conn.autocommit = False
    cur.execute("SELECT petrel_blob_begin(%s)", (acct,))
    blob = cur.fetchone()[0]
    for seq in range(size // chunk):
        cur.execute("SELECT petrel_blob_put(%s, %s, %s, %s)",
                    (acct, blob, seq, body[seq * chunk:(seq + 1) * chunk]))
    cur.execute("SELECT * FROM petrel_append_blob(%s, 'Archive', 0, NULL, 0, 0, 0, %s, %s, %s)",
                (acct, blob, size, hashlib.sha256(body).digest()))
    _, uid, mbox, _ = cur.fetchone()
    conn.commit()
    conn.autocommit = True
    print(f"streamed append of {size >> 20} MiB in {time.perf_counter() - t0:.2f} s")
    timed(cur, "petrel_read 100 B in the middle of 50 MiB",
          "SELECT petrel_read(%s, %s, %s, %s, 100)", (acct, mbox, uid, size // 2 + 1000))
    timed(cur, "petrel_read 256 KiB across a chunk boundary",
          "SELECT petrel_read(%s, %s, %s, %s, 262144)", (acct, mbox, uid, 10 * chunk + 5))


def main():
    url = os.environ.get("PETREL_PG_URL")
    if not url:
        sys.exit("bench_schema.py: set PETREL_PG_URL")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    address = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    cur.execute("SELECT petrel_account_create(%s, 'x')", (address,))
    acct = cur.fetchone()[0]
    try:
        cur.execute("SELECT * FROM petrel_append(%s, 'INBOX', 0, NULL, 0, 0, 10, %s)",
                    (acct, b"Subject: x\r\n\r\nbody\r\n"))
        mbox = cur.fetchone()[2]
        cur.execute("SELECT blob_id FROM messages WHERE account_id = %s AND mailbox_id = %s",
                    (acct, mbox))
        blob = cur.fetchone()[0]
        t0 = time.perf_counter()
        # Bulk fill behind the API's back (appending 100k one by one takes
        # minutes); a quarter unseen, as a lived-in mailbox would be.
        cur.execute("""
            INSERT INTO messages (account_id, mailbox_id, uid, modseq, flags, keywords,
                                  internaldate, tz_offset, size, header_size, blob_id)
            SELECT %s, %s, g, g, CASE WHEN g %% 4 = 0 THEN 0 ELSE 1 END,
                   CASE WHEN g %% 10 = 0 THEN '{$Junk}'::text[] ELSE '{}' END,
                   now(), 0, 20, 10, %s
              FROM generate_series(2, %s + 1) g""", (acct, mbox, blob, n - 1))
        cur.execute("""UPDATE mailboxes SET uidnext = %s + 1, highestmodseq = %s + 1
                        WHERE account_id = %s AND id = %s""", (n, n, acct, mbox))
        cur.execute("UPDATE blobs SET refs = %s WHERE account_id = %s AND id = %s", (n, acct, blob))
        cur.execute("VACUUM ANALYZE messages")
        print(f"filled {n} messages in {time.perf_counter() - t0:.1f} s")

        timed(cur, "petrel_select", "SELECT * FROM petrel_select(%s, 'INBOX')", (acct,))
        timed(cur, "petrel_status", "SELECT * FROM petrel_status(%s, 'INBOX')", (acct,))
        timed(cur, "petrel_meta 1:* (no set_seen)",
              "SELECT * FROM petrel_meta(%s, %s, '{1}', '{4294967295}', false)", (acct, mbox))
        timed(cur, "petrel_meta single uid",
              "SELECT * FROM petrel_meta(%s, %s, '{50000}', '{50000}', false)", (acct, mbox))
        timed(cur, "petrel_meta 100 scattered ranges",
              "SELECT * FROM petrel_meta(%s, %s, %s, %s, false)",
              (acct, mbox, list(range(1, n, n // 100)), list(range(5, n + 5, n // 100))))
        timed(cur, "petrel_meta 1:* set_seen (second run: no-op)",
              "SELECT * FROM petrel_meta(%s, %s, NULL, NULL, true)", (acct, mbox), repeat=2)
        timed(cur, "petrel_store 1:* +FLAGS \\Flagged / -FLAGS",
              "SELECT * FROM petrel_store(%s, %s, NULL, NULL, %s, 4, NULL)",
              (acct, mbox, 1), repeat=1)
        timed(cur, "petrel_store 1:* -FLAGS \\Flagged",
              "SELECT * FROM petrel_store(%s, %s, NULL, NULL, %s, 4, NULL)",
              (acct, mbox, 2), repeat=1)
        timed(cur, "petrel_store 1:* no change",
              "SELECT * FROM petrel_store(%s, %s, NULL, NULL, 2, 4, NULL)", (acct, mbox))
        timed(cur, "petrel_store one uid +FLAGS",
              "SELECT * FROM petrel_store(%s, %s, '{777}', '{777}', 1, 2, '{$Label1}')",
              (acct, mbox))
        timed(cur, "petrel_append small (INBOX of n)",
              "SELECT * FROM petrel_append(%s, 'INBOX', 0, NULL, 0, 0, 10, %s)",
              (acct, b"Subject: y\r\n\r\n" + uuid.uuid4().bytes))
        timed(cur, "petrel_read 4 KiB", "SELECT petrel_read(%s, %s, 1, 0, 4096)", (acct, mbox))
        timed(cur, "petrel_select after the above", "SELECT * FROM petrel_select(%s, 'INBOX')", (acct,))
        big_read(conn, cur, acct)
    finally:
        cur.execute("SELECT petrel_account_delete(%s)", (address,))


if __name__ == "__main__":
    main()
