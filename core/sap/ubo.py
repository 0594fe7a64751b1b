"""Pluggable beneficial-owner (UBO) sources for the SAP adapter.

The standard Business Partner API has no owner entity, so UBOs come from a CSV file or from BP
relationships (``A_BPRelationship``, expanded as ``to_BPRelationship`` / ``_BPRelationship``) whose
category is one of the system's customised ownership categories; ``BusinessPartner1`` is taken as the
owner of ``BusinessPartner2``. The result distinguishes three states: ``known`` (records), ``none``
(an explicit empty list: a CSV with only its header) and ``unknown`` (no data: no relationships in the
payload, or no ownership categories configured). SAP data alone never yields ``none``: a missing
relationship is not a declaration. Citizenship from relationships is the owner partner's standard
address country (a documented proxy; SAP has no nationality field on the BP header).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidInputError
from core.sap.config import CsvUboSource, SapRelationshipsUboSource
from core.sap.mapping import ISO_ALPHA2, clean_name, nav_rows, normalise_sap_id, standard_country
from core.sap.wire import parse_date

_REL_NAVS = ("to_BPRelationship", "_BPRelationship")


class UboStatus(StrEnum):
    KNOWN = "known"
    NONE = "none"
    UNKNOWN = "unknown"


class UboRecord(BaseModel):
    """One row of the UBO commitment CSV: ``name,birthdate,citizenship``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    birthdate: date
    citizenship: str = Field(pattern=r"^[A-Z]{2}$")


class UboSet(BaseModel):
    """What a UBO source produced: status, records, and drop counts by reason code."""

    model_config = ConfigDict(frozen=True)

    status: UboStatus
    source: str
    records: tuple[UboRecord, ...] = ()
    dropped: dict[str, int] = {}
    reason: str | None = None


class UboCollector(Protocol):
    """A UBO source: sees each business partner as it streams past, then reports."""

    def observe(self, partner: Mapping[str, Any]) -> None: ...

    def result(self) -> UboSet: ...


class CsvUboCollector:
    """UBOs from ``name,birthdate,citizenship`` CSV (UTF-8, BOM tolerated, extra columns ignored)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def observe(self, partner: Mapping[str, Any]) -> None:
        """Ignores SAP partners."""

    def result(self) -> UboSet:
        """Raises :class:`InvalidInputError` naming file, line and column for a bad row."""
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise InvalidInputError(f"cannot read UBO file: {exc.strerror}", file=str(self.path)) from exc
        reader = csv.DictReader(io.StringIO(text))
        missing = {"name", "birthdate", "citizenship"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidInputError(
                "UBO CSV header is missing columns",
                file=str(self.path),
                line=1,
                expected="name,birthdate,citizenship",
            )
        records = [self._row(row, reader.line_num) for row in reader]
        status = UboStatus.KNOWN if records else UboStatus.NONE
        return UboSet(status=status, source="csv", records=tuple(records))

    def _row(self, row: Mapping[str, str], line: int) -> UboRecord:
        source = str(self.path)
        name, _ = clean_name(row.get("name"))
        if not name:
            raise InvalidInputError("UBO name is empty", column="name", file=source, line=line)
        try:
            born = date.fromisoformat((row.get("birthdate") or "").strip())
        except ValueError as exc:
            raise InvalidInputError(
                "bad UBO birthdate", column="birthdate", expected="YYYY-MM-DD", file=source, line=line
            ) from exc
        country = (row.get("citizenship") or "").strip().upper()
        if country not in ISO_ALPHA2:
            raise InvalidInputError(
                "bad UBO citizenship",
                column="citizenship",
                expected="ISO 3166-1 alpha-2",
                file=source,
                line=line,
            )
        return UboRecord(name=name, birthdate=born, citizenship=country)


class RelationshipUboCollector:
    """UBOs from BP relationships of the configured ownership ``categories`` valid on ``as_of``."""

    def __init__(self, categories: tuple[str, ...], *, as_of: date) -> None:
        self.categories = frozenset(categories)
        self.as_of = as_of
        self._seen_relationships = False
        self._owners: set[str] = set()
        self._persons: dict[str, tuple[str, date | None, str | None]] = {}

    def observe(self, partner: Mapping[str, Any]) -> None:
        """Keep ownership links and the allowlisted facts of natural persons (inside the adapter)."""
        number = normalise_sap_id(partner.get("BusinessPartner"))
        if str(partner.get("BusinessPartnerCategory") or "") == "1":
            born = parse_date(partner.get("BirthDate"), field="BirthDate")
            name = str(partner.get("BusinessPartnerFullName") or "")
            self._persons[number] = (name, born, standard_country(partner, self.as_of))
        relationships = nav_rows(partner, _REL_NAVS)
        if relationships is None:
            return
        self._seen_relationships = True
        for rel in relationships:
            if str(rel.get("RelationshipCategory") or "") in self.categories and self._valid(rel):
                self._owners.add(normalise_sap_id(rel.get("BusinessPartner1")))

    def _valid(self, rel: Mapping[str, Any]) -> bool:
        start = parse_date(rel.get("ValidityStartDate"), field="ValidityStartDate") or date.min
        end = parse_date(rel.get("ValidityEndDate"), field="ValidityEndDate") or date.max
        return start <= self.as_of <= end

    def result(self) -> UboSet:
        """``known`` with the resolvable owners, else ``unknown`` with a reason code."""
        if not self.categories:
            return UboSet(
                status=UboStatus.UNKNOWN, source="sap_relationships", reason="no_ownership_categories"
            )
        if not self._seen_relationships:
            return UboSet(
                status=UboStatus.UNKNOWN, source="sap_relationships", reason="no_relationships_in_payload"
            )
        records: dict[tuple[str, date, str], UboRecord] = {}
        dropped: Counter[str] = Counter()
        for owner in sorted(self._owners):
            record, reason = self._record(owner)
            if record is None:
                dropped[reason] += 1
            else:
                records.setdefault((record.name, record.birthdate, record.citizenship), record)
        if not records:
            return UboSet(
                status=UboStatus.UNKNOWN,
                source="sap_relationships",
                dropped=dict(dropped),
                reason="no_resolvable_owners",
            )
        return UboSet(
            status=UboStatus.KNOWN,
            source="sap_relationships",
            records=tuple(records.values()),
            dropped=dict(dropped),
        )

    def _record(self, owner: str) -> tuple[UboRecord | None, str]:
        facts = self._persons.get(owner)
        if facts is None:
            return None, "owner_not_a_known_person"
        raw_name, born, country = facts
        name, reason = clean_name(raw_name)
        if name is None:
            return None, (reason.value if reason else "missing_name")
        if born is None:
            return None, "missing_birthdate"
        if country not in ISO_ALPHA2:
            return None, "invalid_country"
        return UboRecord(name=name, birthdate=born, citizenship=country), ""


def ubo_collector(
    source: CsvUboSource | SapRelationshipsUboSource | None, *, as_of: date
) -> UboCollector | None:
    """The collector for a configured source (None when no source is configured)."""
    if isinstance(source, CsvUboSource):
        return CsvUboCollector(source.path)
    if isinstance(source, SapRelationshipsUboSource):
        return RelationshipUboCollector(source.categories, as_of=as_of)
    return None
