"""Fixtures for the integration tests.

`cluster` is one local cluster (2 frontends, 2 backends, private PostgreSQL and
Redis) shared by the whole session, brought up with deploy/local/cluster and
stopped at the end, failures included. Tests stay independent by working with
accounts of their own: `new_account()` makes a fresh one each call.

    def test_login(cluster, new_account):
        address, password = new_account()
        port = cluster.imap_ports[0]

`cluster_factory` brings up extra clusters (stopped when the test ends), for
tests that need one of their own, e.g. to stop it.
"""

import itertools
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = ROOT / "deploy" / "local" / "cluster"
# The servers under test: bin/, or another build's (`make test SAN=1` sets
# PETREL_CLUSTER_BIN=build-san/bin; deploy/local/cluster reads it too).
BIN = Path(os.environ.get("PETREL_CLUSTER_BIN") or ROOT / "bin")
ADMIN = BIN / "petrel-admin"
# Lines of a sanitizer report in a server's log (ASan, UBSan). Leaks at exit
# (LeakSanitizer) are not counted: a server stopped mid-request may hold some.
SANITIZER_REPORT = ("ERROR: AddressSanitizer", "runtime error:",
                    "ERROR: UndefinedBehaviorSanitizer")
# test_valgrind.py runs the servers under memcheck, which cannot run a
# sanitizer build: `make test SAN=1` does not collect it (not a skip: the
# suite's counts stay passed and failed only).
FRONTEND_BIN = BIN / "petrel-frontend"
if FRONTEND_BIN.exists() and b"__asan_init" in FRONTEND_BIN.read_bytes():
    collect_ignore = ["test_valgrind.py"]
# Cluster state lives in the build tree: short paths, wiped by `make clean`.
CLUSTERS_DIR = ROOT / "build" / "test-clusters"

UP_TIMEOUT = 120  # seconds; the script itself gives up after ~20 s per stage
DOWN_TIMEOUT = 120

_account_numbers = itertools.count(1)


