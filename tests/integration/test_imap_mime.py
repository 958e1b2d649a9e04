"""FETCH of the parsed structure: ENVELOPE, BODYSTRUCTURE, BODY, the macros,
and BODY[section] by part number, MIME, HEADER.FIELDS[.NOT], partials; for
messages APPENDed (parsed on arrival) and delivered by LMTP (parsed on first
need)."""

import imaplib
import smtplib

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


def test_lmtp_delivered_message_is_parsed_on_first_fetch(cluster, new_account):
    m, address = session(cluster, new_account)
    lmtp = smtplib.LMTP("127.0.0.1", cluster.lmtp_ports[0])
    assert lmtp.sendmail("x@example.com", [address], MSG) == {}
    lmtp.quit()
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODYSTRUCTURE BODY.PEEK[1])")
    assert BODYSTRUCTURE in data[0][0]
    assert data[0][1] == b"Hello part one"
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
