"""A small byte-exact IMAP client for the integration tests.

`Imap` talks over a raw socket so tests see the protocol bytes as sent:
responses are returned whole, literals included inline (`{n}\\r\\n` followed by
the n bytes), and `parse` turns a response into Python values. Nothing here
hides a protocol error: the tests assert on the exact lines.
"""

import re
import socket
import time

TIMEOUT = 30

_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}$")


class Closed(EOFError):
    """The server closed the connection; `.pending` holds unread bytes."""

    def __init__(self, pending=b""):
        super().__init__(f"connection closed; pending {pending[:200]!r}")
        self.pending = pending


class Lines:
    """A line-at-a-time client for POP3 and LMTP: cmd() sends a line and
    returns the first line of the answer; line() reads the next one. sock:
    a connection made already (from another source address, over TLS)."""

    def __init__(self, port=None, timeout=TIMEOUT, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise Closed(self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def closed(self):
        """Whether the server has closed the connection (nothing more comes)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionError:
            return True

    def close(self):
        self.sock.close()


class Imap:
    def __init__(self, port, host="127.0.0.1", timeout=TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.tags = 0
        self.greeting = self.line()

    # ---- raw I/O -----------------------------------------------------------

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise Closed(self.buf)
        self.buf += data

    def line(self):
        """One line without its CRLF."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One whole response (untagged, tagged or continuation) without the
        final CRLF, literals inline as `{n}\\r\\n<bytes>`."""
        out = self.line()
        while True:
            m = _LITERAL_AT_END.search(out)
            if not m:
                return out
            out += b"\r\n" + self.exactly(int(m.group(1)))
            out += self.line()

    def eof(self, timeout=5):
        """True when the server closes the connection within timeout (what
        arrives before is dropped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionError:
            return True
        finally:
            self.sock.settimeout(TIMEOUT)

    # ---- commands ----------------------------------------------------------

    def tag(self):
        self.tags += 1
        return f"t{self.tags}"

    def read_until(self, tag):
        """(untagged responses, tagged line) up to the tagged line of tag."""
        if isinstance(tag, str):
            tag = tag.encode()
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                return untagged, r
            untagged.append(r)

    def cmd(self, text, tag=None):
        """Sends `tag text` and returns (untagged, tagged line)."""
        tag = tag or self.tag()
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.read_until(tag)

    def ok(self, text):
        """A command that must answer OK; returns the untagged responses."""
        untagged, tagged = self.cmd(text)
        assert tagged.split(b" ", 2)[1] == b"OK", (text, tagged, untagged)
        return untagged

    def login(self, user, password):
        untagged, tagged = self.cmd(f"LOGIN {quote(user)} {quote(password)}")
        assert tagged.split(b" ", 2)[1] == b"OK", tagged
        return self

    def select(self, mailbox="INBOX"):
        return self.ok(f"SELECT {quote(mailbox)}")

    def append(self, mailbox, message, flags=None, date=None, nonsync=False):
        """APPEND with a synchronizing (or LITERAL+) literal; returns the
        tagged line."""
        tag = self.tag()
        head = f"{tag} APPEND {quote(mailbox)}"
        if flags is not None:
            head += f" ({flags})"
        if date is not None:
            head += f' "{date}"'
        head += f" {{{len(message)}{'+' if nonsync else ''}}}\r\n"
        if nonsync:
            self.send(head.encode() + message + b"\r\n")
        else:
            self.send(head)
            cont = self.response()
            if not cont.startswith(b"+"):
                return cont
            self.send(message + b"\r\n")
        _, tagged = self.read_until(tag)
        return tagged

    def append_uid(self, mailbox, message, **kw):
        """APPEND that must succeed; returns (uidvalidity, uid) of APPENDUID."""
        tagged = self.append(mailbox, message, **kw)
        m = re.search(rb"OK \[APPENDUID (\d+) (\d+)\]", tagged)
        assert m, tagged
        return int(m.group(1)), int(m.group(2))

    def fetch(self, seqset, items, uid=False):
        """{seq: {ITEM: value}} of a FETCH that must answer OK."""
        untagged = self.ok(f"{'UID ' if uid else ''}FETCH {seqset} {items}")
        return fetches(untagged)


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def status_of(tagged):
    """b'OK' / b'NO' / b'BAD' of a tagged line."""
    return tagged.split(b" ", 2)[1]


# ---- parsing ---------------------------------------------------------------

class Parser:
    """Parses IMAP data (atoms, numbers, quoted strings, literals, NIL,
    parenthesized lists) from a response as `Imap.response` returns it."""

    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def skip_spaces(self):
        while self.pos < len(self.data) and self.data[self.pos:self.pos + 1] == b" ":
            self.pos += 1

    def value(self):
        self.skip_spaces()
        d = self.data
        c = d[self.pos:self.pos + 1]
        if c == b"(":
            self.pos += 1
            items = []
            while True:
                self.skip_spaces()
                if d[self.pos:self.pos + 1] == b")":
                    self.pos += 1
                    return items
                if self.pos >= len(d):
                    raise ValueError(f"unbalanced list in {d[:200]!r}")
                items.append(self.value())
        if c == b'"':
            out = bytearray()
            self.pos += 1
            while True:
                ch = d[self.pos:self.pos + 1]
                if ch == b"\\":
                    out += d[self.pos + 1:self.pos + 2]
                    self.pos += 2
                elif ch == b'"':
                    self.pos += 1
                    return bytes(out)
                elif not ch:
                    raise ValueError("unterminated quoted string")
                else:
                    out += ch
                    self.pos += 1
        if c == b"{" or (c == b"~" and d[self.pos + 1:self.pos + 2] == b"{"):   # ~{n}: literal8
            m = re.compile(rb"~?\{(\d+)\}\r\n").match(d, self.pos)
            if not m:
                raise ValueError(f"bad literal at {d[self.pos:self.pos + 20]!r}")
            n = int(m.group(1))
            start = m.end()
            self.pos = start + n
            return d[start:start + n]
        # an atom; brackets may hold spaces (BODY[HEADER.FIELDS (A B)])
        start = self.pos
        depth = 0
        while self.pos < len(d):
            ch = d[self.pos:self.pos + 1]
            if ch == b"[":
                depth += 1
            elif ch == b"]":
                depth -= 1
            elif depth == 0 and ch in (b" ", b"(", b")"):
                break
            self.pos += 1
        atom = d[start:self.pos]
        if not atom:
            raise ValueError(f"empty atom at {d[start:start + 20]!r}")
        if atom == b"NIL":
            return None
        return atom


def parse_fetch(resp):
    """(seq, {ITEM: value}) of `* n FETCH (...)`; item names upper-cased str,
    numbers as int."""
    m = re.match(rb"\* (\d+) FETCH ", resp)
    assert m, resp
    p = Parser(resp, m.end())
    items = p.value()
    assert p.pos == len(resp), f"trailing data after FETCH: {resp[p.pos:p.pos + 100]!r}"
    assert isinstance(items, list) and len(items) % 2 == 0, resp[:300]
    out = {}
    for k, v in zip(items[::2], items[1::2]):
        key = k.decode().upper()
        if key in ("UID", "RFC822.SIZE"):
            v = int(v)
        out[key] = v
    return int(m.group(1)), out


def fetches(untagged):
    """{seq: items} of every FETCH response in a list of untagged responses
    (items of several responses for one message are merged)."""
    out = {}
    for r in untagged:
        if re.match(rb"\* \d+ FETCH ", r):
            seq, items = parse_fetch(r)
            out.setdefault(seq, {}).update(items)
    return out


def flags_of(value):
    """A FLAGS list as a set of str."""
    return {f.decode() for f in value}


def code(untagged, name):
    """The value of the response code [NAME value] in `* OK [...]` lines, or
    None."""
    for r in untagged:
        m = re.match(rb"\* OK \[" + name.encode() + rb"(?: ([^\]]*))?\]", r)
        if m:
            return m.group(1).decode() if m.group(1) is not None else ""
    return None


def make_message(subject="test", body=b"Hello.\r\n", extra=b""):
    if isinstance(body, str):
        body = body.encode()
    return (b"From: Alice <alice@example.com>\r\n"
            b"To: Bob <bob@example.com>\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
            b"Message-ID: <" + str(time.time_ns()).encode() + b"@example.com>\r\n"
            + extra + b"\r\n" + body)


# ---- line ends -------------------------------------------------------------

def crlf_lines(data):
    """A message as Petrel stores it (backend/crlf_norm.h) and Dovecot serves
    it, whatever line ends it arrived with: first CR LF -> LF, other CRs
    kept, a CR that is the last byte dropped (Dovecot's save); then a CR
    before every LF that lacks one (its read)."""
    lf = re.sub(rb"\r(\n|\Z)", rb"\1", data)
    return re.sub(rb"(?<!\r)\n", b"\r\n", lf)


def pop3_view(port, address, password):
    """What a POP3 client (poplib) sees of a maildrop: {n: (LIST size, the
    octets RETR announces, the message as RETR sent it, dots unstuffed)}."""
    import poplib
    p = poplib.POP3("127.0.0.1", port, timeout=TIMEOUT)
    try:
        p.user(address)
        p.pass_(password)
        out = {}
        for entry in p.list()[1]:
            n, size = map(int, entry.split())
            resp, lines, _ = p.retr(n)
            announced = int(re.match(rb"\+OK (\d+) octets", resp).group(1))
            out[n] = (size, announced, b"".join(line + b"\r\n" for line in lines))
        p.quit()
        return out
    finally:
        p.close()
