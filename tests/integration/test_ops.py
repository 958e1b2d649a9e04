"""Running Petrel like a provider: the HTTP endpoints of frontends and
backends (/metrics in the Prometheus text format, /healthz, /readyz), JSON
logs, and the graceful drain on SIGTERM.

The metrics live in shared memory summed over a process's workers, so any
worker's /metrics answer covers the whole frontend (or backend)."""

import http.client
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, ROOT, clean_env
from imap_util import Imap, Lines, make_message, quote, status_of

TIMEOUT = 30

FRONTEND_FAMILIES = {
    "petrel_frontend_connections": "gauge",
    "petrel_frontend_connections_accepted_total": "counter",
    "petrel_frontend_connections_refused_total": "counter",
    "petrel_frontend_commands_total": "counter",
    "petrel_frontend_command_duration_seconds": "histogram",
    "petrel_frontend_auth_total": "counter",
    "petrel_frontend_received_bytes_total": "counter",
    "petrel_frontend_sent_bytes_total": "counter",
    "petrel_frontend_rpc_inflight": "gauge",
    "petrel_frontend_rpc_requests_total": "counter",
    "petrel_frontend_rpc_duration_seconds": "histogram",
    "petrel_frontend_backend_links_up": "gauge",
    "petrel_frontend_draining": "gauge",
}
BACKEND_FAMILIES = {
    "petrel_backend_requests_total": "counter",
    "petrel_backend_request_duration_seconds": "histogram",
    "petrel_backend_requests_inflight": "gauge",
    "petrel_backend_frontend_links": "gauge",
    "petrel_backend_db_query_duration_seconds": "histogram",
    "petrel_backend_db_query_errors_total": "counter",
    "petrel_backend_db_connections": "gauge",
    "petrel_backend_draining": "gauge",
}


# ---- helpers ---------------------------------------------------------------

