"""Batch witness inputs for the v3 screening circuit, and the Poseidon values the circuit recomputes.

A committed supplier enters the circuit as a :class:`ScreenedLeaf`: its ``key248``, a 248-bit salt derived
from the prover's secret salt seed, and its BLAKE3 supplier leaf reduced mod p. The slot commitment
``Poseidon(key248, salt, blake_leaf)`` binds the screening key to the same record the BLAKE3 commitment holds,
so an auditor given one opening can check both trees agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import blake3

from core.errors import InvalidInputError
from core.zk.gaptree import KEY_BYTES, GapTree, tree_root
from core.zk.poseidon import P, poseidon

_SALT_CONTEXT = "cap-verifier 2026 zk supplier salt v1"


@dataclass(frozen=True)
class Circuit:
    """One compiled shape of circuits/screen_batch.circom: ``batch_size`` slots, gap tree ``depth``."""

    batch_size: int
    depth: int
    key_bits: int = 248

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


@dataclass(frozen=True)
class ScreenedLeaf:
    """One committed supplier as the circuit sees it (all three values are private)."""

    key: int
    salt: int
    blake_leaf: int

    @cached_property
    def commitment(self) -> int:
        return poseidon((self.key, self.salt, self.blake_leaf))


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


def batch_input(batch: Sequence[ScreenedLeaf], circuit: Circuit, gaps: GapTree) -> dict[str, Any]:
    """The circuit's input JSON (decimal strings, as snarkjs reads them) for one batch.

    Raises InvalidInputError (code ``listed_key``) when a key is listed: no honest proof exists then.
    """
    _check_batch(batch, circuit)
    if gaps.depth != circuit.depth:
        raise InvalidInputError(
            "gap tree depth does not match the circuit", field="depth", expected=str(circuit.depth)
        )
    zero_path = ["0"] * circuit.depth
    rows: dict[str, list[Any]] = {
        k: [] for k in ("enabled", "key", "salt", "blakeLeaf", "lo", "hi", "siblings", "pathBits")
    }
    for slot in range(circuit.batch_size):
        if slot < len(batch):
            leaf = batch[slot]
            gap = gaps.path_for(leaf.key)
            values = [1, leaf.key, leaf.salt, leaf.blake_leaf, gap.lo, gap.hi]
            siblings, bits = [str(v) for v in gap.siblings], [str(v) for v in gap.bits]
        else:
            values, siblings, bits = [0] * 6, zero_path, zero_path
        for name, value in zip(("enabled", "key", "salt", "blakeLeaf", "lo", "hi"), values, strict=True):
            rows[name].append(str(value))
        rows["siblings"].append(siblings)
        rows["pathBits"].append(bits)
    return {"gapRoot": str(gaps.root), "activeCount": str(len(batch)), **rows}


def _check_batch(batch: Sequence[ScreenedLeaf], circuit: Circuit) -> None:
    if len(batch) > circuit.batch_size:
        raise InvalidInputError(
            "batch larger than the circuit", field="batch", expected=f"<= {circuit.batch_size}"
        )
