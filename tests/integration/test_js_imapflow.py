"""Petrel driven by imapflow, the npm IMAP client with its own parser.

Each case of tests/js/imapflow_suite.mjs is one test here: a node process,
a fresh account, the session's 2x2 cluster (frontend 1 and 2 for the
multi-device cases, the cluster's CA for STARTTLS and implicit TLS). The
script prints one JSON line per check and one result line; a failure shows
the check that failed, what imapflow got and the script's stderr.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SUITE = JS_DIR / "imapflow_suite.mjs"
CASE_TIMEOUT = 120  # seconds; the longest case takes ~6 s, ~20 s under ASan

# The cases, in the suite's order; test_case_list checks this against the
# script, so a case added there is not silently left out here.
CASES = [
    "starttls", "implicit_tls", "auth_plain_and_login", "id_namespace",
    "list_special_use_status", "mailbox_lifecycle", "status", "open_and_lock",
    "append_fetch", "download", "search", "flags", "copy_move_delete",
    "idle_events", "idle_events_qresync", "selected_renamed_deleted", "large_message",
    "idle_restarts", "multi_device", "concurrent_append", "qresync_offline_500",
]

pytestmark = pytest.mark.skipif(
    not shutil.which("node") or not (JS_DIR / "node_modules" / "imapflow").exists(),
    reason="node or tests/js/node_modules missing (make deps)")


def run_node(*args):
    return subprocess.run(["node", str(SUITE), *args], capture_output=True, text=True,
                          timeout=CASE_TIMEOUT, cwd=JS_DIR)


def parse_lines(stdout):
    """The script's JSON lines; anything else it printed (a crash's trace
    on stdout) becomes a failed check, so it shows in the failure."""
    lines = []
    for line in stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        lines.append(obj if isinstance(obj, dict) else {"check": "stdout", "ok": False, "detail": line})
    return lines


def test_case_list():
    r = run_node("--list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == CASES


@pytest.mark.parametrize("case", CASES)
def test_imapflow(cluster, new_account, case):
    user, password = new_account()
    # A second account whose password needs quoting or a literal in LOGIN
    # and is UTF-8 in SASL: space, quote, backslash, braces, non-ASCII.
    user2, password2 = new_account(password='p\u00e4 ss"w\\\u00f6{3}rd')
    config = {"imap": cluster.imap_ports, "imaps": cluster.imaps_ports,
              "ca": cluster.tls_ca, "user": user, "pass": password,
              "user2": user2, "pass2": password2}
    r = run_node(case, json.dumps(config))
    lines = parse_lines(r.stdout)
    results = [x for x in lines if "result" in x]
    failed = [x for x in lines if x.get("ok") is False]
    why = (f"{results[-1]['error'] if results else 'no result line'}\n"
           f"failed check: {failed[0] if failed else '-'}\nexit {r.returncode}\n"
           f"stderr:\n{r.stderr[-4000:]}")
    assert len(results) == 1 and results[0]["case"] == case, why
    assert results[0]["result"] == "pass" and r.returncode == 0, why
    # A case that checked nothing proves nothing.
    assert results[0]["checks"] == sum(1 for x in lines if "check" in x) > 0, why
