"""Sanctions and high-risk-country list readers, the list-entry model and the list-level digests.

Owns: :class:`SanctionsEntry`, the readers for the OFAC legacy CSV (``sdn.csv`` + ``alt.csv``), the UN
Security Council consolidated XML and the simple ``name,birthdate,nationality`` CSV, the high-risk
country CSV ``iso_code,risk_level``, the source descriptor written into ``cap-lists.v1``, the
``jurisdiction_root`` and the original's flat ``sanctions_root`` (``cap-flat-v1``).

Every reader raises :class:`~core.errors.InvalidInputError` naming the file, the line and the field
for a malformed row, and for an empty file; a missing file is :class:`~core.errors.NotFoundError`.
Normalisation and screening live in :mod:`core.screening`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.parsers import expat

from pydantic import BaseModel, ConfigDict

from core.digest import blake3_hex, blake3_raw, sha3_prefixed
from core.errors import InvalidInputError, NotFoundError
from core.merkle import merkle_root

OFAC_NULL = "-0-"
SDN_FIELDS = (
    "ent_num",
    "SDN_Name",
    "SDN_Type",
    "Program",
    "Title",
    "Call_Sign",
    "Vess_type",
    "Tonnage",
    "GRT",
    "Vess_flag",
    "Vess_owner",
    "Remarks",
)
ALT_FIELDS = ("ent_num", "alt_num", "alt_type", "alt_name", "alt_remarks")
SIMPLE_FIELDS = ("name", "birthdate", "nationality")
HIGH_RISK_FIELDS = ("iso_code", "risk_level")
UN_NAME_PARTS = ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")
_ISO2 = re.compile(r"[A-Z]{2}")
_OFAC_DOB = re.compile(r"(?:^|;\s*)DOB ([^;]+)")
_OFAC_NATIONALITY = re.compile(r"(?:^|;\s*)nationality ([^;]+)")
_EOF_MARK = "\x1a"  # OFAC files end with a Ctrl-Z line


class ListFormat(StrEnum):
    OFAC = "ofac"
    UN = "un"
    CSV = "csv"


class RiskLevel(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class SanctionsEntry(BaseModel):
    """One listed party. ``birthdate`` and ``nationality`` are kept as the source writes them."""

    model_config = ConfigDict(frozen=True)

    source: str
    entry_id: str
    primary_name: str
    aliases: tuple[str, ...] = ()
    birthdate: str | None = None
    nationality: str | None = None

    @property
    def ref(self) -> str:
        """``source:entry_id``, the id screening findings point to."""
        return f"{self.source}:{self.entry_id}"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.primary_name, *self.aliases)


class ListSource(BaseModel):
    """Where a list came from: basename, format, entry count and SHA3-256 of the exact bytes read."""

    model_config = ConfigDict(frozen=True)

    path: str
    format: ListFormat
    entries: int
    sha3_256: str
    alt_path: str | None = None
    alt_sha3_256: str | None = None


class LoadedList(BaseModel):
    model_config = ConfigDict(frozen=True)

    entries: tuple[SanctionsEntry, ...]
    source: ListSource


# ---------------------------------------------------------------------------------------------- bytes


def _read_bytes(path: Path) -> bytes:
    """The file's bytes. Raises NotFoundError if missing, InvalidInputError if unreadable or empty."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFoundError(f"list file not found: {path}", file=str(path)) from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read list file: {exc.strerror}", file=str(path)) from exc
    if not data.strip(b"\xef\xbb\xbf \t\r\n" + _EOF_MARK.encode()):
        raise InvalidInputError("list file is empty", file=str(path), expected="at least one entry")
    return data


