"""Name screening against sanctions lists, with proofs a verifier can check from the public root alone.

Owns: the sorted sanctions
tree (``merkle-blake3-v1`` over the byte-sorted, de-duplicated keys), membership and non-membership
proofs and their pure verifiers, near-match search (Indel similarity, exact Pass-Join segment blocking),
:meth:`SanctionsList.screen`, and the ``cap-lists.v1`` file (``save_lists`` / ``load_lists``).

Non-membership rests on the tree being sorted: whoever publishes a root publishes the lists file too,
and :func:`load_lists` refuses keys that are unsorted or do not rebuild the root. Names become keys in
:mod:`core.name_keys`; a list carries its :class:`KeyVersion` and screens every name under it.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.canonical import pretty_bytes
from core.digest import digests_equal
from core.documents import parse_model
from core.errors import IntegrityError, InvalidInputError, NotFoundError
from core.fsio import atomic_write
from core.merkle import EMPTY_ROOT, InclusionProof, MerkleTree, merkle_root, verify_inclusion
from core.name_keys import LEGAL_FORMS as LEGAL_FORMS
from core.name_keys import KeyVersion, key_of_normalised, normalise_name
from core.name_keys import screening_key as screening_key
from core.sanctions import ListSource, RiskLevel, SanctionsEntry, jurisdiction_root

LISTS_SCHEMA = "cap-lists.v1"
HEX32 = r"^0x[0-9a-f]{64}$"


# ---------------------------------------------------------------------------------------- proofs


class Neighbour(BaseModel):
    """A listed key adjacent to the absent one, with its inclusion proof."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    key: str = Field(pattern=HEX32)
    proof: InclusionProof


