"""The local cluster script itself (deploy/local/cluster): what `up` prints,
that everything it reports is really there, that `down` leaves nothing
behind, and that two clusters run side by side."""

import os
import re
import socket
import subprocess
from pathlib import Path

from conftest import CLUSTER_SCRIPT, clean_env, parse_exports

# Every name the contract allows `up` to print.
CONTRACT_NAMES = {
    "PETREL_DIR", "PETREL_PG_URL", "PETREL_REDIS_URL",
    "PETREL_IMAP_PORTS", "PETREL_IMAPS_PORTS", "PETREL_POP3_PORTS", "PETREL_POP3S_PORTS",
    "PETREL_LMTP_PORTS", "PETREL_FRONTEND_HTTP_PORTS", "PETREL_BACKEND_HTTP_PORTS",
    "PETREL_FRONTEND_PIDS", "PETREL_BACKEND_PIDS", "PETREL_TLS_CA",
}
ALWAYS = {"PETREL_DIR", "PETREL_PG_URL", "PETREL_REDIS_URL",
          "PETREL_FRONTEND_PIDS", "PETREL_BACKEND_PIDS",
          "PETREL_IMAP_PORTS", "PETREL_POP3_PORTS"}


def accepts(port):
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def all_ports(c):
    """Every TCP port a cluster reported, its stores included."""
    ports = [c.pg_port, c.redis_port]
    for name, value in c.env.items():
        if name.endswith("_PORTS"):
            ports += [int(p) for p in value.split(",")]
    return ports


def alive(pid):
    """True for a live process (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def processes():
    """(pid, pgid, command line) of every live process."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[0] != "Z":
            out.append((int(entry.name), int(stat[2]), cmdline))
    return out


def test_up_prints_only_contract_exports(cluster):
    lines = [l for l in cluster.stdout.splitlines() if l.strip()]
    names = []
    for line in lines:
        m = re.fullmatch(r"export (PETREL_[A-Z0-9_]+)=(\S+)", line)
        assert m, f"not an export line: {line!r}"
        names.append(m.group(1))
    assert len(names) == len(set(names)), "a name is printed twice"
    assert set(names) <= CONTRACT_NAMES, f"names outside the contract: {set(names) - CONTRACT_NAMES}"
    assert ALWAYS <= set(names)

    assert Path(cluster["PETREL_DIR"]).is_absolute()
    assert re.fullmatch(r"postgresql://[^@/]+@127\.0\.0\.1:\d+/\w+", cluster.pg_url)
    assert re.fullmatch(r"redis://127\.0\.0\.1:\d+", cluster.redis_url)
    for name, value in cluster.env.items():
        if name.endswith(("_PORTS", "_PIDS")):
            want = 2  # the session cluster has 2 frontends and 2 backends
            assert len(value.split(",")) == want, f"{name}={value}"
            assert all(x.isdigit() for x in value.split(",")), f"{name}={value}"
    # The same lines are kept in DIR/env for later readers.
    assert parse_exports((cluster.dir / "env").read_text()) == cluster.env


def test_every_reported_port_accepts_connections(cluster):
    ports = all_ports(cluster)
    assert len(ports) == len(set(ports)), f"a port is reported twice: {ports}"
    for port in ports:
        assert accepts(port), f"nothing listens on 127.0.0.1:{port}"


def test_reported_pids_are_the_live_supervisors(cluster):
    for role, pids in (("frontend", cluster.frontend_pids), ("backend", cluster.backend_pids)):
        for i, pid in enumerate(pids, 1):
            assert alive(pid), f"{role}{i} supervisor {pid} is not running"
            # In list order: the Nth pid runs with the Nth config file.
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            conf = str(cluster.dir / "conf" / f"{role}{i}.conf")
            assert conf in cmdline, f"pid {pid} is not {role}{i}: {cmdline!r}"
            # A supervisor leads its own process group (so down can clean it up).
            assert os.getpgid(pid) == pid


def test_bad_arguments_fail_cleanly(tmp_path):
    r = subprocess.run([str(CLUSTER_SCRIPT), "up", "--frontends", "0", "--dir", str(tmp_path)],
                       capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode != 0
    assert r.stdout == ""
    assert r.stderr.strip()


def test_second_cluster_runs_beside_and_down_leaves_nothing(cluster, cluster_factory):
    second = cluster_factory(frontends=1, backends=1)
    assert second.dir != cluster.dir
    assert not set(all_ports(second)) & set(all_ports(cluster))
    for port in all_ports(second):
        assert accepts(port), f"second cluster: nothing on 127.0.0.1:{port}"

    supervisors = second.frontend_pids + second.backend_pids
    second.down()

    for pid in supervisors:
        assert not alive(pid), f"supervisor {pid} survived down"
    leftovers = [(pid, cmd) for pid, pgid, cmd in processes()
                 if pgid in supervisors or str(second.dir) in cmd]
    assert not leftovers, f"processes left after down: {leftovers}"
    for port in all_ports(second):
        assert not accepts(port), f"127.0.0.1:{port} still accepts after down"
    assert not (second.dir / "env").exists()

    # A second down is harmless, and the first cluster is untouched.
    r = subprocess.run([str(CLUSTER_SCRIPT), "down", "--dir", str(second.dir)],
                       capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    for port in all_ports(cluster):
        assert accepts(port), f"first cluster lost 127.0.0.1:{port}"
