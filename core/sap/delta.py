"""Delta loads by change date: per-entity-set watermarks stored in a small JSON file.

Business partners change by ``LastChangeDate`` + ``LastChangeTime`` (newly created ones have a null
``LastChangeDate``, so ``CreationDate`` + ``CreationTime`` is the fallback); purchase orders by
``LastChangeDateTime`` (fallback ``CreationDate``). A_Supplier has no change date. The next run reads from
the watermark minus an overlap (default one day) and upserts idempotently, because OData sends no
tombstones and date-granular filters re-read the watermark day anyway. Save a watermark only after the
run that observed it has succeeded. The file is written atomically (``core.fsio.atomic_write``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from core.canonical import canonical_bytes
from core.errors import InvalidInputError
from core.fsio import atomic_write
from core.sap.services import EntityKind
from core.sap.wire import parse_datetime, parse_edm_time

WATERMARK_FORMAT: Final = "cap.sap.watermarks.v1"


class Watermarks(BaseModel):
    """The newest change timestamp seen per entity set (UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["cap.sap.watermarks.v1"] = WATERMARK_FORMAT
    marks: dict[EntityKind, datetime] = {}

    def since(self, kind: EntityKind, *, overlap: timedelta = timedelta(days=1)) -> datetime | None:
        """Where the next delta read of ``kind`` starts (watermark − overlap), or None for a full read."""
        mark = self.marks.get(kind)
        return None if mark is None else mark - overlap

    def advanced(self, kind: EntityKind, moment: datetime | None) -> Watermarks:
        """A copy whose mark for ``kind`` is the later of the current one and ``moment``."""
        current = self.marks.get(kind)
        if moment is None or (current is not None and moment <= current):
            return self
        return self.model_copy(update={"marks": {**self.marks, kind: moment.astimezone(UTC)}})


def change_timestamp(kind: EntityKind, entity: Mapping[str, Any]) -> datetime | None:
    """The change timestamp of one v2/v4 entity of ``kind`` (None when it carries none)."""
    if kind is EntityKind.PURCHASE_ORDER:
        return parse_datetime(entity.get("LastChangeDateTime"), field="LastChangeDateTime") or parse_datetime(
            entity.get("CreationDate"), field="CreationDate"
        )
    if kind is EntityKind.BUSINESS_PARTNER:
        for day_field, time_field in (("LastChangeDate", "LastChangeTime"), ("CreationDate", "CreationTime")):
            day = parse_datetime(entity.get(day_field), field=day_field)
            if day is not None:
                clock = parse_edm_time(entity.get(time_field), field=time_field)
                if clock is None:
                    return day
                return day + timedelta(hours=clock.hour, minutes=clock.minute, seconds=clock.second)
    return None


def load_watermarks(path: str | Path) -> Watermarks:
    """The stored watermarks, or empty ones if the file does not exist.

    Raises :class:`InvalidInputError` naming the file when it is not a watermark document.
    """
    target = Path(path)
    if not target.exists():
        return Watermarks()
    try:
        return Watermarks.model_validate(json.loads(target.read_bytes()))
    except (ValueError, ValidationError) as exc:
        raise InvalidInputError(
            "unreadable SAP watermark file", file=str(target), expected=f"a {WATERMARK_FORMAT} JSON document"
        ) from exc


def save_watermarks(path: str | Path, marks: Watermarks) -> Path:
    """Write ``marks`` atomically as canonical JSON; returns the path."""
    return atomic_write(path, canonical_bytes(marks.model_dump(mode="json")) + b"\n")
