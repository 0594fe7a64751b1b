"""The replica endpoint goes down under ``cap serve``: the lag grows, ReplicaLagHigh fires in a real
Prometheus, and when the endpoint is back Litestream catches up with nothing lost.

moto's S3 server over HTTP is the endpoint (stopped and started again on the same port, its buckets kept);
``cap serve`` (a real subprocess, API only) replicates to it and probes the replica every half second;
Prometheus (the binary ``make install`` brings) scrapes ``/metrics`` with ``alerts.yaml`` scaled as in
tests/integration/test_prometheus_alerts.py, the 60 s threshold lowered to 2 s. Entries are written while
the endpoint is down; after it is back, a restore to latest (``cap restore --from-replica``) holds them all.
A corrupted replica segment is tests/integration/test_replica_pitr.py's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import boto3
import httpx
import pytest

from core.registry import Registry
from core.settings import Settings
from tests.integration.test_prometheus_alerts import Prometheus, until
from tests.integration.test_replica_pitr import await_in_replica
from tests.live import MotoS3, dev_token, free_port, prepare_data_dir, run_cap
from tests.paths import REPO
from tests.registry_fill import register_filler

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BUCKET = "cap-replica"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
LAG_ALERT = {"ReplicaLagHigh": ("> 60", "> 2")}  # `for: 2m` becomes 2 s (FOR_SCALE)


def _register(settings: Settings, n: int) -> str:
    with Registry(settings.layout.registry_db) as registry:
        return register_filler(registry, settings, n, subject="LEI-TEST-0001", now=datetime.now(UTC))


def _entries(settings: Settings) -> list[str]:
    with Registry(settings.layout.registry_db) as registry:
        return sorted(e.id for e in registry.entries())


def _lag(prom: Prometheus) -> float | None:
    result = prom.query("max(cap_replica_lag_seconds)")
    return float(result[0]["value"][1]) if result else None


def _alert(prom: Prometheus) -> str | None:
    return prom.alerts().get("ReplicaLagHigh")


def test_endpoint_down_lag_alert_fires_then_replica_catches_up_with_nothing_lost(tmp_path):
    s3 = MotoS3()
    s3.start()
    try:
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        s3_client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1", **keys)
        s3_client.create_bucket(Bucket=BUCKET)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("CAP_", "PROMETHEUS_", "PREFECT_API"))
        }
        env |= AWS | {
            "CAP_DATA_DIR": str(tmp_path / "var"),
            "CAP_ENV": "dev",
            "CAP_SUBJECT": "LEI-TEST-0001",
            "CAP_S3_ENDPOINT_URL": s3.url,
            "CAP_REPLICA_URL": f"s3://{BUCKET}/prod",
            "CAP_REPLICA_SYNC_INTERVAL": "100ms",
            "CAP_REPLICA_PROBE_INTERVAL_S": "0.5",
            "NO_COLOR": "1",
        }
        prepare_data_dir(env)
        settings = Settings.from_env(env)
        first = _register(settings, 0)
        port, log = free_port(), (tmp_path / "serve.log").open("w")
        argv = [sys.executable, "-m", "deployments.cli", "serve", "--no-prefect", "--workers", "1"]
        serve = subprocess.Popen([*argv, "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            until(lambda: _ready(serve, port), 90, "cap serve ready")
            config = settings.data_dir / "run" / "litestream.yml"
            await_in_replica(env, config, first)
            token = dev_token(env, ["metrics:read"])
            (tmp_path / "prom").mkdir()
            with Prometheus(tmp_path / "prom", f"127.0.0.1:{port}", token, LAG_ALERT) as prom:
                until(lambda: (_lag(prom) or 99) < 2, 60, "replica caught up, as Prometheus sees it")
                assert _alert(prom) is None

                s3.stop()  # the endpoint goes away; writes go on
                written = []
                for n in range(1, 4):
                    written.append(_register(settings, n))
                    time.sleep(0.3)
                grown = until(lambda: (lag := _lag(prom)) is not None and lag > 2 and lag, 30, "lag > 2 s")
                until(lambda: (_lag(prom) or 0) > grown, 10, "lag still growing")
                until(lambda: _alert(prom) == "firing", 30, "ReplicaLagHigh firing")
                assert serve.poll() is None  # replication trouble never stops the service

                s3.start()  # back on the same port: Litestream uploads what it kept
                await_in_replica(env, config, written[-1])
                until(lambda: (_lag(prom) or 99) < 2, 60, "replica caught up again")
                until(lambda: _alert(prom) is None, 30, "ReplicaLagHigh resolved")
        finally:
            serve.terminate()
            serve.wait(timeout=60)
            log.close()
        restored = run_cap("restore", "--from-replica", f"s3://{BUCKET}/prod", env=env)
        assert restored.returncode == 0, restored.stderr
        assert _entries(settings) == sorted([first, *written])
    finally:
        s3.stop()


def _ready(proc: subprocess.Popen[bytes], port: int) -> bool:
    assert proc.poll() is None, "cap serve exited"
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
