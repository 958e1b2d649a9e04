"""FETCH of the parsed structure: ENVELOPE, BODYSTRUCTURE, BODY, the macros,
and BODY[section] by part number, MIME, HEADER.FIELDS[.NOT], partials; for
messages APPENDed and delivered by LMTP (both parsed on arrival)."""

import imaplib
import smtplib

import psycopg2
import pytest

MSG = (b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\n"
       b"Subject: =?utf-8?q?Caf=C3=A9?=\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
       b"Message-ID: <x@y>\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n"
       b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello part one\r\n"
       b"--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
       b"Content-Transfer-Encoding: base64\r\n"
       b"Content-Disposition: attachment; filename=\"a.pdf\"\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n")

BODYSTRUCTURE = (b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 14 0 NIL NIL NIL NIL)'
                 b'("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 12 NIL '
                 b'("attachment" ("filename" "a.pdf")) NIL NIL) "mixed" ("boundary" "b1") NIL NIL NIL)')
ENVELOPE = (b'("Mon, 7 Feb 1994 21:52:25 -0800" "=?utf-8?q?Caf=C3=A9?=" '
            b'(("Alice" NIL "alice" "example.com")) (("Alice" NIL "alice" "example.com")) '
            b'(("Alice" NIL "alice" "example.com")) ((NIL NIL "bob" "example.com")) '
            b'NIL NIL NIL "<x@y>")')


def session(cluster, new_account):
    address, password = new_account()
    m = imaplib.IMAP4("127.0.0.1", cluster.imap_ports[0])
    m.login(address, password)
    return m, address


def test_structure_of_appended_message(cluster, new_account):
    m, _ = session(cluster, new_account)
    m.append("INBOX", None, None, MSG)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODYSTRUCTURE)")
    assert data[0] == b"1 (BODYSTRUCTURE " + BODYSTRUCTURE + b")"
    typ, data = m.fetch("1", "(ENVELOPE)")
    assert data[0] == b"1 (ENVELOPE " + ENVELOPE + b")"
    typ, data = m.fetch("1", "(BODY)")
    assert data[0].startswith(b'1 (BODY (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 14 0)(')
    typ, data = m.fetch("1", "ALL")
    assert b"ENVELOPE " + ENVELOPE in data[0] and b"RFC822.SIZE %d" % len(MSG) in data[0]
    typ, data = m.fetch("1", "FULL")
    assert b" BODY ((" in data[0]
    m.logout()


def test_sections(cluster, new_account):
    m, _ = session(cluster, new_account)
    m.append("INBOX", None, None, MSG)
    m.select("INBOX")
    cases = {
        "BODY.PEEK[1]": b"Hello part one",
        "BODY.PEEK[2]": b"JVBERi0xLjQK",
        "BODY.PEEK[1]<0.5>": b"Hello",
        "BODY.PEEK[1]<6.100>": b"part one",
        "BODY.PEEK[2.MIME]": (b'Content-Type: application/pdf; name="a.pdf"\r\n'
                              b"Content-Transfer-Encoding: base64\r\n"
                              b'Content-Disposition: attachment; filename="a.pdf"\r\n\r\n'),
        "BODY.PEEK[HEADER.FIELDS (From Subject)]":
            b"From: Alice <alice@example.com>\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n\r\n",
        "BODY.PEEK[HEADER.FIELDS.NOT (From To Subject Date Message-ID MIME-Version)]":
            b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n',
        "BODY.PEEK[HEADER.FIELDS (Nope)]": b"\r\n",
    }
    for item, want in cases.items():
        typ, data = m.fetch("1", "(%s)" % item)
        assert typ == "OK", (item, data)
        assert data[0][1] == want, (item, data)
    typ, data = m.fetch("1", "(BODY.PEEK[3])")
    assert data[0] == b"1 (BODY[3] NIL)"
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    m.fetch("1", "(BODY[1])")   # not PEEK: sets \Seen
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        m.fetch("1", "(BODY.PEEK[HEADER.FIELDS From])")   # the list needs parentheses
    m.logout()


