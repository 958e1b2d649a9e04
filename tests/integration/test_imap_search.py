"""IMAP SEARCH and UID SEARCH (RFC 9051 / RFC 3501 6.4.4), ESEARCH's RETURN
(RFC 4731) and CONDSTORE's MODSEQ key (RFC 7162), run in PostgreSQL.

Every key against a small mailbox of known messages; decoded matching
(RFC 2047 words, quoted-printable and base64 bodies, charsets), case
folding, dates, sizes; sequence numbers against UIDs after an EXPUNGE; a
message delivered by LMTP (parsed on arrival since migration 012);
hostile programs answered BAD with the session going on; and a timing over
10,000 messages.
"""

import smtplib
import time

import psycopg2
import pytest

from imap_util import Imap, quote, status_of

# ---- the mailbox -------------------------------------------------------------

M1 = (b"From: Alice Smith <alice@example.com>\r\n"
      b"To: Bob <bob@example.com>\r\n"
      b"Cc: Carol <carol@example.com>\r\n"
      b"Subject: =?utf-8?q?Caf=C3=A9?= menu\r\n"
      b"Date: Tue, 1 Feb 1994 10:00:00 +0000\r\n"
      b"Message-ID: <m1@example.com>\r\n"
      b"MIME-Version: 1.0\r\n"
      b"Content-Type: text/plain; charset=utf-8\r\n"
      b"Content-Transfer-Encoding: quoted-printable\r\n"
      b"\r\n"
      b"A na=C3=AFve text with UniqueAlpha and a soft=\r\n"
      b"break.\r\n")
M2 = (b"From: =?iso-8859-1?q?J=F6rg?= <joerg@example.org>\r\n"
      b"To: alice@example.com\r\n"
      b"Subject: Quarterly report\r\n"
      b"Date: Sat, 5 Mar 2005 23:30:00 -0800\r\n"
      b"MIME-Version: 1.0\r\n"
      b"Content-Type: text/plain; charset=iso-8859-1\r\n"
      b"Content-Transfer-Encoding: base64\r\n"
      b"\r\n"
      # "The budget is fine, BetaWord here. Grüße." in ISO-8859-1
      b"VGhlIGJ1ZGdldCBpcyBmaW5lLCBCZXRhV29yZCBoZXJlLiBHcvzfZS4=\r\n")
M3 = (b"From: bob@example.com\r\n"
      b"To: dave@example.com\r\n"
      b"Bcc: secret@example.net\r\n"
      b"Subject: hello world\r\n"
      b"X-Custom: Yes-Value\r\n"
      b"\r\n"
      b"gamma\r\n")
M4 = (b"From: Dave <dave@example.com>\r\n"
      b"To: alice@example.com\r\n"
      b"Subject: big\r\n"
      b"Date: 15 Jun 2020 08:00:00 +0200\r\n"
      b"\r\n" + b"x" * 6000 + b" DeltaWord\r\n")
M5 = (b"From: Eve <eve@example.com>\r\n"
      b"To: alice@example.com\r\n"
      b"Subject: 100% sure_thing\r\n"
      b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
      b"MIME-Version: 1.0\r\n"
      b"Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
      b"\r\n"
      b"--alt\r\n"
      b"Content-Type: text/html; charset=utf-8\r\n"
      b"\r\n"
      b"<html><body><p>Epsilon <b>bold</b> words</p></body></html>\r\n"
      b"--alt--\r\n")

# (message, flags, internal date)
MESSAGES = [
    (M1, "\\Seen", "01-Feb-1994 12:00:00 +0000"),
    (M2, "\\Flagged \\Answered $Work", "06-Mar-2005 07:30:00 +0000"),
    (M3, "\\Draft \\Deleted", "10-Oct-2010 10:00:00 +0000"),
    (M4, "", "15-Jun-2020 06:00:00 +0000"),
    (M5, "\\Seen $Later", "01-Jan-2024 00:00:00 +0000"),
]


def login(cluster, address, password):
    c = Imap(cluster.imap_ports[0])
    c.login(address, password)
    return c


@pytest.fixture(scope="module")
def box(cluster):
    """An account with MESSAGES in INBOX (UIDs 1-5); returns (address, password)."""
    address, password = cluster.new_account()
    with login(cluster, address, password) as c:
        for msg, flags, date in MESSAGES:
            c.append_uid("INBOX", msg, flags=flags, date=date)
    return address, password


