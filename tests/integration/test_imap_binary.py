"""IMAP BINARY (RFC 3516, RFC 9051 6.4.5): FETCH BINARY[section]<partial>,
BINARY.PEEK and BINARY.SIZE decode base64 and quoted-printable parts on the
backend while they stream; APPEND takes literal8. The expected responses
below are byte for byte what Dovecot 2.3.19.1 sends for the same commands
(its timing suffix on OK lines aside), except where a comment says why not.
"""

import base64
import hashlib
import smtplib
import threading
import time
from pathlib import Path

from imap_util import Imap, fetches, status_of

HDR = b"From: a@b\r\nSubject: t\r\nMIME-Version: 1.0\r\n"


def single(ctype, cte, body):
    return HDR + b"Content-Type: " + ctype + b"\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n" + body


RAW = b"hello\x00world\xff" * 10
B64 = single(b"application/octet-stream", b"base64", base64.encodebytes(RAW).replace(b"\n", b"\r\n"))
QP = single(b"text/plain; charset=utf-8", b"quoted-printable",
            b"caf=C3=A9 soft=\r\nbreak=3D end  \r\nline2\r\n")
E8 = single(b"text/plain; charset=utf-8", b"8bit", b"caf\xc3\xa9\r\n")
E7 = single(b"text/plain", b"7bit", b"plain\r\n")
UNKNOWN = single(b"text/plain", b"x-uuencode", b"begin 644 x\r\n")
MP = (b"From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\n"
      b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n--XX\r\n"
      b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--XX\r\n"
      b"Content-Type: message/rfc822\r\n\r\n" + single(b"text/plain", b"base64", b"aGk=\r\n") + b"\r\n--XX--\r\n")
