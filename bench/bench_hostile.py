"""Hostile input, refused cheaply (issue 17): time and memory of each refusal beside its target.

* ``hostile_anon_28mib_verify_ms``: server time (in-process ASGI, no network) from the start of an anonymous
  28 MiB ``POST /verify`` to its 401, and how many body bytes the app pulled (target ≤ 50 ms, ≤ one chunk).
* ``hostile_policy_60k_keys_ms``: a 60,000-key JSON policy, parsed with the limits raised (the duplicate-key
  check alone, once 127 s) and refused with the default limits (``policy_limit_exceeded``).
* ``hostile_swapped_archive_ms``: restore of a small archive (a 128 MiB gzip bomb) swapped under an
  untouched signed manifest, refused on the archive digest (a 1.5 MB one once cost 4.4 GB and 77-107 s);
  peak traced memory beside it.

Prints figures only; nothing here asserts on time. Run: ``.venv/bin/python bench/bench_hostile.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, info
from core.errors import CapError

REPEATS = 5


def _anonymous_verify() -> list[Figure]:
    from deployments.api.app import create_app
    from tests.api.conftest import TestIssuer, api_config, prepare_data_dir
    from tests.security.asgi import post
    from tests.world import World

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        issuer = TestIssuer(root / "jwks.json")
        app = create_app(prepare_data_dir(root / "var", World()), api_config(issuer.jwks_path))
        size = 28 * 1024 * 1024
        times, pulled = [], 0
        for _ in range(REPEATS):
            start = time.perf_counter()
            exchange = post(app, "/verify", size, {"Content-Type": "application/json"}, declare_length=False)
            times.append((time.perf_counter() - start) * 1000)
            assert exchange.status == 401, exchange.status
            pulled = max(pulled, exchange.pulled)
    best = min(times)
    return [
        Figure(
            "hostile_anon_28mib_verify_ms",
            round(best, 2),
            "ms",
            "<= 50",
            best <= 50,
            f"401 after {pulled} of {size} body bytes (chunked, best of {REPEATS})",
        )
    ]


def _policy_keys() -> list[Figure]:
    from core.policy.limits import PolicyLimits
    from core.policy.load import parse_document

    n = 60_000
    text = (
        '{"id":"p","version":"2.0","inputs":{' + ",".join(f'"k{i:05d}":0' for i in range(n)) + '},"rules":[]}'
    )
    start = time.perf_counter()
    parse_document(text, "<bench>", PolicyLimits(max_bytes=8 << 20, max_keys=10 * n))
    parsed = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    try:
        parse_document(text, "<bench>")
    except CapError as exc:
        refused, code = (time.perf_counter() - start) * 1000, exc.code
    return [
        Figure(
            "hostile_policy_60k_keys_ms",
            round(parsed, 1),
            "ms",
            "< 1000",
            parsed < 1000,
            "parsed, limits raised",
        ),
        info("hostile_policy_60k_keys_refused_ms", round(refused, 1), "ms", f"default limits: {code}"),
    ]


def _swapped_archive() -> list[Figure]:
    from core.backup.restore import RestoreOptions, run_restore
    from tests.security.test_backup_attacks import _bomb, _state
    from tests.unit.test_backup_helpers import NOW, SIGNER, backup

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        live = _state(root / "var")
        store, result = backup(live, root / "store")
        bomb = _bomb()
        (root / "store" / result.manifest.archive.name).write_bytes(bomb)
        tracemalloc.start()
        start = time.perf_counter()
        try:
            run_restore(
                store,
                result.manifest.backup_id,
                live,
                SIGNER,
                now=NOW,
                options=RestoreOptions(verify_only=True),
            )
        except CapError as exc:
            code = exc.code
        elapsed = (time.perf_counter() - start) * 1000
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    note = f"{len(bomb) / 1e6:.2f} MB archive (128 MiB inflated), {code}, peak traced {peak:.1f} MB"
    return [Figure("hostile_swapped_archive_ms", round(elapsed, 1), "ms", "< 1000", elapsed < 1000, note)]


def run() -> list[Figure]:
    return [*_anonymous_verify(), *_policy_keys(), *_swapped_archive()]


if __name__ == "__main__":
    from bench import format_table

    print(format_table(run()))
