"""Client-facing limits as settings: each set low on a cluster of its own
shows its error and that the session goes on (or, for the bad-command
limits, ends as it should); the shared cluster shows the defaults.

IMAP answers a valid command over a server limit with NO [LIMIT] (RFC 5530,
as Dovecot does for its limits); POP3 and LMTP end a session after too many
bad commands; search_text_max (backend) cuts what SEARCH BODY can find.
"""

import re

import pytest

from conftest import _finish, cluster_up
from imap_util import Imap, Lines, make_message, status_of

FRONTEND_CONF = "; ".join([
    "imap_max_fetch_items = 3",
    "imap_max_search_keys = 5",
    "imap_max_search_depth = 3",
    "imap_max_search_string = 10",
    "imap_max_set_ranges = 4",
    "imap_max_bad_commands = 3",
    "imap_max_line_preauth = 600",
    "pop3_max_bad_commands = 2",
    "pop3_max_auth_failures = 2",
    "lmtp_max_bad_commands = 2",
])
BACKEND_CONF = "search_text_max = 1024"


@pytest.fixture(scope="module")
def small(request):
    """One cluster with every limit set low, shared by this module."""
    failed_before = request.session.testsfailed
    c = cluster_up(1, 1, prefix="limits-", env={
        "PETREL_CLUSTER_FRONTEND_CONF": FRONTEND_CONF,
        "PETREL_CLUSTER_BACKEND_CONF": BACKEND_CONF})
    try:
        yield c
    finally:
        _finish(request, c, failed_before)


def session(c, messages=0):
    """A logged-in IMAP session on c with INBOX selected and messages in it."""
    address, password = c.new_account()
    imap = Imap(c.imap_ports[0]).login(address, password)
    for i in range(messages):
        imap.append_uid("INBOX", make_message(subject=f"m{i}"))
    imap.select("INBOX")
    return imap


def limited(tagged):
    """The text of a NO [LIMIT] answer; fails on anything else."""
    assert re.match(rb"\S+ NO \[LIMIT\] ", tagged), tagged
    return tagged.split(b"] ", 1)[1]


def still_works(imap):
    assert status_of(imap.cmd("NOOP")[1]) == b"OK"


# ---- imap_max_fetch_items ------------------------------------------------------

def test_fetch_items_over_the_setting_get_no_limit(small):
    with session(small, 1) as imap:
        assert imap.fetch("1", "(FLAGS UID RFC822.SIZE)")[1].keys() >= {"FLAGS", "UID"}
        assert limited(imap.cmd("FETCH 1 (FLAGS UID RFC822.SIZE INTERNALDATE)")[1]) == \
            b"Too many FETCH items (at most 3)."
        # ALL stands for four items, FAST for three.
        limited(imap.cmd("FETCH 1 ALL")[1])
        assert "INTERNALDATE" in imap.fetch("1", "FAST")[1]
        # The items the server adds itself (UID, FLAGS) do not count.
        got = imap.fetch("1", "(RFC822.SIZE INTERNALDATE BODY[])", uid=True)
        assert {"UID", "FLAGS", "BODY[]"} <= got[1].keys()
        still_works(imap)


def test_fetch_items_default_is_64(cluster):
    with session(cluster, 1) as imap:
        assert "FLAGS" in imap.fetch("1", "(" + " ".join(["FLAGS"] * 64) + ")")[1]
        limited(imap.cmd("FETCH 1 (" + " ".join(["FLAGS"] * 65) + ")")[1])
        still_works(imap)


# ---- imap_max_search_keys, imap_max_search_depth -----------------------------

def test_search_keys_over_the_setting_get_no_limit(small):
    with session(small, 2) as imap:
        untagged, tagged = imap.cmd("SEARCH ALL ALL ALL ALL ALL")
        assert status_of(tagged) == b"OK" and untagged == [b"* SEARCH 1 2"]
        assert limited(imap.cmd("SEARCH ALL ALL ALL ALL ALL ALL")[1]) == \
            b"Too many search keys (at most 5)."
        # A parenthesis and OR are keys too.
        limited(imap.cmd("SEARCH (OR ALL ALL) (ALL ALL)")[1])
        still_works(imap)


def test_search_nesting_over_the_setting_gets_no_limit(small):
    with session(small, 1) as imap:
        # NOT and OR nest without a parenthesis: imap_max_depth does not see them.
        assert status_of(imap.cmd("SEARCH NOT NOT NOT ALL")[1]) == b"OK"
        assert limited(imap.cmd("SEARCH NOT NOT NOT NOT ALL")[1]) == \
            b"Search keys nested too deeply (at most 3)."
        limited(imap.cmd("SEARCH ((((ALL))))")[1])
        still_works(imap)


def test_search_string_over_the_setting_gets_no_limit(small):
    with session(small, 1) as imap:
        assert status_of(imap.cmd('SEARCH BODY "0123456789"')[1]) == b"OK"
        assert limited(imap.cmd('SEARCH BODY "0123456789a"')[1]) == \
            b"Search string too long (at most 10)."
        limited(imap.cmd('SEARCH HEADER "X-Very-Long-Name" x')[1])
        still_works(imap)


def test_search_limits_defaults(cluster):
    with session(cluster, 1) as imap:
        assert status_of(imap.cmd("SEARCH " + " ".join(["ALL"] * 1000))[1]) == b"OK"
        limited(imap.cmd("SEARCH " + " ".join(["ALL"] * 1001))[1])
        assert status_of(imap.cmd("SEARCH " + "NOT " * 256 + "ALL")[1]) == b"OK"
        limited(imap.cmd("SEARCH " + "NOT " * 257 + "ALL")[1])
        assert status_of(imap.cmd(f'SEARCH BODY "{"x" * 16384}"')[1]) == b"OK"
        limited(imap.cmd(f'SEARCH BODY "{"x" * 16385}"')[1])
        still_works(imap)


