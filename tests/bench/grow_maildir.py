#!/usr/bin/python3
"""Grows a Dovecot Maildir INBOX to TOTAL messages for `make bench`.

Usage: grow_maildir.py MAILDIR TOTAL

The Maildir must already hold the base messages APPENDed through IMAP (the
same bytes Petrel got). Each new message is a hard link to a base message
under a new name in cur/, so 100,000 messages take seconds and no disk; the
name keeps Dovecot's S= (size) and W= (virtual size) so it need not stat
or read the file to know them. One in four is unseen, as in
big_mailbox.sql. Dovecot finds them at its next SELECT (cur/ changed).
"""
import os
import re
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    md, total = sys.argv[1], int(sys.argv[2])
    base = sorted(os.path.join(md, d, f) for d in ("cur", "new")
                  for f in os.listdir(os.path.join(md, d)))
    if not base:
        sys.exit(f"grow_maildir.py: no messages in {md}: fill it through IMAP first")
    for k in range(max(total - len(base), 0)):
        src = base[k % len(base)]
        sizes = re.search(r",S=\d+(?:,W=\d+)?", os.path.basename(src))
        flags = "" if (k + 1) % 4 == 0 else "S"
        name = f"1700000000.B{k}.bench{sizes.group(0) if sizes else ''}:2,{flags}"
        os.link(src, os.path.join(md, "cur", name))


if __name__ == "__main__":
    main()
