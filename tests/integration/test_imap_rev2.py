"""IMAP4rev2 (RFC 9051) after ENABLE IMAP4rev2, UTF8=ACCEPT (RFC 6855) and
the LITERAL-/LITERAL+ advertisement (RFC 7888), each against a real cluster.

Most tests run an IMAP4rev1 session and an IMAP4rev2 one side by side on
the same account, so each difference of RFC 9051 Appendix E shows as the
pair of answers.
"""

import os
import re
import secrets
import subprocess
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest

from conftest import BIN
from imap_util import Imap, make_message, quote, status_of


@pytest.fixture
def account(new_account):
    return new_account()


def connect(cluster, account, *enable, frontend=0):
    c = Imap(cluster.imap_ports[frontend])
    c.login(*account)
    if enable:
        c.ok("ENABLE " + " ".join(enable))
    return c


def caps(c):
    untagged = c.ok("CAPABILITY")
    assert len(untagged) == 1 and untagged[0].startswith(b"* CAPABILITY "), untagged
    return untagged[0].split()[2:]


def utf8(s):
    """A mailbox name as a quoted string in UTF-8 (an IMAP4rev2 client's form)."""
    return quote(s).encode()


# ---- capabilities and ENABLE --------------------------------------------------

def test_capabilities_before_and_after_login(cluster, account):
    """Both revisions are offered; before login non-synchronizing literals
    are capped at 4096 bytes, which is LITERAL-, after it LITERAL+; never
    both (RFC 7888 makes them alternatives)."""
    with Imap(cluster.imap_ports[0]) as c:
        pre = caps(c)
        assert b"IMAP4rev1" in pre and b"IMAP4rev2" in pre, pre
        assert b"LITERAL-" in pre and b"LITERAL+" not in pre, pre
        assert b"[CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL- " in c.greeting, c.greeting
        c.login(*account)
        post = caps(c)
        assert b"IMAP4rev1" in post and b"IMAP4rev2" in post, post
        assert b"LITERAL+" in post and b"LITERAL-" not in post, post
        assert b"UTF8=ACCEPT" in post and b"ENABLE" in post, post


def test_enable_responses(cluster, account):
    """RFC 5161: "* ENABLED" names what this command turned on, once;
    unknown names are ignored; ENABLE needs authentication."""
    with Imap(cluster.imap_ports[0]) as c:
        _, tagged = c.cmd("ENABLE IMAP4rev2")
        assert status_of(tagged) == b"BAD", tagged
        c.login(*account)
        assert c.ok("ENABLE IMAP4rev2") == [b"* ENABLED IMAP4rev2"]
        assert c.ok("ENABLE imap4REV2") == [b"* ENABLED"]
        assert c.ok("ENABLE X-UNKNOWN UTF8=ACCEPT") == [b"* ENABLED UTF8=ACCEPT"]
        assert c.ok("ENABLE UTF8=ACCEPT IMAP4rev2") == [b"* ENABLED"]
    with connect(cluster, account) as c:
        assert c.ok("ENABLE UTF8=ACCEPT IMAP4rev2 CONDSTORE") == \
            [b"* ENABLED CONDSTORE IMAP4rev2 UTF8=ACCEPT"]


def test_enable_after_select_takes_effect(cluster, account):
    """ENABLE with a mailbox selected is accepted, as Dovecot does (RFC 5161
    lets a server skip the check), and changes what comes next."""
    with connect(cluster, account) as c:
        c.append_uid("INBOX", make_message("a"))
        c.select("INBOX")
        assert c.ok("SEARCH ALL") == [b"* SEARCH 1"]
        assert c.ok("ENABLE IMAP4rev2") == [b"* ENABLED IMAP4rev2"]
        untagged, tagged = c.cmd("SEARCH ALL", tag="s1")
        assert untagged == [b'* ESEARCH (TAG "s1") ALL 1'], untagged


# ---- SELECT: no RECENT, no UNSEEN, a LIST -------------------------------------

