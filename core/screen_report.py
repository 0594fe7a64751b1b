"""The prover's local screening report (``cap screen``): which CSV rows match which list entries.

Owns :class:`ScreenFinding`, :class:`ScreenReport` and :func:`screen_rows`. Each finding names the file
and line, the name as written, the listed (normalised) name, the list entries behind it and the score,
so a compliance officer can act on a refused proof. The report is for the prover only: nothing here
writes a manifest, proof, registry entry or audit event, and no proof ever embeds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from core.errors import InvalidInputError
from core.name_keys import KeyVersion
from core.screening import SanctionsList


class Party(StrEnum):
    SUPPLIER = "supplier"
    UBO = "ubo"


class MatchKind(StrEnum):
    EXACT = "exact"  # the screening key is listed: a proof with a sanctions rule is refused
    NEAR = "near"  # similar to a listed name (score ≥ threshold): a possible match for review


class ScreenedRow(NamedTuple):
    """One record to screen: who it is, where it was read, the name as written."""

    party: Party
    file: str
    line: int
    name: str


class ScreenFinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    party: Party
    file: str
    line: int
    name: str
    listed_name: str
    lists: tuple[str, ...]
    refs: tuple[str, ...]
    score_bp: int
    kind: MatchKind


class ScreenReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    sanctions_root: str
    key_version: KeyVersion
    threshold_bp: int
    suppliers: int
    ubos: int
    findings: tuple[ScreenFinding, ...]

    @property
    def exact(self) -> int:
        return sum(1 for f in self.findings if f.kind is MatchKind.EXACT)

    @property
    def near(self) -> int:
        return sum(1 for f in self.findings if f.kind is MatchKind.NEAR)


def _lists_of(refs: Sequence[str]) -> tuple[str, ...]:
    """``ofac:11195`` → ``ofac``: the lists (sources) the entries come from, each once."""
    return tuple(sorted({ref.split(":", 1)[0] for ref in refs}))


def _finding(
    row: ScreenedRow, listed: str, refs: tuple[str, ...], score: int, kind: MatchKind
) -> ScreenFinding:
    return ScreenFinding(
        party=row.party,
        file=row.file,
        line=row.line,
        name=row.name,
        listed_name=listed,
        lists=_lists_of(refs),
        refs=refs,
        score_bp=score,
        kind=kind,
    )


def _require_screenable(sanctions: SanctionsList, rows: Sequence[ScreenedRow]) -> None:
    for row in rows:
        if not sanctions.normalise(row.name):
            raise InvalidInputError(
                f"name {row.name[:60]!r} has no letters or digits",
                file=row.file,
                line=row.line,
                column="name",
                expected="a name with at least one letter or digit",
            )


def screen_rows(
    sanctions: SanctionsList, rows: Sequence[ScreenedRow], threshold: float = 0.9
) -> ScreenReport:
    """Exact and near matches of every row, in row order (exact first within a row, then best score).

    Names are normalised under the list's own key version. Raises InvalidInputError naming the file and
    line of a name with no letters or digits, or for a threshold out of range.
    """
    _require_screenable(sanctions, rows)
    report = sanctions.screen([r.name for r in rows], threshold)
    found = [
        (h.query_index, 0, _finding(rows[h.query_index], h.query, h.refs, 10000, MatchKind.EXACT))
        for h in report.hits
    ]
    found += [
        (m.query_index, 1, _finding(rows[m.query_index], m.candidate, m.refs, m.score_bp, MatchKind.NEAR))
        for m in report.possible_matches
        if m.query_index is not None
    ]
    found.sort(key=lambda t: (t[0], t[1]))  # stable: near matches keep their best-score-first order
    return ScreenReport(
        sanctions_root=sanctions.root_hex,
        key_version=sanctions.key_version,
        threshold_bp=report.threshold_bp,
        suppliers=sum(1 for r in rows if r.party is Party.SUPPLIER),
        ubos=sum(1 for r in rows if r.party is Party.UBO),
        findings=tuple(f for _, _, f in found),
    )
