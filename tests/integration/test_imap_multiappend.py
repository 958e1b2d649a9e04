"""MULTIAPPEND (RFC 3502): one APPEND, several messages, all or none.

Three messages with flags and dates (APPENDUID with a UID set, RFC 4315)
read back from the other frontend; synchronizing and LITERAL+ literals
mixed; a repeated body; refusals midway (an empty literal, one over
APPENDLIMIT, a bad date or flag list, data after the last literal, a
missing mailbox, too many messages) and clients that vanish midway: in
every such case nothing at all is stored, as seen from another session.
Three 20 MB messages stream through a cluster of its own while the peak
memory of its frontend and backend workers is watched.
"""

import base64
import hashlib
import re
import threading
import time
from pathlib import Path

import pytest

from conftest import BIN, _finish, cluster_up
from imap_util import Imap, crlf_lines, fetches, make_message, pop3_view, quote, status_of

APPEND_LIMIT = 52428800   # append_limit default


def login(cluster, address, password, frontend=0):
    c = Imap(cluster.imap_ports[frontend])
    c.login(address, password)
    return c


@pytest.fixture
def account(cluster):
    return cluster.new_account()


def send_multiappend(c, mailbox, messages, tag="M1", end=b"\r\n"):
    """Sends APPEND mailbox with messages, each a dict with body and
    optionally flags, date, nonsync. Returns None once all is sent, or the
    response that refused a synchronizing literal instead of "+"."""
    out = f"{tag} APPEND {quote(mailbox)}".encode()
    for m in messages:
        if m.get("flags") is not None:
            out += f" ({m['flags']})".encode()
        if m.get("date") is not None:
            out += f' "{m["date"]}"'.encode()
        out += b" {%d%s}\r\n" % (len(m["body"]), b"+" if m.get("nonsync") else b"")
        if not m.get("nonsync"):
            c.send(out)
            cont = c.response()
            if not cont.startswith(b"+"):
                return cont
            out = b""
        out += m["body"]
    c.send(out + end)
    return None


def multiappend(c, mailbox, messages, tag="M1"):
    refused = send_multiappend(c, mailbox, messages, tag)
    if refused is not None:
        return [], refused
    return c.read_until(tag)


def count(cluster, account, mailbox="INBOX"):
    """MESSAGES of mailbox, asked on the last frontend."""
    with login(cluster, *account, frontend=len(cluster.imap_ports) - 1) as c:
        untagged = c.ok(f"STATUS {quote(mailbox)} (MESSAGES)")
        return int(re.search(rb"MESSAGES (\d+)", untagged[0]).group(1))


def test_capability(cluster):
    with Imap(cluster.imap_ports[0]) as c:
        assert b"MULTIAPPEND" in c.ok("CAPABILITY")[0].split()