class NonMembershipProof(BaseModel):
    """Key k is absent: its sorted neighbours sit at consecutive indices (or at one end of the tree)."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(pattern=HEX32)
    tree_size: int = Field(ge=0)
    predecessor: Neighbour | None = None
    successor: Neighbour | None = None


class MembershipProof(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(pattern=HEX32)
    proof: InclusionProof


def _neighbour_ok(n: Neighbour, tree_size: int, root: bytes) -> bool:
    return (
        n.proof.index == n.index
        and n.proof.tree_size == tree_size
        and verify_inclusion(bytes.fromhex(n.key[2:]), n.proof, root)
    )


def verify_non_membership(key: bytes, proof: NonMembershipProof, root: bytes) -> bool:
    """True iff ``proof`` shows ``key`` is not a leaf of the sorted tree with ``root``. Pure, no I/O."""
    if len(key) != 32 or not digests_equal(proof.key, "0x" + key.hex()):
        return False
    pred, succ, size = proof.predecessor, proof.successor, proof.tree_size
    if size == 0:
        return pred is None and succ is None and digests_equal(root, EMPTY_ROOT)
    if pred is not None and not (bytes.fromhex(pred.key[2:]) < key and _neighbour_ok(pred, size, root)):
        return False
    if succ is not None and not (key < bytes.fromhex(succ.key[2:]) and _neighbour_ok(succ, size, root)):
        return False
    if pred is not None and succ is not None:
        return succ.index == pred.index + 1
    if pred is not None:
        return pred.index == size - 1
    return succ is not None and succ.index == 0


def verify_membership(key: bytes, proof: MembershipProof, root: bytes) -> bool:
    """True iff ``proof`` shows ``key`` is a leaf of the tree with ``root``. Pure, no I/O."""
    return (
        len(key) == 32
        and digests_equal(proof.key, "0x" + key.hex())
        and verify_inclusion(key, proof.proof, root)
    )


# -------------------------------------------------------------------------------------- findings


class FindingKind(StrEnum):
    VIOLATION = "violation"
    POSSIBLE_MATCH = "possible_match"


class ScreeningHit(BaseModel):
    """An exact key match: the screened name is listed."""

    model_config = ConfigDict(frozen=True)

    kind: FindingKind = FindingKind.VIOLATION
    query_index: int
    query: str
    key: str
    refs: tuple[str, ...]


class PossibleMatch(BaseModel):
    """A listed name similar to the query (``score_bp`` in basis points, 10000 = identical)."""

    model_config = ConfigDict(frozen=True)

    kind: FindingKind = FindingKind.POSSIBLE_MATCH
    query_index: int | None = None
    query: str
    candidate: str
    score_bp: int
    refs: tuple[str, ...]


class ScreeningReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    sanctions_root: str
    screened: int
    threshold_bp: int
    hits: tuple[ScreeningHit, ...]
    possible_matches: tuple[PossibleMatch, ...]

    @property
    def clear(self) -> bool:
        return not self.hits and not self.possible_matches


def _threshold_bp(threshold: float) -> int:
    if not 0.5 < threshold <= 1.0:
        raise InvalidInputError(
            f"threshold {threshold} out of range", field="threshold", expected="0.5 < threshold <= 1.0"
        )
    return round(threshold * 10000)


def _max_distance(length: int, other: int, bp: int) -> int:
    """Largest Indel distance that still scores ≥ ``bp`` for two strings of these lengths."""
    return ((10000 - bp) * (length + other)) // 10000


def _distance_bound(length: int, bp: int) -> int:
    """Largest Indel distance any ≥ ``bp`` partner of a ``length``-char string can have."""
    bound, other = 0, length
    while other - length <= _max_distance(length, other, bp):
        bound = _max_distance(length, other, bp)
        other += 1
    return bound


def _parts(length: int, tau: int) -> list[tuple[int, int]]:
    """Even cut of ``length`` characters into tau+1 segments: (start, size), shorter ones first."""
    count = tau + 1
    small, extra = divmod(length, count)
    parts, start = [], 0
    for i in range(count):
        size = small + (1 if i >= count - extra else 0)
        parts.append((start, size))
        start += size
    return parts


class _SegmentIndex:
    """Pass-Join index (Li et al., VLDB 2011) of names for one threshold: exact blocking for near matches.

    A name of length l is cut into tau+1 segments, tau = the largest Indel distance any partner of it
    may have at this threshold (Indel ≥ Levenshtein, so Levenshtein bounds hold). A query within tau
    edits holds some segment i whole, starting within Pass-Join's multi-match-aware window, so looking
    up the query's substrings at those starts finds every partner (no false negatives).
    """

    def __init__(self, names: Sequence[str], bp: int) -> None:
        self.bp = bp
        self.parts: dict[int, list[tuple[int, int]]] = {}
        self.segments: dict[int, list[dict[str, list[int]]]] = {}
        self.short: list[int] = []  # too short to cut into tau+1 non-empty segments: always checked
        for i, name in enumerate(names):
            length = len(name)
            if length not in self.parts:
                tau = _distance_bound(length, bp)
                self.parts[length] = _parts(length, tau) if length > tau else []
                self.segments[length] = [{} for _ in self.parts[length]]
            if not self.parts[length]:
                self.short.append(i)
            for level, (start, size) in zip(self.segments[length], self.parts[length], strict=True):
                level.setdefault(name[start : start + size], []).append(i)

    def candidates(self, query: str) -> set[int]:
        found = set(self.short)
        size_q = len(query)
        reach = _distance_bound(size_q, self.bp)
        for length in range(max(1, size_q - reach), size_q + reach + 1):
            parts = self.parts.get(length)
            if not parts or abs(size_q - length) > _max_distance(size_q, length, self.bp):
                continue
            tau, delta = len(parts) - 1, size_q - length
            for i, ((start, size), level) in enumerate(zip(parts, self.segments[length], strict=True)):
                low = max(start - i, start + delta - (tau - i), 0)
                high = min(start + i, start + delta + (tau - i), size_q - size)
                for pos in range(low, high + 1):
                    posting = level.get(query[pos : pos + size])
                    if posting:
                        found.update(posting)
        return found


# -------------------------------------------------------------------------------- sanctions list


class SanctionsList:
    """Sorted screening keys, their tree and the normalised names behind them (for near matches).

    ``key_version`` says how names became keys; every name screened against the list is normalised
    under the same version (:meth:`normalise`, :meth:`key_of`), so the two sides cannot mix.
    """

    def __init__(
        self,
        names: Mapping[str, Iterable[str]],
        sources: Sequence[str],
        key_version: KeyVersion = KeyVersion.V1,
    ) -> None:
        self.key_version = key_version
        pairs = sorted((key_of_normalised(n), n, tuple(sorted(set(refs)))) for n, refs in names.items())
        self.keys: tuple[bytes, ...] = tuple(p[0] for p in pairs)
        self.names: tuple[str, ...] = tuple(p[1] for p in pairs)
        self.refs: tuple[tuple[str, ...], ...] = tuple(p[2] for p in pairs)
        self.sources = tuple(sources)
        self.tree = MerkleTree(self.keys)
        self._indexes: dict[int, _SegmentIndex] = {}

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[SanctionsEntry],
        sources: Sequence[str],
        key_version: KeyVersion = KeyVersion.V1,
    ) -> SanctionsList:
        """Every primary name and alias contributes a key. Raises InvalidInputError for a nameless name."""
        names: dict[str, set[str]] = {}
        for entry in entries:
            for name in entry.names:
                normalised = normalise_name(name, key_version)
                if not normalised:
                    raise InvalidInputError(
                        f"name {name[:60]!r} of {entry.ref} has no letters or digits",
                        field="name",
                        entry=entry.ref,
                        expected="a name",
                    )
                names.setdefault(normalised, set()).add(entry.ref)
        return cls(names, sources, key_version)

    def normalise(self, name: str) -> str:
        """``name`` normalised under this list's key version."""
        return normalise_name(name, self.key_version)

    def key_of(self, name: str) -> bytes:
        """The screening key of ``name`` under this list's key version. Raises InvalidInputError."""
        return screening_key(name, self.key_version)

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def root_hex(self) -> str:
        return self.tree.root_hex

    @property
    def count(self) -> int:
        return len(self.keys)

    def _position(self, key: bytes) -> int:
        if len(key) != 32:
            raise InvalidInputError(f"key has {len(key)} bytes", field="key", expected="32 bytes")
        return bisect.bisect_left(self.keys, key)

    def contains(self, key: bytes) -> bool:
        i = self._position(key)
        return i < self.count and self.keys[i] == key

    def prove_present(self, key: bytes) -> MembershipProof:
        """Inclusion proof of a listed key. Raises InvalidInputError(code="key_not_listed") otherwise."""
        i = self._position(key)
        if not (i < self.count and self.keys[i] == key):
            raise InvalidInputError("key is not listed", code="key_not_listed", key="0x" + key.hex())
        return MembershipProof(key="0x" + key.hex(), proof=self.tree.prove(i))

    def _neighbour(self, index: int) -> Neighbour:
        return Neighbour(index=index, key="0x" + self.keys[index].hex(), proof=self.tree.prove(index))

    def prove_absent(self, key: bytes) -> NonMembershipProof:
        """Non-membership proof. Raises InvalidInputError(code="key_is_listed") for a listed key."""
        i = self._position(key)
        if i < self.count and self.keys[i] == key:
            raise InvalidInputError("key is listed", code="key_is_listed", key="0x" + key.hex())
        return NonMembershipProof(
            key="0x" + key.hex(),
            tree_size=self.count,
            predecessor=self._neighbour(i - 1) if i > 0 else None,
            successor=self._neighbour(i) if i < self.count else None,
        )

    def _near(self, query: str, bp: int) -> list[PossibleMatch]:
        # Only the prover and `cap screen` search near matches: verifying never loads rapidfuzz.
        from rapidfuzz import process
        from rapidfuzz.distance import Indel

        bound = _distance_bound(len(query), bp)
        if bp not in self._indexes:
            self._indexes[bp] = _SegmentIndex(self.names, bp)
        ids = list(self._indexes[bp].candidates(query))
        out = []
        for name, distance, pos in process.extract(
            query,
            list(map(self.names.__getitem__, ids)),
            scorer=Indel.distance,
            score_cutoff=bound,
            limit=None,
        ):
            total = len(query) + len(name)
            if distance <= _max_distance(len(query), len(name), bp):
                out.append(
                    PossibleMatch(
                        query=query,
                        candidate=name,
                        refs=self.refs[ids[pos]],
                        score_bp=(10000 * (total - int(distance))) // total,
                    )
                )
        return sorted(out, key=lambda m: (-m.score_bp, m.candidate))

    def near_matches(self, name: str, threshold: float = 0.9) -> list[PossibleMatch]:
        """Listed names whose Indel similarity to the normalised ``name`` is ≥ ``threshold`` (all of them)."""
        query = self.normalise(name)
        return self._near(query, _threshold_bp(threshold)) if query else []

    def screen(self, names: Sequence[str], threshold: float = 0.9) -> ScreeningReport:
        """Exact hits (violations) and every other near match (``possible_match``), none dropped.

        Raises InvalidInputError for a name with no letters or digits or a threshold out of range.
        """
        bp = _threshold_bp(threshold)
        hits: list[ScreeningHit] = []
        possible: list[PossibleMatch] = []
        for index, name in enumerate(names):
            query = self.normalise(name)
            if not query:
                raise InvalidInputError(
                    f"name {name[:60]!r} has no letters or digits",
                    field=f"names[{index}]",
                    expected="a name with at least one letter or digit",
                )
            key = key_of_normalised(query)
            i = bisect.bisect_left(self.keys, key)
            if i < self.count and self.keys[i] == key:
                hits.append(
                    ScreeningHit(query_index=index, query=query, key="0x" + key.hex(), refs=self.refs[i])
                )
            possible += [
                m.model_copy(update={"query_index": index})
                for m in self._near(query, bp)
                if m.candidate != query
            ]
        return ScreeningReport(
            sanctions_root=self.root_hex,
            screened=len(names),
            threshold_bp=bp,
            hits=tuple(hits),
            possible_matches=tuple(possible),
        )