@pytest.fixture
def c(cluster, box):
    with login(cluster, *box) as conn:
        conn.select()
        yield conn


def search(c, program, uid=False):
    """The numbers of `SEARCH program` (must answer OK) as a list."""
    if isinstance(program, str):
        program = program.encode()
    untagged, tagged = c.cmd((b"UID SEARCH " if uid else b"SEARCH ") + program)
    assert status_of(tagged) == b"OK", (program, tagged)
    lines = [u for u in untagged if u.startswith(b"* SEARCH")]
    assert len(lines) == 1, untagged
    return [int(x) for x in lines[0].split()[2:]]


def search_literal(c, prefix, value, suffix=b""):
    """SEARCH prefix {n} value suffix, with a synchronizing literal."""
    tag = c.tag()
    c.send(f"{tag} SEARCH ".encode() + prefix + b" {%d}\r\n" % len(value))
    cont = c.response()
    assert cont.startswith(b"+"), cont
    c.send(value + suffix + b"\r\n")
    untagged, tagged = c.read_until(tag)
    return untagged, tagged


def bad(c, program):
    untagged, tagged = c.cmd(b"SEARCH " + (program.encode() if isinstance(program, str) else program))
    assert status_of(tagged) == b"BAD", (program, tagged)
    return tagged


# ---- keys ---------------------------------------------------------------------

@pytest.mark.parametrize("program,want", [
    ("ALL", [1, 2, 3, 4, 5]),
    ("SEEN", [1, 5]),
    ("UNSEEN", [2, 3, 4]),
    ("ANSWERED", [2]),
    ("UNANSWERED", [1, 3, 4, 5]),
    ("FLAGGED", [2]),
    ("UNFLAGGED", [1, 3, 4, 5]),
    ("DELETED", [3]),
    ("UNDELETED", [1, 2, 4, 5]),
    ("DRAFT", [3]),
    ("UNDRAFT", [1, 2, 4, 5]),
    ("KEYWORD $Work", [2]),
    ("KEYWORD $work", [2]),
    ("KEYWORD $Nothing", []),
    ("UNKEYWORD $Work", [1, 3, 4, 5]),
    ("KEYWORD \\Seen", [1, 5]),
    ("UNKEYWORD \\Seen", [2, 3, 4]),
    ("NEW", []),
    ("RECENT", []),
    ("OLD", [1, 2, 3, 4, 5]),
    ("seen", [1, 5]),
    ("Flagged", [2]),
])
def test_flag_keys(c, program, want):
    assert search(c, program) == want


@pytest.mark.parametrize("program,want", [
    ("FROM alice", [1]),
    ("FROM ALICE@EXAMPLE.COM", [1]),
    ('FROM "Alice Smith"', [1]),
    ("FROM example.org", [2]),
    ("TO alice", [2, 4, 5]),
    ("TO bob", [1]),
    ("CC carol", [1]),
    ("CC bob", []),
    ("BCC secret", [3]),
    ("SUBJECT report", [2]),
    ("SUBJECT QUARTERLY", [2]),
    ("SUBJECT caf", [1]),
    ("SUBJECT alice", []),
    ("HEADER X-Custom yes-value", [3]),
    ("HEADER x-custom \"\"", [3]),
    ("HEADER Message-ID m1@", [1]),
    ("HEADER Message-ID \"\"", [1]),
    ("HEADER X-Missing \"\"", []),
    ("HEADER Subject menu", [1]),
    ("HEADER Date 2005", [2]),
    ("BODY uniquealpha", [1]),
    ("BODY \"soft break\"", []),
    ("BODY softbreak", [1]),                    # QP soft line break joined
    ("BODY \"budget is fine\"", [2]),           # base64
    ("BODY BETAWORD", [2]),
    ("BODY gamma", [3]),
    ("BODY DeltaWord", [4]),
    ("BODY epsilon", [5]),                      # HTML part, tags dropped
    ("BODY bold", [5]),
    ("BODY alice", []),                         # headers are not body
    ("BODY html", [5]),                         # a part's MIME header is body text
    ("TEXT alice", [1, 2, 4, 5]),
    ("TEXT gamma", [3]),
    ("TEXT \"hello world\"", [3]),
    ("TEXT \"\"", [1, 2, 3, 4, 5]),
    ("SUBJECT \"%\"", [5]),                     # LIKE specials are literal
    ("SUBJECT _", [5]),
    ("SUBJECT \"\\\\\"", []),
    ("SUBJECT \"'; DROP TABLE messages; --\"", []),
    ("BODY \"(^|.*\"", []),
])
def test_string_keys(c, program, want):
    assert search(c, program) == want


