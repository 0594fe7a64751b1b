"""CLI start-up: ``cap --help`` (target ≤ 0.3 s) and ``cap verify`` of a small proof (≤ 0.5 s), on 2 cores.

Run: .venv/bin/python bench/bench_cli.py [--repeat N]

Each command runs as a fresh ``python -m deployments.cli`` process (what ``cap`` runs), ``repeat`` times; the
median wall time is the figure, and the median CPU time (user + system of the child) is reported beside it,
since wall time on a shared machine also counts waiting for a core. ``cap keys list`` is reported too.
The children may write ``.pyc`` files (``PYTHONDONTWRITEBYTECODE`` is dropped): an installed ``cap`` runs from
compiled bytecode, and without it every run would recompile ~330 modules (≈ 0.85 s more). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import Figure, at_most, info, median  # noqa: E402


def _small_proof(root: Path) -> Path:
    """A data dir with a keyring and one small signed proof (the fixture world of the tests)."""
    from bench.verify_http import prepare
    from core.proof import proof_file_bytes

    _settings, world, _body = prepare(root)
    path = root / "proof.json"
    path.write_bytes(proof_file_bytes(world.build().proof))
    return path


def _timed(args: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeat`` fresh runs of ``cap args``."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "deployments.cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=False,
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return median(walls), median(cpus)


def run(repeat: int = 7) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        root = Path(tmp)
        proof = _small_proof(root)
        env = {**os.environ, "CAP_DATA_DIR": str(root / "var"), "COLUMNS": "80", "NO_COLOR": "1"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for warm in (["--help"], ["verify", "--proof", str(proof)], ["keys", "list"]):
            _timed(warm, env, 1)  # warm the file cache and write the .pyc files once
        help_wall, help_cpu = _timed(["--help"], env, repeat)
        verify_wall, verify_cpu = _timed(["verify", "--proof", str(proof)], env, repeat)
        keys_wall, keys_cpu = _timed(["keys", "list"], env, repeat)
    load = os.getloadavg()[0]
    note = f"median of {repeat}; 1-min load {load:.1f}"
    return [
        at_most("cli_help_s", help_wall, "s", 0.3, note),
        info("cli_help_cpu_s", help_cpu, "s", "user+sys of the child"),
        at_most("cli_verify_small_s", verify_wall, "s", 0.5, note),
        info("cli_verify_small_cpu_s", verify_cpu, "s", "user+sys of the child"),
        info("cli_keys_list_s", keys_wall, "s", f"cpu {keys_cpu:.2f} s"),
    ]


def main() -> None:
    from bench import format_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    print(format_table(run(parser.parse_args().repeat)))


if __name__ == "__main__":
    main()