def test_select_rev1_and_rev2(cluster, account):
    with connect(cluster, account) as c:
        c.append_uid("INBOX", make_message("seen"), flags="\\Seen")
        c.append_uid("INBOX", make_message("unseen"))
    with connect(cluster, account) as v1, connect(cluster, account, "IMAP4rev2") as v2:
        r1 = v1.select("INBOX")
        assert b"* 0 RECENT" in r1, r1
        assert any(re.fullmatch(rb"\* OK \[UNSEEN 2\] .*", r) for r in r1), r1
        assert not any(r.startswith(b"* LIST") for r in r1), r1
        r2 = v2.select("INBOX")
        assert not any(b"RECENT" in r or b"[UNSEEN" in r for r in r2), r2
        assert b'* LIST () "/" INBOX' in r2, r2
        for must in (rb"\* 2 EXISTS", rb"\* FLAGS \(.*\)", rb"\* OK \[PERMANENTFLAGS \(.*\)\] .*",
                     rb"\* OK \[UIDVALIDITY \d+\] .*", rb"\* OK \[UIDNEXT 3\] .*"):
            assert any(re.fullmatch(must, r) for r in r2), (must, r2)
        # EXAMINE too; and selecting again closes the first one first.
        r2 = v2.ok("EXAMINE inbox")
        assert r2[0].startswith(b"* OK [CLOSED]"), r2
        assert b'* LIST () "/" INBOX' in r2, r2


def test_select_lists_utf8_name(cluster, account):
    with connect(cluster, account, "IMAP4rev2") as v2:
        v2.ok(b"CREATE " + utf8("Gr\u00fcn"))
        assert b'* LIST () "/" "Gr\xc3\xbcn"' in v2.ok(b"SELECT " + utf8("Gr\u00fcn"))


# ---- STATUS: RECENT is rev1's, DELETED rev2's ----------------------------------

def test_status_recent_and_deleted(cluster, account):
    """RECENT is an IMAP4rev1 item (BAD in IMAP4rev2, also in LIST-STATUS);
    DELETED counts messages with \\Deleted, for either revision."""
    with connect(cluster, account) as c:
        for i, flags in enumerate(("\\Deleted", "\\Deleted \\Seen", "\\Seen", None)):
            c.append_uid("INBOX", make_message(f"m{i}"), flags=flags)
    with connect(cluster, account) as v1, connect(cluster, account, "IMAP4rev2") as v2:
        assert v1.ok("STATUS INBOX (MESSAGES RECENT)") == [b"* STATUS INBOX (MESSAGES 4 RECENT 0)"]
        _, tagged = v2.cmd("STATUS INBOX (MESSAGES RECENT)")
        assert status_of(tagged) == b"BAD", tagged
        # Items come in one fixed order, whatever the order asked.
        for items in ("MESSAGES DELETED UNSEEN SIZE", "DELETED SIZE UNSEEN MESSAGES"):
            untagged = v2.ok(f"STATUS INBOX ({items})")
            assert re.fullmatch(rb"\* STATUS INBOX \(MESSAGES 4 UNSEEN 2 SIZE \d+ DELETED 2\)",
                                untagged[0]), untagged
        assert v1.ok("STATUS INBOX (DELETED)") == [b"* STATUS INBOX (DELETED 2)"]
        v2.ok("CREATE Empty")
        assert v2.ok("STATUS Empty (DELETED)") == [b"* STATUS Empty (DELETED 0)"]
        _, tagged = v2.cmd('LIST "" "INBOX" RETURN (STATUS (RECENT))')
        assert status_of(tagged) == b"BAD", tagged


