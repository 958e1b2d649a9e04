"""A deterministic corpus of mail for comparing IMAP servers.

`corpus()` returns a list of `Message(name, data, flags, date)`: the example
messages of the RFCs (tests/integration/corpus/rfc/*.eml, sources in the
README there) followed by several hundred generated ones, the same bytes on
every run (one seeded random.Random). Names are unique and usable as pytest
ids. The categories:

    plain      text/plain in several charsets and transfer encodings
    alt        multipart/alternative, text and HTML, some inside related
    mixed      multipart/mixed with attachments (base64, qp, filenames)
    nested     message/rfc822 inside messages, several levels deep; digests
    i18n       encoded words (Q/B, charsets), RFC 2231 and raw 8-bit parameters
    addr       address lists: groups, comments, quoting, odd forms
    eightbit   unencoded 8-bit headers and bodies, CTE 8bit and binary
    long       very long lines, long folded and unfolded header fields
    malformed  broken MIME: missing and unclosed boundaries, bad headers, LF-only
    large      attachments of a few MB

Run `python3 corpus_gen.py DIR` to write the corpus out as .eml files.
"""

import base64
import quopri
import random
import sys
from collections import namedtuple
from pathlib import Path

SEED = 20260
RFC_DIR = Path(__file__).resolve().parent / "corpus" / "rfc"

Message = namedtuple("Message", "name data flags date")

WORDS = tuple(("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
         "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
         "xray yankee zulu meeting report invoice budget quarterly schedule release "
         "petrel dovecot mailbox folder attachment draft urgent").split())
UNICODE_WORDS = ("café", "naïve", "Grüße", "smørrebrød", "Ελληνικά", "русский",
                 "日本語", "中文", "한국어", "emoji😀", "façade", "jalapeño", "Zürich")
PEOPLE = (("Alice Smith", "alice@example.com"), ("Bob Jones", "bob@example.org"),
          ("Carol", "carol@example.net"), ("Dave O'Brien", "dave@sub.example.com"),
          ("Jörg Müller", "joerg@example.de"), ("Zoë Ñúñez", "zoe@example.es"),
          ("", "noname@example.com"), ("Émile Zola", "emile@example.fr"))
FLAG_SETS = ("", "\\Seen", "\\Seen \\Flagged", "\\Answered", "\\Draft", "$Label1",
             "\\Seen $Forwarded", "\\Flagged custom1", "\\Deleted")
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()