def test_encoded_words_and_charsets(c):
    # SUBJECT "café" as UTF-8 in a literal finds =?utf-8?q?Caf=C3=A9?=
    untagged, tagged = search_literal(c, b"CHARSET UTF-8 SUBJECT", "café".encode())
    assert status_of(tagged) == b"OK" and untagged == [b"* SEARCH 1"], (untagged, tagged)
    # ... also upper case (É), and as a quoted UTF-8 string (IMAP4rev2)
    untagged, tagged = search_literal(c, b"CHARSET UTF-8 SUBJECT", "CAFÉ MENU".encode())
    assert untagged == [b"* SEARCH 1"], (untagged, tagged)
    assert search(c, "SUBJECT \"café\"".encode()) == [1]
    # From: =?iso-8859-1?q?J=F6rg?= found as UTF-8 "jörg"
    untagged, tagged = search_literal(c, b"FROM", "JÖRG".encode())
    assert untagged == [b"* SEARCH 2"], (untagged, tagged)
    # the base64 ISO-8859-1 body, converted
    untagged, tagged = search_literal(c, b"CHARSET utf-8 BODY", "grüße".encode())
    assert untagged == [b"* SEARCH 2"], (untagged, tagged)
    untagged, tagged = search_literal(c, b"BODY", "naïve".encode())
    assert untagged == [b"* SEARCH 1"], (untagged, tagged)
    # a literal as the last key, then more keys after it
    untagged, tagged = search_literal(c, b"BODY", b"uniquealpha", b" SEEN")
    assert untagged == [b"* SEARCH 1"], (untagged, tagged)
    assert search(c, "CHARSET US-ASCII FROM alice") == [1]


def test_charset_errors(c):
    _, tagged = c.cmd("SEARCH CHARSET ISO-8859-1 FROM alice")
    assert tagged.split(b" ", 2)[1:] == [b"NO", b"[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset."]
    _, tagged = search_literal(c, b"CHARSET US-ASCII SUBJECT", "café".encode())
    assert status_of(tagged) == b"BAD", tagged
    _, tagged = search_literal(c, b"SUBJECT", b"caf\xe9")          # not UTF-8
    assert status_of(tagged) == b"BAD", tagged
    assert search(c, "ALL") == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("program,want", [
    ("LARGER 5000", [4]),
    ("SMALLER 5000", [1, 2, 3, 5]),
    (f"LARGER {len(M3)}", [1, 2, 4, 5]),
    (f"SMALLER {len(M3)}", []),
    (f"LARGER {len(M3) - 1}", [1, 2, 3, 4, 5]),
    ("LARGER 0", [1, 2, 3, 4, 5]),
    ("LARGER 4294967295", []),
])
def test_size_keys(c, program, want):
    assert search(c, program) == want


@pytest.mark.parametrize("program,want", [
    ("BEFORE 1-Feb-1994", []),
    ("ON 1-Feb-1994", [1]),
    ("ON 01-feb-1994", [1]),
    ('ON "1-Feb-1994"', [1]),
    ("BEFORE 2-Feb-1994", [1]),
    ("SINCE 2-Feb-1994", [2, 3, 4, 5]),
    ("ON 5-Mar-2005", []),                      # INTERNALDATE is 6-Mar-2005 UTC
    ("ON 6-Mar-2005", [2]),
    ("SINCE 10-Oct-2010", [3, 4, 5]),
    ("BEFORE 10-Oct-2010", [1, 2]),
    ("SINCE 1-Jan-2024", [5]),
    ("SENTON 1-Feb-1994", [1]),
    ("SENTON 5-Mar-2005", [2]),                 # the Date: field's own date
    ("SENTON 6-Mar-2005", []),
    ("SENTBEFORE 5-Mar-2005", [1]),
    ("SENTSINCE 5-Mar-2005", [2, 3, 4, 5]),
    ("SENTON 10-Oct-2010", [3]),                # no Date: the INTERNALDATE's
    ("SENTON 15-Jun-2020", [4]),
    ("SENTBEFORE 1-Jan-2024", [1, 2, 3, 4]),
])
def test_date_keys(c, program, want):
    assert search(c, program) == want