def test_list_status_deleted(cluster, account):
    """LIST-STATUS (RFC 5819) takes every STATUS item, DELETED too (RFC 9051
    6.3.11), with the same counts as STATUS; in either revision."""
    with connect(cluster, account) as c:
        for i, flags in enumerate(("\\Deleted", "\\Deleted \\Seen", "\\Seen", None)):
            c.append_uid("INBOX", make_message(f"m{i}"), flags=flags)
        c.ok("CREATE Empty")
        c.ok("SUBSCRIBE Gone")
    with connect(cluster, account) as v1, connect(cluster, account, "IMAP4rev2") as v2:
        assert v2.ok('LIST (SUBSCRIBED) "" "Gone" RETURN (STATUS (DELETED))') == [
            b'* LIST (\\NonExistent \\Subscribed) "/" Gone']
        for c in (v1, v2):
            assert c.ok('LIST "" ("Empty" "INBOX") RETURN (STATUS (MESSAGES DELETED UNSEEN))') == [
                b'* LIST () "/" Empty',
                b"* STATUS Empty (MESSAGES 0 UNSEEN 0 DELETED 0)",
                b'* LIST () "/" INBOX',
                b"* STATUS INBOX (MESSAGES 4 UNSEEN 2 DELETED 2)",
            ]
        v2.select("INBOX")
        v2.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
        assert v2.ok('LIST "" "INBOX" RETURN (STATUS (DELETED))')[1] == b"* STATUS INBOX (DELETED 4)"
        v2.ok("EXPUNGE")
        assert v2.ok('LIST "" "INBOX" RETURN (STATUS (DELETED))')[1] == b"* STATUS INBOX (DELETED 0)"


# ---- SEARCH answered with ESEARCH -----------------------------------------------

def test_search_is_esearch_in_rev2(cluster, account):
    with connect(cluster, account) as c:
        uids = [c.append_uid("INBOX", make_message(f"m{i}"), flags="\\Seen" if i != 1 else None)[1]
                for i in range(4)]
    with connect(cluster, account) as v1, connect(cluster, account, "IMAP4rev2") as v2:
        v1.select("INBOX")
        v2.select("INBOX")
        assert v1.ok("SEARCH SEEN") == [b"* SEARCH 1 3 4"]
        assert v1.ok("UID SEARCH UNSEEN") == [f"* SEARCH {uids[1]}".encode()]
        untagged, _ = v2.cmd("SEARCH SEEN", tag="A1")
        assert untagged == [b'* ESEARCH (TAG "A1") ALL 1,3:4'], untagged
        untagged, _ = v2.cmd("UID SEARCH UNSEEN", tag="A2")
        assert untagged == [f'* ESEARCH (TAG "A2") UID ALL {uids[1]}'.encode()], untagged
        untagged, _ = v2.cmd("SEARCH SUBJECT nothing-like-this", tag="A3")
        assert untagged == [b'* ESEARCH (TAG "A3")'], untagged
        untagged, _ = v2.cmd("SEARCH RETURN (COUNT MIN) SEEN", tag="A4")
        assert untagged == [b'* ESEARCH (TAG "A4") MIN 1 COUNT 3'], untagged
        # RFC 3501's \Recent keys still answer (nothing is \Recent) rather than BAD.
        untagged, _ = v2.cmd("SEARCH NEW", tag="A5")
        assert untagged == [b'* ESEARCH (TAG "A5")'], untagged


def test_search_charset_after_utf8_accept(cluster, account):
    """RFC 6855 3: once UTF8=ACCEPT is on, SEARCH with CHARSET is BAD;
    IMAP4rev2 alone keeps CHARSET."""
    with connect(cluster, account) as c:
        c.append_uid("INBOX", make_message("caf\u00e9"))
    with connect(cluster, account, "IMAP4rev2") as v2, \
            connect(cluster, account, "UTF8=ACCEPT") as u:
        v2.select("INBOX")
        u.select("INBOX")
        untagged, _ = v2.cmd("SEARCH CHARSET UTF-8 SUBJECT caf", tag="B1")
        assert untagged == [b'* ESEARCH (TAG "B1") ALL 1'], untagged
        _, tagged = u.cmd("SEARCH CHARSET UTF-8 SUBJECT caf")
        assert status_of(tagged) == b"BAD", tagged
        assert u.ok(b'SEARCH SUBJECT "caf\xc3\xa9"') == [b"* SEARCH 1"]


