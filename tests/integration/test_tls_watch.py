"""Certificate reload without SIGHUP: the frontend watches the directories of
tls_cert and tls_key (inotify) and reloads when a mounted Kubernetes Secret is
updated. The kubelet's layout is reproduced: the files are symlinks through
`..data`, itself a symlink to a timestamped directory; an update writes a new
directory and renames a new `..data` over the old one."""

import os
import shutil
import time

import proc_util
from test_tls import make_cert, serial_of, wait_for_serial


def kubelet_write(secret_dir, version, files):
    """Publishes {name: source path} as a new version of the mounted Secret,
    atomically, the way the kubelet's AtomicWriter does."""
    ts = os.path.join(secret_dir, f"..{version}")
    os.mkdir(ts)
    for name, src in files.items():
        shutil.copy(src, os.path.join(ts, name))
    old = os.path.realpath(os.path.join(secret_dir, "..data")) \
        if os.path.islink(os.path.join(secret_dir, "..data")) else None
    tmp = os.path.join(secret_dir, "..data_tmp")
    os.symlink(os.path.basename(ts), tmp)
    os.rename(tmp, os.path.join(secret_dir, "..data"))
    for name in files:
        link = os.path.join(secret_dir, name)
        if not os.path.islink(link):
            os.symlink(os.path.join("..data", name), link)
    if old:
        shutil.rmtree(old)


def test_secret_update_reloads_without_sighup(cluster_factory):
    c = cluster_factory(frontends=1, backends=1)
    tls_dir = os.path.join(c.dir, "tls")
    secret = os.path.join(c.dir, "secret")
    os.mkdir(secret)
    kubelet_write(secret, "v1", {"tls.crt": os.path.join(tls_dir, "server.pem"),
                                 "tls.key": os.path.join(tls_dir, "server.key")})
    # The frontend again, reading the certificate through the Secret's links.
    proc_util.stop(c, "frontend1")
    proc_util.start(c, "frontend1", env={"PETREL_TLS_CERT": os.path.join(secret, "tls.crt"),
                                         "PETREL_TLS_KEY": os.path.join(secret, "tls.key")})
    proc_util.wait_ready(c.frontend_http_ports[0])
    port = c.imaps_ports[0]
    old_serial = serial_of(c, port)

    crt, key = make_cert(tls_dir, "rotated")
    new_serial = os.popen(f"openssl x509 -in {crt} -noout -serial").read().strip().split("=")[1]
    t0 = time.monotonic()
    kubelet_write(secret, "v2", {"tls.crt": crt, "tls.key": key})
    got = wait_for_serial(c, port, new_serial, timeout=10)
    assert got.lstrip("0") == new_serial.lstrip("0"), (got, new_serial, old_serial)
    took = time.monotonic() - t0
    # Debounced by a second, then every worker has the new one.
    assert took >= 0.9, took
    for _ in range(12):
        assert serial_of(c, port).lstrip("0") == new_serial.lstrip("0")
    log = (c.dir / "logs" / "frontend1.log").read_text()
    assert "certificate files changed" in log

    # An update with a broken certificate keeps the current one.
    bad = os.path.join(c.dir, "bad.pem")
    with open(bad, "w") as f:
        f.write("not a certificate\n")
    kubelet_write(secret, "v3", {"tls.crt": bad, "tls.key": key})
    time.sleep(2)
    for _ in range(4):
        assert serial_of(c, port).lstrip("0") == new_serial.lstrip("0")
    assert "TLS reload failed" in (c.dir / "logs" / "frontend1.log").read_text()

    # An edit in place behind the links (no swap) is seen as well.
    crt2, key2 = make_cert(tls_dir, "edited")
    serial2 = os.popen(f"openssl x509 -in {crt2} -noout -serial").read().strip().split("=")[1]
    data = os.path.join(secret, "..data")
    shutil.copy(key2, os.path.join(data, "tls.key"))
    shutil.copy(crt2, os.path.join(data, "tls.crt"))
    got = wait_for_serial(c, port, serial2, timeout=10)
    assert got.lstrip("0") == serial2.lstrip("0")
