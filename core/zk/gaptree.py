"""The sanctions gap tree: a fixed-depth Poseidon tree over the gaps between sorted listed keys.

The listed keys are the first 31 bytes (``key248``, big-endian) of the ``cap-lists.v1`` screening keys, sorted
and de-duplicated. With the sentinels 0 and 2^248 they bound ``m + 1`` gaps; gap ``i`` is the leaf
``Poseidon(lo_i, hi_i)``. Leaves are padded with 0 to ``2^depth``. A key is unlisted iff it lies strictly
inside some gap, which is what the v3 circuit proves for every committed supplier
(circuits/screen_batch.circom).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from core.errors import InvalidInputError
from core.zk.poseidon import hash2

KEY_BITS = 248
KEY_BYTES = KEY_BITS // 8
UPPER_SENTINEL = 1 << KEY_BITS


def key248(key: bytes) -> int:
    """The field form of a 32-byte screening key: its first 31 bytes, big-endian (order-preserving)."""
    if len(key) != 32:
        raise InvalidInputError("screening key must be 32 bytes", field="key", expected="32-byte BLAKE3 key")
    return int.from_bytes(key[:KEY_BYTES], "big")


@dataclass(frozen=True)
class GapPath:
    """Where a key falls: the gap ``(lo, hi)``, its index and its Merkle path (siblings bottom-up)."""

    index: int
    lo: int
    hi: int
    siblings: tuple[int, ...]
    bits: tuple[int, ...]


class GapTree:
    """The gap tree over ``keys`` (already ``key248`` integers) at a fixed ``depth``.

    Raises InvalidInputError when two keys share a 248-bit prefix (so the list cannot be represented), when a
    key is out of range, or when ``len(keys) + 1`` gaps do not fit ``2^depth`` leaves.
    """

    def __init__(self, keys: Iterable[int], depth: int) -> None:
        listed = list(keys)
        ordered = sorted(set(listed))
        if len(ordered) != len(listed):
            raise InvalidInputError(
                "two listed keys share a 248-bit prefix; the gap tree cannot represent the list",
                field="keys",
                expected="distinct 31-byte key prefixes",
            )
        if ordered and not (ordered[0] > 0 and ordered[-1] < UPPER_SENTINEL):
            raise InvalidInputError("listed key out of range", field="keys", expected="0 < key248 < 2^248")
        if len(ordered) + 1 > 1 << depth:
            raise InvalidInputError(
                f"{len(ordered)} listed keys need more than 2^{depth} gaps",
                field="depth",
                expected=f"depth with 2^depth >= {len(ordered) + 1}",
            )
        self.depth = depth
        self.bounds: tuple[int, ...] = (0, *ordered, UPPER_SENTINEL)
        leaves = [hash2(self.bounds[i], self.bounds[i + 1]) for i in range(len(self.bounds) - 1)]
        self._levels = _levels(leaves, depth)

    @property
    def root(self) -> int:
        return self._levels[-1][0]

    @property
    def listed(self) -> Sequence[int]:
        return self.bounds[1:-1]

    def contains(self, key: int) -> bool:
        """Whether ``key`` is a listed key (or a sentinel)."""
        i = bisect.bisect_left(self.bounds, key)
        return i < len(self.bounds) and self.bounds[i] == key

    def path_for(self, key: int) -> GapPath:
        """The gap strictly containing ``key``. Raises InvalidInputError when the key is listed (a hit)."""
        if not 0 <= key < UPPER_SENTINEL:
            raise InvalidInputError("key out of range", field="key", expected="0 <= key248 < 2^248")
        if self.contains(key):
            raise InvalidInputError("key is listed: no gap contains it", code="listed_key", field="key")
        index = bisect.bisect_right(self.bounds, key) - 1
        return self.path_at(index)

    def path_at(self, index: int) -> GapPath:
        siblings, bits = merkle_path(self._levels, index)
        return GapPath(index, self.bounds[index], self.bounds[index + 1], siblings, bits)


@cache
def zero_hashes(depth: int) -> tuple[int, ...]:
    """``z[i]``: the root of an all-zero subtree of height ``i`` (``z[0] = 0``, the padding leaf)."""
    zeros = [0]
    for _ in range(depth):
        zeros.append(hash2(zeros[-1], zeros[-1]))
    return tuple(zeros)


def _levels(leaves: list[int], depth: int) -> list[list[int]]:
    """All non-padding levels of a depth-``depth`` tree over ``leaves`` padded with 0."""
    zeros = zero_hashes(depth)
    levels = [list(leaves) or [0]]
    for height in range(depth):
        below = levels[-1]
        if len(below) % 2:
            below = [*below, zeros[height]]
        levels.append([hash2(below[i], below[i + 1]) for i in range(0, len(below), 2)])
    return levels


def merkle_path(levels: Sequence[Sequence[int]], index: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Siblings and direction bits (1 = node is the right child) of leaf ``index``, bottom-up."""
    depth = len(levels) - 1
    zeros = zero_hashes(depth)
    siblings: list[int] = []
    bits: list[int] = []
    for height in range(depth):
        row = levels[height]
        sibling = index ^ 1
        siblings.append(row[sibling] if sibling < len(row) else zeros[height])
        bits.append(index & 1)
        index >>= 1
    return tuple(siblings), tuple(bits)


def tree_root(leaves: Sequence[int], depth: int) -> int:
    """Root of the depth-``depth`` Poseidon tree over ``leaves`` padded with 0."""
    if len(leaves) > 1 << depth:
        raise InvalidInputError("too many leaves for the tree depth", field="leaves")
    return _levels(list(leaves), depth)[-1][0]
