"""``cap screen``: the prover's local screening report (which rows match which list entries)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from core import service
from core.errors import InvalidInputError
from core.sanctions import ListFormat
from core.screen_report import MatchKind, ScreenReport
from deployments.cli.output import JsonFlag, emit, now, out
from deployments.errors import EXIT_FAIL


def screen(
    suppliers: Annotated[Path, typer.Option(help="Supplier CSV: name,jurisdiction,tier.")],
    ubos: Annotated[Path | None, typer.Option(help="UBO CSV: name,birthdate,citizenship.")] = None,
    lists: Annotated[Path | None, typer.Option(help="lists.json from `cap lists build`.")] = None,
    sanctions: Annotated[Path | None, typer.Option(help="Sanctions list instead of --lists.")] = None,
    fmt: Annotated[ListFormat | None, typer.Option("--format", help="ofac, un or csv.")] = None,
    threshold: Annotated[float, typer.Option(help="Near-match score, 0.5 < t <= 1.")] = 0.9,
    as_json: JsonFlag = False,
) -> None:
    """Which rows match or nearly match which list entries; local only, never part of a proof.

    Exit 0: no exact match (near matches are listed for review); 3: at least one exact match.
    """
    loaded = service.read_lists(lists, sanctions, fmt, None, now())
    if loaded is None:
        raise InvalidInputError("cap screen needs --lists or --sanctions", field="lists")
    report = service.screen_files(suppliers, ubos, loaded, threshold)
    emit(
        as_json,
        report.model_dump(mode="json") | {"exact": report.exact, "near": report.near},
        lambda: _print(report),
    )
    if report.exact:
        raise typer.Exit(EXIT_FAIL)


def _print(report: ScreenReport) -> None:
    table = Table("row", "name", "listed name", "list", "entries", "score", "kind", title_justify="left")
    for f in report.findings:
        kind = "[bold red]exact[/]" if f.kind is MatchKind.EXACT else "[yellow]near[/]"
        table.add_row(
            f"{f.party.value} {escape(Path(f.file).name)}:{f.line}",
            escape(f.name),
            escape(f.listed_name),
            ", ".join(f.lists),
            ", ".join(f.refs),
            f"{f.score_bp / 100:.2f} %",
            kind,
        )
    if report.findings:
        out.print(table)
    out.print(
        f"{report.exact} exact and {report.near} near matches among {report.suppliers} suppliers and "
        f"{report.ubos} UBOs (threshold {report.threshold_bp / 100:.0f} %, {report.key_version.value}, "
        f"sanctions root {report.sanctions_root}); this report stays local and is never part of a proof"
    )