def test_unsolicited_fetch_carries_uid_in_rev2(cluster, account):
    """RFC 9051 7.5.2: flag changes another session made come with the UID."""
    with connect(cluster, account) as c:
        _, uid = c.append_uid("INBOX", make_message("x"))
    with connect(cluster, account) as v1, connect(cluster, account, "IMAP4rev2") as v2, \
            connect(cluster, account, frontend=1) as other:
        v1.select("INBOX")
        v2.select("INBOX")
        other.select("INBOX")
        other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
        assert v1.ok("NOOP") == [b"* 1 FETCH (FLAGS (\\Flagged))"]
        assert v2.ok("NOOP") == [f"* 1 FETCH (UID {uid} FLAGS (\\Flagged))".encode()]


# ---- LIST and LSUB ------------------------------------------------------------------

def test_list_nonexistent_parent(cluster, account):
    """A parent that is not a mailbox is \\Noselect to an IMAP4rev1 LIST and
    \\NonExistent (which implies \\Noselect) to an IMAP4rev2 one, whose base
    LIST is RFC 5258's. CREATE makes parents and DELETE refuses one with
    children, so the state comes from the database, as a store migrated
    from another server has it."""
    with connect(cluster, account) as v1, connect(cluster, account, "IMAP4rev2") as v2:
        v1.ok("CREATE top/child")
        with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
            cur.execute("DELETE FROM mailboxes WHERE name = 'top' AND account_id ="
                        " (SELECT id FROM accounts WHERE address = %s)", (account[0].lower(),))
            assert cur.rowcount == 1
        assert v1.ok('LIST "" "top"') == [b'* LIST (\\Noselect \\HasChildren) "/" top']
        assert v2.ok('LIST "" "top"') == [b'* LIST (\\NonExistent \\HasChildren) "/" top']
        assert v2.ok('LIST "" "top/%"') == [b'* LIST (\\HasNoChildren) "/" top/child']


def test_lsub_still_answers_in_rev2(cluster, account):
    """RFC 9051 deprecates LSUB but a server keeps it for rev1 clients."""
    with connect(cluster, account, "IMAP4rev2") as v2:
        v2.ok(b"CREATE " + utf8("Abonn\u00e9"))
        v2.ok(b"SUBSCRIBE " + utf8("Abonn\u00e9"))
        assert v2.ok('LSUB "" "Abonn*"') == [b'* LSUB () "/" "Abonn\xc3\xa9"']
        assert v2.ok('LIST (SUBSCRIBED) "" "Abonn*"') == \
            [b'* LIST (\\Subscribed) "/" "Abonn\xc3\xa9"']


# ---- UTF-8 mailbox names ----------------------------------------------------------

@pytest.mark.parametrize("enable", ["IMAP4rev2", "UTF8=ACCEPT"])
def test_utf8_names_round_trip(cluster, account, enable):
    """After either ENABLE names are UTF-8 both ways (RFC 9051 5.1, RFC 6855
    3): what such a session creates an IMAP4rev1 one sees in modified UTF-7,
    and the other way round. "&" is an ordinary character in UTF-8 names."""
    with connect(cluster, account, enable) as u, connect(cluster, account) as v1:
        u.ok(b"CREATE " + utf8("Caf\u00e9/\u65e5\u672c"))
        assert v1.ok('LIST "" "Caf*"') == [
            b'* LIST (\\HasChildren) "/" Caf&AOk-',
            b'* LIST (\\HasNoChildren) "/" Caf&AOk-/&ZeVnLA-',
        ]
        assert u.ok('LIST "" "Caf*"') == [
            b'* LIST (\\HasChildren) "/" "Caf\xc3\xa9"',
            b'* LIST (\\HasNoChildren) "/" "Caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac"',
        ]
        v1.ok('CREATE "Gr&APw-n"')
        assert u.ok(b'LIST "" ' + utf8("Gr\u00fc*")) == [b'* LIST (\\HasNoChildren) "/" "Gr\xc3\xbcn"']
        u.ok('CREATE "Q&A"')
        assert v1.ok('LIST "" "Q*"') == [b'* LIST (\\HasNoChildren) "/" Q&-A']
        # The same mailbox by either name: APPEND in one form, STATUS in the other.
        u.append_uid("Caf\u00e9", make_message("x"))
        assert v1.ok('STATUS "Caf&AOk-" (MESSAGES)') == [b"* STATUS Caf&AOk- (MESSAGES 1)"]
        assert u.ok(b"STATUS " + utf8("Caf\u00e9") + b" (MESSAGES)") == \
            [b'* STATUS "Caf\xc3\xa9" (MESSAGES 1)']
        u.ok(b"RENAME " + utf8("Caf\u00e9/\u65e5\u672c") + b" " + utf8("\u00c9t\u00e9"))
        assert v1.ok('LIST "" "&AMk-*"') == [b'* LIST (\\HasNoChildren) "/" &AMk-t&AOk-']