def crlf(data):
    """LF line ends to CRLF (bytes already in CRLF stay as they are)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Gen:
    def __init__(self, seed=SEED):
        self.r = random.Random(seed)

    # ---- pieces -------------------------------------------------------------

    def words(self, n):
        return " ".join(self.r.choice(WORDS) for _ in range(n))

    def text(self, lines, width=8):
        return "\n".join(self.words(self.r.randint(1, width)) for _ in range(lines)) + "\n"

    def uni_text(self, lines):
        out = []
        for _ in range(lines):
            ws = [self.r.choice(WORDS + UNICODE_WORDS) for _ in range(self.r.randint(2, 8))]
            out.append(" ".join(ws))
        return "\n".join(out) + "\n"

    def date_hdr(self):
        r = self.r
        y, mo, d = r.randint(1995, 2025), r.randint(1, 12), r.randint(1, 28)
        tz = r.choice(("+0000", "-0800", "+0200", "+0530", "-0330", "+1400", "-1200"))
        return (f"{DAYS[r.randint(0, 6)]}, {d} {MONTHS[mo - 1]} {y} "
                f"{r.randint(0, 23):02}:{r.randint(0, 59):02}:{r.randint(0, 59):02} {tz}")

    def internaldate(self):
        r = self.r
        return (f"{r.randint(1, 28):02}-{MONTHS[r.randint(0, 11)]}-{r.randint(2000, 2025)} "
                f"{r.randint(0, 23):02}:{r.randint(0, 59):02}:{r.randint(0, 59):02} "
                f"{r.choice(('+0000', '-0700', '+0100', '+0930'))}")

    def person(self):
        return self.r.choice(PEOPLE)

    def addr(self, encode=True):
        name, mail = self.person()
        if not name:
            return mail
        if not name.isascii():
            if not encode:
                return f'"{name}" <{mail}>'
            return f"{self.ew(name)} <{mail}>"
        if "'" in name or "." in name:
            return f'"{name}" <{mail}>'
        return f"{name} <{mail}>"

    def ew(self, s, charset="utf-8", enc=None):
        """An RFC 2047 encoded word for s."""
        enc = enc or self.r.choice("QB")
        raw = s.encode(charset)
        if enc == "B":
            return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="
        q = "".join(chr(b) if (chr(b).isalnum() and b < 128) else
                    ("_" if b == 32 else f"={b:02X}") for b in raw)
        return f"=?{charset}?Q?{q}?="

    def headers(self, subject=None, extra="", mime=True, encode=True):
        h = (f"From: {self.addr(encode)}\nTo: {self.addr(encode)}, {self.addr(encode)}\n"
             f"Subject: {subject if subject is not None else self.words(4)}\n"
             f"Date: {self.date_hdr()}\n"
             f"Message-ID: <{self.r.getrandbits(48):x}.{self.r.randint(1, 999)}@example.com>\n")
        if self.r.random() < 0.3:
            h += f"Cc: {self.addr(encode)}\n"
        if self.r.random() < 0.2:
            h += f"In-Reply-To: <{self.r.getrandbits(32):x}@example.com>\n"
        if mime:
            h += "MIME-Version: 1.0\n"
        return h + extra

    def boundary(self):
        return self.r.choice(("b", "=_Part_", "----=_NextPart_", "frontier", "Apple-Mail="))\
            + f"{self.r.getrandbits(40):x}"

    def binary(self, n):
        return bytes(self.r.getrandbits(8) for _ in range(n))

    def b64(self, data, width=76):
        s = base64.b64encode(data).decode()
        return "\n".join(s[i:i + width] for i in range(0, len(s), width)) + "\n"

    def text_part(self, charset=None, cte=None, body=None, subtype="plain", extra=""):
        charset = charset or self.r.choice(("us-ascii", "utf-8", "iso-8859-1"))
        if body is None:
            body = self.uni_text(self.r.randint(1, 12)) if charset == "utf-8" else \
                self.text(self.r.randint(1, 12))
        if subtype == "html":
            body = "<html><body>\n<p>" + body.replace("\n", "</p>\n<p>") + "</p>\n</body></html>\n"
        cte = cte or self.r.choice(("7bit", "quoted-printable", "base64", None))
        raw = body.encode(charset if charset != "us-ascii" else "ascii", "replace")
        h = f"Content-Type: text/{subtype}; charset={self.r.choice([charset, chr(34) + charset + chr(34)])}\n"
        if cte == "quoted-printable":
            enc = quopri.encodestring(raw.replace(b"\n", b"\r\n")).decode("ascii")
            enc = enc.replace("\r\n", "\n").replace("=0D\n", "\n")
        elif cte == "base64":
            enc = self.b64(raw.replace(b"\n", b"\r\n"))
        else:
            if not raw.isascii():
                cte = "8bit"
            enc = raw.decode("latin-1")
        if cte:
            h += f"Content-Transfer-Encoding: {cte}\n"
        return h + extra + "\n" + enc

    def attachment(self, ctype=None, name=None, size=None, cte="base64", inline=False):
        ctype = ctype or self.r.choice(("application/pdf", "image/png", "application/zip",
                                        "application/octet-stream", "image/jpeg",
                                        "application/vnd.ms-excel", "text/csv"))
        name = name or f"{self.r.choice(WORDS)}-{self.r.randint(1, 99)}." + ctype.split("/")[1][:4]
        size = size or self.r.randint(10, 4000)
        data = self.binary(size) if not ctype.startswith("text/") else self.text(size // 40 + 1).encode()
        disp = "inline" if inline else "attachment"
        h = (f"Content-Type: {ctype}; name=\"{name}\"\n"
             f"Content-Disposition: {disp}; filename=\"{name}\""
             + (f"; size={size}" if self.r.random() < 0.3 else "") + "\n")
        if self.r.random() < 0.3:
            h += f"Content-ID: <{self.r.getrandbits(32):x}@example.com>\n"
        if self.r.random() < 0.2:
            h += f"Content-Description: {self.words(3)}\n"
        if self.r.random() < 0.1:
            h += "Content-Language: en, de\n"
        if self.r.random() < 0.1:
            h += "Content-Location: http://example.com/x\n"
        if cte == "base64":
            return h + "Content-Transfer-Encoding: base64\n\n" + self.b64(data)
        enc = quopri.encodestring(data).decode("ascii")
        return h + "Content-Transfer-Encoding: quoted-printable\n\n" + enc + "\n"

    def multipart(self, subtype, parts, boundary=None, preamble=None, epilogue=None, params=""):
        b = boundary or self.boundary()
        out = f'Content-Type: multipart/{subtype}; boundary="{b}"{params}\n\n'
        if preamble is None:
            preamble = "This is a multi-part message in MIME format.\n" if self.r.random() < 0.5 else ""
        out += preamble
        for p in parts:
            out += f"--{b}\n{p}"
            if not p.endswith("\n"):
                out += "\n"
        out += f"--{b}--\n"
        if epilogue:
            out += epilogue
        return out

    # ---- categories ---------------------------------------------------------

    def plain(self, i):
        charset = ("us-ascii", "utf-8", "iso-8859-1", "utf-8")[i % 4]
        cte = ("7bit", "quoted-printable", "base64", None, "8bit")[i % 5]
        if charset == "us-ascii" and cte == "8bit":
            cte = "7bit"
        subject = self.words(3) if i % 3 else self.ew(self.r.choice(UNICODE_WORDS) + " " + self.words(2))
        body = self.text_part(charset, cte)
        if i % 7 == 0:   # no MIME headers at all: text/plain us-ascii by default
            return self.headers(subject, mime=False) + "\n" + self.text(self.r.randint(1, 30))
        return self.headers(subject) + body

    def alt(self, i):
        txt = self.text(self.r.randint(1, 10))
        parts = [self.text_part(body=txt, subtype="plain"), self.text_part(body=txt, subtype="html")]
        body = self.multipart("alternative", parts)
        if i % 3 == 0:   # HTML with an inline image, as mail clients send it
            img = self.attachment("image/png", inline=True)
            body = self.multipart("related", [body, img], params='; type="multipart/alternative"')
        if i % 4 == 1:
            body = self.multipart("mixed", [body, self.attachment()])
        return self.headers(self.words(5)) + body

    def mixed(self, i):
        parts = [self.text_part()]
        for _ in range(1 + i % 4):
            parts.append(self.attachment(cte="base64" if i % 5 else "quoted-printable"))
        if i % 6 == 0:
            parts.append(self.text_part(subtype="html"))
        if i % 8 == 0:   # an empty part and one with only headers
            parts.append("Content-Type: text/plain\n\n")
            parts.append("Content-Type: application/octet-stream\n")
        return self.headers(self.words(4)) + self.multipart("mixed", parts)

    def inner_message(self, depth):
        if depth <= 0 or self.r.random() < 0.3:
            return self.headers(self.words(3)) + self.text_part()
        kind = self.r.choice(("mixed", "alt", "fwd"))
        if kind == "mixed":
            return self.headers(self.words(3)) + self.multipart(
                "mixed", [self.text_part(), self.rfc822_part(depth - 1), self.attachment()])
        if kind == "alt":
            return self.alt(self.r.randint(0, 5))
        return self.headers("Fwd: " + self.words(3)) + self.rfc822_part(depth - 1)

    def rfc822_part(self, depth):
        h = "Content-Type: message/rfc822\n"
        if self.r.random() < 0.4:
            h += f'Content-Disposition: attachment; filename="{self.r.choice(WORDS)}.eml"\n'
        if self.r.random() < 0.2:
            h += "Content-Description: forwarded message\n"
        return h + "\n" + self.inner_message(depth)

    def nested(self, i):
        depth = 1 + i % 4
        if i % 5 == 0:   # multipart/digest: parts default to message/rfc822
            msgs = [self.headers(self.words(3), mime=False) + "\n" + self.text(3) for _ in range(3)]
            return self.headers("digest " + self.words(2)) + self.multipart(
                "digest", ["\n" + m for m in msgs])
        if i % 5 == 1:   # a message that is only a forwarded message
            return self.headers("Fwd: " + self.words(3)) + self.rfc822_part(depth)
        parts = [self.text_part(), self.rfc822_part(depth)]
        if i % 3 == 0:
            parts.append(self.rfc822_part(depth - 1))
        return self.headers(self.words(4)) + self.multipart("mixed", parts)

    I18N_PARAMS = (
        "filename*=UTF-8''{pct}",
        "filename*=utf-8'de'{pct}",
        "filename*=iso-8859-1''{pct1}",
        "filename*0*=UTF-8''{pct_a};\n filename*1*={pct_b}",
        'filename*0="{plain_a}";\n filename*1="{plain_b}"',
        "filename*0*=UTF-8''{pct_a};\n filename*1=\"{plain_b}\"",
        'filename="{ew}"',
        'filename="{raw}"',
        "filename*1*={pct_b};\n filename*0*=UTF-8''{pct_a}",
        "filename*=UTF-8''{pct}; filename=\"fallback.txt\"",
        "filename*=''{plain_a}",
        "filename*=UTF-8'{pct}",
    )

    def i18n(self, i):
        word = UNICODE_WORDS[i % len(UNICODE_WORDS)] + f" {self.r.choice(WORDS)}.txt"
        pct = "".join(c if c.isascii() and c.isalnum() else
                      "".join(f"%{b:02X}" for b in c.encode()) for c in word)
        half = len(word) // 2
        a, b = word[:half], word[half:]

        def enc(s):
            return "".join(c if c.isascii() and c.isalnum() else
                           "".join(f"%{x:02X}" for x in c.encode()) for c in s)
        try:
            pct1 = "".join(c if c.isascii() and c.isalnum() else f"%{ord(c):02X}" for c in word) \
                if all(ord(c) < 256 for c in word) else enc(word)
        except ValueError:
            pct1 = enc(word)
        param = self.I18N_PARAMS[i % len(self.I18N_PARAMS)].format(
            pct=pct, pct1=pct1, pct_a=enc(a), pct_b=enc(b), plain_a="part-one-", plain_b="part-two",
            ew=self.ew(word), raw=word)
        att = (f"Content-Type: application/octet-stream; {param.replace('filename', 'name')}\n"
               f"Content-Disposition: attachment; {param}\n"
               f"Content-Transfer-Encoding: base64\n\n" + self.b64(self.binary(60)))
        subj_kind = i % 8
        w = self.r.choice(UNICODE_WORDS)
        subject = (
            self.ew(w + " " + self.words(2)),
            self.ew(w, "utf-8", "Q") + " " + self.ew(self.r.choice(UNICODE_WORDS), "utf-8", "B"),
            "Re: " + self.ew("Grüße aus Zürich", "iso-8859-1"),
            self.ew("русский текст", "koi8-r"),
            "=?utf-8?q?broken_word",                      # unterminated
            "=?unknown-charset?Q?abc?= tail",
            self.ew(w, "UTF-8", "B") + "plain-glued",         # no space after
            "=?utf-8?b?" + base64.b64encode("日本語".encode()).decode()[:-1] + "?=",  # bad padding
        )[subj_kind]
        text = self.text_part("utf-8", ("quoted-printable", "base64", "8bit")[i % 3],
                              body=self.uni_text(4))
        return self.headers(subject) + self.multipart("mixed", [text, att])

    ADDRESS_FORMS = (
        "undisclosed-recipients:;",
        "Group One: a@example.com, \"B, b\" <b@example.com>;, c@example.com",
        "\"quoted\\\"name\" <q@example.com>",
        "<@route.example,@other.example:routed@example.com>",
        "nodomain",
        "@nolocal.example.com",
        "\"local part\"@example.com",
        "a@[127.0.0.1]",
        "Name (comment) <c@example.com> (trailing comment)",
        "=?utf-8?q?J=C3=B6rg?= <j@example.com>, =?iso-8859-1?q?Andr=E9?= <a@example.fr>",
        "\"=?utf-8?q?not_decoded_in_quotes?=\" <n@example.com>",
        "<angle-only@example.com>",
        "a@example.com,,b@example.com",
        "Outer: Inner: x@example.com;;",
        "broken <unterminated@example.com",
        "plain.address@example.com (Plain Name)",
        "",
        "  ",
        "\"\" <empty-name@example.com>",
        "Mixed =?utf-8?b?w6nDqA==?= words <m@example.com>",
    )

    def addr_msg(self, i):
        form = self.ADDRESS_FORMS[i % len(self.ADDRESS_FORMS)]
        field = ("To", "From", "Cc", "Reply-To", "Sender", "Bcc")[i % 6]
        h = (f"{field}: {form}\n"
             + ("" if field == "From" else f"From: {self.addr()}\n")
             + f"Subject: address form {i}\nDate: {self.date_hdr()}\n"
             + (f"Message-ID: <addr{i}@example.com>\n" if i % 2 else ""))
        return h + "\n" + self.text(2)

    def eightbit(self, i):
        name, mail = self.person()
        subject = self.r.choice(UNICODE_WORDS) + " " + self.words(2)   # raw UTF-8 in the header
        if i % 4 == 3:
            subject = "Gr\xfc\xdfe latin-1 raw"
        h = (f"From: {name or 'X'} <{mail}>\nTo: {self.addr(encode=False)}\nSubject: {subject}\n"
             f"Date: {self.date_hdr()}\nMIME-Version: 1.0\n")
        if i % 4 == 3:
            body = "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n" \
                + "Gr\xfc\xdfe aus M\xfcnchen\n"
            return (h + body).encode("latin-1")
        if i % 4 == 2:   # binary CTE with NULs and bare CRs in the body
            return (h + "Content-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n"
                    ).encode() + b"\x00\x01bin\x00ary\rbare-cr\r\n" + self.binary(200).replace(b"\n", b"") + b"\r\n"
        cte = "8bit" if i % 2 else ""
        body = "Content-Type: text/plain; charset=utf-8\n" + \
            (f"Content-Transfer-Encoding: {cte}\n" if cte else "") + "\n" + self.uni_text(6)
        if i % 5 == 0:   # 8-bit parameter value and filename, unencoded
            body = self.multipart("mixed", [body, 'Content-Type: text/plain; name="résumé.txt"\n'
                                            'Content-Disposition: attachment; filename="résumé.txt"\n\nCV\n'])
        return (h + body).encode()

    def long(self, i):
        n = (998, 999, 1000, 4096, 10000, 65536, 200000)[i % 7]
        line = ("x" * 7 + " ") * (n // 8) + "y" * (n % 8)
        if i % 3 == 0:   # one long body line
            return self.headers(f"long body line {n}") + "Content-Type: text/plain\n\n" \
                + line + "\nshort tail\n"
        if i % 3 == 1:   # a long header, folded at spaces
            words = [self.r.choice(WORDS) for _ in range(n // 6)]
            folded = "\n ".join(" ".join(words[j:j + 10]) for j in range(0, len(words), 10))
            return self.headers(folded) + "Content-Type: text/plain\n\nbody\n"
        # a long unfolded header and a long boundary and parameter
        b = "B" * min(n, 2000)
        return (self.headers(self.words(2)) + f"X-Long: {line}\n"
                + self.multipart("mixed", [self.text_part(), self.attachment(
                    name="n" * min(n, 3000) + ".bin")], boundary=b))

    MALFORMED = (
        # multipart without a boundary parameter
        "Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\nhi\n--x--\n",
        # boundary never appears
        'Content-Type: multipart/mixed; boundary="nothere"\n\njust text\n',
        # no closing boundary
        'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\none\n--b\n\ntwo\n',
        # boundary with trailing whitespace and a prefix collision
        'Content-Type: multipart/mixed; boundary="ab"\n\n--ab  \n\none\n--abc\nnot a boundary\n--ab--\n',
        # nested multiparts sharing a boundary
        'Content-Type: multipart/mixed; boundary="s"\n\n--s\nContent-Type: multipart/alternative; boundary="s"\n\n'
        '--s\n\ninner\n--s--\n--s--\n',
        # empty Content-Type, bad syntax
        "Content-Type: \n\nbody\n",
        "Content-Type: text\n\nbody\n",
        "Content-Type: /plain\n\nbody\n",
        "Content-Type: text/plain; charset\n\nbody\n",
        'Content-Type: text/plain; charset="unterminated\n\nbody\n',
        "Content-Type: text/plain;; ;charset=utf-8;\n\nbody\n",
        "Content-Type: text/plain; charset=utf-8; charset=iso-8859-1\n\nduplicate param\n",
        # unknown and bad transfer encodings
        "Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n`\nend\n",
        "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n====\n",
        "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nbad =ZZ escape =\nand =4\n",
        "Content-Type: text/plain\nContent-Transfer-Encoding: 7bit; extra\n\nbody\n",
        # duplicate Content-Type headers
        "Content-Type: text/html\nContent-Type: image/png\n\nbody\n",
        # a header line without a colon, and one starting with a space first
        "Content-Type: text/plain\nThis is not a header\nX-After: yes\n\nbody\n",
        # message/rfc822 with an empty body
        "Content-Type: message/rfc822\n\n",
        # message/rfc822 that is only headers without a blank line
        "Content-Type: message/rfc822\n\nSubject: inner\nFrom: x@example.com",
        # multipart with no parts but the closing boundary
        'Content-Type: multipart/mixed; boundary="e"\n\n--e--\n',
        # content-disposition without a type
        "Content-Type: text/plain\nContent-Disposition: ; filename=x.txt\n\nbody\n",
        # uppercase everything
        'CONTENT-TYPE: TEXT/PLAIN; CHARSET="UTF-8"; NAME="X.TXT"\nCONTENT-TRANSFER-ENCODING: 7BIT\n\nBODY\n',
        # parameter with a comment and odd whitespace
        "Content-Type: text/plain (a comment) ; charset = \"utf-8\" (another)\n\nbody\n",
        # boundary containing spaces and specials
        'Content-Type: multipart/mixed; boundary="a b:c,d=e"\n\n--a b:c,d=e\n\npart\n--a b:c,d=e--\n',
        # message/global and message/delivery-status
        "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b\n",
        # headers only, no body separator
        None,
        # no headers at all
        None,
        # a very deep multipart nesting
        None,
        # content-type with 8-bit garbage
        "Content-Type: text/pl\xe4in; charset=\xff\n\nbody\n",
    )

    def malformed(self, i):
        spec = self.MALFORMED[i % len(self.MALFORMED)]
        base = self.headers(f"malformed {i}", mime=True)
        if spec is not None:
            return (base + spec).encode("latin-1")
        if i % len(self.MALFORMED) == 26:
            return (base.rstrip("\n") + "\nX-No-Body: true\n").encode()
        if i % len(self.MALFORMED) == 27:
            return b"\nThis message has no header at all.\n"
        body = self.text_part()
        for d in range(40):
            body = self.multipart("mixed", [body], boundary=f"deep{d}")
        return (base + body).encode()

    def lf_only(self, i):
        """Messages with bare LF line ends (appended as they are)."""
        return (self.headers(f"bare LF {i}") + self.multipart("mixed", [self.text_part(), self.attachment()]))\
            .encode()

    def stray_cr(self, i):
        """Line ends of every kind (appended as they are): LF, CRLF, two and
        three CRs before an LF, CRs inside text lines, a folded Subject and
        a Message-ID, and a message that ends in one CR, two CRs, a bare
        last line or a line end. Dovecot makes them CRLF by its own rules
        (backend/crlf_norm.h). An empty line gets at most two CRs, which
        leave it empty: after three, one CR stays, so the line ends no
        header and the lines after it join the header as lines without a
        colon, which Dovecot's SEARCH TEXT reads and Petrel's does not (a
        search question, not one of line ends)."""
        text = self.headers(f"stray CR {i}\n folded") + self.multipart(
            "mixed", [self.text_part(cte="7bit"), self.text_part(cte="7bit"), self.attachment()])
        if i % 2 == 0:   # a lone CR in a field ENVELOPE shows
            text = text.replace("Message-ID: <", "Message-ID: <lone\rCR.", 1)
        out = []
        for line in text.split("\n")[:-1]:
            if " " in line and ":" not in line and not line.startswith("--") and self.r.random() < 0.3:
                k = self.r.randrange(len(line) + 1)
                line = line[:k] + "\r" + line[k:]
            ends = ("\n", "\r\n", "\r\r\n") if not line else ("\n", "\r\n", "\r\r\n", "\r\r\r\n")
            out.append(line + self.r.choice(ends))
        return ("".join(out) + ("last\r", "last\r\r", "last", "")[i % 4]).encode()

    def large(self, i):
        size = (3 * 1024 * 1024, 2 * 1024 * 1024 + 12345)[i]
        r = random.Random(i)
        data = bytes(r.getrandbits(8) for _ in range(size)) if i == 0 else \
            (self.text(40) * (size // 300)).encode()[:size]
        att = (f"Content-Type: application/octet-stream; name=\"big{i}.bin\"\n"
               f"Content-Disposition: attachment; filename=\"big{i}.bin\"\n"
               f"Content-Transfer-Encoding: base64\n\n" + self.b64(data))
        return self.headers(f"large attachment {i}") + self.multipart("mixed", [self.text_part(), att])

    def rfc3501_742(self):
        """A message whose BODYSTRUCTURE is the example in RFC 3501 7.4.2
        (a text part of 1152 octets in 23 lines, a BASE64 part named cc.diff
        of 4554 octets in 73 lines)."""
        text = ("x" * 48 + "\r\n") * 23 + "y" * (1152 - 50 * 23)
        b64 = ("A" * 60 + "\r\n") * 73
        b64 = b64[:4554 - 0] if len(b64) >= 4554 else b64 + "A" * (4554 - len(b64))
        return ('From: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg summary\r\n'
                'MIME-Version: 1.0\r\nContent-Type: MULTIPART/MIXED; BOUNDARY="----=_960723"\r\n\r\n'
                '------=_960723\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n' + text +
                '\r\n------=_960723\r\nContent-Type: APPLICATION/OCTET-STREAM; NAME="cc.diff"\r\n'
                'Content-ID: <960723163407.20117h@cac.washington.edu>\r\n'
                'Content-Description: Compiler diff\r\nContent-Transfer-Encoding: BASE64\r\n\r\n'
                + b64 + '\r\n------=_960723--\r\n').encode()


# (category, generator method, how many)
PLAN = (("plain", "plain", 40), ("alt", "alt", 36), ("mixed", "mixed", 40),
        ("nested", "nested", 30), ("i18n", "i18n", 36), ("addr", "addr_msg", 40),
        ("eightbit", "eightbit", 20), ("long", "long", 14), ("malformed", "malformed", 30),
        ("lf", "lf_only", 6), ("large", "large", 2), ("cr", "stray_cr", 4))


def rfc_examples():
    """The RFC examples as (name, bytes): LF in the files, CRLF on the wire."""
    out = []
    for p in sorted(RFC_DIR.glob("*.eml")):
        out.append((p.stem, crlf(p.read_bytes())))
    return out


def corpus(seed=SEED):
    g = Gen(seed)
    out = []

    def add(name, data, lf=False):
        if isinstance(data, str):
            data = data.encode()
        if not lf:
            data = crlf(data)
        out.append(Message(name, data, g.r.choice(FLAG_SETS), g.internaldate()))

    for name, data in rfc_examples():
        add(name, data)
    add("rfc3501-7.4.2-constructed", g.rfc3501_742())
    for cat, method, n in PLAN:
        for i in range(n):
            add(f"{cat}-{i:03}", getattr(g, method)(i), lf=(cat in ("lf", "cr")))
    names = [m.name for m in out]
    assert len(set(names)) == len(names), "corpus names must be unique"
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")
    target.mkdir(parents=True, exist_ok=True)
    msgs = corpus()
    for m in msgs:
        (target / f"{m.name}.eml").write_bytes(m.data)
    print(f"{len(msgs)} messages, {sum(len(m.data) for m in msgs)} bytes in {target}")
