"""The project's alert rules in a real Prometheus, scraping a real ``cap serve`` (API workers + runner).

Prometheus (Debian's binary, installed into ``.venv/bin`` by ``scripts/install_promtool.sh``) runs on a free
loopback port with a 1 s scrape and evaluation interval and a copy of ``monitoring/alerts.yaml`` in which
only two things differ, both listed in :data:`FOR_SCALE` and :data:`TEST_THRESHOLDS`: every ``for:`` is read
in seconds instead of minutes (``5m`` → ``5s``), and the restore RTO (30 min) is 0 s, since no restore in a
test takes half an hour. Every expression is otherwise the shipped one.

The scenario, against one data dir: a fresh healthy install (no alert fires), then a failed backup (API →
Prefect runner → flow-run process) while an operator takes a good one with ``cap backup``, a verification run
that finds a high drift and a list refresh (Prefect deployments), a real restore of the good backup (API),
a rotation into dual-accept with a 2 h window (``cap keys rotate``), and /verify calls whose enforcement
fails. Then each of the seed's five alerts must be ``firing`` in Prometheus' HTTP API, and every
Grafana dashboard expression must return data (the test names any that does not).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from core import service
from core.keys import KeyStore
from core.modes import EnforcementMode
from core.proof import proof_file_bytes
from core.settings import Settings
from core.signing import Ed25519Signer
from tests.live import clear_pending_flow_runs, dev_token, free_port, prepare_data_dir, run_cap
from tests.paths import FIXTURES, REPO
from tests.world import NOW, POLICY, World

# Each flow run is a fresh process (about 3 s unloaded); on a machine shared with other test runs it has
# taken 25-60 s, so the timeout is generous although the test takes about 60-90 s unloaded.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect"), pytest.mark.timeout(600)]

MONITORING = REPO / "monitoring"
SEED_FIVE = {
    "HighEnforceFailureRate",
    "HighDriftSeverity",
    "BackupFailed",
    "RestoreRTOViolation",
    "DualAcceptExpiringSoon",
}
# A fresh install has taken no backup yet: BackupStatusUnknown is pending (it fires after 26 h), by design.
PENDING_ON_A_FRESH_INSTALL = {"BackupStatusUnknown"}
FOR_SCALE = 60  # `for: 5m` becomes 5 s
TEST_THRESHOLDS = {"RestoreRTOViolation": ("> 1800", "> 0")}
SCOPES = "verify:run backup:create backup:read backup:restore metrics:read"
OTHER_POLICY = POLICY.replace("supplier_count_max: 10", "supplier_count_max: 20")
MORE_SUPPLIERS = World.suppliers_csv + "Baltic Parts,LT,1\n"
LISTED_SUPPLIER = World.suppliers_csv + "Kestrel Maritime Services,GR,1\n"
FINISHED = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def prometheus_binary() -> str:
    found = REPO / ".venv" / "bin" / "prometheus"
    if found.exists():
        return str(found)
    import shutil

    path = shutil.which("prometheus")
    assert path, "prometheus is not installed: run `make install` (scripts/install_promtool.sh .venv/bin)"
    return path


def _seconds(duration: str) -> str:
    value, unit = int(duration[:-1]), duration[-1]
    minutes = {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[unit] * value
    return f"{max(1, round(minutes * 60 / FOR_SCALE))}s"


def test_rules(dest: Path, thresholds: dict[str, tuple[str, str]] | None = None) -> Path:
    """``alerts.yaml`` with 1 s evaluation, ``for:`` scaled by :data:`FOR_SCALE`, ``thresholds`` replaced
    (default :data:`TEST_THRESHOLDS`)."""
    thresholds = TEST_THRESHOLDS if thresholds is None else thresholds
    doc = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = _seconds(rule["for"])
            old, new = thresholds.get(rule.get("alert", ""), (None, None))
            if old:
                assert old in rule["expr"], f"{rule['alert']}: threshold {old} no longer in the shipped rule"
                rule["expr"] = rule["expr"].replace(old, new)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest


test_rules.__test__ = False  # a helper, not a test


class Prometheus:
    """A Prometheus process on a free loopback port; ``alerts()`` and ``query()`` over its HTTP API."""

    def __init__(
        self,
        workdir: Path,
        target: str,
        token: str,
        thresholds: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "token").write_text(token)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(test_rules(workdir / "rules.yaml", thresholds))],
            "scrape_configs": [
                {
                    "job_name": "cap",
                    "authorization": {"credentials_file": str(workdir / "token")},
                    "static_configs": [{"targets": [target]}],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.argv = [
            prometheus_binary(),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def __enter__(self) -> Prometheus:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        until(lambda: self._ready(), 30, "Prometheus ready")
        return self

    def __exit__(self, *_: object) -> None:
        assert self.proc is not None
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
        try:
            return self.http.get("/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def alerts(self) -> dict[str, str]:
        """alertname → state (``firing`` wins over ``pending``)."""
        body = self.http.get("/api/v1/alerts").json()
        out: dict[str, str] = {}
        for alert in body["data"]["alerts"]:
            name = alert["labels"]["alertname"]
            out[name] = "firing" if "firing" in (alert["state"], out.get(name)) else alert["state"]
        return out

    def query(self, expr: str) -> list[dict[str, object]]:
        body = self.http.get("/api/v1/query", params={"query": expr}).json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def scraped(self) -> bool:
        return any(r["value"][1] == "1" for r in self.query('up{job="cap"}'))


def until(check, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")


def dashboard_exprs() -> list[str]:
    doc = json.loads((MONITORING / "grafana-dashboard-week6.json").read_text())

    def walk(panels: list[dict]) -> Iterator[dict]:
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))

    return [t["expr"] for p in walk(doc["panels"]) for t in p.get("targets", []) if t.get("expr")]


# --- the data dir and the running service -----------------------------------------------------------------


def list_sources(settings: Settings) -> None:
    """``<data>/lists/sources.yaml`` naming the OFAC and UN fixtures by path (no network in tests)."""
    doc = {
        "schema": "cap-list-sources.v1",
        "sanctions": [
            {
                "format": "ofac",
                "path": str(FIXTURES / "ofac" / "sdn.csv"),
                "alt": {"path": str(FIXTURES / "ofac" / "alt.csv")},
            },
            {"format": "un", "path": str(FIXTURES / "un_consolidated_extract.xml")},
        ],
    }
    settings.layout.lists_dir.mkdir(parents=True, exist_ok=True)
    (settings.layout.lists_dir / "sources.yaml").write_text(yaml.safe_dump(doc))


def drifted_registry(settings: Settings) -> None:
    """Three entries of one subject, the newest 65 (high) from its baseline: other policy, other suppliers,
    signed by a key the keyring does not know. The verification run finds it; nothing scores it here."""
    kid = service.load_local_keyring(settings).default_signing_kid
    own = KeyStore(settings.layout).signer(kid)
    worlds = (
        World(signer=own),
        World(signer=own, policy_text=OTHER_POLICY, suppliers_csv=MORE_SUPPLIERS),
        World(signer=Ed25519Signer.from_seed(bytes([7]) * 32)),
    )
    for i, w in enumerate(worlds):
        built = w.build(EnforcementMode.STRICT)
        service.register_proof(settings, built.proof, built.verdict, w.signer, NOW + timedelta(hours=i))


class Cap:
    """``cap serve`` (API workers + a Prefect runner on the session's Prefect API) and its admin API."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.url = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {dev_token(env, SCOPES.split())}"}
        self.http = httpx.Client(base_url=self.url, headers=self.headers, timeout=30)

    def post(self, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        r = self.http.post(path, json=body)
        assert r.status_code in (200, 202), r.text
        return r.json()

    def run(self, path: str, body: dict[str, object] | None = None) -> str:
        """Trigger an admin flow and wait for it to finish; returns its final state type."""
        return self.wait(str(self.post(path, body)["flow_run_id"]), f"{path} {body or ''}")

    def wait(self, run_id: str, what: str) -> str:
        def finished() -> str | None:
            try:
                r = self.http.get(f"/admin/runs/{run_id}")
            except httpx.TimeoutException:
                return None
            state = r.json().get("state_type")
            return state if state in FINISHED else None

        start = time.monotonic()
        state = until(finished, 180, f"flow run {what} to finish")
        print(f"{what}: {state} after {time.monotonic() - start:.1f} s")
        return state


@pytest.fixture
def serving(tmp_path, prefect_api):
    from prefect.settings import PREFECT_API_URL

    env = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith(("CAP_", "PROMETHEUS_"))},
        "CAP_DATA_DIR": str(tmp_path / "var"),
        "CAP_ENV": "dev",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "NO_COLOR": "1",
        # continuous replication on (the replica-lag panel needs data), probed every second
        "CAP_REPLICA_URL": (tmp_path / "replica").as_uri(),
        "CAP_REPLICA_PROBE_INTERVAL_S": "1",
    }
    prepare_data_dir(env)
    clear_pending_flow_runs()  # another test's untaken runs of these deployments would run in this data dir
    drifted_registry(Settings.from_env(env))
    list_sources(Settings.from_env(env))
    port = free_port()
    argv = [__import__("sys").executable, "-m", "deployments.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cap = Cap(env, port)

        def ready() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                return httpx.get(f"{cap.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        until(ready, 120, "cap serve ready")
        yield cap
        cap.http.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_every_alert_fires_in_a_real_prometheus_and_none_on_a_healthy_install(serving, tmp_path):
    from prefect.deployments import run_deployment

    cap = serving
    with Prometheus(tmp_path, f"127.0.0.1:{cap.port}", cap.headers["Authorization"].split()[1]) as prom:
        # 1. a fresh, healthy install: scraped, every rule evaluated a few times, nothing fires
        until(prom.scraped, 30, "the first scrape of cap serve")
        time.sleep(6)  # longer than every scaled `for:` of the seed's five
        healthy = prom.alerts()
        assert not {a for a, s in healthy.items() if s == "firing"}, healthy
        assert set(healthy) <= PENDING_ON_A_FRESH_INSTALL, healthy

        # 2. operations gone wrong, through the API and the Prefect runner as an operator would see them
        names = ("verification-run/verification-hourly", "lists-refresh/lists-refresh-daily")
        scheduled = [run_deployment(name, timeout=0) for name in names]
        failing = str(cap.post("/admin/backups", {"encrypt": True})["flow_run_id"])  # no master key set
        taken = run_cap("backup", env=cap.env)  # meanwhile, a good one by hand (the CLI counts nothing)
        assert taken.returncode == 0, taken.stderr
        assert cap.wait(failing, "backup with encrypt=true") == "FAILED"
        backups = cap.http.get("/admin/backups").json()["backups"]
        (good,) = [b["backup_id"] for b in backups]
        states = [_wait_run(run.id) for run in scheduled]
        for i, state in enumerate(states):
            # One clean-clone run on a loaded 2-core machine saw lists-refresh FAILED here (not reproduced
            # alone; _wait_run prints the reason and the run's last logs). An operator re-runs a failed
            # scheduled run; a second failure fails the test.
            if state != "COMPLETED":
                states[i] = _wait_run(run_deployment(names[i], timeout=0).id)
        assert states == ["COMPLETED", "COMPLETED"]
        assert cap.run("/admin/restores", {"backup_id": good}) == "COMPLETED"
        for phase, extra in ((0, []), (1, ["--duration", "2h"])):
            done = run_cap("keys", "rotate", "--phase", str(phase), "--force", *extra, env=cap.env)
            assert done.returncode == 0, done.stderr
        listed = World(suppliers_csv=LISTED_SUPPLIER).build(EnforcementMode.AUDIT).proof
        for _ in range(3):
            cap.post("/verify", {"proof": json.loads(proof_file_bytes(listed))})
        bad = cap.http.get("/admin/backups", headers={"Authorization": "Bearer x.y.z"})
        assert bad.status_code == 401

        # 3. each of the seed's five alerts fires
        def all_firing() -> bool:
            return {a for a, s in prom.alerts().items() if s == "firing"} >= SEED_FIVE

        try:
            until(all_firing, 45, "the seed's five alerts firing")
        finally:
            print("alerts:", prom.alerts())

        # 4. every dashboard expression returns data
        empty = [e for e in dashboard_exprs() if not prom.query(e)]
        assert empty == [], "dashboard expressions without data:\n" + "\n".join(empty)


def _wait_run(flow_run_id) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    def finished() -> str | None:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
        return state.type.value if state is not None and state.type.value in FINISHED else None

    result = until(finished, 120, f"flow run {flow_run_id}")
    if result != "COMPLETED":  # say why in the test's output, not only in the Prefect server's database
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        print(f"flow run {run.name} ({run.deployment_id}): {result}: {run.state.message}")
        for line in logs[-40:]:
            print(f"  {line.level} {line.message[:400]}")
    return result


def test_scaled_rules_keep_every_shipped_expression(tmp_path):
    """The test copy differs from alerts.yaml only in evaluation interval, `for:` and the named thresholds."""
    shipped = yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"][0]["rules"]
    copied = yaml.safe_load(test_rules(tmp_path / "r.yaml").read_text())["groups"][0]["rules"]
    for a, b in zip(shipped, copied, strict=True):
        expected = a["expr"]
        if a["alert"] in TEST_THRESHOLDS:
            expected = expected.replace(*TEST_THRESHOLDS[a["alert"]])
        assert b["expr"] == expected
        assert re.fullmatch(r"\d+s", b.get("for", "1s"))
