"""OData wire values: v2 ``/Date(ms)/`` and ``/Date(ms+offset)/``, ``Edm.Time`` durations, v4 ISO dates,
decimals as strings, and the filter literals the client emits. Pure functions, no I/O.

v2 (SAP Gateway, OData v2 JSON verbose): ``/Date(<ms>)/`` is Edm.DateTime in milliseconds since 1970 UTC;
``/Date(<ms>±<mmmm>)/`` is Edm.DateTimeOffset where the milliseconds are the UTC instant and the 4-digit
suffix is the offset **in minutes** (OData v2 spec; SAP sends ``+0000``). The parsed datetime is that instant
carried in a tz of that offset. ``Edm.Time`` arrives as ``PT17H49M05S``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any

from core.errors import InvalidInputError

_V2_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
_EDM_TIME = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d+))?S)?")
_ISO_FRACTION = re.compile(r"(\.\d{6})\d+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ODataVersion(IntEnum):
    """The OData protocol version of a service."""

    V2 = 2
    V4 = 4


def parse_v2_datetime(text: str, *, field: str = "value") -> datetime:
    """An aware datetime from ``/Date(ms)/`` or ``/Date(ms±mmmm)/``. Raises :class:`InvalidInputError`."""
    match = _V2_DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidInputError(
            f"not an OData v2 date: {str(text)[:40]!r}", field=field, expected="/Date(ms)/"
        )
    instant = _EPOCH + timedelta(milliseconds=int(match.group(1)))
    if match.group(2) is None:
        return instant
    offset = int(match.group(2))  # sign included, minutes
    if abs(offset) >= 24 * 60:
        raise InvalidInputError(
            f"offset out of range in {text!r}", field=field, expected="|offset| < 1440 minutes"
        )
    return instant.astimezone(timezone(timedelta(minutes=offset)))


def parse_iso_datetime(text: str, *, field: str = "value") -> datetime:
    """An aware datetime from v4 ISO 8601 (``Z`` or offset, up to 7 fractional digits); naive → UTC."""
    try:
        value = datetime.fromisoformat(_ISO_FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00"))
    except (AttributeError, ValueError) as exc:
        raise InvalidInputError(
            f"not an ISO 8601 timestamp: {str(text)[:40]!r}", field=field, expected="YYYY-MM-DDThh:mm:ssZ"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_datetime(value: Any, *, field: str = "value") -> datetime | None:
    """A v2 or v4 timestamp or date (date-only → midnight UTC); ``None``/``""`` → ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("/Date("):
        return parse_v2_datetime(value, field=field)
    if isinstance(value, str) and len(value) == 10:
        return datetime.combine(parse_date(value, field=field) or date.min, time(), UTC)
    return parse_iso_datetime(value, field=field)


def parse_date(value: Any, *, field: str = "value") -> date | None:
    """A calendar date from ``/Date(ms)/`` (UTC day, never local time) or ``YYYY-MM-DD``."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("/Date("):
        return parse_v2_datetime(value, field=field).astimezone(UTC).date()
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise InvalidInputError(
            f"not a date: {str(value)[:40]!r}", field=field, expected="YYYY-MM-DD"
        ) from exc


def parse_edm_time(value: Any, *, field: str = "value") -> time | None:
    """``Edm.Time`` ``PT17H49M05S`` (v2) or ``TimeOfDay`` ``17:49:05`` (v4) → :class:`datetime.time`."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    match = _EDM_TIME.fullmatch(text)
    if match is None:
        try:
            return time.fromisoformat(text)
        except ValueError as exc:
            raise InvalidInputError(
                f"not an Edm.Time: {text[:40]!r}", field=field, expected="PThhHmmMssS"
            ) from exc
    hours, minutes, seconds = (int(g or 0) for g in match.groups()[:3])
    micros = int((match.group(4) or "0")[:6].ljust(6, "0"))
    total = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if total >= timedelta(days=1):
        raise InvalidInputError(f"Edm.Time out of range: {text!r}", field=field, expected="< 24 hours")
    return (datetime.min + total).time().replace(microsecond=micros)


def parse_decimal(value: Any, *, field: str = "value") -> Decimal | None:
    """Edm.Decimal from a v2 string (``"1000.00"``) or a v4 JSON number."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInputError(
            f"not a decimal: {str(value)[:40]!r}", field=field, expected="digits"
        ) from exc


def format_v2_datetime(moment: datetime, *, with_offset: bool = False) -> str:
    """``/Date(ms)/`` (or ``/Date(ms+0000)/``) for an aware datetime; the inverse of the parser."""
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    return f"/Date({ms}+0000)/" if with_offset else f"/Date({ms})/"


def filter_date(day: date, version: ODataVersion) -> str:
    """Filter literal for an Edm.DateTime date (v2 ``datetime'…'``) / Edm.Date (v4 ``YYYY-MM-DD``)."""
    if version is ODataVersion.V2:
        return f"datetime'{day.isoformat()}T00:00:00'"
    return day.isoformat()


def filter_datetime(moment: datetime, version: ODataVersion) -> str:
    """Filter literal for Edm.DateTimeOffset: v2 ``datetimeoffset'…Z'``, v4 bare ``…Z``."""
    if moment.tzinfo is None:
        raise InvalidInputError("naive datetime in a filter", field="since", expected="an aware datetime")
    text = moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"datetimeoffset'{text}'" if version is ODataVersion.V2 else text
