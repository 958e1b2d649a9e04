"""Mailbox management and authentication: DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, LSUB, NAMESPACE, LIST-EXTENDED (RFC 5258), LIST-STATUS
(RFC 5819), SPECIAL-USE / CREATE-SPECIAL-USE (RFC 6154), STATUS=SIZE,
AUTHENTICATE PLAIN/LOGIN with SASL-IR (RFC 4616, 4959), ID (RFC 2971).

Behaviour chosen where the RFCs leave a choice (Dovecot's):
- DELETE of a mailbox with children: NO [HASCHILDREN]; of INBOX: NO.
- DELETE keeps the subscription (LSUB still lists it).
- DELETE of the session's own selected mailbox: it is unselected, OK.
- RENAME moves children and subscriptions, keeps UIDVALIDITY; RENAME INBOX
  moves the messages and leaves INBOX empty.
- Another session with the deleted mailbox selected gets "* BYE Selected
  mailbox was deleted or renamed, have to disconnect." at its next resync (at
  once while IDLE); one with a renamed mailbox selected keeps it (resyncs
  go by mailbox id, UIDVALIDITY is kept).
"""

import base64
import imaplib
import re
import time

import psycopg2
import pytest

from imap_util import Closed, Imap, make_message, quote, status_of


def b64(data):
    return base64.b64encode(data).decode()


def login(cluster, new_account, frontend=0):
    address, password = new_account()
    return Imap(cluster.imap_ports[frontend]).login(address, password), address, password


def list_lines(untagged, kind=b"LIST"):
    """{name: (attributes set, rest)} of * LIST / * LSUB responses."""
    out = {}
    for r in untagged:
        m = re.match(rb"\* " + kind + rb" \(([^)]*)\) \"/\" (\"(?:[^\"\\\\]|\\\\.)*\"|\S+)(.*)$", r)
        if not m:
            continue
        name = m.group(2)
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        out[name.decode()] = (set(m.group(1).decode().split()), m.group(3).decode().strip())
    return out


def status_lines(untagged):
    out = {}
    for r in untagged:
        m = re.match(rb"\* STATUS (\"[^\"]*\"|\S+) \(([^)]*)\)$", r)
        if m:
            words = m.group(2).decode().split()
            out[m.group(1).decode().strip('"')] = {k: int(v) for k, v in zip(words[::2], words[1::2])}
    return out


def read_to_close(c):
    """Every line until the server closes the connection, joined."""
    lines = []
    try:
        while True:
            lines.append(c.line())
    except Closed as e:
        lines.append(e.pending)
    return b"\n".join(lines)


def db_account(cluster, address):
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("SELECT id FROM accounts WHERE address = %s", (address.lower(),))
        return cur.fetchone()[0]


