"""helm/ and the Dockerfile, checked without a cluster or a helm binary.

The chart's templates keep to a small subset of Go templating (``{{ .Values.x }}``,
``{{ .Release.Name }}``, ``{{ .Chart.X }}``, ``if``/``else``/``end``, pipelines through ``quote``,
``toYaml``, ``nindent N``, ``indent N``, ``default``), with Go's ``{{-``/``-}}`` whitespace trimming.
:func:`render` implements exactly that subset and refuses anything else, so a template that would need
real helm fails here. Every rendered manifest is validated against the Kubernetes OpenAPI schemas shipped
by ``kubernetes-validate`` (offline, strict: unknown fields fail), then the seed's production values are
asserted on the objects.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
K8S_VERSION = "1.30"
RELEASE = "cap-verifier-api"
STATE = "/var/lib/cap-state"  # the state volume's mount point
DATA = f"{STATE}/data"  # CAP_DATA_DIR, one level below it

# --- a renderer for the template subset ---

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_ARG = re.compile(r'"(?:\\.|[^"\\])*"|\S+')


class TemplateError(Exception):
    pass


def _lookup(path: str, scope: dict[str, Any]) -> Any:
    value: Any = scope
    for part in path.lstrip(".").split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _arg(token: str, scope: dict[str, Any]) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if token in ("true", "false"):
        return token == "true"
    if token.startswith("."):
        return _lookup(token, scope)
    raise TemplateError(f"unsupported argument {token!r}")


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def _apply(func: str, args: list[Any], piped: Any, has_piped: bool) -> Any:
    if has_piped:
        args = [*args, piped]
    if func == "quote":
        (value,) = args
        return json.dumps("" if value is None else _text(value))
    if func == "toYaml":
        (value,) = args
        return _to_yaml(value)  # like helm: {} -> "{}", [] -> "[]", None -> "null"
    if func in ("nindent", "indent"):
        width, text = args
        indented = "\n".join(" " * width + line if line else line for line in str(text).split("\n"))
        return "\n" + indented if func == "nindent" else indented
    if func == "default":
        fallback, value = args
        return value if _truthy(value) else fallback
    raise TemplateError(f"unsupported function {func!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError(f"cannot print a {type(value).__name__} without toYaml")
    return str(value)


def _pipeline(expr: str, scope: dict[str, Any]) -> Any:
    value: Any = None
    for i, command in enumerate(part.strip() for part in expr.split("|")):
        tokens = _ARG.findall(command)
        if not tokens:
            raise TemplateError(f"empty command in {expr!r}")
        head, rest = tokens[0], [_arg(t, scope) for t in tokens[1:]]
        if head.startswith(".") and i == 0 and not rest:
            if _lookup(head, scope) is None and head.startswith(".Values"):
                raise TemplateError(f"{head} is not set in values")
            value = _lookup(head, scope)
        elif head.startswith("."):
            raise TemplateError(f"unexpected path {head!r} in {expr!r}")
        else:
            value = _apply(head, rest, value, has_piped=i > 0)
    return value


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", {}, [])


def render(template: str, scope: dict[str, Any]) -> str:
    """Render ``template`` (the subset above) with Go's whitespace trimming."""
    parts: list[tuple[str, str]] = []  # ("text", s) or ("action", expr)
    pos, trim_next = 0, False
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if match.group(1):
            text = text.rstrip(" \t\r\n")
        parts.append(("text", text))
        parts.append(("action", match.group(2)))
        trim_next, pos = bool(match.group(3)), match.end()
    tail = template[pos:]
    parts.append(("text", tail.lstrip(" \t\r\n") if trim_next else tail))

    out: list[str] = []
    stack: list[tuple[bool, bool]] = []  # (this branch active, any branch taken)

    def active() -> bool:
        return all(s[0] for s in stack)

    for kind, value in parts:
        if kind == "text":
            if active():
                out.append(value)
        elif value.startswith("/*"):
            continue
        elif value.startswith("if "):
            cond = active() and _truthy(_pipeline(value[3:], scope))
            stack.append((cond, cond))
        elif value == "else":
            if not stack:
                raise TemplateError("else without if")
            _, taken = stack.pop()
            stack.append((not taken and active(), True))
        elif value == "end":
            if not stack:
                raise TemplateError("end without if")
            stack.pop()
        elif re.match(r"(range|with|define|template|include|block)\b", value):
            raise TemplateError(f"unsupported action {{{{ {value} }}}}")
        elif active():
            out.append(_text(_pipeline(value, scope)))
    if stack:
        raise TemplateError("if without end")
    return "".join(out)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def render_chart(*value_files: str, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's manifests for these values (a fresh copy: callers may change them)."""
    return copy.deepcopy(_rendered(value_files, json.dumps(overrides or {}, sort_keys=True)))


@functools.cache
def _rendered(value_files: tuple[str, ...], overrides_json: str) -> list[dict[str, Any]]:
    overrides = json.loads(overrides_json)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name in value_files:
        values = _merge(values, yaml.safe_load((CHART / name).read_text()))
    values = _merge(values, overrides or {})
    scope = {
        "Values": values,
        "Release": {"Name": RELEASE, "Namespace": "cap-production", "Service": "Helm"},
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
    }
    docs = []
    for path in sorted((CHART / "templates").glob("*.yaml")):
        for doc in yaml.safe_load_all(render(path.read_text(), scope)):
            if doc is not None:
                docs.append(doc)
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


# --- the renderer itself ---


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        pytest.param("a: {{ .Values.x }}", {"x": 1}, "a: 1", id="value"),
        pytest.param("a: {{ .Values.x | quote }}", {"x": 8080}, 'a: "8080"', id="quote"),
        pytest.param(
            "a:\n  {{- toYaml .Values.m | nindent 2 }}\n",
            {"m": {"k": "v", "b": 1}},
            "a:\n  b: 1\n  k: v\n",
            id="toYaml_nindent_trims_left",
        ),
        pytest.param(
            "x\n{{- if .Values.on }}\ny\n{{- else }}\nz\n{{- end }}\n", {"on": False}, "x\nz\n", id="if_else"
        ),
        pytest.param(
            "{{- if .Values.on }}\nkind: A\n{{- end }}\n", {"on": True}, "\nkind: A\n", id="leading_if"
        ),
        pytest.param('{{ .Values.a | default "d" }}', {"a": ""}, "d", id="default"),
    ],
)
def test_renderer(template: str, values: dict[str, Any], expected: str) -> None:
    assert render(template, {"Values": values}) == expected


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{{ range .Values.x }}{{ end }}", id="range"),
        pytest.param('{{ include "x" . }}', id="include"),
        pytest.param("{{ .Values.missing }}", id="missing_value"),
        pytest.param("{{ if .Values.x }}", id="unclosed_if"),
        pytest.param("{{ .Values.m }}", id="map_without_toYaml"),
    ],
)
def test_renderer_refuses_what_it_does_not_implement(template: str) -> None:
    with pytest.raises(TemplateError):
        render(template, {"Values": {"x": [1], "m": {"a": 1}}})


