"""Scanners that decide what may enter a backup: private key material (always refused) and PII.

Findings name the file and the field (JSON path, ``line N``, or ``table.column``) and the kind of
finding, never the value found. Private key material has no override. PII refuses by default;
``PiiMode.WARN`` lets the backup proceed and reports the findings. Lists (public sanctions and
high-risk-country data) are exempt from the PII heuristics but not from the private-key scan.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import re
import sqlite3
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from core.backup.fingerprints import KeyFingerprints
from core.backup.manifest import FileType
from core.errors import InvalidInputError

PEM_MARKERS = (b"PRIVATE KEY-----", b"PRIVATE KEY BLOCK-----")
PEM_OVERLAP = 32
_KEYLIKE = re.compile(
    r"^(private[_-]?key|privkey|secret([_-]?key)?|seed|d|sk|signing[_-]?key|private)$", re.I
)
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_B64_44 = re.compile(r"^[A-Za-z0-9+/]{43}=$")
# A match starts only where the local part starts (the lookbehind): linear time on long tokens such as a
# proof's hex, which without it cost O(n²) (0.23 s per 10 KB value).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w+])\+\d{1,3}[ ./-]?(\(?\d{1,5}\)?[ ./-]?){2,5}\d{2,}(?!\w)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
_PHONE_FIELD = re.compile(r"(phone|mobile|telephone|^tel$|fax)", re.I)
_BIRTH_FIELD = re.compile(r"(birth|^dob$|geburt)", re.I)
_NAME_FIELD = re.compile(
    r"^(first[_-]?name|last[_-]?name|given[_-]?name|family[_-]?name|surname|full[_-]?name|"
    r"person[_-]?name|forename|vorname|nachname|middle[_-]?name)$",
    re.I,
)
SQLITE_SAMPLE_ROWS = 1000


class PiiMode(StrEnum):
    REFUSE = "refuse"
    WARN = "warn"


class FindingKind(StrEnum):
    PRIVATE_KEY_PEM = "private_key_pem"
    PRIVATE_KEY_SEED = "private_key_seed"
    PRIVATE_KEY_MATCH = "private_key_match"  # a key from keys/ itself, in some encoding
    EMAIL = "email"
    PHONE = "phone"
    IBAN = "iban"
    BIRTH_DATE = "birth_date"
    PERSON_NAME = "person_name"


PRIVATE_KINDS = frozenset(
    {FindingKind.PRIVATE_KEY_PEM, FindingKind.PRIVATE_KEY_SEED, FindingKind.PRIVATE_KEY_MATCH}
)


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)
    file: str
    field: str
    kind: FindingKind


class ScanReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    files_scanned: int = 0
    findings: tuple[Finding, ...] = ()

    @property
    def private(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind in PRIVATE_KINDS)

    @property
    def pii(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind not in PRIVATE_KINDS)


def _iban_ok(text: str) -> bool:
    moved = text[4:] + text[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


def _seed_like(value: str) -> bool:
    if _HEX64.match(value):
        return True
    if _B64_44.match(value):
        try:
            return len(base64.b64decode(value, validate=True)) == 32
        except (binascii.Error, ValueError):
            return False
    return False


def scan_value(key: str, value: Any, *, pii: bool) -> Iterator[FindingKind]:
    """Kinds of sensitive content in one ``key: value`` pair (scalars only)."""
    if isinstance(value, str) and any(m.decode() in value for m in PEM_MARKERS):
        yield FindingKind.PRIVATE_KEY_PEM
    if isinstance(value, str) and _KEYLIKE.match(key) and _seed_like(value.strip()):
        yield FindingKind.PRIVATE_KEY_SEED
    if not pii or value is None or isinstance(value, bool):
        return
    text = str(value)
    if _EMAIL.search(text):
        yield FindingKind.EMAIL
    if _PHONE.search(text) or (_PHONE_FIELD.search(key) and sum(c.isdigit() for c in text) >= 6):
        yield FindingKind.PHONE
    if any(_iban_ok(m.group(0)) for m in _IBAN.finditer(text)):
        yield FindingKind.IBAN
    if _BIRTH_FIELD.search(key) and text.strip():
        yield FindingKind.BIRTH_DATE
    if _NAME_FIELD.match(key) and text.strip():
        yield FindingKind.PERSON_NAME


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(json path, last key, scalar) for every scalar in a JSON/YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from (
                _walk(v, f"{path}.{k}") if isinstance(v, (dict, list)) else [(f"{path}.{k}", str(k), v)]
            )
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, path.rsplit(".", 1)[-1], node


def scan_document(name: str, doc: Any, *, pii: bool, prefix: str = "$") -> list[Finding]:
    """Findings in a parsed JSON/YAML document."""
    return [
        Finding(file=name, field=path, kind=kind)
        for path, key, value in _walk(doc, prefix)
        for kind in scan_value(key, value, pii=pii)
    ]


def scan_bytes_for_pem(name: str, data: bytes) -> list[Finding]:
    """PEM private key blocks anywhere in raw bytes."""
    if any(m in data for m in PEM_MARKERS):
        return [Finding(file=name, field="<bytes>", kind=FindingKind.PRIVATE_KEY_PEM)]
    return []


def _scan_text_file(name: str, data: bytes, kind: FileType, *, pii: bool) -> list[Finding]:
    findings = scan_bytes_for_pem(name, data)
    if len(data) == 32 or (len(data) == 64 and kind is FileType.KEY_METADATA):
        findings.append(Finding(file=name, field="<file>", kind=FindingKind.PRIVATE_KEY_SEED))
        return findings
    text = data.decode("utf-8", errors="replace")
    if name.endswith(".jsonl"):
        for number, line in enumerate(text.splitlines(), start=1):
            findings += _scan_parsed(name, line, pii=pii, prefix=f"line {number}: $", loader=json.loads)
    elif name.endswith((".yaml", ".yml")):
        findings += _scan_parsed(name, text, pii=pii, prefix="$", loader=yaml.safe_load)
    elif name.endswith(".json"):
        findings += _scan_parsed(name, text, pii=pii, prefix="$", loader=json.loads)
    elif pii:
        findings += [Finding(file=name, field="<text>", kind=k) for k in _text_kinds(text)]
    return findings


def _scan_parsed(name: str, text: str, *, pii: bool, prefix: str, loader: Any) -> list[Finding]:
    if not text.strip():
        return []
    try:
        doc = loader(text)
    except (ValueError, yaml.YAMLError):
        kinds = _text_kinds(text) if pii else set()
        return [Finding(file=name, field=f"{prefix} <unparsed>", kind=k) for k in kinds]
    return scan_document(name, doc, pii=pii, prefix=prefix)


def _text_kinds(text: str) -> set[FindingKind]:
    return {k for line in text.splitlines() for k in scan_value("", line, pii=True)}


def scan_sqlite(name: str, path: Path, *, pii: bool, sample_rows: int = SQLITE_SAMPLE_ROWS) -> list[Finding]:
    """Column names and up to ``sample_rows`` text values per table of a SQLite snapshot."""
    findings: list[Finding] = []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            cur = conn.execute(f"SELECT * FROM {quoted} LIMIT ?", (sample_rows,))  # noqa: S608
            columns = [d[0] for d in cur.description]
            seen: set[tuple[str, FindingKind]] = set()
            for row in cur:
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, bytes) and _KEYLIKE.match(column) and len(value) in (32, 64):
                        seen.add((column, FindingKind.PRIVATE_KEY_SEED))
                    elif isinstance(value, (str, int)):
                        seen |= {(column, k) for k in scan_value(column, value, pii=pii)}
            findings += [Finding(file=name, field=f"{table}.{c}", kind=k) for c, k in sorted(seen)]
    except sqlite3.Error as exc:
        raise InvalidInputError(f"cannot scan SQLite snapshot: {exc}", file=name) from exc
    finally:
        conn.close()
    return findings


def scan_table_csv(
    name: str, path: Path, *, pii: bool, sample_rows: int = SQLITE_SAMPLE_ROWS
) -> list[Finding]:
    """Column names and up to ``sample_rows`` rows of one PostgreSQL table dumped as CSV with a header, as
    :func:`scan_sqlite` does for a SQLite table (PEM blocks in any row are refused while archiving)."""
    csv.field_size_limit(1 << 30)
    table = Path(name).stem
    seen: set[tuple[str, FindingKind]] = set()
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        rows = csv.reader(fh)
        columns = next(rows, [])
        for number, row in enumerate(rows):
            if number >= sample_rows:
                break
            for column, value in zip(columns, row, strict=False):
                seen |= {(column, k) for k in scan_value(column, value, pii=pii)}
    return [Finding(file=name, field=f"{table}.{c}", kind=k) for c, k in sorted(seen)]


def scan_file(name: str, path: Path, kind: FileType, keys: KeyFingerprints | None = None) -> list[Finding]:
    """All findings for one file about to be backed up (PII included unless it is a list); with ``keys``,
    also any of those private keys in any encoding in the file's bytes (:mod:`core.backup.fingerprints`)."""
    pii = kind is not FileType.LISTS
    found = key_matches(name, path, keys) if keys else []
    if kind in (FileType.DATABASE, FileType.POLICY_STORE):
        return found + scan_sqlite(name, path, pii=pii)
    if kind is FileType.POSTGRESQL_TABLE:
        return found + scan_table_csv(name, path, pii=pii)
    return found + _scan_text_file(name, path.read_bytes(), kind, pii=pii)