def clean_env(**extra):
    """The environment without PETREL_* variables: the binaries read
    PETREL_<KEY> over their config files, so a stray one from the caller's
    shell must not redirect a test."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PETREL_") or k == "PETREL_CLUSTER_BIN"}
    env.update(extra)
    return env


def parse_exports(text):
    """Parses `export NAME=value` lines into {NAME: value}; raises ValueError
    on any other non-empty line."""
    values = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        words = shlex.split(line)
        if len(words) != 2 or words[0] != "export" or "=" not in words[1]:
            raise ValueError(f"not an export line: {line!r}")
        name, value = words[1].split("=", 1)
        values[name] = value
    return values


def log_tails(directory, lines=30):
    """The last lines of every log of a cluster, for failure messages."""
    out = []
    for log in sorted(Path(directory, "logs").glob("*.log")):
        try:
            tail = log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        out.append(f"---- {log}\n" + "\n".join(tail))
    return "\n".join(out)


def _ints(value):
    return [int(x) for x in value.split(",") if x] if value else []


class Cluster:
    """A running local cluster, described by the export lines of `up`.

    Attributes: dir, pg_url, redis_url, tls_ca (or None), the port lists
    imap_ports, imaps_ports, pop3_ports, pop3s_ports, lmtp_ports,
    frontend_http_ports, backend_http_ports (empty when not served), and
    frontend_pids, backend_pids. `env` holds every exported variable and
    `stdout` the raw output of `up`.
    """

    def __init__(self, stdout):
        self.stdout = stdout
        self.env = parse_exports(stdout)
        self.dir = Path(self.env["PETREL_DIR"])
        self.pg_url = self.env["PETREL_PG_URL"]
        self.redis_url = self.env["PETREL_REDIS_URL"]
        self.tls_ca = self.env.get("PETREL_TLS_CA")
        for name in ("imap", "imaps", "pop3", "pop3s", "lmtp", "frontend_http", "backend_http"):
            setattr(self, f"{name}_ports", _ints(self.env.get(f"PETREL_{name.upper()}_PORTS")))
        self.frontend_pids = _ints(self.env["PETREL_FRONTEND_PIDS"])
        self.backend_pids = _ints(self.env["PETREL_BACKEND_PIDS"])
        self.stopped = False

    def __getitem__(self, name):
        return self.env[name]

    @property
    def pg_port(self):
        return int(self.pg_url.rsplit(":", 1)[1].split("/")[0])

    @property
    def redis_port(self):
        return int(self.redis_url.rsplit(":", 1)[1])

    def admin(self, *args, input=None, check=False):
        """Runs bin/petrel-admin ARGS against this cluster's database and
        returns the CompletedProcess (text mode, output captured)."""
        return subprocess.run(
            [str(ADMIN), *map(str, args)], input=input, capture_output=True, text=True,
            env=clean_env(PETREL_PG_URL=self.pg_url), timeout=60, check=check)

    def new_account(self, password=None, domain="example.com"):
        """Creates a fresh account and returns (address, password)."""
        address = f"u{next(_account_numbers)}@{domain}"
        password = password or "pw-" + secrets.token_hex(6)
        r = self.admin("user", "add", address, "--password", password)
        if r.returncode != 0:
            raise RuntimeError(f"petrel-admin user add {address} failed "
                               f"({r.returncode}): {r.stderr.strip()}")
        return address, password

    def down(self):
        """Stops the cluster (idempotent); raises if `down` fails."""
        if self.stopped:
            return
        self.stopped = True
        r = subprocess.run([str(CLUSTER_SCRIPT), "down", "--dir", str(self.dir)],
                           capture_output=True, text=True, env=clean_env(), timeout=DOWN_TIMEOUT)
        if r.returncode != 0:
            raise RuntimeError(f"cluster down failed ({r.returncode}):\n{r.stderr}")


def cluster_up(frontends=1, backends=1, prefix="cluster-", env=None):
    """Brings up a cluster in a new directory under build/test-clusters;
    on failure stops what was started and raises with the logs' tails.
    env: extra PETREL_CLUSTER_* variables for deploy/local/cluster, e.g.
    {"PETREL_CLUSTER_FRONTEND_CONF": "pop3_lock_ttl = 2"}."""
    for b in ("petrel-frontend", "petrel-backend", "petrel-admin"):
        if not (BIN / b).exists():
            raise RuntimeError(f"{BIN}/{b} is missing: run make first")
    CLUSTERS_DIR.mkdir(parents=True, exist_ok=True)
    directory = tempfile.mkdtemp(prefix=prefix, dir=CLUSTERS_DIR)
    cmd = [str(CLUSTER_SCRIPT), "up", "--frontends", str(frontends),
           "--backends", str(backends), "--dir", directory]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(**(env or {})),
                           timeout=UP_TIMEOUT)
    except subprocess.TimeoutExpired:
        r = None
    if r is None or r.returncode != 0:
        subprocess.run([str(CLUSTER_SCRIPT), "down", "--dir", directory],
                       capture_output=True, env=clean_env(), timeout=DOWN_TIMEOUT)
        why = "timed out" if r is None else f"exited {r.returncode}:\n{r.stderr}"
        raise RuntimeError(f"cluster up {why}\n{log_tails(directory)}")
    return Cluster(r.stdout)


def sanitizer_reports(directory, context=20):
    """The sanitizer reports (ASan/UBSan) in a cluster's logs, each as
    'log: lines', for `make test SAN=1`; empty when there are none."""
    found = []
    for log in sorted(Path(directory, "logs").glob("*.log")):
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for i, line in enumerate(lines):
            if any(m in line for m in SANITIZER_REPORT):
                found.append(f"{log}: " + "\n".join(lines[i:i + context]))
                break
    return found


def _finish(request, cluster, failed_before):
    """Stops a cluster; deletes its directory unless a test failed meanwhile,
    so the logs stay for a look after a failure. A sanitizer report in any
    server log fails (the teardown errors, the directory stays)."""
    cluster.down()
    reports = sanitizer_reports(cluster.dir)
    if reports:
        raise AssertionError("sanitizer reports in the cluster's logs:\n" + "\n\n".join(reports))
    if request.session.testsfailed == failed_before:
        shutil.rmtree(cluster.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(request):
    """The session's cluster: 2 frontends, 2 backends."""
    c = cluster_up(frontends=2, backends=2, prefix="session-")
    try:
        yield c
    finally:
        _finish(request, c, 0)


@pytest.fixture
def cluster_factory(request):
    """A function (frontends=1, backends=1, env=None) -> Cluster for tests that need a
    cluster of their own; every cluster it made is stopped after the test."""
    made = []
    failed_before = request.session.testsfailed

    def make(frontends=1, backends=1, env=None):
        made.append(cluster_up(frontends, backends, prefix="extra-", env=env))
        return made[-1]

    yield make
    for c in made:
        _finish(request, c, failed_before)


# Session-scoped like `cluster`, so fixtures of any scope can use them.
@pytest.fixture(scope="session")
def pg_url(cluster):
    return cluster.pg_url


@pytest.fixture(scope="session")
def admin(cluster):
    """admin(*args, input=None) -> CompletedProcess of bin/petrel-admin."""
    return cluster.admin


@pytest.fixture(scope="session")
def new_account(cluster):
    """new_account(password=None) -> (address, password) of a fresh account."""
    return cluster.new_account
