"""Batch witness inputs for the v3 screening circuit, and the Poseidon values the circuit recomputes.

A committed supplier enters the circuit as a :class:`ScreenedLeaf`: its ``key248``, a 248-bit salt derived
from the prover's secret salt seed, its BLAKE3 supplier leaf reduced mod p, its tier and its jurisdiction
code. The slot commitment ``Poseidon(key248, salt, blake_leaf, tier * 2^16 + jurisdiction)`` binds the
screening key and the two attributes the circuit proves facts about (max tier, high-risk count) to the same
record the BLAKE3 commitment holds, so an auditor given one opening can check both trees agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import blake3

from core.errors import InvalidInputError
from core.zk.gaptree import KEY_BYTES, GapTree, tree_root
from core.zk.poseidon import P, poseidon

_SALT_CONTEXT = "cap-verifier 2026 zk supplier salt v1"
ATTRIBUTE_BITS = 16
RISK_CODES_PER_WORD = 15
RISK_PADDING = 0xFFFF
"""Fills the unused risk codes: no jurisdiction has this code (two letters are at most 0x5A5A)."""


@dataclass(frozen=True)
class Circuit:
    """One compiled shape of circuits/screen_batch.circom: ``batch_size`` slots, gap tree ``depth``."""

    batch_size: int
    depth: int
    key_bits: int = 248
    risk_words: int = 4

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.batch_size & (self.batch_size - 1):
            raise InvalidInputError(
                "batch size must be a power of two", field="batch_size", expected="1, 2, 4, ..."
            )
        if not 1 <= self.depth <= 32:
            raise InvalidInputError("gap tree depth out of range", field="depth", expected="1..32")

    @property
    def name(self) -> str:
        return f"screen-b{self.batch_size}-d{self.depth}"

    @property
    def levels(self) -> int:
        return self.batch_size.bit_length() - 1

    @property
    def risk_codes(self) -> int:
        """How many high-risk jurisdictions the circuit can check against."""
        return self.risk_words * RISK_CODES_PER_WORD


@dataclass(frozen=True)
class ScreenedLeaf:
    """One committed supplier as the circuit sees it (all three values are private)."""

    key: int
    salt: int
    blake_leaf: int
    tier: int = 0
    jurisdiction: int = 0

    def __post_init__(self) -> None:
        for name in ("tier", "jurisdiction"):
            if not 0 <= getattr(self, name) < 1 << ATTRIBUTE_BITS:
                raise InvalidInputError(
                    f"{name} does not fit the circuit", field=name, expected=f"0 <= {name} < 2^16"
                )

    @cached_property
    def commitment(self) -> int:
        attributes = self.tier << ATTRIBUTE_BITS | self.jurisdiction
        return poseidon((self.key, self.salt, self.blake_leaf, attributes))


def jurisdiction_code(alpha2: str) -> int:
    """The circuit's code of an ISO 3166 alpha-2 jurisdiction: 256 * first letter + second letter (ASCII);
    ``""`` (no jurisdiction, UBOs) is 0. Raises InvalidInputError for anything else."""
    if alpha2 == "":
        return 0
    if len(alpha2) != 2 or not (alpha2.isascii() and alpha2.isalpha() and alpha2.isupper()):
        raise InvalidInputError(
            f"jurisdiction {alpha2!r} is not an alpha-2 code", field="jurisdiction", expected="e.g. DE"
        )
    return ord(alpha2[0]) << 8 | ord(alpha2[1])


def risk_words(jurisdictions: Iterable[str], circuit: Circuit) -> tuple[int, ...]:
    """The public ``riskPacked`` words: the sorted distinct codes of ``jurisdictions``, padded with
    :data:`RISK_PADDING` to ``circuit.risk_codes``, 15 per word, 16 bits each, little-endian.

    Raises InvalidInputError when there are more jurisdictions than the circuit holds.
    """
    codes = sorted({jurisdiction_code(j) for j in jurisdictions})
    if len(codes) > circuit.risk_codes:
        raise InvalidInputError(
            f"{len(codes)} high-risk jurisdictions, the circuit checks at most {circuit.risk_codes}",
            field="high_risk",
            expected=f"<= {circuit.risk_codes} HIGH jurisdictions",
        )
    codes += [RISK_PADDING] * (circuit.risk_codes - len(codes))
    return tuple(
        sum(codes[w * RISK_CODES_PER_WORD + c] << (ATTRIBUTE_BITS * c) for c in range(RISK_CODES_PER_WORD))
        for w in range(circuit.risk_words)
    )


def risk_alpha2(words: Sequence[int]) -> tuple[str, ...]:
    """The sorted alpha-2 jurisdictions packed in ``words`` (what the evidence names)."""
    return tuple(sorted(chr(code >> 8) + chr(code & 0xFF) for code in risk_codes(words)))


def risk_codes(words: Sequence[int]) -> set[int]:
    """The jurisdiction codes packed in ``words`` (inverse of :func:`risk_words`, padding dropped)."""
    mask = (1 << ATTRIBUTE_BITS) - 1
    codes = {w >> (ATTRIBUTE_BITS * c) & mask for w in words for c in range(RISK_CODES_PER_WORD)}
    return codes - {RISK_PADDING}


def blake_field(leaf: bytes) -> int:
    """A 32-byte BLAKE3 supplier leaf as a field element (big-endian, reduced mod p)."""
    return int.from_bytes(leaf, "big") % P


def derive_salt(seed: bytes, index: int) -> int:
    """The 248-bit salt of committed row ``index``, derived from the prover's secret 32-byte ``seed``."""
    if len(seed) != 32:
        raise InvalidInputError("salt seed must be 32 bytes", field="salt_seed", expected="32 random bytes")
    mac = blake3.blake3(
        index.to_bytes(8, "big"), key=blake3.blake3(seed, derive_key_context=_SALT_CONTEXT).digest()
    )
    return int.from_bytes(mac.digest()[:KEY_BYTES], "big")


