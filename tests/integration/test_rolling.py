"""Rolling restarts, the way a provider upgrades: every backend, then every
frontend, restarted one at a time (SIGTERM, wait for the exit, start the same
binary with the same config) while clients keep appending. Clients behave as
real ones do: on BYE or a lost connection they reconnect (to the other
frontend if theirs is gone) and retry the APPEND that got no tagged OK. No
acknowledged message may be lost or stored twice.

Each attempt carries a Message-ID of its own, so the mailbox tells which
attempts were stored: an APPEND answered OK must be there exactly once, under
the UID its APPENDUID named."""

import re
import socket
import threading
import time

import proc_util
from imap_util import Closed, Imap, make_message, quote

MESSAGES = 1000
WRITERS = 8
PACE = 25.0          # seconds the stream is spread over while restarts run
CONF = {
    # Short drains keep the test short; no per-account session cap for the
    # many sessions of one account.
    "PETREL_CLUSTER_FRONTEND_CONF":
        "drain_window = 2;shutdown_grace = 6;max_connections_per_account = 0",
    "PETREL_CLUSTER_BACKEND_CONF": "shutdown_grace = 6",
}
_APPENDUID = re.compile(rb"^\S+ OK \[APPENDUID (\d+) (\d+)\]")


class Stream:
    """The shared state of the writers."""

    def __init__(self, ports):
        self.ports = ports
        self.lock = threading.Lock()
        self.next = 0
        self.t0 = time.monotonic()
        self.restarts_done = threading.Event()
        self.acked = {}          # message-id -> (uid, when)
        self.attempts = []       # every message-id sent
        self.failures = []       # (when, why) of attempts without OK
        self.errors = []         # unexpected: BAD, exceptions

    def take(self):
        """The next message number, paced while restarts run; None at the end."""
        with self.lock:
            n = self.next
            if n >= MESSAGES:
                return None
            self.next += 1
        while not self.restarts_done.is_set():
            due = self.t0 + n * PACE / MESSAGES
            if time.monotonic() >= due:
                break
            self.restarts_done.wait(min(0.05, due - time.monotonic()))
        return n


def writer(stream, index, account):
    address, password = account
    imap = None
    port_i = index % len(stream.ports)
    attempt = 0
    n = stream.take()
    while n is not None:
        try:
            if imap is None:
                try:
                    imap = Imap(stream.ports[port_i], timeout=20)
                except OSError:
                    imap = None
                    port_i = (port_i + 1) % len(stream.ports)   # that frontend is gone
                    time.sleep(0.05)
                    continue
                if not imap.greeting.startswith(b"* OK"):
                    raise Closed(imap.greeting)
                _, tagged = imap.cmd(f"LOGIN {quote(address)} {quote(password)}")
                if tagged.split(b" ", 2)[1] != b"OK":
                    raise Closed(tagged)
            attempt += 1
            mid = f"r{n}.{attempt}.w{index}@rolling.test"
            with stream.lock:
                stream.attempts.append(mid)
            # Every tenth is larger than rpc_chunk: streamed, long in flight.
            filler = b"x" * (300000 if n % 10 == 0 else 2000)
            message = make_message(f"rolling {n}", extra=f"X-Rolling: {mid}\r\n".encode(),
                                   body=f"message {n}\r\n".encode() + filler + b"\r\n")
            message = re.sub(rb"Message-ID: <[^>]*>", f"Message-ID: <{mid}>".encode(), message)
            tag = imap.tag()
            imap.send(f"{tag} APPEND INBOX {{{len(message)}}}\r\n")
            cont = imap.response()
            if not cont.startswith(b"+"):
                raise Closed(cont)   # BYE (draining) instead of the go-ahead
            imap.send(message + b"\r\n")
            untagged, tagged = imap.read_until(tag)
            m = _APPENDUID.match(tagged)
            if m:
                with stream.lock:
                    stream.acked[mid] = (int(m.group(2)), time.monotonic())
                n = stream.take()
                if any(u.startswith(b"* BYE") for u in untagged):
                    raise Closed(b"BYE after OK")
                continue
            if tagged.split(b" ", 2)[1] == b"BAD":
                stream.errors.append(("BAD", mid, tagged))
                return
            # NO: e.g. no backend for a moment. The same message again.
            with stream.lock:
                stream.failures.append((time.monotonic(), tagged.decode(errors="replace")))
            time.sleep(0.05)
        except (Closed, OSError) as e:
            with stream.lock:
                stream.failures.append((time.monotonic(), repr(e)[:200]))
            if imap:
                imap.close()
            imap = None
            port_i = (port_i + 1) % len(stream.ports)
        except Exception as e:   # noqa: BLE001 - reported by the test
            stream.errors.append(("exception", n, repr(e)))
            return
    if imap:
        imap.close()


