"""SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) keeps the result in the
session's "$", which FETCH, STORE, COPY, MOVE, SEARCH, their UID forms and
UID EXPUNGE take wherever a sequence set goes.

The RFC's examples; pipelined commands (a command using "$" sees the result
of the SEARCH before it); SAVE with MIN/MAX (section 2.4); "$" after another
session expunged saved messages; "$" emptied by SELECT, EXAMINE, UNSELECT,
CLOSE and by a failed SEARCH that asked to SAVE.
"""

import re

import pytest

from imap_util import Imap, fetches, status_of


def login(cluster, address, password, frontend=0):
    c = Imap(cluster.imap_ports[frontend])
    c.login(address, password)
    return c


@pytest.fixture
def box(cluster):
    """A fresh account whose INBOX holds 6 messages (UIDs 1-6); odd UIDs
    are \\Flagged; message 5 is from Smith."""
    address, password = cluster.new_account()
    with login(cluster, address, password) as c:
        for i in range(1, 7):
            sender = b"Smith <smith@example.com>" if i == 5 else b"Jones <jones@example.com>"
            msg = (b"From: " + sender + b"\r\nTo: bob@example.com\r\n"
                   b"Subject: m%d\r\n\r\nBody %d.\r\n" % (i, i))
            c.append_uid("INBOX", msg, flags="\\Flagged" if i % 2 else "",
                         date="01-Mar-2004 10:00:00 +0000")
    return address, password


@pytest.fixture
def c(cluster, box):
    with login(cluster, *box) as conn:
        conn.select()
        yield conn


def fetched_uids(c, text):
    untagged = c.ok(text)
    return sorted(int(v["UID"]) for v in fetches(untagged).values())


def search_numbers(untagged):
    lines = [u for u in untagged if u.startswith(b"* SEARCH")]
    assert len(lines) == 1, untagged
    return [int(x) for x in lines[0].split()[2:]]


def test_capability(cluster):
    with Imap(cluster.imap_ports[0]) as c:
        caps = c.ok("CAPABILITY")[0].split()
        assert b"SEARCHRES" in caps and b"ESEARCH" in caps


def test_rfc_example_pipelined_save_then_fetch(c):
    """RFC 5182 examples 1 and 2: SAVE alone answers no ESEARCH, and a
    FETCH $ sent right behind the SEARCH sees its result."""
    c.send(b'A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n'
           b"A283 FETCH $ (UID FLAGS)\r\n")
    untagged, tagged = c.read_until("A282")
    assert status_of(tagged) == b"OK" and untagged == [], (untagged, tagged)
    untagged, tagged = c.read_until("A283")
    assert status_of(tagged) == b"OK", tagged
    got = fetches(untagged)
    assert sorted(got) == [1, 3]   # flagged: 1, 3, 5; 5 is from Smith
    assert sorted(int(v["UID"]) for v in got.values()) == [1, 3]


def test_uid_forms_and_search_of_dollar(c):
    """Example 3 and 4: UID SEARCH ... SAVE, then UID SEARCH UID $ with
    more keys, UID FETCH $ and SEARCH $ by sequence number."""
    untagged = c.ok("UID SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM \"Smith\"")
    assert untagged == []
    assert fetched_uids(c, "UID FETCH $ (FLAGS)") == [1, 2, 3, 4, 6]
    assert search_numbers(c.ok("UID SEARCH UID $ FLAGGED")) == [1, 3]
    assert search_numbers(c.ok("SEARCH $ NOT FLAGGED")) == [2, 4, 6]
    assert search_numbers(c.ok("SEARCH NOT $")) == [5]
    # A later SAVE may use the old "$" and replaces it.
    assert c.ok("SEARCH RETURN (SAVE) $ FLAGGED") == []
    assert fetched_uids(c, "FETCH $ (UID)") == [1, 3]


def test_save_with_other_return_options(c):
    untagged = c.ok("SEARCH RETURN (SAVE ALL) FLAGGED")
    assert len(untagged) == 1 and re.search(rb"\bALL 1,3,5\b", untagged[0]), untagged
    assert fetched_uids(c, "FETCH $ (UID)") == [1, 3, 5]
    untagged = c.ok("SEARCH RETURN (SAVE COUNT) NOT FLAGGED")
    assert re.search(rb"\bCOUNT 3\b", untagged[0]), untagged
    assert fetched_uids(c, "FETCH $ (UID)") == [2, 4, 6]


@pytest.mark.parametrize("options, saved", [
    ("SAVE MIN", [2]),
    ("SAVE MAX", [6]),
    ("SAVE MIN MAX", [2, 6]),
    ("MIN SAVE COUNT", [2, 4, 6]),
    ("SAVE ALL MAX", [2, 4, 6]),
])
def test_save_with_min_max_saves_only_those(c, options, saved):
    """RFC 5182 2.4: SAVE with MIN and/or MAX (and neither ALL nor COUNT)
    saves just the minimum and/or maximum."""
    untagged = c.ok(f"UID SEARCH RETURN ({options}) NOT FLAGGED")
    assert len(untagged) == 1 and untagged[0].startswith(b"* ESEARCH"), untagged
    if "MIN" in options:
        assert b" MIN 2" in untagged[0]
    assert fetched_uids(c, "UID FETCH $ (FLAGS)") == saved


