"""monitoring/: the Grafana dashboard and the Prometheus alert rules use only metrics core.metrics defines.

The original's dashboard and Week-6 alerts named 18 metrics no code emitted; here every identifier in every
panel query and rule expression must resolve to a series of :data:`core.metrics.REGISTRY`. When promtool is
installed (scripts/install_promtool.sh) the rules, the rule unit tests and the dashboard's queries also go
through it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard-week6.json"
ALERTS = MONITORING / "alerts.yaml"
SEED_ALERTS = {
    "HighEnforceFailureRate",
    "HighDriftSeverity",
    "BackupFailed",
    "RestoreRTOViolation",
    "DualAcceptExpiringSoon",
}
SEED_ROWS = ["Adaptive Enforcer", "Drift Analysis", "Backup & Restore", "Key Rotation", "REST API"]

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.$:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()")


def exposed_series() -> set[str]:
    """Every series name the registry can expose (counter ``x`` as ``x_total``, histogram ``x_bucket`` …)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings, label matchers, ranges, grouping labels,
    Grafana variables, function names and keywords removed."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers (and ${var} Grafana variables)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors and subqueries
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\$\w+", " ", text)
    return {name for name in _IDENT.findall(text) if name.lower() not in _KEYWORDS}


def unknown_metrics(exprs: list[str], known: set[str]) -> dict[str, set[str]]:
    found = {expr: metric_names(expr) - known for expr in exprs}
    return {expr: names for expr, names in found.items() if names}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


# --- the checker itself ---


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        pytest.param(
            'rate(cap_enforce_total{result="failure"}[5m]) > 0.1', {"cap_enforce_total"}, id="labels_range"
        ),
        pytest.param(
            "histogram_quantile(0.95, sum by (le, endpoint) (rate(cap_api_latency_seconds_bucket[5m])))",
            {"cap_api_latency_seconds_bucket"},
            id="grouping_labels_dropped",
        ),
        pytest.param(
            "time() - max(cap_backup_last_success_timestamp_seconds) > 3600*26",
            {"cap_backup_last_success_timestamp_seconds"},
            id="function_without_args",
        ),
        pytest.param(
            "a_metric and on (kid) b_metric unless c offset 1h", {"a_metric", "b_metric", "c"}, id="keywords"
        ),
        pytest.param('sum(x{job=~"a|b"}) / ignoring(result) y * 1e3', {"x", "y"}, id="exponent_not_a_name"),
        pytest.param("sum(increase(m[$__range]))", {"m"}, id="grafana_variable"),
    ],
)
def test_metric_names_are_extracted(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_exposed_series_follow_type_suffixes() -> None:
    series = exposed_series()
    assert {
        "cap_enforce_total",
        "cap_enforce_duration_seconds_bucket",
        "cap_enforce_duration_seconds_count",
        "cap_drift_severity_score",
        "cap_restore_duration_seconds_sum",
    } <= series
    assert "cap_enforce" not in series  # a counter is only exposed with _total
    assert "cap_restore_duration_seconds" not in series  # a histogram only with _bucket/_sum/_count


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("rate(cap_enforce_totl[5m])", id="typo"),
        pytest.param("cap_verifier_requests_total", id="original_metric_never_emitted"),
        pytest.param(
            "histogram_quantile(0.9, rate(cap_restore_duration_seconds[5m]))", id="histogram_without_suffix"
        ),
        pytest.param("sum(adapt_drift_ratio) > 0", id="original_unexported_registry"),
    ],
)
def test_checker_catches_unknown_names(expr: str) -> None:
    assert unknown_metrics([expr], exposed_series())


# --- the dashboard ---


def test_dashboard_uses_only_defined_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 22
    assert unknown_metrics(exprs, exposed_series()) == {}


def test_dashboard_shows_every_defined_metric() -> None:
    """A metric added to core/metrics.py gets a panel (monitoring/README.md says how)."""
    used = {name for expr in dashboard_exprs() for name in metric_names(expr)}
    bases = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in used}
    missing = {f.name for f in REGISTRY.collect()} - bases
    assert missing == set()


def test_dashboard_has_the_seed_sections() -> None:
    dash = dashboard()
    assert dash["uid"] == "cap_week6_dashboard"
    assert dash["refresh"] == "10s"
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert rows[: len(SEED_ROWS)] == SEED_ROWS  # the seed's five sections first, then ours (SAP ingest)
    visual = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(visual) >= 22
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    assert all(p["datasource"]["uid"] == "${datasource}" for p in visual)
    assert all(p["targets"] for p in visual)


# --- the alert rules ---


def test_alerts_use_only_defined_metrics() -> None:
    assert unknown_metrics([r["expr"] for r in alert_rules()], exposed_series()) == {}


def test_alerts_include_the_seed_five_and_the_rpo_alert() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    assert SEED_ALERTS | {"BackupTooOld"} <= set(rules)
    assert "> 60" in rules["HighDriftSeverity"]["expr"]
    assert "> 1800" in rules["RestoreRTOViolation"]["expr"]
    assert "< 86400" in rules["DualAcceptExpiringSoon"]["expr"]
    assert "cap_backup_last_success_timestamp_seconds" in rules["BackupTooOld"]["expr"]
    for rule in rules.values():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]


def test_prometheus_operator_rules_match_alerts_file() -> None:
    crd = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    assert crd["kind"] == "PrometheusRule"
    assert crd["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


# on PATH, or in the venv where `make install` puts it (scripts/install_promtool.sh .venv/bin)
PROMTOOL = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool missing: `make install` runs scripts/install_promtool.sh"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests() -> None:
    result = _promtool("test", "rules", str(MONITORING / "alerts_test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the ORR checklist names only evidence that exists ---

ORR = ROOT / "docs" / "orr_checklist.md"
_EVIDENCE = re.compile(r"`((?:tests|helm|monitoring|docs|bench|deployments|core|scripts)/[^`\s]*)`")


def orr_items() -> list[str]:
    text = ORR.read_text(encoding="utf-8")
    return re.split(r"\n(?=- \[ \] )", text)[1:]


def test_orr_checklist_has_100_items_in_three_phases() -> None:
    items = orr_items()
    assert len(items) >= 100
    text = ORR.read_text(encoding="utf-8")
    for heading in ("Phase 1", "Phase 2", "Phase 3"):
        assert f"## {heading}" in text
    for category in ("SEC", "OBS", "REL", "SCA", "CMP", "DOC"):
        assert any(f"-{category}-" in item for item in items), category
    for item in items:
        assert _EVIDENCE.search(item) or "operator task" in item or "planned" in item, item[:80]


def test_orr_checklist_evidence_exists() -> None:
    missing = []
    for item in orr_items():
        if "planned" in item:
            continue
        for ref in _EVIDENCE.findall(item):
            path, _, test = ref.partition("::")
            target = ROOT / path.rstrip("/")
            defined = target.exists() and (
                not test or re.search(rf"def {re.escape(test)}\(", target.read_text(encoding="utf-8"))
            )
            if not defined:
                missing.append(ref)
    assert missing == []