def _decode(data: bytes, file: str, *, legacy: bool = False) -> str:
    """UTF-8 (BOM tolerated); ``legacy`` files (OFAC) may instead be Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if legacy:
            try:
                return data.decode("cp1252")
            except UnicodeDecodeError:
                pass
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInputError(
            "file is not valid UTF-8", file=file, line=line, expected="UTF-8 text"
        ) from exc


def _csv_rows(text: str, file: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for every non-blank CSV record; bad quoting names the line."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInputError(f"malformed CSV: {exc}", file=file, line=line) from exc
        if row and row != [_EOF_MARK] and any(cell.strip() for cell in row):
            yield line, row


def _header_rows(text: str, file: str, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header holding every ``required`` column (extra columns ignored)."""
    rows = _csv_rows(text, file)
    first = next(rows, None)
    if first is None:
        raise InvalidInputError("list file is empty", file=file, expected="a header row")
    line, header = first
    header = [h.strip() for h in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise InvalidInputError(
            f"header lacks column(s) {', '.join(missing)}",
            file=file,
            line=line,
            field=missing[0],
            expected=",".join(required),
        )
    where = {name: header.index(name) for name in required}
    for line, row in rows:
        if len(row) < len(header):
            raise InvalidInputError(
                f"row has {len(row)} fields, header has {len(header)}",
                file=file,
                line=line,
                expected=f"{len(header)} fields",
            )
        yield line, {name: row[i] for name, i in where.items()}


# ----------------------------------------------------------------------------------------------- OFAC


def _ofac_value(cell: str) -> str | None:
    value = cell.strip()
    return None if value in ("", OFAC_NULL) else value


def _ofac_ent_num(cell: str, file: str, line: int) -> str:
    value = cell.strip()
    if not value.isdigit():
        raise InvalidInputError(
            f"ent_num {value[:40]!r} is not a number",
            file=file,
            line=line,
            field="ent_num",
            expected="a decimal integer",
        )
    return value


def _ofac_table(data: bytes, file: str, fields: Sequence[str]) -> Iterator[tuple[int, str, list[str]]]:
    for line, row in _csv_rows(_decode(data, file, legacy=True), file):
        if len(row) != len(fields):
            raise InvalidInputError(
                f"row has {len(row)} fields",
                file=file,
                line=line,
                expected=f"{len(fields)} fields: {','.join(fields)}",
            )
        yield line, _ofac_ent_num(row[0], file, line), row


def _remark(pattern: re.Pattern[str], remarks: str | None) -> str | None:
    found = pattern.search(remarks or "")
    return found.group(1).strip().rstrip(".").strip() if found else None


def _parse_ofac_alt(data: bytes, file: str) -> dict[str, list[str]]:
    """alt.csv → ent_num → alias names (rows for unknown ent_nums are kept; the caller ignores them)."""
    aliases: dict[str, list[str]] = {}
    for line, ent_num, row in _ofac_table(data, file, ALT_FIELDS):
        name = _ofac_value(row[3])
        if name is None:
            raise InvalidInputError(
                "alias has no name", file=file, line=line, field="alt_name", expected="a name"
            )
        aliases.setdefault(ent_num, []).append(name)
    return aliases


def parse_ofac(
    sdn: bytes, sdn_file: str, alt: bytes | None = None, alt_file: str = "alt.csv"
) -> list[SanctionsEntry]:
    """Entries of an OFAC legacy ``sdn.csv`` with aliases from ``alt.csv`` joined by ``ent_num``.

    DOB and nationality are taken from ``Remarks`` when written ``DOB …`` / ``nationality …``. Alias rows
    whose ``ent_num`` is not in ``sdn.csv`` (extraction orphans) are ignored. Raises InvalidInputError.
    """
    alias_map = _parse_ofac_alt(alt, alt_file) if alt is not None else {}
    entries: dict[str, SanctionsEntry] = {}
    for line, ent_num, row in _ofac_table(sdn, sdn_file, SDN_FIELDS):
        name = _ofac_value(row[1])
        if name is None:
            raise InvalidInputError(
                "entry has no name", file=sdn_file, line=line, field="SDN_Name", expected="a name"
            )
        if ent_num in entries:
            raise InvalidInputError(
                f"duplicate ent_num {ent_num}",
                file=sdn_file,
                line=line,
                field="ent_num",
                expected="unique ent_num",
            )
        remarks = _ofac_value(row[11])
        entries[ent_num] = SanctionsEntry(
            source=ListFormat.OFAC.value,
            entry_id=ent_num,
            primary_name=name,
            aliases=_unique_aliases(name, alias_map.get(ent_num, [])),
            birthdate=_remark(_OFAC_DOB, remarks),
            nationality=_remark(_OFAC_NATIONALITY, remarks),
        )
    return list(entries.values())


def _unique_aliases(primary: str, aliases: Sequence[str]) -> tuple[str, ...]:
    seen = {primary}
    out = []
    for alias in aliases:
        if alias not in seen:
            seen.add(alias)
            out.append(alias)
    return tuple(out)


def read_ofac(sdn_path: str | Path, alt_path: str | Path | None = None) -> list[SanctionsEntry]:
    """Read OFAC ``sdn.csv``; aliases from ``alt_path`` or, if None, an ``alt.csv`` beside it if present."""
    return list(load_source(sdn_path, ListFormat.OFAC, alt_path=alt_path).entries)


# ------------------------------------------------------------------------------------------------- UN


def _refuse_doctype(*_args: object) -> None:
    raise InvalidInputError("XML declares a DOCTYPE or entities; refused", expected="plain XML without DTD")


def _parse_xml(data: bytes, file: str) -> tuple[ET.Element, dict[ET.Element, int]]:
    """Parse with expat, refusing DOCTYPE/ENTITY declarations; returns the root and element line numbers."""
    builder = ET.TreeBuilder()
    lines: dict[ET.Element, int] = {}
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.ExternalEntityRefHandler = _refuse_doctype  # type: ignore[assignment]

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise InvalidInputError(
            f"malformed XML: {expat.errors.messages[exc.code]}",
            file=file,
            line=exc.lineno,
            expected="well-formed XML",
        ) from exc
    except InvalidInputError as exc:
        raise InvalidInputError(
            exc.message, file=file, line=parser.CurrentLineNumber, expected=exc.details["expected"]
        ) from exc
    return builder.close(), lines


def _text(elem: ET.Element | None) -> str | None:
    value = (elem.text or "").strip() if elem is not None else ""
    return value or None


def _un_birthdate(elem: ET.Element) -> str | None:
    for dob in elem.iter("INDIVIDUAL_DATE_OF_BIRTH"):
        exact = _text(dob.find("DATE")) or _text(dob.find("YEAR"))
        if exact:
            return exact
        low, high = _text(dob.find("FROM_YEAR")), _text(dob.find("TO_YEAR"))
        if low and high:
            return f"{low}/{high}"
    return None


def _un_entry(elem: ET.Element, alias_tag: str, file: str, line: int) -> SanctionsEntry:
    ref = _text(elem.find("REFERENCE_NUMBER")) or _text(elem.find("DATAID"))
    if ref is None:
        raise InvalidInputError(
            f"{elem.tag} has no REFERENCE_NUMBER or DATAID",
            file=file,
            line=line,
            field="REFERENCE_NUMBER",
            expected="an identifier",
        )
    name = " ".join(part for tag in UN_NAME_PARTS if (part := _text(elem.find(tag))))
    if not name:
        raise InvalidInputError(
            f"{elem.tag} {ref} has no name",
            file=file,
            line=line,
            field="FIRST_NAME",
            expected="a name in FIRST_NAME..FOURTH_NAME",
        )
    aliases = [a for alias in elem.iter(alias_tag) if (a := _text(alias.find("ALIAS_NAME")))]
    original = _text(elem.find("NAME_ORIGINAL_SCRIPT"))  # "راحت لمتد": screened as written too
    if original and any(c.isalnum() for c in original):  # a placeholder such as "-" is not a name
        aliases.append(original)
    return SanctionsEntry(
        source=ListFormat.UN.value,
        entry_id=ref,
        primary_name=name,
        aliases=_unique_aliases(name, aliases),
        birthdate=_un_birthdate(elem),
        nationality=_text(elem.find("NATIONALITY/VALUE")),
    )


def parse_un_xml(data: bytes, file: str) -> list[SanctionsEntry]:
    """Entries (INDIVIDUALS then ENTITIES) of a UN consolidated list. Raises InvalidInputError."""
    root, lines = _parse_xml(data, file)
    if root.tag != "CONSOLIDATED_LIST":
        raise InvalidInputError(
            f"root element is {root.tag}",
            file=file,
            line=lines.get(root, 1),
            field="root",
            expected="CONSOLIDATED_LIST",
        )
    entries = [
        _un_entry(e, "INDIVIDUAL_ALIAS", file, lines[e]) for e in root.iterfind("INDIVIDUALS/INDIVIDUAL")
    ]
    entries += [_un_entry(e, "ENTITY_ALIAS", file, lines[e]) for e in root.iterfind("ENTITIES/ENTITY")]
    if not entries:
        raise InvalidInputError(
            "UN list holds no INDIVIDUAL or ENTITY", file=file, expected="at least one entry"
        )
    return entries


def read_un_xml(path: str | Path) -> list[SanctionsEntry]:
    """Read a UN Security Council consolidated XML list. Raises InvalidInputError / NotFoundError."""
    return list(load_source(path, ListFormat.UN).entries)


# ------------------------------------------------------------------------------------------ simple CSV


def parse_simple_csv(data: bytes, file: str) -> list[SanctionsEntry]:
    """Entries of ``name,birthdate,nationality`` (header, BOM tolerated, values kept untrimmed).

    ``entry_id`` is ``<file>:<line>``; empty birthdate/nationality become None. Raises InvalidInputError.
    """
    entries = []
    for line, row in _header_rows(_decode(data, file), file, SIMPLE_FIELDS):
        if not row["name"].strip():
            raise InvalidInputError("empty name", file=file, line=line, field="name", expected="a name")
        entries.append(
            SanctionsEntry(
                source=ListFormat.CSV.value,
                entry_id=f"{file}:{line}",
                primary_name=row["name"],
                birthdate=row["birthdate"] or None,
                nationality=row["nationality"] or None,
            )
        )
    if not entries:
        raise InvalidInputError(
            "list file has a header but no entries", file=file, expected="at least one row"
        )
    return entries


def read_simple_csv(path: str | Path) -> list[SanctionsEntry]:
    """Read a simple ``name,birthdate,nationality`` CSV list. Raises InvalidInputError / NotFoundError."""
    return list(load_source(path, ListFormat.CSV).entries)


# ----------------------------------------------------------------------------------------- dispatching


def _read_alt(sdn_path: Path, alt_path: str | Path | None) -> tuple[bytes | None, str | None]:
    """An explicit ``alt_path`` must exist (it may be empty); else ``alt.csv`` beside ``sdn.csv`` if any."""
    alt_file = Path(alt_path) if alt_path is not None else sdn_path.with_name("alt.csv")
    if alt_path is None and not alt_file.is_file():
        return None, None
    try:
        return alt_file.read_bytes(), alt_file.name
    except FileNotFoundError as exc:
        raise NotFoundError(f"alias file not found: {alt_file}", file=str(alt_file)) from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read alias file: {exc.strerror}", file=str(alt_file)) from exc


def load_source(path: str | Path, fmt: ListFormat, *, alt_path: str | Path | None = None) -> LoadedList:
    """Read a list once: its entries and the :class:`ListSource` hashing exactly the bytes parsed."""
    path = Path(path)
    data = _read_bytes(path)
    alt: bytes | None = None
    alt_name: str | None = None
    if fmt is ListFormat.OFAC:
        alt, alt_name = _read_alt(path, alt_path)
        entries = parse_ofac(data, path.name, alt, alt_name or "alt.csv")
    elif fmt is ListFormat.UN:
        entries = parse_un_xml(data, path.name)
    else:
        entries = parse_simple_csv(data, path.name)
    source = ListSource(
        path=path.name,
        format=fmt,
        entries=len(entries),
        sha3_256=sha3_prefixed(data),
        alt_path=alt_name,
        alt_sha3_256=sha3_prefixed(alt) if alt is not None else None,
    )
    return LoadedList(entries=tuple(entries), source=source)


def read_sanctions(path: str | Path, fmt: ListFormat) -> list[SanctionsEntry]:
    """Read a sanctions list of format ``fmt`` (OFAC: ``path`` is ``sdn.csv``)."""
    return list(load_source(path, ListFormat(fmt)).entries)


# ----------------------------------------------------------------------------------------- high risk


def parse_high_risk(data: bytes, file: str) -> dict[str, RiskLevel]:
    """``iso_code,risk_level`` rows → {ISO alpha-2: level}. Raises InvalidInputError naming the line."""
    levels: dict[str, RiskLevel] = {}
    seen_at: dict[str, int] = {}
    for line, row in _header_rows(_decode(data, file), file, HIGH_RISK_FIELDS):
        code, level = row["iso_code"].strip(), row["risk_level"].strip()
        if not _ISO2.fullmatch(code):
            raise InvalidInputError(
                f"iso_code {code[:20]!r} is not ISO 3166-1 alpha-2",
                file=file,
                line=line,
                field="iso_code",
                expected="two uppercase letters",
            )
        if level not in RiskLevel.__members__:
            raise InvalidInputError(
                f"risk_level {level[:20]!r} is unknown",
                file=file,
                line=line,
                field="risk_level",
                expected="HIGH, MEDIUM or LOW",
            )
        if code in seen_at:
            raise InvalidInputError(
                f"iso_code {code} repeated (first on line {seen_at[code]})",
                file=file,
                line=line,
                field="iso_code",
                expected="each country once",
            )
        seen_at[code] = line
        levels[code] = RiskLevel(level)
    if not levels:
        raise InvalidInputError(
            "list file has a header but no entries", file=file, expected="at least one row"
        )
    return levels


def read_high_risk(path: str | Path) -> dict[str, RiskLevel]:
    """Read a high-risk-country CSV ``iso_code,risk_level``. Raises InvalidInputError / NotFoundError."""
    path = Path(path)
    return parse_high_risk(_read_bytes(path), path.name)


def jurisdiction_leaf(iso_code: str, level: RiskLevel) -> bytes:
    """BLAKE3 of ``ISO|LEVEL`` (the original's jurisdiction leaf)."""
    return blake3_raw(f"{iso_code}|{RiskLevel(level).value}".encode())


def jurisdiction_root(levels: Mapping[str, RiskLevel]) -> str:
    """``merkle-blake3-v1`` root (``0x…``) over the byte-sorted jurisdiction leaves."""
    return "0x" + merkle_root(sorted(jurisdiction_leaf(c, lv) for c, lv in levels.items())).hex()


def flat_sanctions_root(entries: Sequence[SanctionsEntry]) -> str:
    """The original's ``cap-flat-v1`` sanctions root: BLAKE3 over the concatenated ``0x…`` leaf strings.

    leaf = BLAKE3(``name|birthdate|nationality``) with absent values as ``""``, in the given order.
    """
    leaves = "".join(
        blake3_hex(f"{e.primary_name}|{e.birthdate or ''}|{e.nationality or ''}".encode()) for e in entries
    )
    return blake3_hex(leaves.encode("ascii"))
