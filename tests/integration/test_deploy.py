"""Offline checks of the Kubernetes deployment (deploy/kubernetes).

Renders the kustomize base and every overlay with `kubectl kustomize` (or a
standalone `kustomize build`), then validates every rendered object against
the Kubernetes API schema with tools/k8s-validate (kubernetes-models' OpenAPI
validators plus a strict type check with kubernetes-types: unknown fields
fail, as with `kubectl --validate=strict`). No cluster and no network.

Beyond the schema, the tests hold the manifests to what the deployment
promises: selectors that match, named ports that exist, non-root read-only
containers with requests and limits, a drain window that fits the grace
period, settings the binaries know.

Needs: kubectl (with kustomize v4 or later) or kustomize on PATH, node, and
`npm ci` run in tools/k8s-validate (see its package.json).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
EXTRAS = sorted((K8S / "extras").glob("*.yaml"))
VALIDATOR_DIR = ROOT / "tools" / "k8s-validate"
VALIDATOR = VALIDATOR_DIR / "validate.js"

KUSTOMIZATIONS = [BASE] + OVERLAYS
IDS = [str(p.relative_to(K8S)) for p in KUSTOMIZATIONS]

# Settings the manifests already set for listeners the binaries do not serve
# yet (an unknown PETREL_ variable is ignored). Each may appear in `--help`
# at any time; a name outside this list and `--help` is a typo.
PENDING_SETTINGS = {
    "frontend": {"imaps_listen", "pop3s_listen", "lmtp_listen", "tls_cert", "tls_key"},
    "backend": set(),
}

TIMEOUT = 120


# ------------------------------------------------------------------ tools

def _renderer():
    """The command that renders a kustomization directory, or None."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "version", "--client"], capture_output=True,
                             text=True, timeout=TIMEOUT)
        m = re.search(r"Kustomize Version: v(\d+)", out.stdout)
        if m and int(m.group(1)) >= 4:
            return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build"]
    return None


@pytest.fixture(scope="module")
def render():
    cmd = _renderer()
    if cmd is None:
        pytest.skip("no kustomize v4+: neither `kubectl kustomize` (kubectl >= 1.21) "
                    "nor `kustomize` is on PATH")

    cache = {}

    def _render(directory):
        if directory not in cache:
            out = subprocess.run(cmd + [str(directory)], capture_output=True, text=True,
                                 timeout=TIMEOUT)
            assert out.returncode == 0, f"{' '.join(cmd)} {directory} failed:\n{out.stderr}"
            cache[directory] = out.stdout
        return cache[directory]

    return _render


@pytest.fixture(scope="module")
def validator():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Debian package nodejs)")
    if not (VALIDATOR_DIR / "node_modules" / "kubernetes-models").is_dir():
        pytest.fail(f"validator packages missing: run `npm ci` in {VALIDATOR_DIR}")

    def _run(yaml_text, *args):
        return subprocess.run([node, str(VALIDATOR), *args, "-"], input=yaml_text,
                              capture_output=True, text=True, timeout=TIMEOUT)

    return _run


def objects(validator, yaml_text):
    out = validator(yaml_text, "--dump")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def one(objs, kind, name_prefix):
    """The single object of `kind` whose name starts with name_prefix
    (generated ConfigMaps and Secrets carry a hash suffix)."""
    hits = [o for o in by_kind(objs, kind) if o["metadata"]["name"].startswith(name_prefix)]
    assert len(hits) == 1, f"expected one {kind} {name_prefix}*, found {[h['metadata']['name'] for h in hits]}"
    return hits[0]


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


# ----------------------------------------------------------- schema checks

@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_manifests_match_kubernetes_schema(render, validator, directory):
    out = validator(render(directory))
    assert out.returncode == 0, f"invalid manifests in {directory}:\n{out.stdout}{out.stderr}"
    assert re.search(r"k8s-validate: \d+ objects, all valid", out.stdout), out.stdout


@pytest.mark.parametrize("path", EXTRAS, ids=[p.name for p in EXTRAS])
def test_extra_manifests_match_kubernetes_schema(validator, path):
    out = validator(path.read_text())
    assert out.returncode == 0, f"invalid manifest {path}:\n{out.stdout}{out.stderr}"


BREAKAGES = [
    # (what, substitution applied once to the rendered YAML, word in the report)
    ("unknown field", ("readinessProbe:", "readinesProbe:"), "readinesProbe"),
    ("wrong type", ("terminationGracePeriodSeconds: 90", "terminationGracePeriodSeconds: ninety"),
     "terminationGracePeriodSeconds"),
    ("bad enum value", ("type: LoadBalancer", "type: LoadBalancers"), "/spec/type"),
    ("missing required field", ("      containers:\n", "      sidecars:\n"), "containers"),
    ("unknown kind", ("kind: PodDisruptionBudget", "kind: PodDisruptionBuget"), "no schema"),
]