@pytest.mark.parametrize("program,want", [
    ("1", [1]),
    ("2,4", [2, 4]),
    ("2:4", [2, 3, 4]),
    ("4:2", [2, 3, 4]),
    ("*", [5]),
    ("3:*", [3, 4, 5]),
    ("1:*", [1, 2, 3, 4, 5]),
    ("9", []),                                  # beyond the mailbox: nothing
    ("UID 2:3", [2, 3]),
    ("UID 4:*", [4, 5]),
    ("UID *", [5]),
    ("UID 100:*", [5]),
    ("UID 6:100", []),
    ("OR FROM alice FROM bob", [1, 3]),
    ("OR OR FROM alice FROM bob FROM dave", [1, 3, 4]),
    ("NOT SEEN", [2, 3, 4]),
    ("NOT NOT SEEN", [1, 5]),
    ("NOT (SEEN FLAGGED)", [1, 2, 3, 4, 5]),
    ("(SEEN TO alice)", [5]),
    ("SEEN TO alice", [5]),
    ("NOT OR SEEN FLAGGED", [3, 4]),
    ("OR (SEEN FROM alice) (UNSEEN LARGER 5000)", [1, 4]),
    ("((((SEEN))))", [1, 5]),
    ("OR SEEN (OR DRAFT (FLAGGED KEYWORD $Work))", [1, 2, 3, 5]),
    ("1:3 NOT 2", [1, 3]),
    ("NOT UID 1:4", [5]),
    ("or seen draft", [1, 3, 5]),
    ("ALL UNDELETED", [1, 2, 4, 5]),
])
def test_sets_and_logic(c, program, want):
    assert search(c, program) == want