def test_utf8_names_invalid(cluster, account):
    """Invalid UTF-8 or control characters are refused, never stored; a
    modified UTF-7 client still cannot send raw 8-bit."""
    with connect(cluster, account, "UTF8=ACCEPT") as u, connect(cluster, account) as v1:
        for bad in (b'"Caf\xe9"', b'"\xc0\xafslash"', b'"\xed\xa0\x80"', b'"tab\tname"',
                    b'"c1\xc2\x85"'):
            _, tagged = u.cmd(b"CREATE " + bad)
            assert status_of(tagged) in (b"NO", b"BAD"), (bad, tagged)
        _, tagged = v1.cmd(b"CREATE " + utf8("Caf\u00e9"))
        assert status_of(tagged) in (b"NO", b"BAD"), tagged
        names = v1.ok('LIST "" "*"')
        assert not any(b"Caf" in r or b"slash" in r or b"name" in r or b"c1" in r for r in names), names


# ---- names in Unicode NFC ------------------------------------------------------------

NFD = "Cafe\u0301"        # "e" and COMBINING ACUTE ACCENT, as macOS spells file names
NFC = "Caf\u00e9"         # the same text precomposed: what is stored
NFD_UTF7 = "Cafe&AwE-"    # NFD in modified UTF-7
NFC_W = b'"Caf\xc3\xa9"'  # NFC as an IMAP4rev2 session sees it
NFD_W = b'"Cafe\xcc\x81"'


def oldname(attrs, name, sent):
    """RFC 9051 6.3.9.7's untagged LIST: name is the stored one, sent what
    the client sent."""
    return b"* LIST (" + attrs + b') "/" ' + name + b' ("OLDNAME" (' + sent + b"))"