@pytest.mark.parametrize("what,change,word", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_validator_rejects_broken_manifest(render, validator, what, change, word):
    """The validator is no rubber stamp: one broken field fails the run."""
    good = render(OVERLAYS[0] if OVERLAYS else BASE)
    old, new = change
    assert old in good, f"test out of date: {old!r} no longer in the rendered manifests"
    out = validator(good.replace(old, new, 1))
    assert out.returncode == 1, f"{what} not detected:\n{out.stdout}{out.stderr}"
    assert word in out.stdout, out.stdout


# ------------------------------------------------------ deployment promises

@pytest.fixture(scope="module", params=KUSTOMIZATIONS, ids=IDS)
def rendered(request, render, validator):
    return objects(validator, render(request.param))


def test_expected_objects(rendered):
    kinds = sorted(o["kind"] for o in rendered)
    for kind, n in [("Deployment", 2), ("Service", 3), ("HorizontalPodAutoscaler", 1),
                    ("PodDisruptionBudget", 2), ("Job", 1), ("ConfigMap", 2)]:
        assert kinds.count(kind) == n, f"{kind}: {kinds.count(kind)} (want {n}) in {kinds}"


def test_frontend_services(rendered):
    fe = one(rendered, "Deployment", "petrel-frontend")
    pod_labels = fe["spec"]["template"]["metadata"]["labels"]
    lb = one(rendered, "Service", "petrel-frontend")
    assert lb["spec"]["type"] == "LoadBalancer"
    assert lb["spec"]["externalTrafficPolicy"] == "Local"
    assert sorted(p["port"] for p in lb["spec"]["ports"]) == [110, 143, 993, 995]
    lmtp = one(rendered, "Service", "petrel-lmtp")
    assert lmtp["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert [p["port"] for p in lmtp["spec"]["ports"]] == [24]
    for svc in (lb, lmtp):
        assert selects(svc["spec"]["selector"], pod_labels), svc["metadata"]["name"]


def test_backend_service_is_headless(rendered):
    be = one(rendered, "Deployment", "petrel-backend")
    svc = one(rendered, "Service", "petrel-backend")
    assert svc["spec"]["clusterIP"] == "None"
    assert selects(svc["spec"]["selector"], be["spec"]["template"]["metadata"]["labels"])
    assert [p["port"] for p in svc["spec"]["ports"]] == [7100]


def test_service_target_ports_exist(rendered):
    pods = [d["spec"]["template"] for d in by_kind(rendered, "Deployment")]
    for svc in by_kind(rendered, "Service"):
        targets = [t for t in pods if selects(svc["spec"]["selector"], t["metadata"]["labels"])]
        assert targets, f"Service {svc['metadata']['name']} selects no pods"
        for port in svc["spec"]["ports"]:
            tp = port.get("targetPort", port["port"])
            for t in targets:
                cports = [p for c in t["spec"]["containers"] for p in c.get("ports", [])]
                ok = any(p.get("name") == tp if isinstance(tp, str) else p["containerPort"] == tp
                         for p in cports)
                assert ok, f"Service {svc['metadata']['name']} port {port['name']}: no container port {tp}"


def test_selectors_match(rendered):
    deployments = {d["metadata"]["name"]: d for d in by_kind(rendered, "Deployment")}
    for d in deployments.values():
        assert selects(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
    for pdb in by_kind(rendered, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        assert any(selects(sel, d["spec"]["template"]["metadata"]["labels"]) for d in deployments.values()), \
            f"PDB {pdb['metadata']['name']} selects no Deployment's pods"
    hpa = one(rendered, "HorizontalPodAutoscaler", "petrel-frontend")
    ref = hpa["spec"]["scaleTargetRef"]
    assert ref["kind"] == "Deployment" and ref["name"] in deployments
    assert "replicas" not in deployments[ref["name"]]["spec"], \
        "the HPA owns the frontend's replica count: no spec.replicas in the Deployment"
    assert hpa["spec"]["minReplicas"] >= 2
    metric = hpa["spec"]["metrics"][0]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"


def test_containers_hardened(rendered):
    workloads = by_kind(rendered, "Deployment") + by_kind(rendered, "Job")
    assert workloads
    for w in workloads:
        spec = pod_spec(w)
        name = w["metadata"]["name"]
        psc = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, name
        for c in spec.get("initContainers", []) + spec["containers"]:
            csc = c.get("securityContext", {})
            where = f"{name}/{c['name']}"
            assert csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert (csc.get("runAsUser", psc.get("runAsUser")) or 0) > 0, where
            assert csc.get("readOnlyRootFilesystem") is True, where
            assert csc.get("allowPrivilegeEscalation") is False, where
            assert csc.get("capabilities", {}).get("drop") == ["ALL"], where
            for section in ("requests", "limits"):
                res = c.get("resources", {}).get(section, {})
                assert "cpu" in res and "memory" in res, f"{where}: resources.{section}"


def test_probes(rendered):
    """Readiness and liveness probes on ports the container declares; the
    HTTP ones on the port of the binary's http_listen."""
    for d in by_kind(rendered, "Deployment"):
        env = _config(rendered, d)
        for c in pod_spec(d)["containers"]:
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            where = f"{d['metadata']['name']}/{c['name']}"
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in c, f"{where}: no {probe}"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in c:
                    continue
                action = c[probe].get("httpGet") or c[probe].get("tcpSocket")
                assert action, f"{where}: {probe} is neither httpGet nor tcpSocket"
                port = action["port"]
                number = ports.get(port) if isinstance(port, str) else port
                assert number in ports.values(), f"{where}: {probe} port {port} not declared"
                if "httpGet" in c[probe]:
                    listen = env.get("PETREL_HTTP_LISTEN", "")
                    assert listen.endswith(f":{number}"), \
                        f"{where}: {probe} on port {number}, PETREL_HTTP_LISTEN is {listen!r}"
                    assert c[probe]["httpGet"]["path"] in ("/healthz", "/readyz")


def _config(rendered, deployment):
    """The PETREL_* settings the Deployment's container gets from ConfigMaps."""
    env = {}
    cms = {cm["metadata"]["name"]: cm for cm in by_kind(rendered, "ConfigMap")}
    for c in pod_spec(deployment)["containers"]:
        for src in c.get("envFrom", []):
            if "configMapRef" in src:
                name = src["configMapRef"]["name"]
                assert name in cms, f"{deployment['metadata']['name']}: no ConfigMap {name}"
                env.update(cms[name]["data"])
    return env


def _prestop_seconds(container):
    cmd = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    assert cmd[:1] == ["sleep"] and len(cmd) == 2, f"preStop is not `sleep N`: {cmd}"
    return int(cmd[1])


@pytest.mark.parametrize("role", ["frontend", "backend"])
def test_drain_window_fits_grace_period(rendered, role):
    """preStop sleep + the binary's shutdown_grace, plus a margin, must end
    before Kubernetes sends SIGKILL."""
    d = one(rendered, "Deployment", f"petrel-{role}")
    env = _config(rendered, d)
    grace = int(env.get("PETREL_SHUTDOWN_GRACE", "10"))
    # The supervisor kills its workers 2 s after shutdown_grace.
    (c,) = pod_spec(d)["containers"]
    total = pod_spec(d)["terminationGracePeriodSeconds"]
    assert _prestop_seconds(c) + grace + 5 <= total, \
        f"{role}: preStop {_prestop_seconds(c)} s + shutdown_grace {grace} s + 5 s > {total} s"
    if "PETREL_DRAIN_WINDOW" in env:
        assert int(env["PETREL_DRAIN_WINDOW"]) < grace, "drain_window must be shorter than shutdown_grace"


def _settings(binary):
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    return set(re.findall(r"^([a-z0-9_]+)\s+default ", out.stdout, re.M))


@pytest.mark.parametrize("role", ["frontend", "backend"])
def test_settings_are_known(rendered, role):
    """Every PETREL_* variable the manifests set is a setting of the binary
    (`--help`) or a listed pending one: a typo would be silently ignored."""
    binary = BIN / f"petrel-{role}"
    if not binary.exists():
        pytest.skip(f"{binary} not built")
    known = _settings(binary) | PENDING_SETTINGS[role]
    d = one(rendered, "Deployment", f"petrel-{role}")
    names = set(_config(rendered, d))
    names |= {e["name"] for c in pod_spec(d)["containers"] for e in c.get("env", [])}
    for job in by_kind(rendered, "Job"):
        if role == "backend":  # petrel-admin reads PETREL_PG_URL
            names |= {e["name"] for c in pod_spec(job)["containers"] for e in c.get("env", [])}
    unknown = sorted(n for n in names if n[len("PETREL_"):].lower() not in known)
    assert not unknown, f"{role}: settings no binary reads: {unknown}"


def test_migration_job(rendered):
    job = one(rendered, "Job", "petrel-migrate")
    (c,) = pod_spec(job)["containers"]
    be = one(rendered, "Deployment", "petrel-backend")
    assert c["image"] == pod_spec(be)["containers"][0]["image"], "migrate runs the backend image"
    assert c["command"][-1].endswith("petrel-admin") and c["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    assert any(e["name"] == "PETREL_PG_URL" for e in c["env"])


def test_secrets_are_referenced_consistently(rendered):
    """Every Secret key a workload reads exists where the Secret is rendered
    (the base leaves petrel-secrets to the overlay)."""
    secrets = {s["metadata"]["name"]: s for s in by_kind(rendered, "Secret")}
    for w in by_kind(rendered, "Deployment") + by_kind(rendered, "Job"):
        for c in pod_spec(w)["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] in secrets:
                    s = secrets[ref["name"]]
                    keys = set(s.get("data", {})) | set(s.get("stringData", {}))
                    assert ref["key"] in keys, f"{w['metadata']['name']}: {ref}"
                elif ref and secrets:
                    pytest.fail(f"{w['metadata']['name']}: Secret {ref['name']} is not rendered")
