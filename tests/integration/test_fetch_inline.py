"""FETCH BODY[] of small messages in one backend round trip: the metadata
reply carries bodies up to imap_fetch_inline bytes (MetaReq.inline_max,
backend/migrations/012_inline_fetch_parsed_delivery.sql), so no BodyReq stream is opened.
Every section and partial served from an inline body must be byte-identical
to what the streamed path sends; the backend's request counters tell which
path ran."""

import http.client
import re

from imap_util import Imap, status_of

CRLF = b"\r\n"


def message(n, body_size):
    body = b"".join(b"line %d of message %d: " % (i, n) + b"x" * 40 + CRLF
                    for i in range(body_size // 60 + 1))[:body_size]
    header = (b"From: a@example.com" + CRLF + b"To: b@example.com" + CRLF +
              b"Subject: inline %d" % n + CRLF + CRLF)
    return header + body


def body_requests(cluster):
    """BodyReq calls answered by all backends so far."""
    total = 0
    for port in cluster.backend_http_ports:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        for line in text.splitlines():
            if line.startswith("petrel_backend_requests_total{") and 'op="body"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


def literals(untagged):
    """The literal bytes of FETCH responses, in order."""
    out = []
    for r in untagged:
        pos = 0
        while True:
            m = re.compile(rb"\{(\d+)\}\r\n").search(r, pos)
            if not m:
                break
            n = int(m.group(1))
            out.append(r[m.end():m.end() + n])
            pos = m.end() + n
    return out


def session(cluster, new_account):
    address, password = new_account()
    imap = Imap(cluster.imap_ports[0]).login(address, password)
    return imap, address, password


def test_small_message_sections_come_inline_and_exact(cluster, new_account):
    imap, _, _ = session(cluster, new_account)
    small = message(1, 3000)
    large = message(2, 100000)   # over the 64 KiB default: streamed
    imap.append_uid("INBOX", small)
    imap.append_uid("INBOX", large)
    imap.select()
    hdr_end = small.index(CRLF + CRLF) + 4
    before = body_requests(cluster)
    untagged = imap.ok("FETCH 1 (BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[]<5.20> "
                       "BODY.PEEK[TEXT]<3.100000> BODY.PEEK[]<99999.10> RFC822.HEADER RFC822.SIZE)")
    assert body_requests(cluster) == before, "a small body was streamed, not inlined"
    assert literals(untagged) == [small, small[:hdr_end], small[hdr_end:], small[5:25],
                                  small[hdr_end + 3:], b"", small[:hdr_end]]
    assert b"RFC822.SIZE %d" % len(small) in untagged[0]
    assert b"BODY[]<99999> {0}" in untagged[0]

    untagged = imap.ok("FETCH 2 (BODY.PEEK[] BODY.PEEK[HEADER])")
    assert body_requests(cluster) >= before + 2, "the large body did not stream"
    assert literals(untagged) == [large, large[:large.index(CRLF + CRLF) + 4]]
    imap.close()


def test_ranges_inline_and_streamed_agree(cluster, new_account):
    imap, _, _ = session(cluster, new_account)
    msgs = [message(i, 500 + 700 * i) for i in range(1, 7)]
    for m in msgs:
        imap.append_uid("INBOX", m)
    imap.select()
    before = body_requests(cluster)
    assert literals(imap.ok("FETCH 1:6 (BODY.PEEK[])")) == msgs
    assert body_requests(cluster) == before
    # Several ranges: answered without inline bodies, streamed one by one.
    assert literals(imap.ok("FETCH 1,3,5:6 (BODY.PEEK[])")) == [msgs[0], msgs[2], msgs[4], msgs[5]]
    assert body_requests(cluster) >= before + 4
    # UID FETCH of a range with holes, and of UIDs that do not exist.
    imap.ok("STORE 2 +FLAGS (\\Deleted)")
    imap.ok("EXPUNGE")
    assert literals(imap.ok("UID FETCH 1:4 (BODY.PEEK[TEXT])")) == [
        m[m.index(CRLF + CRLF) + 4:] for m in (msgs[0], msgs[2], msgs[3])]
    assert imap.ok("UID FETCH 2 (BODY.PEEK[])") == []
    imap.close()


def test_non_peek_fetch_still_sets_seen(cluster, new_account):
    imap, _, _ = session(cluster, new_account)
    small = message(1, 200)
    imap.append_uid("INBOX", small)
    imap.select()
    untagged = imap.ok("FETCH 1 (BODY[])")
    assert literals(untagged) == [small]
    assert b"\\Seen" in untagged[0]
    imap.close()


def test_fetch_in_a_deleted_mailbox_fails_like_without_bodies(cluster, new_account):
    imap, address, password = session(cluster, new_account)
    imap.ok('CREATE "Gone"')
    imap.append_uid("Gone", message(1, 300))
    imap.select("Gone")
    other = Imap(cluster.imap_ports[-1]).login(address, password)
    other.ok('DELETE "Gone"')
    other.close()
    _, with_body = imap.cmd("FETCH 1 (BODY.PEEK[])")
    _, without = imap.cmd("FETCH 1 (FLAGS)")
    assert status_of(with_body) == status_of(without) != b"OK", (with_body, without)
    imap.close()