def test_names_are_nfc(cluster, account):
    """RFC 9051 5.1 and RFC 6855 3 want names in NFC: one sent decomposed,
    in UTF-8 or in modified UTF-7, is the precomposed one, in every command
    that takes a name. Only an IMAP4rev2 session is told of the change
    (OLDNAME, RFC 9051 6.3.4, 6.3.2); a UTF8=ACCEPT or IMAP4rev1 one gets
    no LIST it did not ask for."""
    with connect(cluster, account, "IMAP4rev2") as v2, connect(cluster, account, "UTF8=ACCEPT") as u, \
            connect(cluster, account) as v1:
        assert v2.ok(b"CREATE " + utf8(NFD)) == [oldname(b"", NFC_W, NFD_W)]
        assert v1.ok('LIST "" "Caf*"') == [b'* LIST (\\HasNoChildren) "/" Caf&AOk-']
        for c, name in ((v2, utf8(NFC)), (v2, utf8(NFD)), (u, utf8(NFD)), (v1, quote(NFD_UTF7).encode())):
            untagged, tagged = c.cmd(b"CREATE " + name)
            assert untagged == [] and re.match(rb"\S+ NO \[ALREADYEXISTS\]", tagged), (name, tagged)
        # The same mailbox whatever the spelling: APPEND, STATUS, SELECT.
        u.append_uid(NFD, make_message("utf8"))
        v1.append_uid(NFD_UTF7, make_message("utf7"))
        assert v1.ok(f"STATUS {NFD_UTF7} (MESSAGES)") == [b"* STATUS Caf&AOk- (MESSAGES 2)"]
        assert u.ok(b"STATUS " + utf8(NFD) + b" (MESSAGES)") == [b"* STATUS " + NFC_W + b" (MESSAGES 2)"]
        r = v2.ok(b"SELECT " + utf8(NFD))
        assert oldname(b"", NFC_W, NFD_W) in r and b"* 2 EXISTS" in r, r
        r = v2.ok(b"EXAMINE " + utf8(NFC))
        assert b'* LIST () "/" ' + NFC_W in r and not any(b"OLDNAME" in x for x in r), r
        r = u.ok(b"SELECT " + utf8(NFD))
        assert b"* 2 EXISTS" in r and not any(x.startswith(b"* LIST") for x in r), r
        r = v1.ok(f"EXAMINE {NFD_UTF7}")
        assert b"* 2 EXISTS" in r and not any(x.startswith(b"* LIST") for x in r), r
        # COPY and MOVE find their target, SUBSCRIBE stores the NFC name.
        v2.ok(b"CREATE " + utf8("Cr\u00e8me"))
        v2.select(NFC)
        assert re.match(rb"\S+ OK \[COPYUID ", v2.cmd(b"COPY 1 " + utf8("Cre\u0300me"))[1])
        assert v2.ok(b"MOVE 2 " + utf8("Cre\u0300me"))[0].startswith(b"* OK [COPYUID ")
        assert v1.ok('STATUS "Cr&AOg-me" (MESSAGES)') == [b"* STATUS Cr&AOg-me (MESSAGES 2)"]
        v1.ok('SUBSCRIBE "Cre&AwA-me"')
        assert v1.ok('LSUB "" "Cr*"') == [b'* LSUB () "/" Cr&AOg-me']
        v1.ok('UNSUBSCRIBE "Cre&AwA-me"')
        assert v1.ok('LSUB "" "Cr*"') == []
        # LIST patterns too, and a reference that ends where the pattern's
        # combining mark begins: the two together are the NFC name.
        assert v2.ok(b'LIST "" ' + utf8(NFD + "*")) == [b'* LIST (\\HasNoChildren) "/" ' + NFC_W]
        assert v2.ok(b'LIST "Cafe" ' + utf8("\u0301")) == [b'* LIST (\\HasNoChildren) "/" ' + NFC_W]
        assert v1.ok(f'LIST "" "{NFD_UTF7}"') == [b'* LIST (\\HasNoChildren) "/" Caf&AOk-']


def test_rename_and_delete_tell_oldname(cluster, account):
    """RFC 9051 6.3.6: RENAME where NFC changed either name tells the new
    (stored) name with the existing one as sent; 6.3.5: DELETE of a name NFC
    changed tells it \\NonExistent with the name as sent. Nothing when NFC
    changed nothing, nothing to an IMAP4rev1 session."""
    with connect(cluster, account, "IMAP4rev2") as v2, connect(cluster, account) as v1:
        v2.ok(b"CREATE " + utf8(NFC + "/Sub"))
        velo = b'"V\xc3\xa9lo"'
        assert v2.ok(b"RENAME " + utf8(NFD) + b" " + utf8("Ve\u0301lo")) == [oldname(b"", velo, NFD_W)]
        assert v1.ok('LIST "" "*/Sub"') == [b'* LIST (\\HasNoChildren) "/" V&AOk-lo/Sub']
        assert v2.ok(b"RENAME " + utf8("V\u00e9lo") + b" " + utf8(NFD)) == [oldname(b"", NFC_W, velo)]
        assert v2.ok(b"RENAME " + utf8(NFC) + b" Tea") == []
        assert v1.ok(f'RENAME Tea "{NFD_UTF7}"') == []
        assert v2.ok(b"DELETE " + utf8(NFD + "/Sub")) == \
            [oldname(b"\\NonExistent", b'"Caf\xc3\xa9/Sub"', b'"Cafe\xcc\x81/Sub"')]
        assert v2.ok(b"DELETE " + utf8(NFC)) == []
        v2.ok(b"CREATE " + utf8("Cr\u00e8me"))
        assert v1.ok('DELETE "Cre&AwA-me"') == []
        assert not any(b"Cr" in r or b"Caf" in r for r in v1.ok('LIST "" "*"'))


