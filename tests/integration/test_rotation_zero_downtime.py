"""Zero downtime: a live ``cap serve --no-prefect`` (2 workers, each with its own hot-reloading keyring)
answers a steady stream of ``POST /verify`` for proofs signed by the old and the new key while
``cap keys rotate`` applies phases 0→3 on the same data directory.

A request counts as a failure when its key was acceptable in *every* keyring state that could have been in
force between its send and its answer, and it did not get HTTP 200 with ``proof_signature`` and
``key_status`` both ok. Answers where the states disagree (e.g. the new key while phase 1 is being written)
may go either way.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from core.keys import KeyStore
from core.proof import proof_file_bytes
from core.settings import Settings
from tests.live import cap_serve_command, dev_token, free_port, prepare_data_dir, run_cap, serving
from tests.world import World

pytestmark = pytest.mark.slow

# keys acceptable in strict mode in each state: before, after phase 0, 1, 2, 3
ACCEPTABLE = [{"old"}, {"old"}, {"old", "new"}, {"old", "new"}, {"new"}]
DWELL_S = 1.0


@dataclass
class Sample:
    key: str
    sent: float
    answered: float
    ok: bool
    detail: str


def _answer_ok(response: httpx.Response) -> tuple[bool, str]:
    if response.status_code != 200:
        return False, f"HTTP {response.status_code}: {response.text[:200]}"
    checks = {c["id"]: c["status"] for c in response.json()["checks"]}
    ok = checks.get("proof_signature") == "ok" and checks.get("key_status") == "ok"
    return ok, f"signature {checks.get('proof_signature')}, key {checks.get('key_status')}"


def _stream(url: str, token: str, proofs: dict[str, dict], stop: threading.Event, out: list[Sample]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while not stop.is_set():
            for key, proof in list(proofs.items()):
                sent = time.monotonic()
                try:
                    ok, detail = _answer_ok(client.post("/verify", json={"proof": proof}))
                except httpx.HTTPError as exc:
                    ok, detail = False, f"transport: {exc!r}"
                out.append(Sample(key, sent, time.monotonic(), ok, detail))


def _rotate(env: dict[str, str], phase: int, timeline: list[tuple[float, float]]) -> None:
    start = time.monotonic()
    args = ["keys", "rotate", "--phase", str(phase)] + (["--force"] if phase >= 2 else [])
    result = run_cap(*args, env=env)
    assert result.returncode == 0, result.stderr
    timeline.append((start, time.monotonic()))


def _states_in_force(sample: Sample, timeline: list[tuple[float, float]]) -> list[int]:
    """Indices of the keyring states that may have answered ``sample`` (state i+1 starts with write i)."""
    starts = [float("-inf")] + [begin for begin, _ in timeline]
    ends = [end for _, end in timeline] + [float("inf")]  # a state may linger until the next write ended
    return [
        i
        for i, (s, e) in enumerate(zip(starts, ends, strict=True))
        if sample.sent <= e and sample.answered >= s
    ]


@pytest.fixture
def live(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "CAP_ENV": "dev",
        "CAP_DATA_DIR": str(tmp_path / "var"),
        "NO_COLOR": "1",
        "CAP_BUILD_DIR": str(tmp_path / "build"),
        "COLUMNS": "200",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    prepare_data_dir(env)
    with serving(cap_serve_command(port, workers=2), env, port) as url:
        yield url, env


def _proof_by(settings: Settings, kid: str) -> dict:
    return json.loads(
        proof_file_bytes(
            World(signer=KeyStore(settings.layout).signer(kid), lists_built_at=datetime.now(UTC))
            .build()
            .proof
        )
    )


def test_no_acceptable_verification_fails_while_rotating(live):
    url, env = live
    settings = Settings.from_env(env)
    store = KeyStore(settings.layout)
    (old,) = store.list()
    proofs = {"old": _proof_by(settings, old.kid)}
    samples: list[Sample] = []
    timeline: list[tuple[float, float]] = []
    stop = threading.Event()
    workers = [
        threading.Thread(target=_stream, args=(url, dev_token(env, ["verify:run"]), proofs, stop, samples))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        time.sleep(DWELL_S)
        _rotate(env, 0, timeline)
        new = next(k for k in store.list() if k.kid != old.kid)
        proofs["new"] = _proof_by(settings, new.kid)
        for phase in (1, 2, 3):
            time.sleep(DWELL_S)
            _rotate(env, phase, timeline)
        time.sleep(DWELL_S)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)

    failures = [
        s for s in samples if all(s.key in ACCEPTABLE[i] for i in _states_in_force(s, timeline)) and not s.ok
    ]
    judged = {key: sum(1 for s in samples if s.key == key) for key in ("old", "new")}
    assert judged["old"] > 20 and judged["new"] > 20, judged
    assert failures == [], f"{len(failures)} of {len(samples)} failed, first: {failures[0].detail}"
    late = [s for s in samples if s.key == "old" and s.sent > timeline[-1][1]]
    assert late and not any(s.ok for s in late), "the retired key must stop verifying in strict mode"
