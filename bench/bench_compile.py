"""Policy compile time per policy: cold (first compile in this process) and warm (median of repeats).

Prints figures only; nothing here asserts on time. Run: ``.venv/bin/python bench/bench_compile.py``;
``run()`` returns the figures for ``python -m bench``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, info
from core.policy import CompiledPolicy, compile_policy, load_policy_text

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 200


def _synthetic(n_rules: int) -> str:
    """A v2 policy with ``n_rules`` rules and an activation per ten rules."""
    rules = "".join(
        f"  - {{id: rule_{i:05d}, op: range_max, lhs: count_{i}, rhs: {i}, severity: medium}}\n"
        for i in range(n_rules)
    )
    head = 'id: bench\nversion: "1.0"\nlegal_basis: [{directive: LkSG}]\ndescription: bench\ninputs: {}\n'
    groups = "".join(
        f"    - {{when: on, rules: [{', '.join(f'rule_{j:05d}' for j in range(i, min(i + 10, n_rules)))}]}}\n"
        for i in range(0, n_rules, 10)
    )
    return (
        head
        + "rules:\n"
        + rules
        + "adaptivity:\n  predicates: [{id: on, expr: true}]\n  activations:\n"
        + groups
    )


def _cases() -> dict[str, str]:
    cases = {
        "examples/policy.lksg.v1.yml": (ROOT / "examples/policy.lksg.v1.yml").read_text(encoding="utf-8"),
        "examples/lksg_v2.policy.yml": (ROOT / "examples/lksg_v2.policy.yml").read_text(encoding="utf-8"),
    }
    for n in (100, 1000):
        cases[f"synthetic v2, {n} rules"] = _synthetic(n)
    return cases


def _time(fn: Callable[[], CompiledPolicy]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(repeats: int = REPEATS) -> dict[str, tuple[float, float, float]]:
    """Per policy: (cold ms, warm median ms, parse + compile median ms)."""
    out = {}
    for name, text in _cases().items():
        policy = load_policy_text(text, name)
        cold = _time(lambda p=policy: compile_policy(p))
        n = repeats if len(text) < 50_000 else 20
        warm = statistics.median(_time(lambda p=policy: compile_policy(p)) for _ in range(n))
        full = statistics.median(
            _time(lambda t=text, n=name: compile_policy(load_policy_text(t, n)))
            for _ in range(max(5, n // 10))
        )
        out[name] = (cold * 1e3, warm * 1e3, full * 1e3)
    return out


def run(repeats: int = REPEATS) -> list[Figure]:
    """Policy compile (parse + lint + IR) for the example v1 policy and a 1,000-rule v2 policy."""
    m = measure(repeats)
    return [
        info("policy_compile_ms", m["examples/policy.lksg.v1.yml"][2], "ms", "examples/policy.lksg.v1.yml"),
        info("policy_compile_1000_rules_ms", m["synthetic v2, 1000 rules"][2], "ms", "parse + compile"),
    ]


def main() -> None:
    print(f"{'policy':<32} {'cold ms':>9} {'warm ms (median)':>17} {'parse+compile ms':>17}")
    for name, (cold, warm, full) in measure().items():
        print(f"{name:<32} {cold:>9.3f} {warm:>17.3f} {full:>17.3f}")


if __name__ == "__main__":
    main()
