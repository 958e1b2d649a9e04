"""A private Dovecot (Debian's dovecot-imapd) on loopback, for tests that
compare Petrel with it.

    def test_x(dovecot):
        address, password = dovecot.new_account()
        with Imap(dovecot.imap_port) as c: ...

The configuration follows tests/bench/run.sh: everything (config, passwd-file,
maildirs, logs, sockets) lives in one temporary folder, the accounts are in a
passwd-file, mail is maildir, only IMAP listens, on a free loopback port. As
root (CI) the master runs as root and the mail belongs to `nobody`, the way a
packaged Dovecot runs; as another user every service runs as that user (the
documented way to run Dovecot without root), so the tests work either way.

`dovecot_server()` (a context manager) is what the session fixture `dovecot`
uses; a test module needing a Dovecot of its own can call it directly.
"""

import contextlib
import grp
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
START_TIMEOUT = 20  # seconds until the IMAP port answers
STOP_TIMEOUT = 10   # seconds after SIGTERM before SIGKILL

_accounts = itertools.count(1)


def available():
    """None when Dovecot's IMAP server is installed, else why not."""
    if not os.path.exists(DOVECOT):
        return f"{DOVECOT} is missing (make deps installs dovecot-imapd)"
    if not os.path.exists("/usr/lib/dovecot/imap"):
        return "/usr/lib/dovecot/imap is missing (make deps installs dovecot-imapd)"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _identity():
    """(internal user, login user, mail uid, mail gid) for this euid."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return "dovecot", "dovenull", nobody.pw_uid, grp.getgrnam("nogroup").gr_gid
    me = pwd.getpwuid(os.geteuid()).pw_name
    return me, me, os.geteuid(), os.getegid()


class Dovecot:
    """A running Dovecot: imap_port, dir, and accounts made by new_account()."""

    def __init__(self, directory, imap_port, proc, uid, gid):
        self.dir = Path(directory)
        self.imap_port = imap_port
        self.proc = proc
        self._uid, self._gid = uid, gid

    def new_account(self, password=None):
        """Adds an account to the passwd-file (read per login, no reload) and
        returns (address, password)."""
        address = f"d{next(_accounts)}@example.com"
        password = password or "pw-" + secrets.token_hex(6)
        home = self.dir / "mail" / address
        with open(self.dir / "passwd", "a") as f:
            f.write(f"{address}:{{PLAIN}}{password}:{self._uid}:{self._gid}::{home}::\n")
        return address, password

    def log(self, lines=40):
        try:
            return "\n".join((self.dir / "dovecot.log").read_text(errors="replace")
                             .splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# Without root, chroot() is refused: the services that use one by default
# run without (the documented set-up for an unprivileged Dovecot).
NO_CHROOT = """
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
"""


def _config(d, port, internal_user, login_user):
    # The first_valid_uid/gid of 1 let `nobody` (or the calling user) own mail;
    # mail_fsync=never because these folders are thrown away.
    return f"""# written by tests/integration/dovecot_util.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name}
default_login_user = {login_user}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
# Petrel's hierarchy separator, so mailbox names compare as they are (the
# maildir++ layout on disk still uses ".").
# The mailboxes a new Petrel account starts with, subscribed, with the same
# special-use attributes (backend/migrations/008_mailboxes.sql).
namespace inbox {{
  inbox = yes
  separator = /
  mailbox INBOX {{
    auto = subscribe
  }}
  mailbox Drafts {{
    auto = subscribe
    special_use = \\Drafts
  }}
  mailbox Sent {{
    auto = subscribe
    special_use = \\Sent
  }}
  mailbox Trash {{
    auto = subscribe
    special_use = \\Trash
  }}
  mailbox Junk {{
    auto = subscribe
    special_use = \\Junk
  }}
  mailbox Archive {{
    auto = subscribe
    special_use = \\Archive
  }}
}}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
"""


@contextlib.contextmanager
def dovecot_server():
    """Starts a Dovecot in a fresh temporary folder, yields a Dovecot, and
    stops it and removes the folder (kept when the block raised)."""
    why = available()
    if why:
        pytest.skip(why)
    internal_user, login_user, uid, gid = _identity()
    # Under /tmp: Dovecot's UNIX sockets need a short base_dir path.
    d = Path(tempfile.mkdtemp(prefix="petrel-dovecot."))
    d.chmod(0o755)   # the unprivileged services must reach their sockets
    for sub in ("run", "state", "mail"):
        (d / sub).mkdir()
    os.chown(d / "mail", uid, gid)
    (d / "passwd").touch()
    if os.geteuid() == 0:
        # The auth service reads the passwd-file as the dovecot group.
        os.chown(d / "passwd", 0, grp.getgrnam("dovecot").gr_gid)
        (d / "passwd").chmod(0o640)
    port = _free_port()
    conf = d / "dovecot.conf"
    conf.write_text(_config(d, port, internal_user, login_user)
                    + ("" if os.geteuid() == 0 else NO_CHROOT))
    out = open(d / "stdout.log", "wb")
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    server = Dovecot(d, port, proc, uid, gid)
    ok = False
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dovecot exited {proc.returncode}:\n"
                                   + (d / "stdout.log").read_text(errors="replace")
                                   + server.log())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("dovecot did not listen in time:\n" + server.log())
                time.sleep(0.05)
        yield server
        ok = True
    finally:
        server.stop()
        if ok:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot():
    """The session's Dovecot (see the module's docstring)."""
    with dovecot_server() as server:
        yield server