# ------------------------------------------------------------------------------------- lists file


class ListedName(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    refs: tuple[str, ...]


class ListsFile(BaseModel):
    """The ``cap-lists.v1`` document: public roots plus the keys and names that rebuild them."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    schema_id: str = Field(alias="schema", pattern=f"^{LISTS_SCHEMA}$")
    generated_at: str
    sources: tuple[ListSource, ...]
    sanctions_root: str = Field(pattern=HEX32)
    sanctions_count: int = Field(ge=0)
    key_version: KeyVersion | None = None  # absent: screening-key.v1 (files written before v2 existed)
    keys: tuple[str, ...]
    names: tuple[ListedName, ...]
    high_risk: dict[str, RiskLevel] | None = None
    jurisdiction_root: str | None = Field(default=None, pattern=HEX32)

    @field_validator("generated_at")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        if not value.endswith("Z") or datetime.fromisoformat(value).tzinfo is None:
            raise ValueError("expected an RFC 3339 UTC timestamp such as 2026-01-01T00:00:00Z")
        return value

    @property
    def version(self) -> KeyVersion:
        """The key version the names were normalised with (v1 when the file does not say)."""
        return self.key_version or KeyVersion.V1

    def sanctions_list(self) -> SanctionsList:
        return SanctionsList(
            {n.name: n.refs for n in self.names}, [s.path for s in self.sources], self.version
        )


def build_lists(
    sanctions: SanctionsList,
    sources: Sequence[ListSource],
    now: datetime,
    high_risk: Mapping[str, RiskLevel] | None = None,
) -> ListsFile:
    """The lists document for ``sanctions`` (and optional high-risk levels) generated at ``now``."""
    if now.tzinfo is None:
        raise InvalidInputError("generated_at needs a timezone", field="now", expected="an aware datetime")
    return ListsFile(
        schema=LISTS_SCHEMA,
        generated_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        sources=tuple(sources),
        sanctions_root=sanctions.root_hex,
        sanctions_count=sanctions.count,
        key_version=None if sanctions.key_version is KeyVersion.V1 else sanctions.key_version,
        keys=tuple("0x" + k.hex() for k in sanctions.keys),
        names=tuple(
            ListedName(name=n, refs=r) for n, r in sorted(zip(sanctions.names, sanctions.refs, strict=True))
        ),
        high_risk=dict(sorted(high_risk.items())) if high_risk is not None else None,
        jurisdiction_root=jurisdiction_root(high_risk) if high_risk is not None else None,
    )


def save_lists(path: str | Path, lists: ListsFile) -> Path:
    """Write ``lists`` atomically (pretty canonical JSON)."""
    return atomic_write(path, pretty_bytes(lists) + b"\n")


def _parse_lists(data: bytes, file: str) -> ListsFile:
    return parse_model(ListsFile, data, source=file, what="lists file", expected=f"a {LISTS_SCHEMA} document")


def check_lists(lists: ListsFile, file: str = "lists") -> None:
    """Recompute everything derivable. Raises IntegrityError on any mismatch."""
    keys = [bytes.fromhex(k[2:]) if re.fullmatch(HEX32, k) else b"" for k in lists.keys]
    if any(len(k) != 32 for k in keys) or any(a >= b for a, b in itertools.pairwise(keys)):
        raise IntegrityError("keys are not strictly sorted 0x hex digests", file=file, field="keys")
    if lists.sanctions_count != len(keys):
        raise IntegrityError(
            "sanctions_count does not match keys", file=file, field="sanctions_count", expected=str(len(keys))
        )
    if sorted(key_of_normalised(n.name) for n in lists.names) != keys:
        raise IntegrityError("keys are not the keys of names", file=file, field="names")
    _check_normal_form(lists, file)
    if not digests_equal(lists.sanctions_root, "0x" + merkle_root(keys).hex()):
        raise IntegrityError("sanctions_root does not match keys", file=file, field="sanctions_root")
    if (lists.high_risk is None) != (lists.jurisdiction_root is None):
        raise IntegrityError(
            "high_risk and jurisdiction_root must come together", file=file, field="jurisdiction_root"
        )
    if lists.high_risk is not None and not digests_equal(
        str(lists.jurisdiction_root), jurisdiction_root(lists.high_risk)
    ):
        raise IntegrityError(
            "jurisdiction_root does not match high_risk", file=file, field="jurisdiction_root"
        )


def _check_normal_form(lists: ListsFile, file: str) -> None:
    """Under a v2 label every name must be in v2 normal form: v1 names (still in their own script) there
    would screen suppliers under one rule against keys built under another. (v2 names are valid v1 names,
    so a v1 label needs no such check; v1 files load as fast as before.)"""
    version = lists.version
    if version is KeyVersion.V1:
        return
    for i, listed in enumerate(lists.names):
        if normalise_name(listed.name, version) != listed.name:
            raise IntegrityError(
                f"name {listed.name[:60]!r} is not normalised under {version.value}",
                file=file,
                field=f"names[{i}]",
                expected=f"names normalised under key_version {version.value}",
            )


def parse_lists_bytes(data: bytes, source: str) -> ListsFile:
    """Validate stored lists bytes (a file's or a database's). Raises InvalidInputError or IntegrityError."""
    lists = _parse_lists(data, source)
    check_lists(lists, source)
    return lists


def load_lists(path: str | Path) -> ListsFile:
    """Read and validate a lists file. Raises NotFoundError, InvalidInputError or IntegrityError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFoundError(f"lists file not found: {path}", file=str(path)) from exc
    lists = _parse_lists(data, path.name)
    check_lists(lists, path.name)
    return lists
