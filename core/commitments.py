"""Commitments over supplier and UBO lists: CSV readers, BLAKE3 leaves, both root schemes.

Leaves are byte-compatible with the original: BLAKE3 of the compact JSON
``{"name","jurisdiction","tier"}`` (tier a JSON number) or ``{"name","birthdate","citizenship"}``.
Roots: ``merkle-blake3-v1`` (default, RFC 6962 shape, inclusion proofs) or ``cap-flat-v1`` (the
original's flat hash over the ``0x`` leaf strings). A bad row is an error naming file, line, column.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import blake3
from pydantic import BaseModel, ConfigDict

from core.errors import InvalidInputError
from core.iso3166 import ALPHA2
from core.merkle import MerkleTree, inner_node, merkle_root

SUPPLIER_COLUMNS = ("name", "jurisdiction", "tier")
UBO_COLUMNS = ("name", "birthdate", "citizenship")


class RootScheme(StrEnum):
    MERKLE = "merkle-blake3-v1"
    FLAT = "cap-flat-v1"

    @classmethod
    def parse(cls, text: str) -> RootScheme:
        aliases = {"merkle": cls.MERKLE, "flat": cls.FLAT}
        if text in aliases:
            return aliases[text]
        try:
            return cls(text)
        except ValueError:
            raise InvalidInputError(
                f"unknown root scheme {text!r}",
                field="scheme",
                expected="merkle, flat, merkle-blake3-v1 or cap-flat-v1",
            ) from None


class Supplier(NamedTuple):
    """A supplier row (a typed record: canonical JSON keeps this field order)."""

    name: str
    jurisdiction: str
    tier: int


class Ubo(NamedTuple):
    """A beneficial-owner row."""

    name: str
    birthdate: str
    citizenship: str


_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')


def _q(text: str) -> str:
    """JSON string literal as the canonicaliser writes it (only quote, backslash, controls escaped)."""
    if _NEEDS_ESCAPE.search(text) is None:
        return '"' + text + '"'
    return json.dumps(text, ensure_ascii=False)


def supplier_leaf_bytes(name: str, jurisdiction: str, tier: int) -> bytes:
    """Canonical JSON of a supplier record (same bytes as ``canonical_bytes(Supplier(...))``)."""
    return f'{{"name":{_q(name)},"jurisdiction":{_q(jurisdiction)},"tier":{tier}}}'.encode()


def ubo_leaf_bytes(name: str, birthdate: str, citizenship: str) -> bytes:
    return f'{{"name":{_q(name)},"birthdate":{_q(birthdate)},"citizenship":{_q(citizenship)}}}'.encode()


def supplier_leaf(s: Supplier) -> bytes:
    return blake3.blake3(supplier_leaf_bytes(s.name, s.jurisdiction, s.tier)).digest()


def ubo_leaf(u: Ubo) -> bytes:
    return blake3.blake3(ubo_leaf_bytes(u.name, u.birthdate, u.citizenship)).digest()


def _open(text: str, source: str, columns: Sequence[str]) -> tuple[Iterator[list[str]], list[int], Any]:
    """A CSV reader past its header and the index of each wanted column. Raises on a bad header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise InvalidInputError(
            "file is empty: expected a header row", file=source, line=1, expected=",".join(columns)
        )
    names = [h.strip() for h in header]
    missing = [c for c in columns if c not in names]
    if missing:
        raise InvalidInputError(
            f"missing column {missing[0]!r} in header",
            file=source,
            line=1,
            column=missing[0],
            expected=",".join(columns),
        )
    return reader, [names.index(c) for c in columns], reader


