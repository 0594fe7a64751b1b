"""Run small node snippets against the pinned npm toolchain (circomlibjs) as an independent reference."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from core.zk.toolchain import ROOT, node_modules


def circomlibjs_poseidon(inputs: list[list[int]]) -> list[int]:
    """circomlibjs' reference Poseidon over each input list (decimal strings in, ints out)."""
    node_modules()
    script = """
const { buildPoseidonReference } = require("circomlibjs");
(async () => {
  const poseidon = await buildPoseidonReference();
  const cases = JSON.parse(process.argv[1]);
  const out = cases.map((c) => poseidon.F.toString(poseidon(c.map(BigInt))));
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
})();
"""
    arg = json.dumps([[str(v) for v in case] for case in inputs])
    done = subprocess.run(
        ["node", "-e", script, arg], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    return [int(v) for v in json.loads(done.stdout)]


def run_json(script: str, *args: Any) -> Any:
    done = subprocess.run(
        ["node", "-e", script, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)