# ---- imap_max_set_ranges ---------------------------------------------------------

def test_set_ranges_over_the_setting_get_no_limit(small):
    with session(small, 3) as imap:
        assert set(imap.fetch("1:3,5,7,9", "FLAGS", uid=True)) == {1, 2, 3}
        over = "1,3,5,7,9"
        for command in (f"UID FETCH {over} FLAGS", f"UID STORE {over} +FLAGS (\\Seen)",
                        f"UID COPY {over} INBOX", f"UID MOVE {over} INBOX",
                        f"UID EXPUNGE {over}", f"UID SEARCH UID {over}",
                        "FETCH 1,2,3,1,2 FLAGS"):
            assert limited(imap.cmd(command)[1]) == \
                b"Too many ranges in sequence set (at most 4).", command
        # SEARCH counts the ranges of all its sets together.
        assert status_of(imap.cmd("UID SEARCH UID 1,3 UID 5,7")[1]) == b"OK"
        limited(imap.cmd("UID SEARCH UID 1,3 UID 5,7,9")[1])
        still_works(imap)
        # QRESYNC known-uids: the same setting.
        imap.ok("ENABLE QRESYNC")
        uv = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(imap.select())).group(1))
        limited(imap.cmd(f"SELECT INBOX (QRESYNC ({uv} 1 {over}))")[1])
        imap.ok(f"SELECT INBOX (QRESYNC ({uv} 1 1,3,5,7))")


# ---- imap_max_bad_commands --------------------------------------------------------

def test_bad_commands_in_a_row_end_the_session(small):
    with session(small) as imap:
        for _ in range(2):
            assert status_of(imap.cmd("FOO")[1]) == b"BAD"
        still_works(imap)   # a good answer starts the count again
        for _ in range(2):
            assert status_of(imap.cmd("FOO")[1]) == b"BAD"
        tag = imap.tag()
        imap.send(f"{tag} FOO\r\n")
        assert imap.line().startswith(f"{tag} BAD".encode())
        assert imap.line() == b"* BYE Too many invalid commands."
        assert imap.eof()


# ---- imap_max_line_preauth bounds a SASL response line too ---------------

def test_sasl_response_over_the_preauth_line_limit_gets_bad(small):
    address, password = small.new_account()
    with Imap(small.imap_ports[0]) as imap:
        tag = imap.tag()
        imap.send(f"{tag} AUTHENTICATE PLAIN\r\n")
        assert imap.line().startswith(b"+")
        imap.send(b"A" * 700 + b"\r\n")
        _, tagged = imap.read_until(tag)
        assert tagged == f"{tag} BAD Authentication response too long.".encode()
        imap.login(address, password)   # the session goes on
        still_works(imap)


# ---- POP3 and LMTP --------------------------------------------------------------

def test_pop3_bad_commands_end_the_session(small):
    p = Lines(small.pop3_ports[0])
    try:
        assert p.cmd("CAPA").startswith(b"+OK")
        while p.line() != b".":
            pass
        assert p.cmd("FOO") == b"-ERR Unknown command."
        assert p.cmd("CAPA").startswith(b"+OK")   # the session goes on
        while p.line() != b".":
            pass
        assert p.cmd("FOO") == b"-ERR Unknown command."
        assert p.line() == b"-ERR Too many bad commands."
        assert p.closed()
    finally:
        p.close()


def test_pop3_auth_failures_end_the_session(small):
    address, password = small.new_account()
    p = Lines(small.pop3_ports[0])
    try:
        assert p.cmd(f"USER {address}").startswith(b"+OK")
        assert p.cmd("PASS wrong").startswith(b"-ERR [AUTH]")
        assert p.cmd(f"USER {address}").startswith(b"+OK")   # one more try
        assert p.cmd("PASS wrong").startswith(b"-ERR [AUTH]")
        assert p.line() == b"-ERR Too many authentication failures."
        assert p.closed()
    finally:
        p.close()


def test_lmtp_bad_commands_end_the_session(small):
    c = Lines(small.lmtp_ports[0])
    try:
        line = c.cmd("LHLO client.example")
        while line.startswith(b"250-"):
            line = c.line()
        assert line.startswith(b"250 "), line
        assert c.cmd("FOO").startswith(b"500 5.5.1")
        assert c.cmd("NOOP").startswith(b"250")   # the session goes on
        assert c.cmd("FOO").startswith(b"500 5.5.1")
        assert c.line().startswith(b"421 4.7.0 ")
        assert c.closed()
    finally:
        c.close()


# ---- search_text_max (backend) ------------------------------------------------

def text_message():
    body = b"earlyword\r\n" + b"filler text line\r\n" * 200 + b"lateword\r\n"
    return make_message(subject="long", body=body)


def test_search_text_beyond_the_setting_is_not_found(small):
    with session(small) as imap:
        imap.append_uid("INBOX", text_message())
        imap.select("INBOX")
        assert imap.ok("SEARCH BODY earlyword") == [b"* SEARCH 1"]
        assert imap.ok("SEARCH BODY lateword") == [b"* SEARCH"]
        assert imap.ok("SEARCH SUBJECT long") == [b"* SEARCH 1"]


def test_search_text_default_finds_both(cluster):
    with session(cluster) as imap:
        imap.append_uid("INBOX", text_message())
        imap.select("INBOX")
        assert imap.ok("SEARCH BODY lateword") == [b"* SEARCH 1"]
