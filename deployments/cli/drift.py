"""``cap drift``: drift of one proof (or manifest) against a baseline, explained item by item.

Drift never blocks: the exit code is 0 whatever the score (2 for unreadable input).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from core.drift import DriftLevel, DriftReport
from core.reverify import compare_files
from deployments.cli.output import JsonFlag, emit, out, settings

_LEVEL_STYLE = {DriftLevel.LOW: "green", DriftLevel.MEDIUM: "yellow", DriftLevel.HIGH: "bold red"}

GapOpt = Annotated[float, typer.Option("--expected-gap-hours", min=0.001, help="Hours between proofs.")]


def _values(values: dict[str, str | None]) -> str:
    return "\n".join(f"{k}={v}" for k, v in values.items())


def print_drift(report: DriftReport | None) -> None:
    """A drift report for people: the score, then each type with baseline, current and why."""
    if report is None:
        out.print("drift: no baseline (no earlier accepted proof of this subject)")
        return
    level = f"[{_LEVEL_STYLE[report.level]}]{report.level.value}[/]"
    table = Table(
        "type",
        "points",
        "baseline",
        "current",
        "why",
        title_justify="left",
        title=f"drift score {report.score} ({level}) — {report.current} against {report.baseline}",
    )
    for item in report.items:
        table.add_row(
            item.type.value, f"{item.points:g}", _values(item.baseline), _values(item.current), item.reason
        )
    out.print(table)


def drift(
    baseline: Annotated[Path, typer.Option(help="Baseline proof.json or manifest.json.")],
    current: Annotated[Path, typer.Option(help="Current proof.json or manifest.json.")],
    keyring: Annotated[Path | None, typer.Option(help="Keyring (default: the local one, if any).")] = None,
    gap_hours: GapOpt = 24.0,
    as_json: JsonFlag = False,
) -> None:
    """Score the drift of --current against --baseline (policy, roots, time, signing key)."""
    report = compare_files(
        settings(), baseline, current, keyring_path=keyring, expected_gap=timedelta(hours=gap_hours)
    )
    emit(as_json, report, lambda: print_drift(report))
