"""Stopping and starting one process of a local cluster the way
deploy/local/cluster does: the same binary and config file (DIR/conf/NAME.conf),
output appended to DIR/logs/NAME.log, a new session (so its PID is its process
group), and the PID and start time recorded in DIR/pids/NAME.{pid,start} so
`cluster down` stops the new process too."""

import http.client
import os
import signal
import subprocess
import time

from conftest import BIN, clean_env


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_exit(pid, timeout):
    """Waits for pid to exit; returns the seconds it took, raises on timeout.
    A child of ours is reaped (else it stays a zombie)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return time.monotonic() - t0
        except ChildProcessError:
            pass
        if not alive(pid):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still running after {timeout}s")


def ready(port, timeout=2):
    """The HTTP status of /readyz, None when nothing answers."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status
        finally:
            conn.close()
    except OSError:
        return None


def wait_ready(port, timeout=20):
    deadline = time.monotonic() + timeout
    while ready(port) != 200:
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz on {port} not 200 after {timeout}s")
        time.sleep(0.05)


def start(c, name, env=None, prefix=()):
    """Starts DIR/conf/NAME.conf's binary (frontendN or backendN) again and
    records it; updates c.frontend_pids / c.backend_pids. prefix: a command
    that execs the rest (e.g. unshare), so the PID stays the program's.
    Returns the Popen."""
    role = "frontend" if name.startswith("frontend") else "backend"
    log = open(c.dir / "logs" / f"{name}.log", "ab")
    try:
        proc = subprocess.Popen(
            [*prefix, str(BIN / f"petrel-{role}"), "--config",
             str(c.dir / "conf" / f"{name}.conf")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=clean_env(**(env or {})),
            start_new_session=True)
    finally:
        log.close()
    with open(f"/proc/{proc.pid}/stat") as f:
        start_time = f.read().rsplit(")", 1)[1].split()[19]
    (c.dir / "pids" / f"{name}.pid").write_text(f"{proc.pid}\n")
    (c.dir / "pids" / f"{name}.start").write_text(f"{start_time}\n")
    pids = c.frontend_pids if role == "frontend" else c.backend_pids
    pids[int(name[len(role):]) - 1] = proc.pid
    return proc


def stop(c, name, timeout=20):
    """SIGTERM to the recorded supervisor of NAME; returns the seconds until
    it exited."""
    role = "frontend" if name.startswith("frontend") else "backend"
    pids = c.frontend_pids if role == "frontend" else c.backend_pids
    pid = pids[int(name[len(role):]) - 1]
    os.kill(pid, signal.SIGTERM)
    return wait_exit(pid, timeout)


def conf_value(c, name, key):
    """A setting from DIR/conf/NAME.conf (the last line for key wins)."""
    value = None
    for line in (c.dir / "conf" / f"{name}.conf").read_text().splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip() == key:
            value = v.strip()
    return value
