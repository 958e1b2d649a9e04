"""fetchmail (a real POP3 client) against the cluster.

keep + uidl: fetchmail remembers the UIDLs it has fetched in its idfile and
leaves the mail on the server. Polling one frontend, then (after more mail
arrives) the other under the same poll name, must fetch every message
exactly once: UIDLs are the same whichever frontend answers. Without keep,
fetchmail deletes what it fetched (DELE, then QUIT).

Each message fetchmail hands to its MDA is written to a file of its own, so
the test counts deliveries by Message-ID.
"""

import getpass
import os
import re
import shutil
import smtplib
import stat
import subprocess
import time
from pathlib import Path

import pytest

from imap_util import Imap
from test_pop3 import Pop3, inbox_uids

FETCHMAIL = shutil.which("fetchmail") or "/usr/bin/fetchmail"

pytestmark = pytest.mark.skipif(not os.path.exists(FETCHMAIL), reason="fetchmail not installed")

MDA = """#!/bin/sh
# One file per message: fetchmail runs this once per message.
f=$(mktemp "{out}/msg.XXXXXXXX") || exit 75
cat > "$f" || exit 75
"""


class Fetchmail:
    """A fetchmail set-up of its own: rcfile, idfile, pid file, MDA and the
    directory the MDA writes messages to, all in a private directory."""

    def __init__(self, directory, address, password):
        self.dir = Path(directory)
        self.out = self.dir / "mail"
        self.out.mkdir()
        self.idfile = self.dir / "fetchids"
        self.address = address
        self.password = password
        self.mda = self.dir / "mda.sh"
        self.mda.write_text(MDA.format(out=self.out))
        self.mda.chmod(0o700)

    def run(self, port, keep=True, label="pop.petrel.test"):
        """Polls once; returns the CompletedProcess. The poll name (label)
        stays the same across frontends, as behind a load balancer: it is
        what fetchmail keys its idfile entries by."""
        rc = self.dir / "fetchmailrc"
        # sslproto '': no STARTTLS (the test cluster's certificate is its own).
        rc.write_text(
            f'poll "{label}" via 127.0.0.1 service {port} protocol pop3 uidl\n'
            f'    timeout 30\n'
            f'    user "{self.address}" password "{self.password}" is "{getpass.getuser()}" here\n'
            f"    sslproto ''\n"
            f'    mda "{self.mda}"\n'
            f"    {'keep' if keep else 'nokeep'}\n")
        rc.chmod(stat.S_IRUSR | stat.S_IWUSR)   # fetchmail insists on 0600
        env = {k: v for k, v in os.environ.items() if not k.startswith("FETCHMAIL")}
        env.update(HOME=str(self.dir), FETCHMAILHOME=str(self.dir),
                   FETCHMAILUSER=getpass.getuser(), LC_ALL="C")
        return subprocess.run(
            [FETCHMAIL, "-f", str(rc), "--idfile", str(self.idfile),
             "--pidfile", str(self.dir / "fetchmail.pid"), "--nosyslog", "--nodetach",
             "--invisible", "--norewrite", "-v"],
            capture_output=True, text=True, env=env, timeout=120)

    def messages(self):
        """The fetched messages as bytes, oldest file first."""
        files = sorted(self.out.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [p.read_bytes() for p in files]

    def message_ids(self):
        ids = []
        for m in self.messages():
            found = re.search(rb"(?im)^Message-ID:\s*<([^>]+)>", m)
            assert found, m[:500]
            ids.append(found.group(1).decode())
        return ids


def lmtp_deliver(cluster, address, ids):
    with smtplib.LMTP("127.0.0.1", cluster.lmtp_ports[0], timeout=30) as s:
        for mid in ids:
            msg = (f"From: sender@example.org\r\nTo: {address}\r\nSubject: {mid}\r\n"
                   f"Message-ID: <{mid}>\r\n\r\nBody of {mid}.\r\n.a line with a dot\r\n")
            refused = s.sendmail("sender@example.org", [address], msg.encode())
            assert not refused


def imap_deliver(cluster, address, password, ids):
    """Bare-LF messages through IMAP APPEND (stored with CRLF lines)."""
    with Imap(cluster.imap_ports[1]) as c:
        c.login(address, password)
        for mid in ids:
            c.append_uid("INBOX", (f"From: sender@example.org\nSubject: {mid}\n"
                                   f"Message-ID: <{mid}>\n\nBare LF. Body of {mid}.\n").encode())


def fetched_ok(r):
    # 0: mail fetched; 1: no new mail.
    assert r.returncode in (0, 1), f"fetchmail exited {r.returncode}\n{r.stdout}\n{r.stderr}"


def test_fetchmail_keep_uidl_across_frontends(cluster, new_account, tmp_path):
    assert len(cluster.pop3_ports) >= 2
    address, password = new_account()
    fm = Fetchmail(tmp_path, address, password)

    first = [f"first-{i}@petrel.test" for i in range(5)]
    lmtp_deliver(cluster, address, first[:3])
    imap_deliver(cluster, address, password, first[3:])
    r = fm.run(cluster.pop3_ports[0])
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert sorted(fm.message_ids()) == sorted(first)
    assert "not the expected length" not in r.stdout + r.stderr

    # Nothing new: the other frontend has nothing to add.
    r = fm.run(cluster.pop3_ports[1])
    assert r.returncode == 1, f"{r.stdout}\n{r.stderr}"
    assert sorted(fm.message_ids()) == sorted(first)

    second = [f"second-{i}@petrel.test" for i in range(4)]
    lmtp_deliver(cluster, address, second[:2])
    imap_deliver(cluster, address, password, second[2:])
    r = fm.run(cluster.pop3_ports[1])
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    ids = fm.message_ids()
    assert sorted(ids) == sorted(first + second)        # each exactly once
    assert len(ids) == len(set(ids))

    # And back on the first frontend: still nothing fetched twice.
    r = fm.run(cluster.pop3_ports[0])
    assert r.returncode == 1, f"{r.stdout}\n{r.stderr}"
    assert len(fm.message_ids()) == len(first) + len(second)

    # keep: everything is still on the server.
    assert len(inbox_uids(cluster, address)) == len(first) + len(second)

    # Bodies arrive intact: dot-unstuffed, CRLF turned into the local LF.
    for m in fm.messages():
        mid = re.search(rb"(?im)^Message-ID:\s*<([^>]+)>", m).group(1).decode()
        assert f"Body of {mid}.".encode() in m
        if mid in first[:3] + second[:2]:
            assert b"\n.a line with a dot\n" in m.replace(b"\r\n", b"\n")


def test_fetchmail_deletes_without_keep(cluster, new_account, tmp_path):
    address, password = new_account()
    fm = Fetchmail(tmp_path, address, password)
    ids = [f"dele-{i}@petrel.test" for i in range(4)]
    lmtp_deliver(cluster, address, ids[:3])
    imap_deliver(cluster, address, password, ids[3:])
    r = fm.run(cluster.pop3_ports[1], keep=False)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert sorted(fm.message_ids()) == sorted(ids)
    assert inbox_uids(cluster, address) == []
    c = Pop3(cluster.pop3_ports[0]).login(address, password)
    assert c.stat() == (0, 0)
    c.cmd("QUIT")
    # A later poll finds nothing.
    r = fm.run(cluster.pop3_ports[0], keep=False)
    assert r.returncode == 1, f"{r.stdout}\n{r.stderr}"
    assert len(fm.message_ids()) == len(ids)
