"""Benchmarks: each ``bench_*`` module measures one area and returns :class:`Figure` values from ``run(...)``.

``python -m bench`` (``make bench``) runs every suite, prints the table and writes ``bench/results.json``;
``--quick`` uses small sizes, ``--only NAME`` one suite or figure. Figures are printed, never asserted
(SPEC §7: wall-clock targets are measured here, not in tests).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured value beside its SPEC §7 target (``target`` None = reported only, ``ok`` None)."""

    name: str
    value: float
    unit: str
    target: str | None = None
    ok: bool | None = None
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        if isinstance(self.value, float) and not math.isfinite(self.value):
            data["value"] = None
        return data


def at_most(name: str, value: float, unit: str, bound: float, note: str = "") -> Figure:
    return Figure(name, value, unit, f"<= {bound:g}", value <= bound, note)


def at_least(name: str, value: float, unit: str, bound: float, note: str = "") -> Figure:
    return Figure(name, value, unit, f">= {bound:g}", value >= bound, note)


def info(name: str, value: float, unit: str, note: str = "") -> Figure:
    return Figure(name, value, unit, None, None, note)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank rule; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def format_table(figures: list[Figure]) -> str:
    """A fixed-width text table: name, value, unit, target, ok, note."""
    rows = [("name", "value", "unit", "target", "ok", "note")]
    for f in figures:
        ok = "-" if f.ok is None else ("ok" if f.ok else "MISSED")
        rows.append((f.name, _number(f.value), f.unit, f.target or "", ok, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1])] + [r[i].ljust(widths[i]) for i in (2, 3, 4)]
        lines.append("  ".join([*cells, r[5]]).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value)}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