def _short(row: list[str], idx: Sequence[int], columns: Sequence[str], source: str, line: int) -> bool:
    """True for a blank line (skipped); raises for a row missing a wanted field."""
    if not row or (len(row) == 1 and not row[0].strip()):
        return True
    col = next(c for c, i in zip(columns, idx, strict=True) if i >= len(row))
    raise InvalidInputError("row has too few fields", file=source, line=line, column=col)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidInputError("file not found", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from None


def _require_name(name: str, source: str, line: int) -> None:
    if not name.strip():
        raise InvalidInputError(
            "name is empty", file=source, line=line, column="name", expected="a non-empty name"
        )


def _require_country(code: str, column: str, source: str, line: int) -> None:
    if code not in ALPHA2:
        raise InvalidInputError(
            f"{code!r} is not a country code",
            file=source,
            line=line,
            column=column,
            expected="ISO 3166-1 alpha-2, e.g. DE",
        )


def parse_suppliers(text: str, source: str = "<suppliers>") -> list[Supplier]:
    """Suppliers from CSV text (header ``name,jurisdiction,tier``; extra columns ignored)."""
    rows, (i_name, i_jur, i_tier), reader = _open(text, source, SUPPLIER_COLUMNS)
    width, out, countries = max(i_name, i_jur, i_tier), [], ALPHA2
    for row in rows:
        if len(row) <= width and _short(
            row, (i_name, i_jur, i_tier), SUPPLIER_COLUMNS, source, reader.line_num
        ):
            continue
        name, jurisdiction, tier = row[i_name], row[i_jur], row[i_tier]
        if jurisdiction not in countries or not name.strip():
            _require_name(name, source, reader.line_num)
            _require_country(jurisdiction, "jurisdiction", source, reader.line_num)
        if not (tier.isdigit() and tier.isascii()) or int(tier) < 1:
            raise InvalidInputError(
                f"tier {tier!r} is not an integer ≥ 1",
                file=source,
                line=reader.line_num,
                column="tier",
                expected="integer ≥ 1",
            )
        out.append(Supplier(name, jurisdiction, int(tier)))
    return out


def parse_ubos(text: str, source: str = "<ubos>") -> list[Ubo]:
    """UBOs from CSV text (header ``name,birthdate,citizenship``; ISO dates)."""
    rows, idx, reader = _open(text, source, UBO_COLUMNS)
    out: list[Ubo] = []
    for row in rows:
        if len(row) <= max(idx) and _short(row, idx, UBO_COLUMNS, source, reader.line_num):
            continue
        name, birthdate, citizenship = (row[i] for i in idx)
        line = reader.line_num
        _require_name(name, source, line)
        try:
            valid = len(birthdate) == 10 and date.fromisoformat(birthdate).isoformat() == birthdate
        except ValueError:
            valid = False
        if not valid:
            raise InvalidInputError(
                f"birthdate {birthdate!r} is not an ISO date",
                file=source,
                line=line,
                column="birthdate",
                expected="YYYY-MM-DD",
            )
        _require_country(citizenship, "citizenship", source, line)
        out.append(Ubo(name, birthdate, citizenship))
    return out


def read_suppliers(path: str | Path) -> list[Supplier]:
    p = Path(path)
    return parse_suppliers(_read_text(p), str(p))


def read_ubos(path: str | Path) -> list[Ubo]:
    p = Path(path)
    return parse_ubos(_read_text(p), str(p))


def record_lines(path: str | Path, columns: Sequence[str]) -> list[int]:
    """The file line of each record :func:`read_suppliers` / :func:`read_ubos` return, in their order.

    Kept apart from the parsers (the 1 M-row commit path); blank lines are skipped by the same rule.
    """
    p = Path(path)
    rows, idx, reader = _open(_read_text(p), str(p), columns)
    return [
        reader.line_num
        for row in rows
        if not (len(row) <= max(idx) and _short(row, idx, columns, str(p), reader.line_num))
    ]


class Commitments(BaseModel):
    """``commitments.json``: public roots and counts; the leaves stay with the prover."""

    model_config = ConfigDict(frozen=True)
    scheme: RootScheme
    supplier_root: str
    ubo_root: str
    company_commitment_root: str
    supplier_count: int
    ubo_count: int
    created_at: str


def flat_root(leaves: Iterable[bytes]) -> bytes:
    """``cap-flat-v1``: BLAKE3 over the ASCII ``0x…`` leaf strings concatenated in order."""
    return blake3.blake3("".join("0x" + leaf.hex() for leaf in leaves).encode("ascii")).digest()


def list_root(leaves: Sequence[bytes], scheme: RootScheme) -> bytes:
    return merkle_root(leaves) if scheme is RootScheme.MERKLE else flat_root(leaves)


def company_root(supplier_root: bytes, ubo_root: bytes, scheme: RootScheme) -> bytes:
    """Merkle: BLAKE3(0x01‖s‖u). Flat: BLAKE3 of the text ``"0x…" + "0x…"``."""
    if scheme is RootScheme.MERKLE:
        return inner_node(supplier_root, ubo_root)
    return blake3.blake3(("0x" + supplier_root.hex() + "0x" + ubo_root.hex()).encode("ascii")).digest()


def commit(
    suppliers: Sequence[Supplier], ubos: Sequence[Ubo], scheme: RootScheme, created_at: str
) -> Commitments:
    """Roots and counts over the given records."""
    return commit_leaves(
        [supplier_leaf(s) for s in suppliers], [ubo_leaf(u) for u in ubos], scheme, created_at
    )


def commit_leaves(
    supplier_leaves: Sequence[bytes], ubo_leaves: Sequence[bytes], scheme: RootScheme, created_at: str
) -> Commitments:
    """Roots and counts over already hashed leaves (in file order)."""
    s_root, u_root = list_root(supplier_leaves, scheme), list_root(ubo_leaves, scheme)
    return Commitments(
        scheme=scheme,
        supplier_root="0x" + s_root.hex(),
        ubo_root="0x" + u_root.hex(),
        company_commitment_root="0x" + company_root(s_root, u_root, scheme).hex(),
        supplier_count=len(supplier_leaves),
        ubo_count=len(ubo_leaves),
        created_at=created_at,
    )


def supplier_tree(suppliers: Sequence[Supplier]) -> MerkleTree:
    """The supplier tree, for inclusion proofs the prover may choose to hand out."""
    return MerkleTree([supplier_leaf(s) for s in suppliers])