def test_min_max_of_one_message(c):
    c.ok("UID SEARCH RETURN (SAVE MIN MAX) UID 4")
    assert fetched_uids(c, "UID FETCH $ (FLAGS)") == [4]


def test_expunge_by_another_session_shrinks_dollar(cluster, box, c):
    c.ok("UID SEARCH RETURN (SAVE) NOT FLAGGED")   # 2, 4, 6
    with login(cluster, *box, frontend=1) as other:
        other.select()
        other.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
        other.ok("EXPUNGE")
    untagged = c.ok("NOOP")
    assert b"* 4 EXPUNGE" in untagged, untagged
    assert fetched_uids(c, "FETCH $ (UID)") == [2, 6]
    # Sequence numbers moved up: 6 is message 5 now.
    assert sorted(fetches(c.ok("FETCH $ (UID)"))) == [2, 5]


def test_dollar_of_expunged_message_not_yet_reported(cluster, box, c):
    """Until the session hears of the expunge the message is still in its
    map; FETCH $ then answers for what is left, never an error."""
    c.ok("UID SEARCH RETURN (SAVE) UID 2:3")
    with login(cluster, *box, frontend=1) as other:
        other.select()
        other.ok("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        other.ok("EXPUNGE")
    untagged, tagged = c.cmd("UID FETCH $ (FLAGS)")
    assert status_of(tagged) in (b"OK", b"NO"), tagged
    assert 2 in [int(v["UID"]) for v in fetches(untagged).values()]


@pytest.mark.parametrize("reset", ["SELECT INBOX", "EXAMINE INBOX", "UNSELECT", "CLOSE"])
def test_reset_when_the_selection_ends(c, reset):
    c.ok("SEARCH RETURN (SAVE) ALL")
    assert fetched_uids(c, "FETCH $ (UID)") == [1, 2, 3, 4, 5, 6]
    c.ok(reset)
    if reset in ("UNSELECT", "CLOSE"):
        c.select()
    # An empty "$" selects nothing: OK without data (RFC 5182 2.1).
    assert c.ok("FETCH $ (UID)") == []
    assert search_numbers(c.ok("SEARCH $")) == []


@pytest.mark.parametrize("failing", [
    "SEARCH RETURN (SAVE) CHARSET KOI8-X ALL",       # NO [BADCHARSET]
    "SEARCH RETURN (SAVE) NOSUCHKEY",                # BAD
    "SEARCH RETURN (SAVE)",                          # BAD: no criteria
    "UID SEARCH RETURN (SAVE BOGUS) ALL",            # BAD option after SAVE
])
def test_failed_save_empties_dollar(c, failing):
    c.ok("SEARCH RETURN (SAVE) FLAGGED")
    untagged, tagged = c.cmd(failing)
    assert status_of(tagged) in (b"NO", b"BAD"), tagged
    assert c.ok("FETCH $ (UID)") == []


def test_search_without_save_keeps_dollar(c):
    c.ok("SEARCH RETURN (SAVE) FLAGGED")
    c.ok("SEARCH RETURN (ALL) NOT FLAGGED")
    untagged, tagged = c.cmd("SEARCH NOSUCHKEY")
    assert status_of(tagged) == b"BAD"
    assert fetched_uids(c, "FETCH $ (UID)") == [1, 3, 5]


def test_store_copy_move_expunge_with_dollar(cluster, box, c):
    c.ok("CREATE Saved")
    c.ok("UID SEARCH RETURN (SAVE) FLAGGED")   # 1, 3, 5
    untagged = c.ok("STORE $ +FLAGS (\\Seen)")
    assert sorted(fetches(untagged)) == [1, 3, 5]
    untagged, tagged = c.cmd("UID COPY $ Saved")
    assert status_of(tagged) == b"OK" and b"[COPYUID" in tagged and b" 1,3,5 1:3]" in tagged, tagged
    c.ok("SEARCH RETURN (SAVE) UID 1")
    untagged, tagged = c.cmd("MOVE $ Saved")
    assert status_of(tagged) == b"OK", tagged
    assert b"* 1 EXPUNGE" in untagged or any(u.startswith(b"* VANISHED") for u in untagged), untagged
    # After the move, "$" (UID 1) names nothing in this mailbox.
    assert c.ok("FETCH $ (UID)") == []
    c.ok("UID SEARCH RETURN (SAVE) UID 3")
    c.ok("UID STORE $ +FLAGS.SILENT (\\Deleted)")
    c.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    untagged = c.ok("UID EXPUNGE $")
    assert untagged == [b"* 2 EXPUNGE"], untagged   # UID 3 only; 2 stays
    with login(cluster, *box, frontend=1) as other:
        untagged = other.ok("STATUS Saved (MESSAGES)")
        assert b"MESSAGES 4" in untagged[0], untagged
        untagged = other.ok("STATUS INBOX (MESSAGES)")
        assert b"MESSAGES 4" in untagged[0], untagged


def test_dollar_needs_a_selected_mailbox(cluster, box):
    with login(cluster, *box) as c:
        untagged, tagged = c.cmd("FETCH $ (UID)")
        assert status_of(tagged) == b"BAD", tagged


def test_dollar_is_per_session(cluster, box, c):
    c.ok("SEARCH RETURN (SAVE) FLAGGED")
    with login(cluster, *box, frontend=1) as other:
        other.select()
        assert other.ok("FETCH $ (UID)") == []
    assert fetched_uids(c, "FETCH $ (UID)") == [1, 3, 5]