# --- the chart ---

MULTINODE = ("values-prod.yaml", "values-multinode.yaml")
VALUE_SETS = [
    pytest.param((), id="defaults"),
    pytest.param(("values-prod.yaml",), id="prod"),
    pytest.param(MULTINODE, id="multinode"),
]


@pytest.mark.parametrize("value_files", VALUE_SETS)
def test_every_manifest_is_valid_kubernetes(value_files: tuple[str, ...]) -> None:
    docs = render_chart(*value_files)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {where}: {exc.message}")


def test_validator_rejects_a_broken_manifest() -> None:
    deployment = copy.deepcopy(by_kind(render_chart(), "Deployment", RELEASE))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_optional_objects_follow_their_switches() -> None:
    kinds = {d["kind"] for d in render_chart()}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds
    assert not kinds & {"Ingress", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "NetworkPolicy"}
    prod = {d["kind"] for d in render_chart("values-prod.yaml")}
    assert {"Ingress", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "NetworkPolicy"} <= prod
    off = render_chart(overrides={"worker": {"enabled": False}, "podDisruptionBudget": {"enabled": False}})
    assert [d["metadata"]["name"] for d in off if d["kind"] == "Deployment"] == [RELEASE]
    assert "PodDisruptionBudget" not in {d["kind"] for d in off}


@pytest.fixture(scope="module")
def prod() -> list[dict[str, Any]]:
    return render_chart("values-prod.yaml")