# ---- migration 017 on names stored as sent ------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def scratch_database(pg_url, encoding="UTF8"):
    """A new database on the cluster's server: (name, dsn, autocommit conn)."""
    name = "petrel_nfc_" + secrets.token_hex(4)
    server = psycopg2.connect(pg_url)
    server.autocommit = True
    with server.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING '{encoding}' LC_COLLATE 'C'"
                    " LC_CTYPE 'C'")
    server.close()
    dsn = psycopg2.extensions.make_dsn(pg_url, dbname=name)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return name, dsn, conn


def drop_database(pg_url, name):
    server = psycopg2.connect(pg_url)
    server.autocommit = True
    with server.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    server.close()


def admin_migrate(dsn):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETREL_")}
    env["PETREL_PG_URL"] = dsn
    return subprocess.run([str(BIN / "petrel-admin"), "migrate"], capture_output=True, text=True,
                          env=env, timeout=120)


def test_migration_renames_stored_names_to_nfc(pg_url):
    """Names stored as sent before 017 get their NFC form, children and
    subscriptions too, keeping their mailbox; a name whose NFC form is
    another mailbox (or subscription) stays and is reported."""
    name, dsn, conn = scratch_database(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                        " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            for f in sorted((ROOT / "backend" / "migrations").glob("*.sql")):
                version = int(f.stem.split("_")[0])
                if version < 17:
                    cur.execute("BEGIN")
                    cur.execute(f.read_text())
                    cur.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (version, f.stem))
                    cur.execute("COMMIT")
            cur.execute("SELECT petrel_account_create('nfc@example.com', 'x')")
            acct = cur.fetchone()[0]
            ids = {}
            for n in (NFD, NFD + "/Cre\u0300me", "Ve\u0301lo", "V\u00e9lo", "Plain"):
                cur.execute("SELECT petrel_mailbox_create(%s, %s, NULL)", (acct, n))
                ids[n] = cur.fetchone()[0]
            for n in (NFD, "Ve\u0301lo", "V\u00e9lo"):
                cur.execute("SELECT petrel_subscribe(%s, %s, true)", (acct, n))
        r = admin_migrate(dsn)
        assert r.returncode == 0, r.stderr
        assert 'mailbox "Ve\u0301lo" (id %d) keeps its name' % ids["Ve\u0301lo"] in r.stderr, r.stderr
        assert 'subscription "Ve\u0301lo" keeps its name' in r.stderr, r.stderr
        with conn.cursor() as cur:
            cur.execute("SELECT name, id FROM mailboxes WHERE account_id = %s AND name NOT IN"
                        " ('INBOX', 'Archive', 'Drafts', 'Junk', 'Sent', 'Trash') ORDER BY 1", (acct,))
            assert cur.fetchall() == sorted([(NFC, ids[NFD]), (NFC + "/Cr\u00e8me", ids[NFD + "/Cre\u0300me"]),
                                             ("Ve\u0301lo", ids["Ve\u0301lo"]),
                                             ("V\u00e9lo", ids["V\u00e9lo"]), ("Plain", ids["Plain"])])
            cur.execute("SELECT name FROM subscriptions WHERE account_id = %s AND name NOT IN"
                        " ('INBOX', 'Archive', 'Drafts', 'Junk', 'Sent', 'Trash') ORDER BY 1", (acct,))
            assert cur.fetchall() == sorted([(NFC,), ("Ve\u0301lo",), ("V\u00e9lo",)])
    finally:
        conn.close()
        drop_database(pg_url, name)


def test_migration_on_a_sql_ascii_database(pg_url):
    """normalize() needs a UTF8 database; on another the names stay as they
    are, with a warning, and the rest of the schema is there."""
    name, dsn, conn = scratch_database(pg_url, "SQL_ASCII")
    try:
        r = admin_migrate(dsn)
        assert r.returncode == 0, r.stderr
        assert "database encoding is SQL_ASCII, not UTF8" in r.stderr, r.stderr
        with conn.cursor() as cur:
            cur.execute("SELECT max(version) FROM schema_migrations")
            assert cur.fetchone()[0] >= 17
            cur.execute("SELECT to_regproc('petrel_list_ext_deleted') IS NOT NULL")
            assert cur.fetchone()[0]
    finally:
        conn.close()
        drop_database(pg_url, name)