def db_rows(cluster, sql, args=()):
    conn = psycopg2.connect(cluster.pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


# ---- capabilities, NAMESPACE, ID ---------------------------------------------

def test_capabilities_before_and_after_login(cluster, new_account):
    address, password = new_account()
    with Imap(cluster.imap_ports[0]) as c:
        caps = c.ok("CAPABILITY")[0].split()[2:]
        for cap in (b"AUTH=PLAIN", b"AUTH=LOGIN", b"SASL-IR", b"NAMESPACE", b"LIST-EXTENDED",
                    b"LIST-STATUS", b"SPECIAL-USE", b"CREATE-SPECIAL-USE", b"ID",
                    b"STATUS=SIZE", b"CHILDREN"):
            assert cap in caps, (cap, caps)
        c.login(address, password)
        caps = c.ok("CAPABILITY")[0].split()[2:]
        assert b"AUTH=PLAIN" not in caps and b"SASL-IR" not in caps, caps
        assert b"LIST-EXTENDED" in caps and b"NAMESPACE" in caps


def test_namespace(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        assert c.ok("NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL']
        assert status_of(c.cmd("NAMESPACE x")[1]) == b"BAD"


def test_id_before_and_after_login(cluster, new_account):
    address, password = new_account()
    with Imap(cluster.imap_ports[0]) as c:
        untagged = c.ok('ID ("name" "pytest" "version" "1.0" "os" NIL)')
        assert len(untagged) == 1 and untagged[0].startswith(b'* ID ("name" "Petrel" "version" "')
        assert c.ok("ID NIL")[0].startswith(b"* ID (")
        # Odd count, too many pairs, over-long key, wrong argument: BAD.
        assert status_of(c.cmd('ID ("name")')[1]) == b"BAD"
        many = " ".join(f'"k{i}" "v"' for i in range(31))
        assert status_of(c.cmd(f"ID ({many})")[1]) == b"BAD"
        assert status_of(c.cmd(f'ID ("{"k" * 31}" "v")')[1]) == b"BAD"
        assert status_of(c.cmd("ID")[1]) == b"BAD"
        assert status_of(c.cmd('ID ("k" "' + "v" * 1025 + '")')[1]) == b"BAD"
        c.login(address, password)
        assert c.ok('ID ("name" "x")')[0].startswith(b'* ID ("name" "Petrel"')


# ---- AUTHENTICATE -----------------------------------------------------------

def test_authenticate_plain_with_imaplib(cluster, new_account):
    address, password = new_account()
    m = imaplib.IMAP4("127.0.0.1", cluster.imap_ports[0])
    typ, data = m.authenticate("PLAIN", lambda _: f"\0{address}\0{password}".encode())
    assert typ == "OK", data
    assert m.state == "AUTH"
    typ, _ = m.select("INBOX")
    assert typ == "OK"
    m.logout()


def test_authenticate_plain_sasl_ir(cluster, new_account):
    address, password = new_account()
    with Imap(cluster.imap_ports[0]) as c:
        ir = b64(f"{address}\0{address}\0{password}".encode())   # authzid = authcid
        untagged, tagged = c.cmd(f"AUTHENTICATE PLAIN {ir}")
        assert status_of(tagged) == b"OK", tagged
        assert b"[CAPABILITY " in tagged
        c.ok("SELECT INBOX")
        # Not allowed once authenticated.
        assert status_of(c.cmd(f"AUTHENTICATE PLAIN {ir}")[1]) == b"BAD"


def test_authenticate_plain_failures(cluster, new_account):
    address, password = new_account()
    other, _ = new_account()
    with Imap(cluster.imap_ports[0]) as c:
        _, tagged = c.cmd("AUTHENTICATE PLAIN " + b64(f"\0{address}\0wrong".encode()))
        assert tagged.endswith(b"NO [AUTHENTICATIONFAILED] Authentication failed."), tagged
        # Someone else's authorization identity: refused, even with the right password.
        _, tagged = c.cmd("AUTHENTICATE PLAIN " + b64(f"{other}\0{address}\0{password}".encode()))
        assert status_of(tagged) == b"NO", tagged
        # Malformed PLAIN (one NUL), and an empty initial response.
        _, tagged = c.cmd("AUTHENTICATE PLAIN " + b64(f"{address}\0{password}".encode()))
        assert status_of(tagged) == b"NO", tagged
        _, tagged = c.cmd("AUTHENTICATE PLAIN =")
        assert status_of(tagged) == b"NO", tagged
        # Unknown mechanism.
        _, tagged = c.cmd("AUTHENTICATE CRAM-MD5")
        assert status_of(tagged) == b"NO", tagged
        # Still not logged in, and LOGIN still works.
        assert status_of(c.cmd("SELECT INBOX")[1]) == b"BAD"
        c.login(address, password)


def test_authenticate_login_mechanism(cluster, new_account):
    address, password = new_account()
    answers = iter([address.encode(), password.encode()])
    m = imaplib.IMAP4("127.0.0.1", cluster.imap_ports[1])
    typ, data = m.authenticate("LOGIN", lambda _: next(answers))
    assert typ == "OK", data
    m.logout()
    # Raw, with the user name as initial response.
    with Imap(cluster.imap_ports[0]) as c:
        tag = c.tag()
        c.send(f"{tag} AUTHENTICATE LOGIN {b64(address.encode())}\r\n")
        assert c.line() == b"+ UGFzc3dvcmQ6"
        c.send(b64(password.encode()) + "\r\n")
        _, tagged = c.read_until(tag)
        assert status_of(tagged) == b"OK", tagged
    # Raw, step by step, wrong password.
    with Imap(cluster.imap_ports[0]) as c:
        tag = c.tag()
        c.send(f"{tag} AUTHENTICATE LOGIN\r\n")
        assert c.line() == b"+ VXNlcm5hbWU6"
        c.send(b64(address.encode()) + "\r\n")
        assert c.line() == b"+ UGFzc3dvcmQ6"
        c.send(b64(b"nope") + "\r\n")
        _, tagged = c.read_until(tag)
        assert tagged.endswith(b"NO [AUTHENTICATIONFAILED] Authentication failed."), tagged


def test_authenticate_cancel_bad_base64_and_long_line(cluster, new_account):
    address, password = new_account()
    with Imap(cluster.imap_ports[0]) as c:
        tag = c.tag()
        c.send(f"{tag} AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send("*\r\n")
        _, tagged = c.read_until(tag)
        assert status_of(tagged) == b"BAD", tagged
        # Bad base64 in the continuation and in the initial response.
        tag = c.tag()
        c.send(f"{tag} AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send("not*base64!\r\n")
        assert status_of(c.read_until(tag)[1]) == b"BAD"
        assert status_of(c.cmd("AUTHENTICATE PLAIN AB=C")[1]) == b"BAD"
        assert status_of(c.cmd("AUTHENTICATE PLAIN abc")[1]) == b"BAD"
        # Cancel during LOGIN's second step.
        tag = c.tag()
        c.send(f"{tag} AUTHENTICATE LOGIN {b64(address.encode())}\r\n")
        assert c.line() == b"+ UGFzc3dvcmQ6"
        c.send("*\r\n")
        assert status_of(c.read_until(tag)[1]) == b"BAD"
        # An over-long response line is skipped to its end and answered BAD;
        # what follows is a command again.
        tag = c.tag()
        c.send(f"{tag} AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send("A" * 20000 + "\r\n")
        assert status_of(c.read_until(tag)[1]) == b"BAD"
        # The continuation pipelined with the command works, then a command.
        tag = c.tag()
        c.send(f"{tag} AUTHENTICATE PLAIN\r\n")
        assert c.line() == b"+ "
        c.send(b64(f"\0{address}\0{password}".encode()) + "\r\nx1 NOOP\r\n")
        assert status_of(c.read_until(tag)[1]) == b"OK"
        assert status_of(c.read_until("x1")[1]) == b"OK"


# ---- DELETE -----------------------------------------------------------------

def test_delete_frees_bodies_and_rows(cluster, new_account):
    c, address, _ = login(cluster, new_account)
    acct = db_account(cluster, address)
    with c:
        c.ok('CREATE "Old"')
        shared = make_message("shared", b"shared body\r\n")
        c.append_uid("Old", make_message("only-here", b"only here\r\n"))
        c.append_uid("Old", shared)
        c.append_uid("INBOX", shared)   # same body: one blob, two references
        mbox = db_rows(cluster, "SELECT id FROM mailboxes WHERE account_id = %s AND name = 'Old'",
                       (acct,))[0][0]
        blobs = db_rows(cluster, "SELECT b.id, b.refs FROM blobs b JOIN messages m "
                        "ON m.account_id = b.account_id AND m.blob_id = b.id "
                        "WHERE m.account_id = %s AND m.mailbox_id = %s ORDER BY m.uid",
                        (acct, mbox))
        assert [r for _, r in blobs] == [1, 2]
        c.select("Old")
        c.ok("STORE 1 +FLAGS (\\Deleted)")
        c.ok("EXPUNGE")   # leaves a tombstone
        c.append_uid("Old", make_message("another", b"another\r\n"))
        another = db_rows(cluster, "SELECT blob_id FROM messages WHERE account_id = %s "
                          "AND mailbox_id = %s AND uid = 3", (acct, mbox))[0][0]
        c.ok("UNSELECT")
        c.ok('DELETE "Old"')
        assert "Old" not in list_lines(c.ok('LIST "" "*"'))
        assert db_rows(cluster, "SELECT count(*) FROM messages WHERE account_id = %s AND mailbox_id = %s",
                       (acct, mbox)) == [(0,)]
        assert db_rows(cluster, "SELECT count(*) FROM expunged WHERE account_id = %s AND mailbox_id = %s",
                       (acct, mbox)) == [(0,)]
        assert db_rows(cluster, "SELECT count(*) FROM mailboxes WHERE account_id = %s AND id = %s",
                       (acct, mbox)) == [(0,)]
        assert db_rows(cluster, "SELECT count(*) FROM blobs WHERE account_id = %s AND id = %s",
                       (acct, another)) == [(0,)]
        assert db_rows(cluster, "SELECT count(*) FROM blob_chunks WHERE account_id = %s "
                       "AND blob_id = %s", (acct, another)) == [(0,)]
        # The shared body stays with one reference; no unreferenced blob is left.
        assert db_rows(cluster, "SELECT refs FROM blobs WHERE account_id = %s AND id = %s",
                       (acct, blobs[1][0])) == [(1,)]
        assert db_rows(cluster, "SELECT count(*) FROM blobs WHERE account_id = %s AND refs = 0",
                       (acct,)) == [(0,)]
        assert db_rows(cluster, "SELECT count(*) FROM blob_chunks c WHERE c.account_id = %s AND NOT "
                       "EXISTS (SELECT 1 FROM messages m WHERE m.account_id = c.account_id "
                       "AND m.blob_id = c.blob_id)", (acct,)) == [(0,)]
        c.select("INBOX")
        assert c.fetch("1", "BODY.PEEK[]")[1]["BODY[]"] == shared


def test_delete_refusals(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        _, tagged = c.cmd("DELETE INBOX")
        assert status_of(tagged) == b"NO", tagged
        _, tagged = c.cmd("DELETE inbox")
        assert status_of(tagged) == b"NO", tagged
        c.ok('CREATE "P/C"')
        _, tagged = c.cmd('DELETE "P"')
        assert tagged.split(b" ", 1)[1].startswith(b"NO [HASCHILDREN]"), tagged
        _, tagged = c.cmd('DELETE "Nope"')
        assert b"NO [NONEXISTENT]" in tagged, tagged
        c.ok('DELETE "P/C"')
        c.ok('DELETE "P"')
        assert not {"P", "P/C"} & set(list_lines(c.ok('LIST "" "*"')))


def test_delete_selected_mailbox_unselects(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        c.ok('CREATE "Sel"')
        c.append_uid("Sel", make_message())
        c.select("Sel")
        c.ok('DELETE "Sel"')
        assert status_of(c.cmd("FETCH 1 FLAGS")[1]) == b"BAD"   # no mailbox selected
        c.select("INBOX")


def test_delete_seen_by_other_session(cluster, new_account):
    a, address, password = login(cluster, new_account, 0)
    b = Imap(cluster.imap_ports[1]).login(address, password)
    with a, b:
        a.ok('CREATE "Gone"')
        b.select("Gone")
        a.ok('DELETE "Gone"')
        b.send(f"{b.tag()} NOOP\r\n")
        out = read_to_close(b)
        assert b"* BYE Selected mailbox was deleted or renamed, have to disconnect." in out, out


# ---- RENAME -----------------------------------------------------------------

def uidvalidity(c, name):
    return status_lines(c.ok(f"STATUS {quote(name)} (UIDVALIDITY)"))[name]["UIDVALIDITY"]


def test_rename_moves_children_and_subscriptions(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        c.ok('CREATE "A/B/C"')
        c.ok('SUBSCRIBE "A/B"')
        c.append_uid("A/B", make_message("kept"))
        v = uidvalidity(c, "A/B")
        c.ok('RENAME "A" "X/Y"')   # X is created as a parent
        names = list_lines(c.ok('LIST "" "*"'))
        assert {"X", "X/Y", "X/Y/B", "X/Y/B/C"} <= set(names), names
        assert not {"A", "A/B", "A/B/C"} & set(names), names
        assert uidvalidity(c, "X/Y/B") == v
        assert status_lines(c.ok('STATUS "X/Y/B" (MESSAGES)'))["X/Y/B"]["MESSAGES"] == 1
        subs = list_lines(c.ok('LSUB "" "*"'), b"LSUB")
        assert "X/Y/B" in subs and "A/B" not in subs, subs
        # Renaming a mailbox that has a parent keeps the parent.
        c.ok('RENAME "X/Y/B/C" "X/Y/B/D"')
        names = list_lines(c.ok('LIST "" "X/Y/B/*"'))
        assert set(names) == {"X/Y/B/D"}, names


def test_rename_refusals(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        c.ok('CREATE "R1"')
        c.ok('CREATE "R2"')
        _, tagged = c.cmd('RENAME "R1" "R2"')
        assert b"NO [ALREADYEXISTS]" in tagged, tagged
        _, tagged = c.cmd('RENAME "R1" "INBOX"')
        assert b"NO [ALREADYEXISTS]" in tagged, tagged
        _, tagged = c.cmd('RENAME "Missing" "R3"')
        assert b"NO [NONEXISTENT]" in tagged, tagged
        _, tagged = c.cmd('RENAME "R1" "R1/Sub"')
        assert status_of(tagged) == b"NO", tagged
        _, tagged = c.cmd('RENAME "R1" "bad*name"')
        assert status_of(tagged) == b"NO", tagged
        assert {"R1", "R2"} <= set(list_lines(c.ok('LIST "" "R*"')))


def test_rename_inbox_moves_messages(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        c.ok('CREATE "INBOX/Child"')
        for i in range(3):
            c.append_uid("INBOX", make_message(f"m{i}"))
        v = uidvalidity(c, "INBOX")
        c.select("INBOX")
        untagged = c.ok('RENAME INBOX "Old Inbox"')
        assert untagged.count(b"* 1 EXPUNGE") == 3, untagged   # seen by the renaming session
        st = status_lines(c.ok('STATUS INBOX (MESSAGES UIDVALIDITY UIDNEXT)'))["INBOX"]
        assert st["MESSAGES"] == 0 and st["UIDVALIDITY"] == v and st["UIDNEXT"] == 4
        st = status_lines(c.ok('STATUS "Old Inbox" (MESSAGES UIDNEXT)'))["Old Inbox"]
        assert st == {"MESSAGES": 3, "UIDNEXT": 4}
        names = list_lines(c.ok('LIST "" "*"'))
        assert "INBOX/Child" in names and "Old Inbox/Child" not in names
        # New mail still goes to INBOX, with new UIDs.
        assert c.append_uid("INBOX", make_message("new"))[1] == 4
        c.select("Old Inbox")
        assert sorted(v["UID"] for v in c.fetch("1:*", "UID").values()) == [1, 2, 3]


def test_rename_selected_in_same_and_other_session(cluster, new_account):
    a, address, password = login(cluster, new_account, 0)
    b = Imap(cluster.imap_ports[1]).login(address, password)
    with a, b:
        a.ok('CREATE "Work"')
        a.append_uid("Work", make_message("w"))
        a.select("Work")
        b.select("Work")
        tag = b.tag()
        b.send(f"{tag} IDLE\r\n")
        assert b.line() == b"+ idling"
        time.sleep(0.2)
        a.ok('RENAME "Work" "Work2"')
        # The renaming session keeps it selected under the new name.
        assert a.fetch("1", "UID")[1]["UID"] == 1
        assert a.ok("NOOP") == []
        # The other session, idling on the other frontend, keeps the same
        # mailbox (same id and UIDVALIDITY) and goes on hearing of changes.
        a.append_uid("Work2", make_message("w2"))
        line = b.line()
        while line.startswith(b"* OK"):
            line = b.line()
        assert line == b"* 2 EXISTS", line
        b.send("DONE\r\n")
        assert status_of(b.read_until(tag)[1]) == b"OK"
        assert sorted(v["UID"] for v in b.fetch("1:*", "UID").values()) == [1, 2]


# ---- SUBSCRIBE, UNSUBSCRIBE, LSUB -----------------------------------------------

def test_subscribe_unsubscribe_lsub(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        # New accounts: the default mailboxes are subscribed.
        subs = list_lines(c.ok('LSUB "" "*"'), b"LSUB")
        assert set(subs) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}, subs
        # with their special-use attributes, as Dovecot's LSUB gives them
        assert subs["Sent"][0] == {"\\Sent"} and subs["INBOX"][0] == set(), subs
        c.ok('CREATE "Lists/Pets"')
        c.ok('SUBSCRIBE "Lists/Pets"')
        c.ok('SUBSCRIBE "Ghost"')          # not a mailbox: allowed
        c.ok('SUBSCRIBE "Ghost"')          # twice: still OK
        subs = list_lines(c.ok('LSUB "" "*"'), b"LSUB")
        assert subs["Ghost"][0] == set()     # no mailbox: listed plain, as Dovecot
        assert subs["Lists/Pets"][0] == set()
        assert "Lists" not in subs           # "*" reaches Lists/Pets itself
        # "%": the unsubscribed parent stands in, \Noselect.
        subs = list_lines(c.ok('LSUB "" "%"'), b"LSUB")
        assert subs["Lists"][0] == {"\\Noselect"} and "Lists/Pets" not in subs
        c.ok('UNSUBSCRIBE "Ghost"')
        c.ok('UNSUBSCRIBE "Ghost"')          # not subscribed: OK (RFC 9051)
        c.ok('UNSUBSCRIBE "Lists/Pets"')
        subs = list_lines(c.ok('LSUB "" "*"'), b"LSUB")
        assert "Ghost" not in subs and "Lists/Pets" not in subs
        # Deleting keeps the subscription; LSUB still lists it.
        c.ok('CREATE "Temp"')
        c.ok('SUBSCRIBE "Temp"')
        c.ok('DELETE "Temp"')
        assert list_lines(c.ok('LSUB "" "Temp"'), b"LSUB")["Temp"][0] == set()
        assert status_of(c.cmd('SUBSCRIBE "bad%name"')[1]) == b"NO"
        # Modified UTF-7 round trip.
        c.ok('SUBSCRIBE "Caf&AOk-"')
        assert "Caf&AOk-" in list_lines(c.ok('LSUB "" "Caf*"'), b"LSUB")


# ---- LIST-EXTENDED, LIST-STATUS, SPECIAL-USE ---------------------------------------

def test_basic_list_special_use_and_children(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        c.ok('CREATE "Parent/Kid"')
        names = list_lines(c.ok('LIST "" "*"'))
        assert names["Sent"][0] == {"\\HasNoChildren", "\\Sent"}
        assert names["Drafts"][0] == {"\\HasNoChildren", "\\Drafts"}
        assert names["Trash"][0] >= {"\\Trash"} and names["Junk"][0] >= {"\\Junk"}
        assert names["Archive"][0] >= {"\\Archive"}
        assert names["Parent"][0] == {"\\HasChildren"}
        assert names["INBOX"][0] == {"\\HasNoChildren"}
        assert c.ok('LIST "" ""') == [b'* LIST (\\Noselect) "/" ""']
        names = list_lines(c.ok('LIST "" "%"'))
        assert "Parent" in names and "Parent/Kid" not in names


def test_list_extended_selection_and_return_options(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        c.ok('CREATE "Fruit/Apple"')
        c.ok('CREATE "Fruit/Banana"')
        c.ok('SUBSCRIBE "Fruit/Banana"')
        c.ok('SUBSCRIBE "Fruit/Peach"')     # does not exist
        # SUBSCRIBED: subscribed names only, \Subscribed implied, \NonExistent.
        names = list_lines(c.ok('LIST (SUBSCRIBED) "" "Fruit/*"'))
        assert set(names) == {"Fruit/Banana", "Fruit/Peach"}, names
        assert names["Fruit/Banana"][0] == {"\\Subscribed"}
        assert names["Fruit/Peach"][0] == {"\\Subscribed", "\\NonExistent"}
        # RECURSIVEMATCH: the unsubscribed parent with CHILDINFO.
        names = list_lines(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)'))
        assert names["Fruit"] == ({"\\HasChildren"}, '("CHILDINFO" ("SUBSCRIBED"))'), names
        assert names["INBOX"][0] == {"\\Subscribed", "\\HasNoChildren"}
        assert "Fruit/Banana" not in names
        names = list_lines(c.ok('LIST (SUBSCRIBED) "" "%"'))
        assert "Fruit" not in names
        # RETURN (SUBSCRIBED CHILDREN) on all mailboxes.
        names = list_lines(c.ok('LIST "" "*" RETURN (SUBSCRIBED CHILDREN)'))
        assert names["Fruit"][0] == {"\\HasChildren"}
        assert names["Fruit/Banana"][0] == {"\\HasNoChildren", "\\Subscribed"}
        assert names["Fruit/Apple"][0] == {"\\HasNoChildren"}
        assert "Fruit/Peach" not in names
        # Extended without RETURN (CHILDREN / SPECIAL-USE): neither.
        names = list_lines(c.ok('LIST () "" "Sent"'))
        assert names["Sent"][0] == set()
        # Several patterns.
        names = list_lines(c.ok('LIST "" ("INBOX" "Sent" "Fruit/A*")'))
        assert set(names) == {"INBOX", "Sent", "Fruit/Apple"}, names
        # SPECIAL-USE selection and return option.
        names = list_lines(c.ok('LIST (SPECIAL-USE) "" "*"'))
        assert set(names) == {"Drafts", "Sent", "Trash", "Junk", "Archive"}, names
        assert names["Sent"][0] == {"\\Sent"}
        names = list_lines(c.ok('LIST "" "*" RETURN (SPECIAL-USE)'))
        assert names["Junk"][0] == {"\\Junk"} and names["INBOX"][0] == set()
        c.ok('LIST (REMOTE) "" "INBOX"')
        # Errors.
        assert status_of(c.cmd('LIST (RECURSIVEMATCH) "" "*"')[1]) == b"BAD"
        assert status_of(c.cmd('LIST (BOGUS) "" "*"')[1]) == b"BAD"
        assert status_of(c.cmd('LIST "" "*" RETURN (BOGUS)')[1]) == b"BAD"
        assert status_of(c.cmd('LIST "" "*" RETURN')[1]) == b"BAD"
        assert status_of(c.cmd('LIST "" ()')[1]) == b"BAD"


def test_list_status(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        msg = make_message("sized", b"x" * 100)
        c.append_uid("INBOX", msg)
        c.append_uid("INBOX", make_message("seen"), flags="\\Seen")
        c.ok('CREATE "Empty/Sub"')
        c.ok('SUBSCRIBE "Nowhere"')
        untagged = c.ok('LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT SIZE))')
        st = status_lines(untagged)
        assert st["INBOX"]["MESSAGES"] == 2 and st["INBOX"]["UNSEEN"] == 1
        assert st["INBOX"]["UIDNEXT"] == 3 and st["INBOX"]["SIZE"] > len(msg)
        assert "Nowhere" not in st          # \NonExistent: no STATUS
        # Every LIST line is followed by its STATUS.
        i = next(i for i, r in enumerate(untagged) if r.startswith(b'* LIST') and r.endswith(b"INBOX"))
        assert untagged[i + 1].startswith(b"* STATUS INBOX ")
        st = status_lines(c.ok('LIST "" "Empty*" RETURN (STATUS (MESSAGES UIDVALIDITY))'))
        assert st["Empty"]["MESSAGES"] == 0 and st["Empty/Sub"]["UIDVALIDITY"] > 0
        assert status_of(c.cmd('LIST "" "*" RETURN (STATUS (BOGUS))')[1]) == b"BAD"
        # STATUS=SIZE on plain STATUS agrees with LIST-STATUS.
        size = status_lines(c.ok('LIST "" "INBOX" RETURN (STATUS (SIZE))'))["INBOX"]["SIZE"]
        assert status_lines(c.ok("STATUS INBOX (SIZE)"))["INBOX"]["SIZE"] == size


def test_create_special_use(cluster, new_account):
    c, _, _ = login(cluster, new_account)
    with c:
        c.ok('CREATE "Starred" (USE (\\Flagged))')
        c.ok('CREATE "Everything" (USE (\\All))')
        c.ok('CREATE "Plain" (USE ())')
        names = list_lines(c.ok('LIST "" "*" RETURN (SPECIAL-USE)'))
        assert names["Starred"][0] == {"\\Flagged"}
        assert names["Everything"][0] == {"\\All"}
        assert names["Plain"][0] == set()
        _, tagged = c.cmd('CREATE "Weird" (USE (\\Bogus))')
        assert b"NO [USEATTR]" in tagged, tagged
        _, tagged = c.cmd('CREATE "Two" (USE (\\Sent \\Trash))')
        assert b"NO [USEATTR]" in tagged, tagged
        assert status_of(c.cmd('CREATE "X" (FOO (bar))')[1]) == b"BAD"
        names = list_lines(c.ok('LIST "" "*"'))
        assert "Weird" not in names and "Two" not in names and "X" not in names


def test_list_wildcards_cost_bounded_work(cluster, new_account):
    """Many wildcards against a long name: the matcher once backtracked
    exponentially, and this LIST held a frontend worker for a minute."""
    c, _, _ = login(cluster, new_account)
    with c:
        c.ok('CREATE "' + "a" * 40 + '"')
        started = time.monotonic()
        assert list_lines(c.ok('LIST "" "' + "*a" * 14 + 'b"')) == {}
        assert list(list_lines(c.ok('LIST "" "' + "%a" * 14 + '"'))) == ["a" * 40]
        assert time.monotonic() - started < 5


def model_match(pattern, name):
    """RFC 9051 6.3.9: '*' matches anything, '%' anything but '/'; INBOX
    in any case."""
    if name == "INBOX" and pattern[:5].upper() == "INBOX":
        pattern = "INBOX" + pattern[5:]
    rx = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.fullmatch(rx, name) is not None


# Runs of wildcards (one '*' makes the run a '*'), patterns of different
# lengths in one LIST, a literal tail, INBOX in other cases.
LIST_PATTERNS = ["*", "%", "%/%", "a%*", "a*%", "a%%", "%%/%%/%%", "*/c", "a/%/c", "%b%",
                 "inbox", "InBoX*", "INBOX%%", "a/b%", "*b*", "**a**", "%a", "a/*/", "ab/c"]


@pytest.mark.parametrize("patterns", [[p] for p in LIST_PATTERNS] + [LIST_PATTERNS[:7], LIST_PATTERNS[7:]],
                         ids=lambda ps: " ".join(ps))
def test_list_patterns_against_a_model(cluster, new_account, patterns):
    """Each pattern, and several at once (LIST-EXTENDED), select exactly the
    names the RFC's rules do."""
    names = ["a", "a/b", "a/b/c", "a/bb/c", "ab", "ab/c", "ba", "b/a", "x/y/z", "aaa"]
    c, _, _ = login(cluster, new_account)
    with c:
        for n in names:
            c.ok(f'CREATE "{n}"')
        every = set(list_lines(c.ok('LIST "" "*"')))   # the special-use ones too
        assert every >= set(names) | {"INBOX", "a/bb", "b", "x/y"}, every
        got = set(list_lines(c.ok('LIST "" (' + " ".join(f'"{p}"' for p in patterns) + ")")))
        want = {n for n in every if any(model_match(p, n) for p in patterns)}
        assert got == want, (patterns, sorted(got ^ want))