def parsed_bodies(cluster, address):
    """(structure stored, search text stored, its From/To/Cc/Bcc/Subject
    columns as SQL's petrel__header_field finds them) per message."""
    fields = " AND ".join(f"t.h_{f} = petrel__header_field(t.headers, '{f}')"
                          for f in ("from", "to", "cc", "bcc", "subject"))
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute(
            f"SELECT b.mime_tree IS NOT NULL, t.blob_id IS NOT NULL, {fields}"
            "  FROM accounts a JOIN messages m ON m.account_id = a.id"
            "  JOIN blobs b ON b.account_id = m.account_id AND b.id = m.blob_id"
            "  LEFT JOIN blob_text t ON t.account_id = b.account_id AND t.blob_id = b.id"
            " WHERE a.address = %s ORDER BY m.mailbox_id, m.uid", (address,))
        return cur.fetchall()


@pytest.mark.parametrize("padding", [0, 700000], ids=["whole", "streamed"])
def test_lmtp_delivered_message_is_parsed_on_arrival(cluster, new_account, padding):
    # A message over one RPC chunk reaches the backend as a stream
    # (petrel_deliver), a small one whole (petrel_deliver_data).
    msg = MSG.replace(b"To: bob@example.com\r\n", b"To: bob@example.com\r\nCc: Carol <c@x.org>\r\n"
                      b"To: =?utf-8?q?D=C3=A9?= <d@x.org>\r\n")
    msg = msg.replace(b"JVBERi0xLjQK\r\n", b"JVBERi0xLjQK\r\n" + (b"QUFB" * 19 + b"\r\n") * (padding // 78))
    m, address = session(cluster, new_account)
    other, other_address = session(cluster, new_account)
    other.logout()
    lmtp = smtplib.LMTP("127.0.0.1", cluster.lmtp_ports[0])
    assert lmtp.sendmail("x@example.com", [address, other_address], msg) == {}
    lmtp.quit()
    # Stored with its parse once the 250 came, before anything read it.
    assert parsed_bodies(cluster, address) == [(True, True, True)]
    assert parsed_bodies(cluster, other_address) == [(True, True, True)]
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODYSTRUCTURE BODY.PEEK[1])")
    if not padding:
        assert BODYSTRUCTURE in data[0][0]
    assert data[0][1] == b"Hello part one"
    typ, data = m.search(None, "BODY", "part")
    assert data == [b"1"]
    m.logout()


def test_large_multipart_part_streams(cluster, new_account):
    m, _ = session(cluster, new_account)
    big = b"x" * 76 + b"\r\n"
    msg = (b"Subject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
           b"--zz\r\nContent-Type: text/plain\r\n\r\nsmall\r\n--zz\r\n"
           b"Content-Type: application/octet-stream\r\n\r\n" + big * 40000 + b"--zz--\r\n")
    m.append("INBOX", None, None, msg)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[2])")
    assert data[0][1] == (big * 40000)[:-2]   # the CRLF before a boundary belongs to it
    m.logout()


def test_unreadable_stored_structure_fails_sections_not_the_body(cluster, new_account):
    """A part tree that no longer decodes is a server fault: BODY[1] and
    BINARY[1] fail with NO, not NIL as if there were no such part, nor a
    BYE; the session goes on, and the whole body, which needs no tree,
    still comes."""
    m, address = session(cluster, new_account)
    m.append("INBOX", None, None, MSG)
    with psycopg2.connect(cluster.pg_url) as db, db.cursor() as cur:
        cur.execute("UPDATE blobs b SET mime_tree = '\\x00ff'::bytea FROM accounts a"
                    " WHERE a.address = %s AND b.account_id = a.id", (address,))
        assert cur.rowcount == 1
    m.select("INBOX")
    for item in ("BODY.PEEK[1]", "BINARY.PEEK[1]", "FLAGS BODY.PEEK[1]"):
        typ, data = m.fetch("1", f"({item})")
        assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE]"), (item, data)
        assert m.noop()[0] == "OK"
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    # imaplib hands over the failed commands' "* 1 FETCH (...)" lines too.
    assert typ == "OK" and [d[1] for d in data if isinstance(d, tuple)] == [MSG], data
    m.logout()