def test_utf8_name_as_literal(cluster, account):
    with connect(cluster, account, "IMAP4rev2") as u:
        name = "\u00c5r".encode()
        u.send(f"L1 CREATE {{{len(name)}+}}\r\n".encode() + name + b"\r\n")
        _, tagged = u.read_until("L1")
        assert status_of(tagged) == b"OK", tagged
        assert u.ok('LIST "" "%r"') == [b'* LIST (\\HasNoChildren) "/" "\xc3\x85r"']


# ---- APPEND UTF8 ----------------------------------------------------------------------

def append_utf8(c, message, mailbox="INBOX", close=b")"):
    tag = c.tag()
    c.send(f"{tag} APPEND {mailbox} UTF8 (~{{{len(message)}}}\r\n".encode())
    cont = c.response()
    if not cont.startswith(b"+"):
        return cont
    c.send(message + close + b"\r\n")
    return c.read_until(tag)[1]


def test_append_utf8(cluster, account):
    """RFC 6855 4: APPEND mailbox UTF8 (~{n}...) for a UTF8=ACCEPT client."""
    msg = make_message("Gr\u00fc\u00dfe", body="Gr\u00fc\u00dfe\r\n", extra="X-Note: \u00e9t\u00e9\r\n".encode())
    with connect(cluster, account, "UTF8=ACCEPT") as u:
        tagged = append_utf8(u, msg)
        assert re.match(rb"t\d+ OK \[APPENDUID \d+ 1\]", tagged), tagged
        u.select("INBOX")
        body = u.fetch("1", "BODY.PEEK[]")[1]["BODY[]"]
        assert body == msg
        # The 8-bit subject reaches the client as it was (RFC 6855 3).
        env = u.ok("FETCH 1 ENVELOPE")
        assert b"Gr\xc3\xbc\xc3\x9fe" in env[0], env
        # The wrapper must be closed, and nothing may follow it.
        tagged = append_utf8(u, msg, close=b"")
        assert status_of(tagged) == b"BAD", tagged
        tagged = append_utf8(u, msg, close=b") junk")
        assert status_of(tagged) == b"BAD", tagged
        _, tagged = u.cmd("APPEND INBOX UTF8 ({3}")
        assert status_of(tagged) == b"BAD", tagged
        assert u.ok("NOOP") == []
        assert u.ok("STATUS INBOX (MESSAGES)") == [b"* STATUS INBOX (MESSAGES 1)"]
    with connect(cluster, account) as v1:
        tagged = append_utf8(v1, msg)
        assert status_of(tagged) == b"BAD", tagged
        assert v1.ok("NOOP") == []


# ---- LITERAL- before login -------------------------------------------------------------

def test_nonsync_literal_limit_before_login(cluster, account):
    """RFC 7888 4: under LITERAL- a non-synchronizing literal over 4096
    bytes is answered with a tagged BAD [TOOBIG]; the connection is then
    closed (as Dovecot does) rather than reading what may be gigabytes."""
    user, password = account
    with Imap(cluster.imap_ports[0]) as c:
        pw = password.encode()
        c.send(f"a1 LOGIN {quote(user)} {{{len(pw)}+}}\r\n".encode() + pw + b"\r\n")
        _, tagged = c.read_until("a1")
        assert status_of(tagged) == b"OK", tagged
    with Imap(cluster.imap_ports[0]) as c:
        c.send(b"a2 LOGIN {4096+}\r\n" + b"x" * 4096 + b" pass\r\n")
        _, tagged = c.read_until("a2")
        assert status_of(tagged) == b"NO", tagged   # a wrong login, but read whole
        c.send(b"a3 LOGIN {4097+}\r\n" + b"x" * 4097 + b" pass\r\n")
        assert c.response() == b"a3 BAD [TOOBIG] Non-synchronizing literal too big"
        assert c.response().startswith(b"* BYE ")
        assert c.eof()
