"""COPY, MOVE, UID EXPUNGE (RFC 9051 6.4.7-6.4.9, RFC 6851, RFC 4315)."""

import imaplib
import re

MSG = b"From: a@example.com\r\nSubject: %d\r\n\r\nbody %d\r\n"


def login(cluster, new_account, frontend=0):
    address, password = new_account()
    m = imaplib.IMAP4("127.0.0.1", cluster.imap_ports[frontend])
    m.login(address, password)
    return m, address, password


def fill(m, n, mailbox="INBOX"):
    for i in range(n):
        typ, _ = m.append(mailbox, None, None, MSG % (i, i))
        assert typ == "OK"


def test_copy_reports_copyuid_and_keeps_flags(cluster, new_account):
    m, _, _ = login(cluster, new_account)
    fill(m, 5)
    m.select("INBOX")
    m.store("2", "+FLAGS", "(\\Flagged $Work)")
    typ, data = m.copy("2:4", "Archive")
    assert typ == "OK"
    code = re.search(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", data[0])
    assert code, data
    assert code.group(2) == b"2:4" and code.group(3) == b"1:3"
    typ, data = m.status("Archive", "(MESSAGES UIDNEXT UIDVALIDITY)")
    assert b"MESSAGES 3" in data[0] and b"UIDNEXT 4" in data[0]
    assert f"UIDVALIDITY {int(code.group(1))}".encode() in data[0]
    m.select("Archive")
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
    assert b"\\Flagged" in data[0][0] and b"$Work" in data[0][0]
    assert data[0][1] == MSG % (1, 1)
    # The source still has all five.
    typ, data = m.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 5" in data[0]
    m.logout()


def test_move_expunges_from_source_with_correct_sequence_numbers(cluster, new_account):
    m, _, _ = login(cluster, new_account)
    fill(m, 6)
    m.select("INBOX")
    typ, data = m._simple_command("MOVE", "2,4", "Trash")
    assert typ == "OK"
    untagged = m.untagged_responses
    assert any(b"COPYUID" in x for x in untagged.get("OK", [])), untagged
    # Message 2 goes first; message 4 has then become 3.
    assert untagged.get("EXPUNGE") == [b"2", b"3"], untagged
    typ, data = m.fetch("1:*", "(UID)")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"1", b"3", b"5", b"6"]
    typ, data = m.status("Trash", "(MESSAGES)")
    assert b"MESSAGES 2" in data[0]
    m.logout()


def test_uid_move_and_uid_copy(cluster, new_account):
    m, _, _ = login(cluster, new_account)
    fill(m, 4)
    m.select("INBOX")
    # imaplib's uid() returns the untagged FETCH data, not the tagged text.
    typ, _ = m.uid("COPY", "3:*", "Drafts")
    assert typ == "OK"
    typ, data = m.uid("MOVE", "1", "Drafts")
    assert typ == "OK"
    typ, data = m.status("Drafts", "(MESSAGES)")
    assert b"MESSAGES 3" in data[0]
    typ, data = m.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 3" in data[0]
    m.logout()


def test_copy_to_missing_mailbox_is_trycreate(cluster, new_account):
    """RFC 9051 6.4.7, RFC 6851 3.3: COPY, MOVE and their UID forms to a
    mailbox that does not exist answer NO [TRYCREATE] and change nothing."""
    m, _, _ = login(cluster, new_account)
    fill(m, 2)
    m.select("INBOX")
    for command, args in (("COPY", ("1", "Nope")), ("MOVE", ("1:*", "Nope")),
                          ("UID", ("COPY", "1:2", "Nope/Child")), ("UID", ("MOVE", "2", "Nope"))):
        typ, data = m._simple_command(command, *args)
        assert typ == "NO" and data[-1].startswith(b"[TRYCREATE]"), (command, args, typ, data)
    typ, data = m.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 2" in data[0]
    assert m.list(pattern="Nope*")[1] == [None]
    assert m.create("Nope")[0] == "OK"
    typ, data = m._simple_command("MOVE", "1", "Nope")
    assert typ == "OK", data
    m.logout()


def test_move_seen_by_other_session_on_other_frontend(cluster, new_account):
    m, address, password = login(cluster, new_account)
    fill(m, 3)
    other = imaplib.IMAP4("127.0.0.1", cluster.imap_ports[1])
    other.login(address, password)
    other.select("INBOX")
    m.select("INBOX")
    m._simple_command("MOVE", "1", "Archive")
    typ, _ = other.noop()
    assert other.untagged_responses.get("EXPUNGE") == [b"1"]
    m.logout()
    other.logout()


def test_uid_expunge_removes_only_named_deleted_messages(cluster, new_account):
    m, _, _ = login(cluster, new_account)
    fill(m, 4)
    m.select("INBOX")
    m.store("1:4", "+FLAGS", "\\Deleted")
    typ, data = m.uid("EXPUNGE", "2:3")
    assert typ == "OK"
    assert m.untagged_responses.get("EXPUNGE") == [b"2", b"2"]
    typ, data = m.fetch("1:*", "(UID)")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"1", b"4"]
    m.logout()


def test_capabilities_advertise_uidplus_move_appendlimit(cluster, new_account):
    m, _, _ = login(cluster, new_account)
    typ, data = m.capability()
    caps = data[0].split()
    assert b"UIDPLUS" in caps and b"MOVE" in caps
    assert any(c.startswith(b"APPENDLIMIT=") for c in caps)
    m.logout()