MP_BINARY = (b"From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\n"
             b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\na=b\r\n--XX\r\n"
             b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
             b"\x00\x01\x02\xff\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n"
             + HDR + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nhi\r\n--XX--\r\n")


def connect(cluster, new_account, messages, port_index=0):
    """A session on a fresh account whose INBOX holds messages, selected."""
    address, password = new_account()
    c = Imap(cluster.imap_ports[port_index])
    c.login(address, password)
    for m in messages:
        assert status_of(c.append("INBOX", m, nonsync=True)) == b"OK"
    c.select()
    return c, address


def fetch_raw(c, text):
    """(untagged responses, tagged line) of a FETCH, literals inline."""
    return c.cmd(text)


def test_capability(cluster):
    with Imap(cluster.imap_ports[0]) as c:
        untagged, _ = c.cmd("CAPABILITY")
        assert b" BINARY " in untagged[0] + b" ", untagged


def test_single_part_encodings(cluster, new_account):
    c, _ = connect(cluster, new_account, [B64, QP, E8, E7])
    untagged, tagged = fetch_raw(c, "FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert status_of(tagged) == b"OK"
    assert untagged == [b"* 1 FETCH (BINARY.SIZE[1] 120 BINARY[1] ~{120}\r\n" + RAW + b")"]
    untagged, _ = fetch_raw(c, "FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1])")
    # Decoded quoted-printable goes as literal8 even without NULs, as Dovecot;
    # the blanks before a line break are transport padding (RFC 2045 6.7).
    assert untagged == [b"* 2 FETCH (BINARY[1] ~{29}\r\ncaf\xc3\xa9 softbreak= end\r\nline2\r\n BINARY.SIZE[1] 29)"]
    # Identity encodings without NULs: an ordinary literal (RFC 3516 4.3).
    untagged, _ = fetch_raw(c, "FETCH 3 (BINARY.PEEK[1])")
    assert untagged == [b"* 3 FETCH (BINARY[1] {7}\r\ncaf\xc3\xa9\r\n)"]
    untagged, _ = fetch_raw(c, "FETCH 4 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert untagged == [b"* 4 FETCH (BINARY[1] {7}\r\nplain\r\n BINARY.SIZE[1] 7)"]


def test_whole_message_rewrites_the_header(cluster, new_account):
    c, _ = connect(cluster, new_account, [B64])
    untagged, _ = fetch_raw(c, "FETCH 1 (BINARY.PEEK[] BINARY.SIZE[])")
    want = HDR + b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + RAW
    assert untagged == [b"* 1 FETCH (BINARY[] ~{%d}\r\n" % len(want) + want + b" BINARY.SIZE[] %d)" % len(want)]


def test_header_cut_by_a_boundary(cluster, new_account):
    """A part header ended by a boundary line, Content-Transfer-Encoding last
    (fuzz_mime): BINARY[] sends exactly the size it announces."""
    msg = (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"X-A: 1\r\nContent-Transfer-Encoding: base64\r\n--b\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n--b--\r\n")
    want = (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"X-A: 1\r\nContent-Transfer-Encoding: binary\r\n\r\n--b\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\nhi\r\n--b--\r\n")
    c, _ = connect(cluster, new_account, [msg])
    untagged, tagged = fetch_raw(c, "FETCH 1 (BINARY.SIZE[] BINARY.PEEK[])")
    assert status_of(tagged) == b"OK", tagged
    assert untagged == [b"* 1 FETCH (BINARY.SIZE[] %d BINARY[] ~{%d}\r\n" % (len(want), len(want)) + want + b")"]
    c.ok("NOOP")


def test_partial_ranges(cluster, new_account):
    c, _ = connect(cluster, new_account, [B64, MP])
    got = fetches(c.ok("FETCH 1 (BINARY.PEEK[1]<5.3> BINARY.PEEK[1]<118.10> BINARY.PEEK[1]<500.10>)"))[1]
    assert got["BINARY[1]<5>"] == b"\x00wo"
    assert got["BINARY[1]<118>"] == b"d\xff"
    assert got["BINARY[1]<500>"] == b""
    untagged, _ = fetch_raw(c, "FETCH 2 (BINARY.PEEK[3.1]<1.3>)")
    assert untagged == [b"* 2 FETCH (BINARY[3.1]<1> ~{1}\r\ni)"]
    # a window over the rewritten header and decoded bodies of BINARY[]
    for off, n in ((0, 10), (100, 50), (150, 120), (390, 20)):
        got = fetches(c.ok(f"FETCH 2 (BINARY.PEEK[]<{off}.{n}>)"))[2]
        assert got[f"BINARY[]<{off}>"] == MP_BINARY[off:off + n]
    # every byte of BINARY[1] one at a time agrees with the whole
    whole = fetches(c.ok("FETCH 1 BINARY.PEEK[1]"))[1]["BINARY[1]"]
    assert whole == RAW
    for off in range(0, len(RAW), 7):
        assert fetches(c.ok(f"FETCH 1 BINARY.PEEK[1]<{off}.1>"))[1][f"BINARY[1]<{off}>"] == RAW[off:off + 1]


def test_nested_parts(cluster, new_account):
    c, _ = connect(cluster, new_account, [MP])
    untagged, _ = fetch_raw(c, "FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2])")
    assert untagged == [b"* 1 FETCH (BINARY[1] ~{3}\r\na=b BINARY[2] ~{4}\r\n\x00\x01\x02\xff BINARY.SIZE[2] 4)"]
    # a message/rfc822 part: its embedded message, header rewritten, body decoded
    inner = HDR + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nhi"
    untagged, _ = fetch_raw(c, "FETCH 1 (BINARY.PEEK[3] BINARY.SIZE[3] BINARY.PEEK[3.1])")
    assert untagged == [b"* 1 FETCH (BINARY[3] ~{%d}\r\n" % len(inner) + inner +
                        b" BINARY.SIZE[3] %d BINARY[3.1] ~{2}\r\nhi)" % len(inner)]
    untagged, _ = fetch_raw(c, "FETCH 1 (BINARY.PEEK[] BINARY.SIZE[])")
    assert untagged == [b"* 1 FETCH (BINARY[] ~{399}\r\n" + MP_BINARY + b" BINARY.SIZE[] 399)"]
    # parts that do not exist: an empty string and size 0, as Dovecot
    untagged, _ = fetch_raw(c, "FETCH 1 (BINARY.PEEK[4] BINARY.SIZE[9] BINARY.PEEK[1.1])")
    assert untagged == [b"* 1 FETCH (BINARY[4] {0}\r\n BINARY.SIZE[9] 0 BINARY[1.1] {0}\r\n)"]


def test_sizes_equal_decoded_lengths(cluster, new_account):
    c, _ = connect(cluster, new_account, [B64, QP, E8, E7, MP])
    for seq in range(1, 6):
        for sec in ("", "1", "2", "3", "3.1"):
            got = fetches(c.ok(f"FETCH {seq} (BINARY.SIZE[{sec}] BINARY.PEEK[{sec}])"))[seq]
            assert got[f"BINARY.SIZE[{sec}]"] == str(len(got[f"BINARY[{sec}]"])).encode(), (seq, sec)


def test_unknown_cte(cluster, new_account):
    c, _ = connect(cluster, new_account, [E7, UNKNOWN])
    untagged, tagged = c.cmd("FETCH 2 BINARY.PEEK[1]")
    assert untagged == [b"* 2 FETCH (UID 2)"]
    assert tagged.split(b" ", 1)[1] == b"NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding."
    # the failing message's line is closed after the items written so far
    untagged, tagged = c.cmd("FETCH 1:2 (UID BINARY.SIZE[1])")
    assert untagged == [b"* 1 FETCH (UID 1 BINARY.SIZE[1] 7)", b"* 2 FETCH (UID 2)"]
    assert b"NO [UNKNOWN-CTE]" in tagged
    # BODY[] of the same part is not decoded, so it works; the session goes on
    got = fetches(c.ok("FETCH 2 BODY.PEEK[1]"))[2]
    assert got["BODY[1]"] == b"begin 644 x\r\n"


def test_bad_sections(cluster, new_account):
    c, _ = connect(cluster, new_account, [E7])
    # section-binary is part numbers only (RFC 9051 9); Dovecot accepts some of
    # these and answers as for BODY, we keep to the grammar.
    for item in ("BINARY[HEADER]", "BINARY.PEEK[1.MIME]", "BINARY[TEXT]", "BINARY.PEEK[0]",
                 "BINARY.PEEK[1.0]", "BINARY.PEEK[01]", "BINARY.PEEK[1.]", "BINARY.SIZE[1]<0.2>",
                 "BINARY.PEEK[1]<0.0>", "BINARY.PEEK[1", "BINARY.SIZE", "BINARY.PEEK[1]<x>"):
        _, tagged = c.cmd(f"FETCH 1 ({item})")
        assert status_of(tagged) == b"BAD", (item, tagged)
    assert c.ok("NOOP") is not None


def test_binary_sets_seen_peek_and_size_do_not(cluster, new_account):
    c, _ = connect(cluster, new_account, [E7, E7])
    got = fetches(c.ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] FLAGS)"))[1]
    assert b"\\Seen" not in got["FLAGS"]
    got = fetches(c.ok("FETCH 1 BINARY[1]"))[1]
    assert got["BINARY[1]"] == b"plain\r\n" and b"\\Seen" in got["FLAGS"]
    got = fetches(c.ok("FETCH 2 (BINARY.SIZE[] FLAGS)"))[2]
    assert b"\\Seen" not in got["FLAGS"]
    # EXAMINE: read-only, nothing is set
    c.ok("EXAMINE INBOX")
    untagged, _ = c.cmd("FETCH 2 BINARY[1]")
    assert untagged == [b"* 2 FETCH (BINARY[1] {7}\r\nplain\r\n)"]


def test_append_literal8_with_nuls(cluster, new_account):
    address, password = new_account()
    body = b"nul\x00inside\x00\xff\r\n"
    msg = single(b"application/octet-stream", b"binary", body)
    with Imap(cluster.imap_ports[0]) as c:
        c.login(address, password)
        # synchronizing literal8: a continuation first
        c.send(b"a1 APPEND INBOX ~{%d}\r\n" % len(msg))
        assert c.response().startswith(b"+ ")
        c.send(msg + b"\r\n")
        _, tagged = c.read_until("a1")
        assert tagged.startswith(b"a1 OK [APPENDUID "), tagged
        # non-synchronizing literal8 (LITERAL+)
        c.send(b"a2 APPEND INBOX (\\Flagged) ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
        _, tagged = c.read_until("a2")
        assert tagged.startswith(b"a2 OK [APPENDUID "), tagged
        c.select()
        for seq in (1, 2):
            untagged, _ = c.cmd(f"FETCH {seq} (BINARY.PEEK[1] BINARY.SIZE[1])")
            assert untagged == [b"* %d FETCH (BINARY[1] ~{%d}\r\n" % (seq, len(body)) + body +
                                b" BINARY.SIZE[1] %d)" % len(body)]
            # BODY[] cannot carry a NUL: it goes out as 0x80, as Dovecot's does
            assert fetches(c.ok(f"FETCH {seq} BODY.PEEK[]"))[seq]["BODY[]"] == msg.replace(b"\x00", b"\x80")


def test_literal8_outside_append_is_bad(cluster, new_account):
    address, password = new_account()
    with Imap(cluster.imap_ports[0]) as c:
        c.login(address, password)
        # synchronizing: refused before the data (no continuation)
        c.send(b"b1 CREATE ~{3}\r\n")
        _, tagged = c.read_until("b1")
        assert status_of(tagged) == b"BAD", tagged
        # non-synchronizing: the data is skipped, the next command is read
        c.send(b"b2 CREATE ~{3+}\r\nabc\r\nb3 NOOP\r\n")
        _, tagged = c.read_until("b2")
        assert status_of(tagged) == b"BAD", tagged
        _, tagged = c.read_until("b3")
        assert status_of(tagged) == b"OK", tagged
        # APPEND's mailbox name is not the message: literal8 there is BAD too
        c.send(b"b4 APPEND ~{5}\r\n")
        _, tagged = c.read_until("b4")
        assert status_of(tagged) == b"BAD", tagged
        assert c.ok("NOOP") is not None


def test_lmtp_delivered_message_parsed_on_first_fetch(cluster, new_account):
    address, password = new_account()
    lmtp = smtplib.LMTP("127.0.0.1", cluster.lmtp_ports[0])
    assert lmtp.sendmail("x@example.com", [address], MP) == {}
    lmtp.quit()
    with Imap(cluster.imap_ports[1]) as c:
        c.login(address, password)
        c.select()
        got = fetches(c.ok("FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2] BINARY.PEEK[3.1])"))[1]
        assert got["BINARY.SIZE[2]"] == b"4"
        assert got["BINARY[2]"] == b"\x00\x01\x02\xff"
        assert got["BINARY[3.1]"] == b"hi"


# ---- a 20 MB attachment streams in bounded memory ----

def process_tree(supervisors):
    pids = []
    for sup in supervisors:
        pids.append(sup)
        kids = Path(f"/proc/{sup}/task/{sup}/children").read_text().split()
        pids.extend(int(k) for k in kids)
    return pids


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def under_asan(pid):
    """ASan's allocator keeps freed memory in quarantine (256 MB by default):
    the RSS of such a process says nothing about what the code holds."""
    try:
        return "libasan" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_large_base64_attachment_streams(cluster, new_account):
    size = 20 * 1024 * 1024
    raw = bytes((i * 131 + (i >> 9)) & 0xFF for i in range(256 * 1024)) * (size // (256 * 1024))
    encoded = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    msg = (b"From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
           b"--BB\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--BB\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + encoded + b"--BB--\r\n")
    address, password = new_account()
    pids = process_tree(cluster.frontend_pids) + process_tree(cluster.backend_pids)
    with Imap(cluster.imap_ports[0]) as c:
        c.login(address, password)
        assert status_of(c.append("INBOX", msg, nonsync=True)) == b"OK"
        c.select()
        assert fetches(c.ok("FETCH 1 BINARY.SIZE[2]"))[1]["BINARY.SIZE[2]"] == str(size).encode()
        peak = {}
        done = threading.Event()

        def sample():
            while not done.is_set():
                for pid in pids:
                    peak[pid] = max(peak.get(pid, 0.0), rss_mb(pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            c.send(b"f1 FETCH 1 BINARY.PEEK[2]\r\n")
            head = c.line()
            assert head == b"* 1 FETCH (BINARY[2] ~{%d}" % size, head
            digest = hashlib.sha256()
            left = size
            while left:   # read slowly enough that the servers must hold back
                chunk = c.exactly(min(left, 1 << 20))
                digest.update(chunk)
                left -= len(chunk)
                time.sleep(0.01)
            assert c.line() == b")"
            _, tagged = c.read_until("f1")
            assert status_of(tagged) == b"OK"
        finally:
            done.set()
            sampler.join()
        assert digest.digest() == hashlib.sha256(raw).digest()
        if not any(under_asan(pid) for pid in pids):
            assert max(peak.values()) < 40, peak