def test_esearch(c):
    untagged, tagged = c.cmd("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
    assert status_of(tagged) == b"OK"
    tag = tagged.split()[0].decode()
    assert untagged == [f'* ESEARCH (TAG "{tag}") MIN 2 MAX 4 COUNT 3 ALL 2:4'.encode()]
    untagged, tagged = c.cmd("UID SEARCH RETURN (COUNT) SEEN")
    tag = tagged.split()[0].decode()
    assert untagged == [f'* ESEARCH (TAG "{tag}") UID COUNT 2'.encode()]
    untagged, tagged = c.cmd("SEARCH RETURN () OR SEEN DRAFT")
    tag = tagged.split()[0].decode()
    assert untagged == [f'* ESEARCH (TAG "{tag}") ALL 1,3,5'.encode()]
    untagged, tagged = c.cmd("SEARCH RETURN (MIN MAX ALL COUNT) KEYWORD $Nothing")
    tag = tagged.split()[0].decode()
    assert untagged == [f'* ESEARCH (TAG "{tag}") COUNT 0'.encode()]
    untagged, tagged = c.cmd("SEARCH RETURN (MIN) CHARSET UTF-8 FROM alice")
    tag = tagged.split()[0].decode()
    assert untagged == [f'* ESEARCH (TAG "{tag}") MIN 1'.encode()]
    assert b"ESEARCH" in c.ok("CAPABILITY")[0].split()
    # SAVE (SEARCHRES) answers nothing untagged: test_imap_searchres.py
    untagged, tagged = c.cmd("SEARCH RETURN (SAVE) ALL")
    assert status_of(tagged) == b"OK" and untagged == []
    bad(c, "RETURN (BOGUS) ALL")
    bad(c, "RETURN MIN ALL")


def test_modseq(c):
    untagged, tagged = c.cmd("SEARCH MODSEQ 1")
    assert status_of(tagged) == b"OK"
    assert untagged[0].startswith(b"* SEARCH 1 2 3 4 5 (MODSEQ "), untagged
    top = int(untagged[0].rsplit(b" ", 1)[1].rstrip(b")"))
    assert search(c, f"MODSEQ {top + 1}") == []
    untagged, _ = c.cmd(f'SEARCH MODSEQ "/flags/\\\\draft" all {top}')
    assert untagged[0] == f"* SEARCH 5 (MODSEQ {top})".encode(), untagged
    bad(c, "MODSEQ x")


# ---- numbering, LMTP -----------------------------------------------------------

def test_uid_and_sequence_numbers_after_expunge(cluster, new_account):
    address, password = new_account()
    with login(cluster, address, password) as c:
        for i in range(1, 7):
            c.append_uid("INBOX", b"Subject: n%d\r\n\r\nbody %s\r\n" % (i, b"odd" if i % 2 else b"even"))
        c.select()
        c.ok("STORE 1:2 +FLAGS (\\Deleted)")
        c.ok("EXPUNGE")
        # UIDs 3..6 are now sequence numbers 1..4
        assert search(c, "BODY even") == [2, 4]
        assert search(c, "BODY even", uid=True) == [4, 6]
        assert search(c, "1:2", uid=True) == [3, 4]
        assert search(c, "UID 1:4") == [1, 2]
        assert search(c, "UID 1:4", uid=True) == [3, 4]
        assert search(c, "*", uid=True) == [6]
        untagged, tagged = c.cmd("UID SEARCH RETURN (MIN MAX) ALL")
        assert untagged[0].endswith(b"UID MIN 3 MAX 6"), untagged
        # Another session expunges: this one still numbers by its own map
        # until it learns of it, and leaves out what it has not seen yet.
        with login(cluster, address, password) as other:
            other.select()
            other.ok("STORE 1 +FLAGS (\\Deleted)")
            other.ok("EXPUNGE")
            other.append_uid("INBOX", b"Subject: n7\r\n\r\nbody odd\r\n")
        assert search(c, "BODY odd", uid=True) == [5]
        c.ok("NOOP")
        assert search(c, "BODY odd", uid=True) == [5, 7]
        assert search(c, "BODY odd") == [2, 4]


def test_lmtp_delivered_message_is_found(cluster, new_account):
    address, password = new_account()
    message = (b"From: Zed <zed@example.org>\r\n"
               b"To: " + address.encode() + b"\r\n"
               b"Subject: =?utf-8?b?bGl2ctOpZQ==?= lmtp\r\n"
               b"Date: Wed, 3 Apr 2019 10:00:00 +0000\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n"
               b"\r\n"
               b"Delivered by LMTP, OmegaWord =C3=A0 bient=C3=B4t.\r\n")
    with smtplib.LMTP("127.0.0.1", cluster.lmtp_ports[0], timeout=30) as s:
        assert s.sendmail("zed@example.org", [address], message) == {}
    with login(cluster, address, password) as c:
        c.append_uid("INBOX", b"Subject: appended\r\n\r\nOmegaWord too\r\n")
        c.select()
        assert search(c, "BODY omegaword") == [1, 2]
        assert search(c, "FROM zed") == [1]
        assert search(c, "SENTON 3-Apr-2019") == [1]
        untagged, _ = search_literal(c, b"BODY", "À BIENTÔT".encode())
        assert untagged == [b"* SEARCH 1"], untagged
        assert search(c, "SUBJECT lmtp") == [1]
        # once parsed, it stays parsed; flag searches need no text at all
        assert search(c, "BODY omegaword") == [1, 2]
        assert search(c, "UNSEEN") == [1, 2]


# ---- hostile input ----------------------------------------------------------------

def test_hostile_programs(c):
    # Over a server limit (imap_max_search_keys, imap_max_search_depth):
    # NO [LIMIT] (RFC 5530), and the session goes on.
    for program in [
        "NOT " * 5000 + "SEEN",                     # deep without parentheses
        "OR " * 3000 + "SEEN " * 3001,
        " ".join(["SEEN"] * 10000),                 # 10,000 keys
        " ".join(["FROM a"] * 2000),
    ]:
        _, tagged = c.cmd("SEARCH " + program)
        assert tagged.split(b" ", 3)[1:3] == [b"NO", b"[LIMIT]"], (program[:40], tagged)
    reasons = []
    for program in [
        "(" * 200 + "SEEN" + ")" * 200,             # deeper than the parser allows
        "ON 32-Jan-2020", "ON 1-Foo-2020", "SINCE 2020-01-01", "BEFORE 1-Feb-94",
        "SENTON 29-Feb-2023", "ON", "ON 1-Feb-1994x", "ON 123-Feb-1994",
        "FOO", "OR SEEN", "NOT", "HEADER", "HEADER Subject", "HEADER \"a:b\" x",
        "LARGER abc", "LARGER -1", "LARGER 99999999999999999999", "UID", "UID abc",
        "0", "1:0", "()", "KEYWORD", "KEYWORD (a)", "FROM", "CHARSET",
        "CHARSET UTF-8", "RETURN", ")", "SEEN)", "\"SEEN\"",
    ]:
        tagged = bad(c, program)
        reasons.append(tagged)
        if len(reasons) % 10 == 0:             # stay clear of the too-many-BADs cut-off
            assert search(c, "SEEN") == [1, 5]
    assert all(b"SEARCH" in r or b"Error" in r or b"BAD" in r for r in reasons)
    _, tagged = c.cmd("SEARCH")
    assert status_of(tagged) == b"BAD"
    assert search(c, "SEEN") == [1, 5]
    # a long but legitimate OR chain is fine
    program = "OR " * 99 + " ".join(f"SUBJECT s{i}" for i in range(100))
    assert search(c, program) == []


def test_search_needs_selected_mailbox(cluster, box):
    with login(cluster, *box) as c:
        _, tagged = c.cmd("SEARCH ALL")
        assert status_of(tagged) == b"BAD"
        c.ok("EXAMINE INBOX")
        assert search(c, "ALL") == [1, 2, 3, 4, 5]


def test_empty_mailbox(cluster, new_account):
    address, password = new_account()
    with login(cluster, address, password) as c:
        c.select()
        assert search(c, "ALL") == []
        assert search(c, "1:*") == []
        assert search(c, "UID 1:*") == []
        assert search(c, "BODY x") == []
        untagged, _ = c.cmd("SEARCH RETURN (COUNT MIN) ALL")
        assert untagged[0].endswith(b") COUNT 0"), untagged


# ---- timing --------------------------------------------------------------------------

N_TIMING = 10000


def test_timing_10000(cluster, new_account, capsys):
    """10,000 messages APPENDed (pipelined LITERAL+), then SEARCH UNSEEN and
    SEARCH FROM x; prints the times. A generous bound keeps a slow machine
    from failing it while catching a query that scans far too much."""
    address, password = new_account()
    with login(cluster, address, password) as c:
        t0 = time.monotonic()
        batch = 500
        for start in range(0, N_TIMING, batch):
            tags = []
            out = b""
            for i in range(start, start + batch):
                msg = (b"From: Sender %d <sender%d@example%d.com>\r\n"
                       b"To: you@example.com\r\nSubject: message number %d\r\n"
                       b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n"
                       b"Body of message %d with some words in it.\r\n"
                       % (i % 997, i % 997, i % 13, i, i))
                tag = c.tag()
                tags.append(tag)
                flags = b" (\\Seen)" if i % 10 else b""
                out += tag.encode() + b" APPEND INBOX" + flags + b" {%d+}\r\n" % len(msg) + msg + b"\r\n"
            c.send(out)
            for tag in tags:
                _, tagged = c.read_until(tag)
                assert status_of(tagged) == b"OK", tagged
        t_append = time.monotonic() - t0
        c.select()
        times = {}
        for name, program, n in [("UNSEEN", "UNSEEN", N_TIMING // 10),
                                  ("FROM sender123 (first)", "FROM sender123@", None),
                                  ("FROM sender123", "FROM sender123@", None),
                                  ("FROM example7.com", "FROM example7.com", None),
                                  ("SUBJECT \"number 4242\"", "SUBJECT \"number 4242\"", 1),
                                  ("BODY \"message 4242 \"", "BODY \"message 4242 \"", 1),
                                  ("TEXT sender5", "TEXT sender5", None)]:
            t = time.monotonic()
            got = search(c, program)
            times[name] = (time.monotonic() - t) * 1000
            if n is not None:
                assert len(got) == n, (program, len(got))
        with capsys.disabled():
            print(f"\n  search timing, {N_TIMING} messages (appended in {t_append:.1f} s):")
            for name, ms in times.items():
                print(f"    SEARCH {name}: {ms:.1f} ms")
        assert times["UNSEEN"] < 2000 and times["FROM sender123"] < 2000, times