def key_matches(name: str, path: Path, keys: KeyFingerprints) -> list[Finding]:
    """A finding if one of ``keys`` is in the file, in any encoding (:mod:`core.backup.fingerprints`)."""
    encoding = keys.encoding_in_file(path)
    if encoding is None:
        return []
    return [Finding(file=name, field=f"<{encoding} bytes>", kind=FindingKind.PRIVATE_KEY_MATCH)]


def enforce(report: ScanReport, mode: PiiMode) -> ScanReport:
    """Raise unless the report allows the backup. Private key material is refused whatever ``mode``.

    Raises :class:`InvalidInputError` with code ``backup_private_key_material`` or ``backup_pii_detected``.
    """
    if report.private:
        first = report.private[0]
        raise InvalidInputError(
            f"private key material found in {first.file}; backups never contain private keys",
            code="backup_private_key_material",
            file=first.file,
            field=first.field,
            findings=[f.model_dump(mode="json") for f in report.private],
        )
    if report.pii and mode is PiiMode.REFUSE:
        first = report.pii[0]
        raise InvalidInputError(
            f"possible personal data found ({len(report.pii)} findings); pass pii='warn' to back up anyway",
            code="backup_pii_detected",
            file=first.file,
            field=first.field,
            findings=[f.model_dump(mode="json") for f in report.pii],
        )
    return report
