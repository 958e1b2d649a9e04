"""Backends by name: `backends = NAME:PORT` gets links to every address NAME
resolves to (a Kubernetes headless Service), looked up again every
backends_refresh seconds; a new address gets links, and the links of an
address that left the answer take no new calls and close once their calls
are done.

The name is served by a hosts file of the test's own, bind-mounted over
/etc/hosts in a private mount namespace for the frontend alone (`unshare -m`),
so the machine's /etc/hosts is never touched; the backends listen on
127.0.0.2 and 127.0.0.3 with the same port, as pods of a Service do."""

import socket
import subprocess

import pytest

import proc_util
from imap_util import Imap, make_message, status_of
from test_ops import scrape, wait_for


def can_unshare():
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Links one frontend holds to each backend address: its two workers, each
# with backend_links of them (the default, 4).
LINKS = 2 * 4


def links_of(c, i):
    """Frontend links a backend holds (its gauge, over its workers)."""
    return scrape(c.backend_http_ports[i]).value("petrel_backend_frontend_links")


def test_localhost_name_yields_links(cluster_factory):
    """A name (localhost) instead of an address: links come up, and work."""
    c = cluster_factory(frontends=1, backends=2)
    ports = [proc_util.conf_value(c, f"backend{i}", "listen").rsplit(":", 1)[1] for i in (1, 2)]
    proc_util.stop(c, "frontend1")
    proc_util.start(c, "frontend1", env={
        "PETREL_BACKENDS": ",".join(f"localhost:{p}" for p in ports)})
    proc_util.wait_ready(c.frontend_http_ports[0])
    log = (c.dir / "logs" / "frontend1.log").read_text()
    for p in ports:
        assert f"name=localhost:{p} backend=127.0.0.1:{p}" in log, log[-3000:]
    wait_for(lambda: links_of(c, 0) == LINKS and links_of(c, 1) == LINKS, 10,
             f"{LINKS} links per backend")
    address, password = c.new_account()
    with Imap(c.imap_ports[0]) as imap:
        imap.login(address, password)
        for i in range(6):   # spread over both backends
            assert status_of(imap.append("INBOX", make_message(f"m{i}"))) == b"OK"
        untagged = imap.select()
        assert b"* 6 EXISTS" in untagged, untagged


@pytest.mark.skipif(not can_unshare(), reason="needs a private mount namespace (unshare -m)")
def test_links_follow_dns(cluster_factory):
    c = cluster_factory(frontends=1, backends=2)
    port = free_port()
    hosts = c.dir / "hosts"

    def publish(*ips):
        # Rewritten in place: the bind mount shows this very inode.
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n" + "".join(f"{ip} petrel-backend\n" for ip in ips))

    # The backends again, as two pods: same port, addresses of their own.
    for i, ip in ((1, "127.0.0.2"), (2, "127.0.0.3")):
        proc_util.stop(c, f"backend{i}")
        proc_util.start(c, f"backend{i}", env={"PETREL_LISTEN": f"{ip}:{port}"})
    for i in (0, 1):
        proc_util.wait_ready(c.backend_http_ports[i])

    publish("127.0.0.2")
    proc_util.stop(c, "frontend1")
    proc_util.start(c, "frontend1",
                    env={"PETREL_BACKENDS": f"petrel-backend:{port}",
                         "PETREL_BACKENDS_REFRESH": "1"},
                    prefix=["unshare", "-m", "sh", "-c",
                            f'mount --bind "{hosts}" /etc/hosts && exec "$0" "$@"'])
    proc_util.wait_ready(c.frontend_http_ports[0])
    wait_for(lambda: links_of(c, 0) == LINKS, 10, "links to 127.0.0.2")
    assert links_of(c, 1) == 0

    address, password = c.new_account()
    with Imap(c.imap_ports[0]) as imap:
        imap.login(address, password)
        assert status_of(imap.append("INBOX", make_message("via .2"))) == b"OK"

    # A second pod appears.
    publish("127.0.0.2", "127.0.0.3")
    wait_for(lambda: links_of(c, 1) == LINKS, 10, "links to the new address 127.0.0.3")
    assert links_of(c, 0) == LINKS

    # Back to .2 alone, then an APPEND streams through it (its literal is
    # larger than rpc_chunk, so the backend holds the call) while .2 leaves.
    publish("127.0.0.2")
    wait_for(lambda: links_of(c, 1) == 0, 10, "links to 127.0.0.3 retired")
    writer = Imap(c.imap_ports[0])
    writer.login(address, password)
    message = make_message("streamed across the change", body=b"z" * 600000 + b"\r\n")
    writer.send(f"s1 APPEND INBOX {{{len(message)}}}\r\n")
    assert writer.response().startswith(b"+")
    writer.send(message[:300000])
    wait_for(lambda: scrape(c.backend_http_ports[0]).value("petrel_backend_requests_inflight") >= 1,
             10, "the APPEND to reach 127.0.0.2")

    publish("127.0.0.3")
    wait_for(lambda: links_of(c, 1) == LINKS, 10, "links to 127.0.0.3")
    # New calls go to .3 only; the link with the call in flight stays.
    with Imap(c.imap_ports[0]) as imap:
        imap.login(address, password)
        for i in range(4):
            assert status_of(imap.append("INBOX", make_message(f"via .3 {i}"))) == b"OK"
    assert links_of(c, 0) >= 1, "the link with a call in flight was closed"
    writer.send(message[300000:] + b"\r\n")
    _, tagged = writer.read_until("s1")
    assert status_of(tagged) == b"OK", tagged
    # Its last call done, the retired link closes.
    wait_for(lambda: links_of(c, 0) == 0, 10, "the retired links to close")
    untagged = writer.select()
    assert b"* 6 EXISTS" in untagged, untagged
    writer.close()
    log = (c.dir / "logs" / "frontend1.log").read_text()
    assert "backend address gone, retiring its link" in log