def test_three_messages_with_appenduid_set(cluster, account):
    msgs = [
        {"body": make_message("one"), "flags": "\\Seen", "date": "01-Feb-2020 10:00:00 +0100"},
        {"body": make_message("two", b"x" * 300000), "flags": "\\Flagged $Work"},
        {"body": make_message("three"), "date": "05-Mar-2021 23:59:59 -0800"},
    ]
    with login(cluster, *account) as c:
        untagged, tagged = multiappend(c, "INBOX", msgs)
        m = re.match(rb"M1 OK \[APPENDUID (\d+) (\d+):(\d+)\] ", tagged)
        assert m, tagged
        uidvalidity, first, last = (int(x) for x in m.groups())
        assert last == first + 2
    with login(cluster, *account, frontend=1) as c:
        assert b"* 3 EXISTS" in c.select()
        got = c.fetch("1:3", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        assert [got[i]["UID"] for i in (1, 2, 3)] == [first, first + 1, first + 2]
        for i, msg in enumerate(msgs, 1):
            assert got[i]["BODY[]"] == msg["body"]
        assert got[1]["FLAGS"] == [b"\\Seen"]
        assert sorted(got[2]["FLAGS"]) == [b"$Work", b"\\Flagged"]
        assert got[1]["INTERNALDATE"] == b"01-Feb-2020 10:00:00 +0100"
        assert got[3]["INTERNALDATE"] == b"05-Mar-2021 23:59:59 -0800"
        untagged = c.ok("STATUS INBOX (UIDVALIDITY)")
        assert b"UIDVALIDITY %d" % uidvalidity in untagged[0]


def test_sync_and_nonsync_literals_mixed(cluster, account):
    bodies = [make_message(f"m{i}", b"line\r\n" * (i * 20000)) for i in range(5)]
    msgs = [{"body": b, "nonsync": i % 2 == 1} for i, b in enumerate(bodies)]
    msgs[2]["flags"] = ""   # an empty flag list is fine
    with login(cluster, *account) as c:
        _, tagged = multiappend(c, "INBOX", msgs)
        assert re.match(rb"M1 OK \[APPENDUID \d+ 1:5\] ", tagged), tagged
        c.select()
        got = c.fetch("1:5", "(BODY.PEEK[])")
        assert [got[i]["BODY[]"] for i in range(1, 6)] == bodies
        c.ok("NOOP")   # the session reads on normally


def test_line_ends_made_crlf(cluster, account):
    """Each message of a MULTIAPPEND gets CRLF lines as Dovecot gives them
    (backend/crlf_norm.h), one of several chunks too: RFC822.SIZE, BODY[],
    the BODYSTRUCTURE line count and POP3 LIST/RETR agree. (Chunk edges
    between CR and LF: test_imap.py, test_append_chunk_edges_change_nothing.)"""
    bodies = [
        b"Subject: bare LF\n\none\ntwo\n",
        b"Subject: CR CR LF\r\r\n\r\nlone\rCR\r\r\nthree\r\r\r\nend\r\n",
        b"Subject: streamed\n\n" + b"bare LF\nCR CR LF\r\r\nlone\rCR\r\n" * 20000,
        make_message("already CRLF"),
    ]
    with login(cluster, *account) as c:
        _, tagged = multiappend(c, "INBOX", [{"body": b} for b in bodies])
        assert re.match(rb"M1 OK \[APPENDUID \d+ 1:4\] ", tagged), tagged
    with login(cluster, *account, frontend=1) as c:
        c.select()
        got = c.fetch("1:4", "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE)")
    pop = pop3_view(cluster.pop3_ports[0], *account)
    for i, body in enumerate(bodies, 1):
        want = crlf_lines(body)
        text = want.split(b"\r\n\r\n", 1)[1]
        assert got[i]["BODY[]"] == want, i
        assert got[i]["RFC822.SIZE"] == len(want)
        assert got[i]["BODYSTRUCTURE"][6:8] == [b"%d" % len(text), b"%d" % text.count(b"\n")]
        assert pop[i] == (len(want), len(want), want)


def test_repeated_bodies(cluster, account):
    same = make_message("same", b"twice\r\n")
    msgs = [{"body": same}, {"body": same, "flags": "\\Draft"}]
    with login(cluster, *account) as c:
        _, tagged = multiappend(c, "INBOX", msgs)
        assert status_of(tagged) == b"OK", tagged
        c.select()
        got = c.fetch("1:2", "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE)")
        assert [got[i]["RFC822.SIZE"] for i in (1, 2)] == [len(same), len(same)]
        assert got[1]["BODY[]"] == same and got[2]["BODY[]"] == same
        assert got[1]["BODYSTRUCTURE"] == got[2]["BODYSTRUCTURE"]
        untagged, tagged = c.cmd("SEARCH BODY twice")
        assert status_of(tagged) == b"OK" and untagged == [b"* SEARCH 1 2"], untagged


@pytest.mark.parametrize("nonsync", [False, True])
def test_an_empty_message_midway_stores_nothing(cluster, account, nonsync):
    """As a lone APPEND of an empty message: NO, and the messages before it,
    streamed already, are not stored either."""
    first = make_message("first", b"x" * 100000)
    msgs = [{"body": first, "nonsync": nonsync}, {"body": b"", "nonsync": nonsync},
            {"body": first, "nonsync": nonsync}]
    with login(cluster, *account) as c:
        untagged, tagged = multiappend(c, "INBOX", msgs)
        refusal = tagged if not untagged else untagged[0]
        assert re.match(rb"M1 NO \[CANNOT\]", refusal), (untagged, tagged)
        c.ok("NOOP")
    assert count(cluster, account) == 0


def test_utf8_messages_in_a_multiappend(cluster, account):
    """RFC 6855 UTF8 (~{n}...) messages mixed with plain ones; each wrapper's
    ")" comes right after its data, before the next message."""
    one = make_message("Gr\u00fc\u00dfe", body="eins\r\n".encode())
    two = make_message("plain")
    three = make_message("\u00e9t\u00e9", body="drei\r\n".encode())
    with login(cluster, *account) as c:
        c.ok("ENABLE UTF8=ACCEPT")
        c.send(b"M1 APPEND INBOX (\\Seen) UTF8 (~{%d}\r\n" % len(one))
        assert c.response().startswith(b"+")
        c.send(one + b") {%d+}\r\n" % len(two) + two + b" UTF8 (~{%d}\r\n" % len(three))
        assert c.response().startswith(b"+")
        c.send(three + b")\r\n")
        _, tagged = c.read_until("M1")
        assert re.match(rb"M1 OK \[APPENDUID \d+ 1:3\] ", tagged), tagged
        # A UTF8 wrapper left open before the next message: nothing stored.
        c.send(b"M2 APPEND INBOX UTF8 (~{%d+}\r\n" % len(one) + one + b" {3+}\r\nabc\r\n")
        _, tagged = c.read_until("M2")
        assert status_of(tagged) == b"BAD", tagged
        c.select()
        got = c.fetch("1:*", "(FLAGS BODY.PEEK[])")
        assert [got[i]["BODY[]"] for i in sorted(got)] == [one, two, three]
        assert got[1]["FLAGS"] == [b"\\Seen"]


def test_threads_and_ids_of_streamed_messages(cluster, account):
    """A message and its reply in one MULTIAPPEND (the reply big enough to
    stream) share a THREADID; each gets its own EMAILID."""
    parent = b"From: a@example.com\r\nSubject: parent\r\nMessage-ID: <p1@example.com>\r\n\r\nHi.\r\n"
    reply = (b"From: b@example.com\r\nSubject: Re: parent\r\nMessage-ID: <r1@example.com>\r\n"
             b"In-Reply-To: <p1@example.com>\r\nReferences: <p1@example.com>\r\n\r\n" + b"r" * 400000)
    other = b"From: c@example.com\r\nSubject: other\r\nMessage-ID: <o1@example.com>\r\n\r\nX.\r\n"
    with login(cluster, *account) as c:
        _, tagged = multiappend(c, "INBOX", [{"body": parent}, {"body": reply}, {"body": other}])
        assert status_of(tagged) == b"OK", tagged
        c.select()
        got = c.fetch("1:3", "(EMAILID THREADID)")
        ids = [(got[i]["EMAILID"][0], got[i]["THREADID"][0]) for i in (1, 2, 3)]
        assert len({e for e, _ in ids}) == 3, ids
        assert ids[0][1] == ids[1][1] != ids[2][1], ids


def test_appending_to_the_selected_mailbox_reports_exists(cluster, account):
    with login(cluster, *account) as c:
        c.select()
        untagged, tagged = multiappend(c, "INBOX", [{"body": make_message(f"s{i}")} for i in range(3)])
        assert status_of(tagged) == b"OK", tagged
        assert b"* 3 EXISTS" in untagged, untagged


def test_literal_over_appendlimit_stores_nothing(cluster, account):
    with login(cluster, *account) as c:
        c.send(b"M1 APPEND INBOX {5}\r\n")
        assert c.response().startswith(b"+")
        c.send(b"hello {%d}\r\n" % (APPEND_LIMIT + 1))
        tagged = c.response()
        assert re.match(rb"M1 NO \[TOOBIG\]", tagged), tagged
        c.ok("NOOP")
        # The same after a big first message that was streaming already.
        big = make_message("big", b"z" * 1000000)
        refused = send_multiappend(c, "INBOX", [{"body": big}, {"body": b"x" * (APPEND_LIMIT + 1)}],
                                   tag="M2")
        assert re.match(rb"M2 NO \[TOOBIG\]", refused), refused
        c.ok("NOOP")
    assert count(cluster, account) == 0


def test_nonsync_literal_over_appendlimit_ends_the_session(cluster, account):
    with login(cluster, *account) as c:
        c.send(b"M1 APPEND INBOX {5+}\r\nhello {%d+}\r\n" % (APPEND_LIMIT + 1))
        assert c.eof(), "the session stays open after an unreadable literal"
    assert count(cluster, account) == 0


@pytest.mark.parametrize("second", [
    {"body": b"x", "date": "31-Foo-2020 10:00:00 +0000"},
    {"body": b"x", "flags": "\\Bogus"},
    {"body": b"x", "flags": "\\Seen", "date": "not a date"},
])
def test_bad_arguments_midway_store_nothing(cluster, account, second):
    msgs = [{"body": make_message("first")}, second, {"body": make_message("third")}]
    with login(cluster, *account) as c:
        refused = send_multiappend(c, "INBOX", msgs)
        assert refused is not None and status_of(refused) == b"BAD", refused
        c.ok("NOOP")
    assert count(cluster, account) == 0


def test_bad_arguments_in_a_nonsync_run_store_nothing(cluster, account):
    """The client sends everything unasked; the refusal comes once and the
    rest of the command is skipped."""
    with login(cluster, *account) as c:
        c.send(b"M1 APPEND INBOX {3+}\r\none (\\Nope) {3+}\r\ntwo {5+}\r\nthree\r\n"
               b"M2 NOOP\r\n")
        untagged, tagged = c.read_until("M2")
        assert [status_of(r) for r in untagged] == [b"BAD"], untagged
        assert status_of(tagged) == b"OK"
    assert count(cluster, account) == 0


def test_data_after_the_last_literal_stores_nothing(cluster, account):
    with login(cluster, *account) as c:
        # a flag list after the last message, with no literal after it
        c.send(b"M1 APPEND INBOX {3+}\r\none {3+}\r\ntwo (\\Seen)\r\n")
        _, tagged = c.read_until("M1")
        assert status_of(tagged) == b"BAD", tagged
        c.ok("NOOP")
    assert count(cluster, account) == 0


def test_missing_mailbox_is_trycreate(cluster, account):
    with login(cluster, *account) as c:
        _, tagged = multiappend(c, "Nowhere", [{"body": make_message("a")}, {"body": make_message("b")}])
        assert re.match(rb"M1 NO \[TRYCREATE\]", tagged), tagged
        c.ok("CREATE Somewhere")
        _, tagged = multiappend(c, "Somewhere", [{"body": make_message("a")}, {"body": make_message("b")}])
        assert status_of(tagged) == b"OK", tagged
    assert count(cluster, account, "Somewhere") == 2


@pytest.mark.parametrize("nonsync", [False, True])
def test_missing_mailbox_is_trycreate_after_streamed_literals(cluster, account, nonsync):
    """Big messages stream to the backend as they arrive, before it knows
    the command is complete; the missing mailbox still comes out as
    NO [TRYCREATE] (RFC 3502 6, RFC 3501 6.3.11) once the command ends, and
    the session goes on."""
    big = make_message("big", (b"z" * 76 + b"\r\n") * 8000)   # 624 KB: several chunks
    with login(cluster, *account) as c:
        msgs = [{"body": big, "nonsync": nonsync}, {"body": make_message("small"), "nonsync": nonsync},
                {"body": big, "nonsync": nonsync}]
        _, tagged = multiappend(c, "Nowhere/Deep", msgs)
        assert re.match(rb"M1 NO \[TRYCREATE\]", tagged), tagged
        c.ok("NOOP")
        assert not [r for r in c.ok('LIST "" "Nowhere*"') if r.startswith(b"* LIST")]


@pytest.mark.parametrize("cut", ["in the second literal", "before the final CRLF",
                                 "after a nonsync run"])
def test_disconnect_midway_stores_nothing(cluster, account, cut):
    first = make_message("first", b"f" * 400000)
    second = make_message("second", b"s" * 700000)
    with login(cluster, *account) as c:
        if cut == "in the second literal":
            assert send_multiappend(c, "INBOX", [{"body": first}], end=b"") is None
            c.send(b" {%d}\r\n" % len(second))
            assert c.response().startswith(b"+")
            c.send(second[:len(second) // 2])
        elif cut == "before the final CRLF":
            assert send_multiappend(c, "INBOX", [{"body": first}, {"body": second}], end=b"") is None
        else:
            c.send(b"M1 APPEND INBOX {%d+}\r\n" % len(first) + first +
                   b" {%d+}\r\n" % len(second) + second + b" (\\Seen) {3+}\r\nab")
        time.sleep(0.5)
    time.sleep(0.5)
    assert count(cluster, account) == 0
    with login(cluster, *account) as c:   # the mailbox still works
        _, tagged = multiappend(c, "INBOX", [{"body": first}, {"body": second}])
        assert status_of(tagged) == b"OK", tagged
    assert count(cluster, account) == 2


def test_mailbox_deleted_midway_stores_nothing(cluster, account):
    with login(cluster, *account) as c:
        c.ok("CREATE Doomed")
        first = make_message("first", b"d" * 600000)
        assert send_multiappend(c, "Doomed", [{"body": first}], end=b"") is None
        with login(cluster, *account, frontend=1) as other:
            other.ok("DELETE Doomed")
        c.send(b" {5}\r\n")
        assert c.response().startswith(b"+")
        c.send(b"hello\r\n")
        _, tagged = c.read_until("M1")
        assert re.match(rb"M1 NO \[TRYCREATE\]", tagged), tagged
        c.ok("CREATE Doomed")
    assert count(cluster, account, "Doomed") == 0


def test_disconnect_after_the_whole_command_stores_all_or_nothing(cluster, account):
    msgs = [{"body": make_message(f"gone{i}", b"g" * 50000), "nonsync": True} for i in range(3)]
    with login(cluster, *account) as c:
        assert send_multiappend(c, "INBOX", msgs) is None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and count(cluster, account) == 0:
        time.sleep(0.2)
    assert count(cluster, account) in (0, 3)


# ---- a cluster of its own: limits and memory -------------------------------------

def worker_pids(supervisors):
    sup = set(supervisors)
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) in sup:
            pids.append(int(d.name))
    return pids


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssWatch(threading.Thread):
    """Samples the resident size of pids every 20 ms until stopped; growth()
    is each one's largest sample minus its size at the start. (VmHWM would
    not do: a login's password hash (yescrypt) peaks far higher first.)"""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.base = {pid: rss_kb(pid) for pid in pids}
        self.peak = dict(self.base)
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.02):
            for pid in self.peak:
                self.peak[pid] = max(self.peak[pid], rss_kb(pid))

    def growth(self):
        self.done.set()
        self.join()
        return {pid: self.peak[pid] - self.base[pid] for pid in self.peak}


def attachment_message(n, size):
    """A message of about size bytes, nearly all of it a base64 attachment
    (not text, so no search text is collected from it)."""
    raw = hashlib.sha256(b"%d" % n).digest() * (size * 3 // 4 // 32)
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return (b"From: a@example.com\r\nSubject: attachment %d\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" % n + b64 + b"--b--\r\n")


@pytest.fixture(scope="module")
def small(request):
    """One frontend and one backend; the backend takes at most 4 messages per
    APPEND and 25 MB per message (less than APPENDLIMIT, which the frontend
    checks). Stopped at the end of the module."""
    failed_before = request.session.testsfailed
    c = cluster_up(1, 1, prefix="multiappend-",
                   env={"PETREL_CLUSTER_BACKEND_CONF":
                        "append_max_messages = 4; max_message_size = 26214400"})
    yield c
    _finish(request, c, failed_before)


def test_too_many_messages_store_nothing(small):
    account = small.new_account()
    with login(small, *account) as c:
        msgs = [{"body": make_message(f"n{i}"), "nonsync": True} for i in range(5)]
        _, tagged = multiappend(c, "INBOX", msgs)
        assert status_of(tagged) == b"NO" and b"Too many messages" in tagged, tagged
        c.ok("NOOP")
        _, tagged = multiappend(c, "INBOX", msgs[:4])
        assert re.match(rb"M1 OK \[APPENDUID \d+ 1:4\] ", tagged), tagged


@pytest.mark.parametrize("nonsync", [False, True])
def test_backend_refusal_midway_answers_at_once(small, nonsync):
    """The backend refuses the second message (over its max_message_size)
    while the client is still sending: the data is dropped, the command
    answered at the next literal (or at its end), nothing stored."""
    account = small.new_account()
    big = make_message("too big for the backend", b"b" * (30 << 20))
    msgs = [{"body": make_message("one"), "nonsync": nonsync},
            {"body": big, "nonsync": nonsync},
            {"body": make_message("three"), "nonsync": nonsync}]
    with login(small, *account) as c:
        refused = send_multiappend(c, "INBOX", msgs)
        if refused is None:
            c.send(b"M2 NOOP\r\n")
            untagged, tagged = c.read_until("M2")
            assert [status_of(r) for r in untagged] == [b"NO"], untagged
            refused = untagged[0]
            assert status_of(tagged) == b"OK"
        assert re.match(rb"M1 NO \[TOOBIG\]", refused), refused
        c.ok("NOOP")
    assert count(small, account) == 0


def test_three_20mb_messages_stream_with_bounded_memory(small):
    account = small.new_account()
    msgs = [{"body": attachment_message(i, 20 << 20)} for i in range(3)]
    fe, be = worker_pids(small.frontend_pids), worker_pids(small.backend_pids)
    assert fe and be
    with login(small, *account) as c:
        c.ok("NOOP")
        watch = RssWatch(fe + be)
        watch.start()
        _, tagged = multiappend(c, "INBOX", msgs)
        grown = watch.growth()
        assert re.match(rb"M1 OK \[APPENDUID \d+ 1:3\] ", tagged), tagged
        # 60 MB went through; a worker may hold a few chunks, never a message.
        # (Under ASan freed memory stays resident in its quarantine.)
        print("resident KiB per worker at the start, growth:", watch.base, grown)
        if b"__asan_init" not in (BIN / "petrel-backend").read_bytes():
            assert all(g < 12 * 1024 for g in grown.values()), grown
        c.select()
        got = c.fetch("1:3", "(RFC822.SIZE)")
        assert [got[i]["RFC822.SIZE"] for i in (1, 2, 3)] == [len(m["body"]) for m in msgs]
        for i, m in enumerate(msgs, 1):
            untagged = c.ok(f"FETCH {i} (BODY.PEEK[])")
            body = fetches(untagged)[i]["BODY[]"]
            assert hashlib.sha256(body).digest() == hashlib.sha256(m["body"]).digest()