def http_get(port, path, method="GET", timeout=10):
    """(status, headers dict, body str) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        body = r.read().decode()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


class Metrics:
    """A parsed /metrics answer: families {name: type} and samples
    [(name, {label: value}, float)]. Checks the text format as it parses."""

    def __init__(self, text):
        self.types = {}
        self.helps = {}
        self.samples = []
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# HELP "):
                name, help_text = line[7:].split(" ", 1)
                self.helps[name] = help_text
                continue
            if line.startswith("# TYPE "):
                name, kind = line[7:].split(" ")
                assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert name not in self.types, f"TYPE twice for {name}"
                self.types[name] = kind
                continue
            assert not line.startswith("#"), line
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, labels_text, value = m.groups()
            labels = {}
            if labels_text:
                pos = 0
                while pos < len(labels_text):
                    lm = _LABEL.match(labels_text, pos)
                    assert lm, f"bad labels in {line!r}"
                    labels[lm.group(1)] = lm.group(2)
                    pos = lm.end()
            self.samples.append((name, labels, float(value)))
            assert self.family_of(name), f"sample {name} without a TYPE line"
        self.check_histograms()

    def family_of(self, name):
        if name in self.types:
            return name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and self.types.get(base) == "histogram":
                return base
        return None

    def check_histograms(self):
        """Buckets cumulative, +Inf equal to _count."""
        series = {}
        for name, labels, value in self.samples:
            if name.endswith("_bucket"):
                key = (name[:-7], tuple(sorted((k, v) for k, v in labels.items() if k != "le")))
                series.setdefault(key, []).append((labels["le"], value))
        counts = {(n[:-6], tuple(sorted(lab.items()))): v
                  for n, lab, v in self.samples if n.endswith("_count")}
        for key, buckets in series.items():
            values = [v for _, v in buckets]
            assert values == sorted(values), f"{key}: buckets not cumulative: {buckets}"
            assert buckets[-1][0] == "+Inf", key
            assert counts.get(key) == buckets[-1][1], f"{key}: +Inf != _count"

    def value(self, name, **labels):
        """Sum of the samples of name whose labels include the given ones."""
        return sum(v for n, lab, v in self.samples
                   if n == name and all(lab.get(k) == str(x) for k, x in labels.items()))


def scrape(port):
    status, headers, body = http_get(port, "/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return Metrics(body)


def scrape_all(ports):
    """{name: summed value} is not enough for labels: returns the list of
    parsed answers."""
    return [scrape(p) for p in ports]


def total(answers, name, **labels):
    return sum(m.value(name, **labels) for m in answers)


class Pop3(Lines):
    def multiline(self):
        lines = []
        while True:
            line = self.line()
            if line == b".":
                return lines
            lines.append(line)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ready(port):
    try:
        return http_get(port, "/readyz", timeout=3)[0]
    except OSError:
        return None


def wait_exit(pid, timeout):
    """Seconds until pid exited; raises if it is still alive after timeout."""
    t0 = time.monotonic()
    wait_for(lambda: not alive(pid), timeout, f"process {pid} to exit", interval=0.05)
    return time.monotonic() - t0


def imap_idle_selected(port, address, password):
    c = Imap(port)
    c.login(address, password)
    c.select()
    return c


# ---- endpoints -------------------------------------------------------------

def test_health_and_ready(cluster):
    assert cluster.frontend_http_ports and cluster.backend_http_ports
    assert len(cluster.frontend_http_ports) == len(cluster.frontend_pids)
    assert len(cluster.backend_http_ports) == len(cluster.backend_pids)
    for port in cluster.frontend_http_ports + cluster.backend_http_ports:
        status, headers, body = http_get(port, "/healthz")
        assert (status, body) == (200, "ok\n")
        assert headers["connection"] == "close"
        status, _, body = http_get(port, "/readyz")
        assert status == 200, body
        assert http_get(port, "/readyz?verbose=1")[0] == 200
        assert http_get(port, "/nope")[0] == 404
        assert http_get(port, "/healthz", method="POST")[0] == 405
        status, _, body = http_get(port, "/healthz", method="HEAD")
        assert (status, body) == (200, "")


def test_http_request_bounds(cluster):
    port = cluster.frontend_http_ports[0]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 431 "), data[:100]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"garbage\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 400 ")
    # Still serving.
    assert http_get(port, "/healthz")[0] == 200


def test_metric_families_present(cluster):
    for port in cluster.frontend_http_ports:
        m = scrape(port)
        for name, kind in FRONTEND_FAMILIES.items():
            assert m.types.get(name) == kind, (name, m.types.get(name))
            assert m.helps.get(name), name
        # Every configured link of every worker is up.
        assert m.value("petrel_frontend_backend_links_up") >= len(cluster.backend_pids)
        assert m.value("petrel_frontend_draining") == 0
    for port in cluster.backend_http_ports:
        m = scrape(port)
        for name, kind in BACKEND_FAMILIES.items():
            assert m.types.get(name) == kind, (name, m.types.get(name))
        assert m.value("petrel_backend_db_connections", state="up") >= 1
        assert m.value("petrel_backend_frontend_links") >= 1


def test_metrics_move_with_traffic(cluster, new_account):
    fport = cluster.frontend_http_ports[0]
    address, password = new_account()
    before = scrape(fport)
    back_before = scrape_all(cluster.backend_http_ports)

    # IMAP: a failed and a good login, SELECT, APPEND, FETCH, an unknown command.
    with Imap(cluster.imap_ports[0]) as c:
        _, tagged = c.cmd(f"LOGIN {quote(address)} {quote('wrong')}")
        assert status_of(tagged) == b"NO"
        c.login(address, password)
        c.select()
        during = scrape(fport)
        assert during.value("petrel_frontend_connections", proto="imap", state="selected") >= 1
        c.append_uid("INBOX", make_message("metrics"))
        c.fetch("1", "(FLAGS)")
        _, tagged = c.cmd("FROBNICATE")
        assert status_of(tagged) == b"BAD"
        c.ok("LOGOUT")
    # POP3: login, STAT, RETR, a wrong command, QUIT.
    p = Pop3(cluster.pop3_ports[0])
    try:
        assert p.cmd(f"USER {address}").startswith(b"+OK")
        assert p.cmd(f"PASS {password}").startswith(b"+OK")
        assert p.cmd("STAT").startswith(b"+OK 1 ")
        assert p.cmd("RETR 1").startswith(b"+OK")
        p.multiline()
        assert p.cmd("RETR 99").startswith(b"-ERR")
        assert p.cmd("QUIT").startswith(b"+OK")
    finally:
        p.close()

    after = scrape(fport)

    def grew(name, by=1, **labels):
        delta = after.value(name, **labels) - before.value(name, **labels)
        assert delta >= by, f"{name}{labels} grew by {delta}, expected >= {by}"

    cmds = "petrel_frontend_commands_total"
    grew(cmds, proto="imap", command="LOGIN", result="OK")
    grew(cmds, proto="imap", command="LOGIN", result="NO")
    grew(cmds, proto="imap", command="SELECT", result="OK")
    grew(cmds, proto="imap", command="APPEND", result="OK")
    grew(cmds, proto="imap", command="FETCH", result="OK")
    grew(cmds, proto="imap", command="other", result="BAD")
    grew(cmds, proto="imap", command="LOGOUT", result="OK")
    grew(cmds, proto="pop3", command="PASS", result="OK")
    grew(cmds, proto="pop3", command="STAT", result="OK")
    grew(cmds, proto="pop3", command="RETR", result="OK")
    grew(cmds, proto="pop3", command="RETR", result="BAD")
    grew(cmds, proto="pop3", command="QUIT", result="OK")
    dur = "petrel_frontend_command_duration_seconds_count"
    grew(dur, proto="imap", command="APPEND")
    grew(dur, proto="pop3", command="RETR")
    grew("petrel_frontend_auth_total", proto="imap", result="success")
    grew("petrel_frontend_auth_total", proto="imap", result="failure")
    grew("petrel_frontend_auth_total", proto="pop3", result="success")
    grew("petrel_frontend_connections_accepted_total", proto="imap")
    grew("petrel_frontend_connections_accepted_total", proto="pop3")
    grew("petrel_frontend_received_bytes_total", by=100, proto="imap")
    grew("petrel_frontend_sent_bytes_total", by=100, proto="imap")
    grew("petrel_frontend_received_bytes_total", by=20, proto="pop3")
    grew("petrel_frontend_sent_bytes_total", by=100, proto="pop3")
    grew("petrel_frontend_rpc_requests_total", op="login", status="ok")
    grew("petrel_frontend_rpc_requests_total", op="login", status="no")
    grew("petrel_frontend_rpc_requests_total", op="append", status="ok")
    grew("petrel_frontend_rpc_duration_seconds_count", op="body")
    assert after.value("petrel_frontend_rpc_duration_seconds_sum", op="login") > 0

    back_after = scrape_all(cluster.backend_http_ports)

    def back_grew(name, by=1, **labels):
        delta = total(back_after, name, **labels) - total(back_before, name, **labels)
        assert delta >= by, f"backend {name}{labels} grew by {delta}, expected >= {by}"

    back_grew("petrel_backend_requests_total", op="login", status="ok", by=2)
    back_grew("petrel_backend_requests_total", op="login", status="no")
    back_grew("petrel_backend_requests_total", op="append", status="ok")
    back_grew("petrel_backend_requests_total", op="body", status="ok")
    back_grew("petrel_backend_request_duration_seconds_count", op="select", by=2)
    back_grew("petrel_backend_db_query_duration_seconds_count", by=5)


# ---- logs ------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_json_logs(tmp_path):
    """log_format = json: every line one JSON object, numbers as numbers."""
    conf = tmp_path / "frontend.conf"
    conf.write_text(f"workers = 1\nimap_listen = 127.0.0.1:{free_port()}\npop3_listen =\n"
                    f"lmtp_listen =\nbackends = 127.0.0.1:{free_port()}\nlog_format = json\n")
    proc = subprocess.Popen([str(BIN / "petrel-frontend"), "--config", str(conf)],
                            stderr=subprocess.PIPE, env=clean_env(), start_new_session=True)
    try:
        time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    lines = [l for l in err.decode().splitlines() if l.strip()]
    assert lines
    events = [json.loads(l) for l in lines]
    for e in events:
        assert {"ts", "level", "proc", "pid", "msg"} <= e.keys(), e
        assert isinstance(e["pid"], int)
    started = [e for e in events if e["msg"] == "supervisor started"]
    assert started and started[0]["workers"] == 1
    assert any(e["msg"] == "worker ready" and e.get("worker") == 0 for e in events)
    assert any(e["msg"] == "draining sessions" and e.get("sessions") == 0 for e in events)

    # An unknown format is refused.
    r = subprocess.run([str(BIN / "petrel-frontend"), "--config", str(conf)],
                       env=clean_env(PETREL_LOG_FORMAT="xml"), capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "log_format" in r.stderr


# ---- readiness follows the backends ------------------------------------------

def restart_backend(c, name="backend1"):
    """Starts the backend again from its config, recorded under DIR/pids like
    the cluster script does, so `cluster down` stops it."""
    log = open(c.dir / "logs" / f"{name}.log", "ab")
    proc = subprocess.Popen([str(BIN / "petrel-backend"), "--config",
                             str(c.dir / "conf" / f"{name}.conf")],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=clean_env(),
                            start_new_session=True)
    log.close()
    with open(f"/proc/{proc.pid}/stat") as f:
        start = f.read().rsplit(")", 1)[1].split()[19]
    (c.dir / "pids" / f"{name}.pid").write_text(f"{proc.pid}\n")
    (c.dir / "pids" / f"{name}.start").write_text(f"{start}\n")
    return proc


def test_readyz_follows_backends(cluster_factory):
    c = cluster_factory(1, 1)
    fport, bport = c.frontend_http_ports[0], c.backend_http_ports[0]
    wait_for(lambda: ready(fport) == 200, 10, "frontend ready")
    assert ready(bport) == 200

    os.kill(c.backend_pids[0], signal.SIGTERM)
    # Nothing in flight: the backend drains at once.
    wait_exit(c.backend_pids[0], 12)
    wait_for(lambda: ready(fport) == 503, 10, "frontend not ready without backends")
    status, _, body = http_get(fport, "/readyz")
    assert status == 503 and "backend" in body, body
    assert http_get(fport, "/healthz")[0] == 200   # alive, just not ready
    assert scrape(fport).value("petrel_frontend_backend_links_up") == 0

    proc = restart_backend(c)
    try:
        wait_for(lambda: ready(bport) == 200, 20, "restarted backend ready")
        wait_for(lambda: ready(fport) == 200, 20, "frontend ready again")
        address, password = c.new_account()
        with Imap(c.imap_ports[0]) as imap:
            imap.login(address, password)
    finally:
        c.down()
        proc.wait(timeout=30)


def test_commands_wait_backend_wait_for_a_link(cluster_factory):
    """With no backend link up, a command waits up to backend_wait for one:
    it goes through when the backend comes back in time, and fails with a
    temporary error after backend_wait when it does not. Clients that leave
    while their command waits take it out of the wait."""
    c = cluster_factory(1, 1, env={"PETREL_CLUSTER_FRONTEND_CONF": "backend_wait = 5"})
    address, password = c.new_account()
    sessions = [Imap(c.imap_ports[0]) for _ in range(12)]
    for x in sessions:
        x.login(address, password)
    os.kill(c.backend_pids[0], signal.SIGTERM)
    wait_exit(c.backend_pids[0], 12)
    wait_for(lambda: scrape(c.frontend_http_ports[0]).value("petrel_frontend_backend_links_up") == 0,
             10, "the links to go down")

    t0 = time.monotonic()
    tags = []
    for x in sessions:
        tags.append(x.tag())
        x.send(f"{tags[-1]} STATUS INBOX (MESSAGES)\r\n".encode())
    time.sleep(0.5)
    for x in sessions[:4]:
        x.close()
    for x, tag in zip(sessions[4:], tags[4:]):
        _, tagged = x.read_until(tag)
        assert re.match(rb"t\d+ NO \[UNAVAILABLE\]", tagged), tagged
    took = time.monotonic() - t0
    assert 4.5 <= took < 10, took
    for x in sessions[5:]:
        x.close()
    s = sessions[4]

    tag = s.tag()
    s.send(f"{tag} STATUS INBOX (MESSAGES)\r\n".encode())
    time.sleep(0.2)   # the command is waiting
    proc = restart_backend(c)
    try:
        _, tagged = s.read_until(tag)
        assert status_of(tagged) == b"OK", tagged
        s.close()
    finally:
        c.down()
        proc.wait(timeout=30)


# ---- graceful drain --------------------------------------------------------

DRAIN_CONF = {"PETREL_CLUSTER_FRONTEND_CONF": "drain_window = 3;shutdown_grace = 8"}


class ByeWatcher(threading.Thread):
    """Reads every client until it closes, noting when its first bytes came."""

    def __init__(self, clients, timeout):
        super().__init__(daemon=True)
        self.clients, self.timeout = clients, timeout
        self.data, self.when = {}, {}

    def run(self):
        deadline = time.monotonic() + self.timeout
        sel = selectors.DefaultSelector()
        for cl in self.clients:
            cl.sock.setblocking(False)
            sel.register(cl.sock, selectors.EVENT_READ, cl)
        bufs = {cl: b"" for cl in self.clients}
        while len(self.data) < len(self.clients) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                cl = key.data
                try:
                    chunk = cl.sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    chunk = b""
                if chunk and cl not in self.when:
                    self.when[cl] = time.monotonic()
                bufs[cl] += chunk
                if not chunk:
                    self.data[cl] = bufs[cl]
                    sel.unregister(cl.sock)
        sel.close()


def test_frontend_drain_on_sigterm(cluster_factory):
    c = cluster_factory(1, 1, env=DRAIN_CONF)
    fpid, fport = c.frontend_pids[0], c.frontend_http_ports[0]
    address, password = c.new_account()
    clients = [imap_idle_selected(c.imap_ports[0], address, password) for _ in range(20)]
    pop = Pop3(c.pop3_ports[0])
    assert pop.cmd(f"USER {address}").startswith(b"+OK")
    assert pop.cmd(f"PASS {password}").startswith(b"+OK")

    # An APPEND whose literal is half sent when SIGTERM arrives.
    writer = Imap(c.imap_ports[0])
    writer.login(address, password)
    message = make_message("in flight", body=b"x" * 4000 + b"\r\n")
    writer.send(f"w1 APPEND INBOX {{{len(message)}}}\r\n")
    assert writer.response().startswith(b"+")
    writer.send(message[:1000])

    watcher = ByeWatcher(clients, timeout=15)
    watcher.start()
    t0 = time.monotonic()
    os.kill(fpid, signal.SIGTERM)
    wait_for(lambda: ready(fport) in (503, None), 2, "frontend not ready while draining")
    # No new connections once draining.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", c.imap_ports[0]), timeout=2).close()

    time.sleep(0.5)
    writer.send(message[1000:] + b"\r\n")
    _, tagged = writer.read_until("w1")
    assert status_of(tagged) == b"OK", tagged
    assert writer.line() == b"* BYE Server shutting down."
    assert writer.eof()

    # Every idle client gets BYE, at moments spread over the window.
    watcher.join(timeout=20)
    got = watcher.data
    assert len(got) == len(clients), f"only {len(got)} of {len(clients)} clients were let go"
    for data in got.values():
        assert data == b"* BYE Server shutting down.\r\n", data
    times = sorted(t - t0 for t in watcher.when.values())
    assert times[-1] - times[0] >= 0.5, f"goodbyes not spread out: {times}"
    assert times[-1] < 3 + 1.5, times

    line = pop.line()
    assert line == b"-ERR [SYS/TEMP] Server shutting down.", line

    # The process exits once the last session is gone, inside the grace.
    wait_exit(fpid, max(0.1, t0 + 8 + 2 - time.monotonic()))
    assert time.monotonic() - t0 < 8 + 2
    for cl in clients:
        cl.close()
    writer.close()
    pop.close()


def test_frontend_drain_busy_command_then_bye(cluster_factory):
    """A session in the middle of an APPEND when its goodbye time comes gets
    the tagged answer first, then BYE."""
    c = cluster_factory(1, 1, env={"PETREL_CLUSTER_FRONTEND_CONF": "drain_window = 0"})
    address, password = c.new_account()
    writer = Imap(c.imap_ports[0])
    writer.login(address, password)
    message = make_message("busy", body=b"y" * 2000 + b"\r\n")
    writer.send(f"b1 APPEND INBOX {{{len(message)}}}\r\n")
    assert writer.response().startswith(b"+")
    writer.send(message[:100])
    os.kill(c.frontend_pids[0], signal.SIGTERM)
    time.sleep(1)   # window 0: the goodbye time has come and gone
    writer.send(message[100:] + b"\r\n")
    _, tagged = writer.read_until("b1")
    assert status_of(tagged) == b"OK", tagged
    assert writer.line() == b"* BYE Server shutting down."
    assert writer.eof()
    wait_exit(c.frontend_pids[0], 10)
    writer.close()


def test_backend_drain_finishes_in_flight(cluster_factory):
    """SIGTERM to a backend while an APPEND streams through it: the APPEND
    completes, then the backend exits; meanwhile it reports not ready."""
    c = cluster_factory(1, 1)
    bpid, bport, fport = c.backend_pids[0], c.backend_http_ports[0], c.frontend_http_ports[0]
    address, password = c.new_account()
    writer = Imap(c.imap_ports[0])
    writer.login(address, password)
    # Larger than rpc_chunk (256 KiB), so the backend has the request while
    # the rest of the literal is still on its way.
    message = make_message("streamed", body=b"z" * 600000 + b"\r\n")
    writer.send(f"s1 APPEND INBOX {{{len(message)}}}\r\n")
    assert writer.response().startswith(b"+")
    writer.send(message[:300000])
    wait_for(lambda: scrape(bport).value("petrel_backend_requests_inflight") >= 1, 10,
             "the APPEND to reach the backend")

    os.kill(bpid, signal.SIGTERM)
    wait_for(lambda: ready(bport) in (503, None), 3, "backend not ready while draining")
    time.sleep(1)
    assert alive(bpid), "the backend exited with a request in flight"
    # The frontend stops using the draining backend: no other is up.
    wait_for(lambda: ready(fport) == 503, 5, "frontend not ready without a usable backend")

    writer.send(message[300000:] + b"\r\n")
    _, tagged = writer.read_until("s1")
    assert status_of(tagged) == b"OK", tagged
    wait_exit(bpid, 10 + 2)
    writer.close()


@pytest.mark.parametrize("binary", ["petrel-frontend", "petrel-backend"])
@pytest.mark.parametrize("node", ["two words", "x" * 64, "", "caf\u00e9"])
def test_bad_node_name_refused(tmp_path, binary, node):
    """The node name goes into session ids, Redis keys and CLIENT SETNAME:
    one that would be cut short or break a key is refused at start, not
    truncated."""
    conf = tmp_path / "petrel.conf"
    conf.write_text("")
    r = subprocess.run([str(BIN / binary), "--config", str(conf)],
                       env=clean_env(PETREL_NODE=node), capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "node must be" in r.stderr, (r.returncode, r.stderr)