def _api_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = by_kind(docs, "Deployment", RELEASE)["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "api"]
    return container


def test_prod_limits_and_rolling_update(prod: list[dict[str, Any]]) -> None:
    assert _api_container(prod)["resources"]["limits"] == {"cpu": "2000m", "memory": "4Gi"}
    deployment = by_kind(prod, "Deployment", RELEASE)
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert "replicas" not in deployment["spec"]  # owned by the HPA


def test_prod_hpa_and_pdb(prod: list[dict[str, Any]]) -> None:
    hpa = by_kind(prod, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": RELEASE}
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    pdb = by_kind(prod, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1
    pod_labels = by_kind(prod, "Deployment", RELEASE)["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()


def test_prod_ingress_terminates_tls(prod: list[dict[str, Any]]) -> None:
    ingress = by_kind(prod, "Ingress")["spec"]
    (tls,) = ingress["tls"]
    (rule,) = ingress["rules"]
    assert tls["secretName"] and tls["hosts"] == [rule["host"]]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == by_kind(prod, "Service", RELEASE)["metadata"]["name"] == RELEASE


def test_api_binds_all_interfaces_with_probes(prod: list[dict[str, Any]]) -> None:
    container = _api_container(prod)
    args = container["args"]
    assert args[0] == "serve" and "--no-prefect" in args
    assert args[args.index("--host") + 1] == "0.0.0.0"
    port = int(args[args.index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port == 8080
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service_port = by_kind(prod, "Service", RELEASE)["spec"]["ports"][0]
    assert service_port["targetPort"] == container["ports"][0]["name"]


def test_pods_run_non_root_on_a_read_only_root(prod: list[dict[str, Any]]) -> None:
    for deployment in (d for d in prod if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "limits" in container["resources"], container["name"]
        mounts = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, deployment["metadata"]["name"]


def test_signing_keys_come_from_a_secret_read_only(prod: list[dict[str, Any]]) -> None:
    for name in (RELEASE, f"{RELEASE}-worker"):
        pod = by_kind(prod, "Deployment", name)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["signing-keys"]["secret"] == {"secretName": "cap-signing-keys", "defaultMode": 0o400}
        assert volumes["keys"]["emptyDir"]["medium"] == "Memory"
        (init,) = pod["initContainers"]
        mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
        assert mounts["/etc/cap/signing-keys"]["readOnly"] is True
        assert mounts["/var/lib/cap-keys"]["name"] == "keys" and "umask 077" in init["args"][0]
        assert "/var/lib/cap-keys/" in init["args"][0]  # where the init container copies them
        main = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        assert (main[STATE], main[f"{DATA}/keys"]) == ("data", "keys")
        assert "/etc/cap/signing-keys" not in main  # only the init container sees the Secret


def test_api_run_state_is_per_pod(prod: list[dict[str, Any]]) -> None:
    """`cap serve` keeps its multiprocess files in <data>/run/metrics: pod-local, not on a shared PVC."""
    pod = by_kind(prod, "Deployment", RELEASE)["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in _api_container(prod)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[f"{DATA}/run"]]


def test_data_volume_is_a_pvc_in_prod_and_empty_dir_by_default(prod: list[dict[str, Any]]) -> None:
    def data_volume(docs: list[dict[str, Any]]) -> dict[str, Any]:
        pod = by_kind(docs, "Deployment", RELEASE)["spec"]["template"]["spec"]
        return next(v for v in pod["volumes"] if v["name"] == "data")

    assert data_volume(prod)["persistentVolumeClaim"]["claimName"] == f"{RELEASE}-data"
    assert by_kind(prod, "PersistentVolumeClaim")["metadata"]["name"] == f"{RELEASE}-data"
    assert "emptyDir" in data_volume(render_chart())


def test_config_and_prefect_url_reach_the_pods(prod: list[dict[str, Any]]) -> None:
    config = by_kind(prod, "ConfigMap", f"{RELEASE}-env")["data"]
    assert config["PREFECT_API_URL"] == "http://cap-verifier-api-prefect:4200/api"
    assert config["CAP_DATA_DIR"] == DATA
    assert all(isinstance(v, str) for v in config.values())
    for name in (RELEASE, f"{RELEASE}-worker"):
        container = by_kind(prod, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": f"{RELEASE}-env"}} in container["envFrom"]
    signing = yaml.safe_load(by_kind(prod, "ConfigMap", f"{RELEASE}-signing")["data"]["signing.yaml"])
    assert signing["signing"]["mode"] == "single-key"


def test_prefect_worker_and_server(prod: list[dict[str, Any]]) -> None:
    worker = by_kind(prod, "Deployment", f"{RELEASE}-worker")["spec"]["template"]["spec"]
    main = worker["containers"][0]
    assert main["command"] + main["args"] == ["prefect", "worker", "start", "--pool", "cap-process"]
    env = {e["name"]: e for e in main["env"]}
    sidecar = next(c for c in worker["containers"] if c["name"] == "metrics")
    sidecar_env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"]["value"] == sidecar_env["PROMETHEUS_MULTIPROC_DIR"]
    server = by_kind(prod, "Deployment", f"{RELEASE}-prefect")["spec"]["template"]["spec"]["containers"][0]
    db = next(e for e in server["env"] if e["name"] == "PREFECT_API_DATABASE_CONNECTION_URL")
    assert db["valueFrom"]["secretKeyRef"] == {"name": "cap-prefect-db", "key": "connection-url"}
    assert "0.0.0.0" in server["command"]
    assert by_kind(prod, "Service", f"{RELEASE}-prefect")["spec"]["ports"][0]["port"] == 4200


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "cap-verifier"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in pyproject


# --- the image the chart runs ---


def _dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_builds_the_image_the_chart_runs() -> None:
    instructions = _dockerfile()
    by_name: dict[str, list[str]] = {}
    for name, arg in instructions:
        by_name.setdefault(name, []).append(arg)
    assert by_name["FROM"] == ["python:3.11-slim"]
    assert by_name["USER"][-1].split(":")[0] == "10001"
    assert json.loads(by_name["ENTRYPOINT"][-1]) == ["cap"]
    assert "8080" in by_name["EXPOSE"][-1].split()
    assert "/healthz" in by_name["HEALTHCHECK"][-1]
    assert any("pip install ." in run for run in by_name["RUN"])
    cmd = json.loads(by_name["CMD"][-1])
    assert cmd[:1] == ["serve"] and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    # the chart's security context matches the image's user
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == 10001
    # the image's data dir is the chart's, and its parent (locks, journal, a restore's swap) is the user's too
    env = " ".join(by_name["ENV"])
    assert f"CAP_DATA_DIR={DATA}" in env.split() and values["config"]["CAP_DATA_DIR"] == DATA
    assert any(f"install -d -o 10001 -g 10001 -m 0750 {STATE} {DATA}" in run for run in by_name["RUN"])


def test_docker_context_holds_what_the_image_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for name, arg in _dockerfile():
        if name != "COPY" or arg.startswith("--from"):
            continue
        sources = [s for s in arg.split()[:-1] if not s.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: missing"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"
    assert {".git", ".venv", "var", "**/*.pem"} <= ignored


# --- network policies ---


def _pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployment name → its pod template (labels and containers)."""
    return {d["metadata"]["name"]: d["spec"]["template"] for d in docs if d["kind"] == "Deployment"}


def _selected(selector: dict[str, Any], pods: dict[str, dict[str, Any]]) -> list[str]:
    want = selector["matchLabels"].items()
    return [name for name, pod in pods.items() if want <= pod["metadata"]["labels"].items()]


def _named_ports(pod: dict[str, Any]) -> set[str]:
    return {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}


def test_network_policies_allow_only_the_listed_peers_to_the_right_pods(prod: list[dict[str, Any]]) -> None:
    """Each policy selects exactly its component's pods and admits only named peers, on a port they expose."""
    pods = _pods(prod)
    policies = {d["metadata"]["name"]: d["spec"] for d in prod if d["kind"] == "NetworkPolicy"}
    expected = {
        f"{RELEASE}-api": (
            RELEASE,
            [{"kubernetes.io/metadata.name": "ingress-nginx"}, {"kubernetes.io/metadata.name": "monitoring"}],
            "http",
        ),
        f"{RELEASE}-worker": (
            f"{RELEASE}-worker",
            [{"kubernetes.io/metadata.name": "monitoring"}],
            "metrics",
        ),
        f"{RELEASE}-prefect": (f"{RELEASE}-prefect", None, "http"),
    }
    assert set(policies) == set(expected)
    for name, (deployment, namespaces, port) in expected.items():
        spec = policies[name]
        assert spec["policyTypes"] == ["Ingress"]
        assert _selected(spec["podSelector"], pods) == [deployment], name
        (rule,) = spec["ingress"]
        assert [p["port"] for p in rule["ports"]] == [port] and port in _named_ports(pods[deployment])
        if namespaces is not None:
            assert [peer["namespaceSelector"]["matchLabels"] for peer in rule["from"]] == namespaces
        else:  # the Prefect server: only this release's API and worker pods
            peers = [sorted(_selected(peer["podSelector"], pods)) for peer in rule["from"]]
            assert peers == [[RELEASE], [f"{RELEASE}-worker"]]
            assert all(set(peer) == {"podSelector"} for peer in rule["from"])


def test_network_policies_follow_the_components_that_exist() -> None:
    docs = render_chart(
        "values-prod.yaml", overrides={"worker": {"enabled": False}, "prefectServer": {"enabled": False}}
    )
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"] == [f"{RELEASE}-api"]


REPLICATION = {
    "replication": {
        "enabled": True,
        "url": "s3://cap-replica/prod",
        "url2": "s3://cap-replica-dr/prod",
        "credentialsSecret": "cap-replica-credentials",
    }
}


def test_replication_runs_in_one_sidecar_with_credentials_from_a_secret() -> None:
    docs = render_chart("values-prod.yaml", overrides=REPLICATION)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    worker = by_kind(docs, "Deployment", f"{RELEASE}-worker")["spec"]["template"]["spec"]
    (sidecar,) = [c for c in worker["containers"] if c["name"] == "replication"]
    assert sidecar["command"] + sidecar["args"] == ["cap", "serve", "--replication-only"]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["CAP_REPLICA_URL"] == "s3://cap-replica/prod"
    assert env["CAP_REPLICA_URL_2"] == "s3://cap-replica-dr/prod"
    assert {"secretRef": {"name": "cap-replica-credentials"}} in sidecar["envFrom"]
    assert not any("AWS_SECRET" in json.dumps(d) for d in docs)  # credentials only by reference
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert mounts[f"{DATA}/keys"]["readOnly"] and STATE in mounts  # signs state snapshots
    # no other process replicates the volume: not the API pods (N replicas), not the shared ConfigMap
    assert "CAP_REPLICA_URL" not in json.dumps(by_kind(docs, "Deployment", RELEASE))
    assert "CAP_REPLICA_URL" not in by_kind(docs, "ConfigMap", f"{RELEASE}-env")["data"]
    assert by_kind(docs, "Deployment", f"{RELEASE}-worker")["spec"]["replicas"] == 1


def test_replication_is_off_by_default_and_the_second_url_optional() -> None:
    off = by_kind(render_chart("values-prod.yaml"), "Deployment", f"{RELEASE}-worker")
    assert "replication" not in [c["name"] for c in off["spec"]["template"]["spec"]["containers"]]
    one = {"replication": {**REPLICATION["replication"], "url2": "", "credentialsSecret": ""}}
    worker = by_kind(render_chart(overrides=one), "Deployment", f"{RELEASE}-worker")["spec"]["template"][
        "spec"
    ]
    (sidecar,) = [c for c in worker["containers"] if c["name"] == "replication"]
    assert "CAP_REPLICA_URL_2" not in {e["name"] for e in sidecar["env"]}
    assert sidecar["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-env"}}]  # IRSA: no secret


# --- the state volume's layout (the restore swaps the data dir beside its locks and journal) ---


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("initContainers", []) + pod["containers"]


@pytest.mark.parametrize("value_files", VALUE_SETS)
def test_the_data_dir_is_a_plain_directory_one_level_below_its_volume(value_files: tuple[str, ...]) -> None:
    """The restore swaps CAP_DATA_DIR with its staging dir by rename and keeps the state and restore locks and
    its journal beside it: all of that must be on the volume, and the data dir must not be a mount point."""
    from core.backup.swap import journal_path

    docs = render_chart(*value_files)
    data_dir = Path(by_kind(docs, "ConfigMap", f"{RELEASE}-env")["data"]["CAP_DATA_DIR"])
    beside = journal_path(data_dir).parent  # where core writes the journal, locks, staging and old dirs
    checked = 0
    for name, pod in _pods(docs).items():
        for container in _containers(pod["spec"]):
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if "data" not in mounts.values():
                continue
            checked += 1
            assert mounts.get(str(beside)) == "data", (name, container["name"], mounts)
            assert str(data_dir) not in mounts, (name, container["name"])  # a mount point cannot be renamed
    assert checked >= 3  # API and worker main containers and their init containers at least


@pytest.mark.parametrize("value_files", VALUE_SETS)
def test_init_containers_create_the_mount_points_inside_the_data_dir(value_files: tuple[str, ...]) -> None:
    """A container runtime creates a missing mount point (and its parents) as root, which would leave the
    data dir unwritable for uid 10001: the init container mounts nothing inside it and creates them."""
    docs = render_chart(*value_files)
    data_dir = by_kind(docs, "ConfigMap", f"{RELEASE}-env")["data"]["CAP_DATA_DIR"]
    for name, pod in _pods(docs).items():
        spec = pod["spec"]
        inside = {
            m["mountPath"][len(data_dir) :]
            for c in spec["containers"]
            for m in c.get("volumeMounts", [])
            if m["mountPath"].startswith(data_dir + "/")
        }
        if not inside:
            continue
        (init,) = spec["initContainers"]
        assert not [m for m in init["volumeMounts"] if m["mountPath"].startswith(data_dir)], name
        assert {"name": "CAP_DATA_DIR", "value": data_dir} in init["env"], name
        mkdir = next(line for line in init["args"][0].splitlines() if "mkdir -p" in line)
        for sub in inside:
            assert f'"$CAP_DATA_DIR{sub}"' in mkdir, (name, sub)


# --- PostgreSQL mode (values-multinode.yaml): no node-bound volume, pods spread, secrets by reference ---


@pytest.fixture(scope="module")
def multinode() -> list[dict[str, Any]]:
    return render_chart(*MULTINODE)


def _pod_spec(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return by_kind(docs, "Deployment", name)["spec"]["template"]["spec"]


def test_postgresql_mode_has_no_persistent_volume(multinode: list[dict[str, Any]]) -> None:
    values = yaml.safe_load((CHART / "values-prod.yaml").read_text())
    assert values["persistence"]["enabled"] is True  # prod asks for one; PostgreSQL mode overrides it
    assert "PersistentVolumeClaim" not in {d["kind"] for d in multinode}
    for name in (RELEASE, f"{RELEASE}-worker"):
        volumes = {v["name"]: v for v in _pod_spec(multinode, name)["volumes"]}
        assert "emptyDir" in volumes["data"], name
        assert not [v for v in volumes.values() if "persistentVolumeClaim" in v], name
    # SQLite mode keeps today's single-node chart: the PVC, mounted by API and worker
    prod = render_chart("values-prod.yaml")
    assert by_kind(prod, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    for name in (RELEASE, f"{RELEASE}-worker"):
        volumes = {v["name"]: v for v in _pod_spec(prod, name)["volumes"]}
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == f"{RELEASE}-data"


def test_postgresql_mode_spreads_api_pods_across_nodes(multinode: list[dict[str, Any]]) -> None:
    pods = _pods(multinode)
    spec = _pod_spec(multinode, RELEASE)
    spread = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
    assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in spread.values():
        assert constraint["maxSkew"] == 1 and _selected(constraint["labelSelector"], pods) == [RELEASE]
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "ScheduleAnyway"
    affinity = spec["affinity"]
    assert set(affinity) == {"podAntiAffinity"}  # not the SQLite co-location values-prod.yaml asks for
    (term,) = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert _selected(term["podAffinityTerm"]["labelSelector"], pods) == [RELEASE]
    hard = render_chart(*MULTINODE, overrides={"api": {"spread": {"whenUnsatisfiable": "DoNotSchedule"}}})
    node_rule = _pod_spec(hard, RELEASE)["topologySpreadConstraints"][0]
    assert (node_rule["topologyKey"], node_rule["whenUnsatisfiable"]) == (
        "kubernetes.io/hostname",
        "DoNotSchedule",
    )
    # SQLite mode: no spread, the co-location with the worker's node stays
    prod = _pod_spec(render_chart("values-prod.yaml"), RELEASE)
    assert "topologySpreadConstraints" not in prod and "podAffinity" in prod["affinity"]


def test_postgresql_mode_scales_the_worker_deployment(multinode: list[dict[str, Any]]) -> None:
    worker = by_kind(multinode, "Deployment", f"{RELEASE}-worker")
    assert worker["spec"]["replicas"] == 2 and worker["spec"]["strategy"]["type"] == "RollingUpdate"
    (spread,) = worker["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert _selected(spread["labelSelector"], _pods(multinode)) == [f"{RELEASE}-worker"]
    scaled = render_chart(*MULTINODE, overrides={"worker": {"replicas": 5}})
    assert by_kind(scaled, "Deployment", f"{RELEASE}-worker")["spec"]["replicas"] == 5
    sqlite = by_kind(render_chart("values-prod.yaml"), "Deployment", f"{RELEASE}-worker")
    assert sqlite["spec"]["strategy"] == {"type": "Recreate"}  # one volume: never two workers in a rollout


def test_postgresql_urls_come_only_from_the_secret(multinode: list[dict[str, Any]]) -> None:
    def env_of(docs: list[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in _pod_spec(docs, name)["containers"][0].get("env", [])}

    for name in (RELEASE, f"{RELEASE}-worker"):
        url = env_of(multinode, name)["CAP_DATABASE_URL"]
        assert url["valueFrom"]["secretKeyRef"] == {"name": "cap-postgresql", "key": "cap-database-url"}, name
    prefect = env_of(multinode, f"{RELEASE}-prefect")["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert prefect["valueFrom"]["secretKeyRef"] == {"name": "cap-postgresql", "key": "prefect-database-url"}
    assert "CAP_DATABASE_URL" not in by_kind(multinode, "ConfigMap", f"{RELEASE}-env")["data"]
    assert not re.search(r"postgres(ql)?(\+\w+)?://", json.dumps(multinode))  # no URL in any manifest
    for path in CHART.glob("values*.yaml"):  # nor in any values file, comments aside
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not re.search(r"postgres(ql)?(\+\w+)?://", line.split("#", 1)[0]), f"{path.name}:{number}"
    # SQLite mode: no database URL at all
    assert "CAP_DATABASE_URL" not in json.dumps(render_chart("values-prod.yaml"))


def test_postgresql_mode_renders_no_litestream_sidecar() -> None:
    docs = render_chart(*MULTINODE, overrides=REPLICATION)
    worker = _pod_spec(docs, f"{RELEASE}-worker")
    assert [c["name"] for c in worker["containers"]] == ["worker", "metrics"]
    assert "CAP_REPLICA_URL" not in json.dumps(docs)


def _run_init(script: str, tmp: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """An init container's script under ``sh``, its fixed paths moved into ``tmp``."""
    script = script.replace("/etc/cap/signing-keys", str(tmp / "secret")).replace(
        "/var/lib/cap-keys", str(tmp / "keys-emptydir")
    )
    return subprocess.run(
        ["sh", "-c", script],
        env={"PATH": os.environ["PATH"], "CAP_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("deployment", [RELEASE, f"{RELEASE}-worker"])
def test_init_script_prepares_the_data_dir_and_refuses_the_old_layout(
    deployment: str, tmp_path: Path
) -> None:
    """The init container's script, run for real: a fresh volume gets the data dir with its mount points and
    the keys as 0600 files; a volume that still holds the state at its root (the layout before the data dir
    moved one level down) is refused instead of starting an empty state beside it."""
    (init,) = _pod_spec(render_chart("values-prod.yaml"), deployment)["initContainers"]
    script = init["args"][0]
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "k1.pem").write_text("PRIVATE")
    (tmp_path / "keys-emptydir").mkdir()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    done = _run_init(script, tmp_path, fresh / "data")
    assert done.returncode == 0, done.stderr
    inside = {
        m["mountPath"] for c in _pod_spec(render_chart(), deployment)["containers"] for m in c["volumeMounts"]
    }
    for sub in ("keys", "run"):
        assert (fresh / "data" / sub).is_dir() == (f"{DATA}/{sub}" in inside), sub
    key = tmp_path / "keys-emptydir" / "k1.pem"
    assert key.read_text() == "PRIVATE" and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((fresh / "data").stat().st_mode) == 0o700
    assert _run_init(script, tmp_path, fresh / "data").returncode == 0  # every restart
    old = tmp_path / "old"
    old.mkdir()
    (old / "registry.sqlite").write_bytes(b"entries")
    refused = _run_init(script, tmp_path, old / "data")
    assert refused.returncode == 1 and "move it into" in refused.stderr
    assert not (old / "data").exists()