def batches(leaves: Sequence[ScreenedLeaf], batch_size: int) -> list[list[ScreenedLeaf]]:
    """Consecutive batches in row order; only the last may be partial. At least one batch (possibly empty)."""
    chunks = [list(leaves[i : i + batch_size]) for i in range(0, len(leaves), batch_size)]
    return chunks or [[]]


def batch_root(batch: Sequence[ScreenedLeaf], circuit: Circuit) -> int:
    """The root the circuit outputs for ``batch``: the slot commitments padded with 0 leaves."""
    _check_batch(batch, circuit)
    return tree_root([leaf.commitment for leaf in batch], circuit.levels)


def batch_outputs(
    batch: Sequence[ScreenedLeaf], circuit: Circuit, risk: Sequence[int]
) -> tuple[int, int, int]:
    """What the circuit outputs for ``batch`` under the ``risk`` words: batch root, max tier (0 when empty),
    number of slots in a high-risk jurisdiction."""
    high = risk_codes(risk)
    return (
        batch_root(batch, circuit),
        max((leaf.tier for leaf in batch), default=0),
        sum(leaf.jurisdiction in high for leaf in batch),
    )


def batch_input(
    batch: Sequence[ScreenedLeaf], circuit: Circuit, gaps: GapTree, risk: Sequence[int]
) -> dict[str, Any]:
    """The circuit's input JSON (decimal strings, as snarkjs reads them) for one batch.

    Raises InvalidInputError (code ``listed_key``) when a key is listed: no honest proof exists then.
    """
    _check_batch(batch, circuit)
    if gaps.depth != circuit.depth:
        raise InvalidInputError(
            "gap tree depth does not match the circuit", field="depth", expected=str(circuit.depth)
        )
    if len(risk) != circuit.risk_words:
        raise InvalidInputError(
            "risk words do not match the circuit", field="risk", expected=f"{circuit.risk_words} words"
        )
    zero_path = ["0"] * circuit.depth
    scalars = ("enabled", "key", "salt", "blakeLeaf", "tier", "jurisdiction", "lo", "hi")
    rows: dict[str, list[Any]] = {k: [] for k in (*scalars, "siblings", "pathBits")}
    for slot in range(circuit.batch_size):
        if slot < len(batch):
            leaf = batch[slot]
            gap = gaps.path_for(leaf.key)
            values = [1, leaf.key, leaf.salt, leaf.blake_leaf, leaf.tier, leaf.jurisdiction, gap.lo, gap.hi]
            siblings, bits = [str(v) for v in gap.siblings], [str(v) for v in gap.bits]
        else:
            values, siblings, bits = [0] * len(scalars), zero_path, zero_path
        for name, value in zip(scalars, values, strict=True):
            rows[name].append(str(value))
        rows["siblings"].append(siblings)
        rows["pathBits"].append(bits)
    return {
        "gapRoot": str(gaps.root),
        "activeCount": str(len(batch)),
        "riskPacked": [str(w) for w in risk],
        **rows,
    }


def _check_batch(batch: Sequence[ScreenedLeaf], circuit: Circuit) -> None:
    if len(batch) > circuit.batch_size:
        raise InvalidInputError(
            "batch larger than the circuit", field="batch", expected=f"<= {circuit.batch_size}"
        )