def mailbox_ids(port, account):
    """{message-id: [uid, ...]} of INBOX."""
    out = {}
    with Imap(port, timeout=60) as imap:
        imap.login(*account)
        imap.select()
        untagged = imap.ok("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        for r in untagged:
            uid = re.search(rb"UID (\d+)", r)
            mid = re.search(rb"Message-ID: <([^>]+)>", r, re.I)
            if uid and mid:
                out.setdefault(mid.group(1).decode(), []).append(int(uid.group(1)))
    return out


def test_rolling_restart_loses_nothing(cluster_factory):
    c = cluster_factory(frontends=2, backends=2, env=CONF)
    account = c.new_account()
    stream = Stream(c.imap_ports)
    threads = [threading.Thread(target=writer, args=(stream, i, account), daemon=True)
               for i in range(WRITERS)]
    for t in threads:
        t.start()

    windows = []   # (name, SIGTERM at, ready again at, seconds to exit)
    time.sleep(1.5)
    for i, name in enumerate(["backend1", "backend2", "frontend1", "frontend2"]):
        http = (c.backend_http_ports if name.startswith("backend") else c.frontend_http_ports)
        port = http[int(name[-1]) - 1]
        t_term = time.monotonic()
        took = proc_util.stop(c, name, timeout=20)
        time.sleep(1.0)   # down for a moment, as a replaced pod is
        proc_util.start(c, name)
        proc_util.wait_ready(port, timeout=20)
        windows.append((name, t_term, time.monotonic(), took))
        # The next one goes as soon as this one is ready, as a Deployment's
        # rolling update does: frontends must be using it by then.
    stream.restarts_done.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "writers stuck"
    # Shown with pytest -s: how the restarts went.
    for name, t_term, t_ready, took in windows:
        print(f"{name}: exited {took:.2f}s after SIGTERM, ready again after "
              f"{t_ready - t_term:.2f}s")
    print(f"{len(stream.acked)} acknowledged, {len(stream.attempts)} attempts, "
          f"{len(stream.failures)} failed attempts or reconnections")
    for when, why in stream.failures[:40]:
        print(f"  {when - stream.t0:6.2f}s {why}")
    for log in sorted((c.dir / "logs").glob("*end*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "level=warn" in line or "level=error" in line:
                print(f"  {log.name}: {line[:300]}")
    assert not stream.errors, stream.errors[:5]
    assert len(stream.acked) == MESSAGES, (len(stream.acked), stream.failures[-5:])
    # One backend was always up: no client was ever told to try later.
    refused = [why for _, why in stream.failures if " NO " in why]
    assert not refused, refused[:5]

    # APPENDs went on during every restart.
    for name, t_term, t_ready, took in windows:
        during = [mid for mid, (_, when) in stream.acked.items() if t_term <= when <= t_ready]
        assert during, f"no APPEND completed while {name} restarted ({t_ready - t_term:.1f}s)"

    # Every acknowledged APPEND exactly once, under its APPENDUID; UIDs distinct.
    stored = mailbox_ids(c.imap_ports[0], account)
    missing = [mid for mid in stream.acked if mid not in stored]
    twice = {mid: uids for mid, uids in stored.items() if len(uids) > 1}
    wrong_uid = [mid for mid, (uid, _) in stream.acked.items()
                 if mid in stored and stored[mid] != [uid]]
    assert not missing, f"{len(missing)} acknowledged APPENDs lost: {missing[:5]}"
    assert not twice, f"stored twice: {list(twice.items())[:5]}"
    assert not wrong_uid, wrong_uid[:5]
    all_uids = [u for uids in stored.values() for u in uids]
    assert len(all_uids) == len(set(all_uids))
    # Attempts that got no OK must not have been stored either: every drain
    # finishes what it started, so a client never sees a failure for an
    # APPEND that happened.
    unacked_stored = [mid for mid in stored if mid not in stream.acked]
    assert not unacked_stored, (unacked_stored[:5], stream.failures[:10])
    assert set(stored) <= set(stream.attempts)


def test_frontend_sigterm_byes_idle_clients(cluster_factory):
    """100 clients in IDLE: SIGTERM, every one gets * BYE, and the frontend
    exits inside its grace period."""
    grace = 6
    c = cluster_factory(frontends=1, backends=1, env={
        "PETREL_CLUSTER_FRONTEND_CONF":
            f"drain_window = 2;shutdown_grace = {grace};max_connections_per_account = 0"})
    account = c.new_account()
    clients = []
    for i in range(100):
        imap = Imap(c.imap_ports[0])
        imap.login(*account)
        imap.select()
        imap.send(b"i1 IDLE\r\n")
        clients.append(imap)
    for imap in clients:
        assert imap.response().startswith(b"+"), "IDLE not accepted"
    t0 = time.monotonic()
    proc_util.stop(c, "frontend1", timeout=grace + 3)
    took = time.monotonic() - t0
    assert took < grace, f"exited after {took:.1f}s, grace {grace}s"
    for imap in clients:
        imap.sock.settimeout(5)
        rest = imap.buf
        try:
            while True:
                data = imap.sock.recv(65536)
                if not data:
                    break
                rest += data
        except (socket.timeout, ConnectionError):
            pass
        assert b"* BYE" in rest, rest
        imap.close()
