"""The ``merkle-blake3-v1`` tree: RFC 6962 shape over 32-byte leaf digests, BLAKE3 nodes.

leaf node = BLAKE3(0x00 || leaf), inner node = BLAKE3(0x01 || left || right), empty tree =
BLAKE3(""). The tree is built bottom-up (pairing adjacent nodes and promoting an odd last node),
which yields exactly the RFC 6962 shape that splits at the largest power of two below n.
Inclusion proofs follow RFC 9162 §2.1.3; verification needs only the root.
"""

from __future__ import annotations

from collections.abc import Sequence

import blake3
from pydantic import BaseModel, ConfigDict, Field

from core.digest import blake3_raw

SCHEME = "merkle-blake3-v1"
EMPTY_ROOT = blake3_raw(b"")
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_node(leaf: bytes) -> bytes:
    return blake3.blake3(_LEAF + leaf).digest()


def inner_node(left: bytes, right: bytes) -> bytes:
    return blake3.blake3(_NODE + left + right).digest()


class InclusionProof(BaseModel):
    """Audit path for one leaf: ``path`` holds ``0x`` hex sibling hashes from the leaf upwards."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    path: list[str]


class MerkleTree:
    """All levels of a tree, so that any inclusion proof can be cut without rehashing."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        level = [blake3.blake3(_LEAF + leaf).digest() for leaf in leaves]
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            nxt = [
                blake3.blake3(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
            ]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def size(self) -> int:
        return len(self.levels[0])

    @property
    def root(self) -> bytes:
        return self.levels[-1][0] if self.size else EMPTY_ROOT

    @property
    def root_hex(self) -> str:
        return "0x" + self.root.hex()

    def prove(self, index: int) -> InclusionProof:
        """Inclusion proof of leaf ``index``. Raises ``IndexError`` outside the tree."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} outside tree of size {self.size}")
        path: list[str] = []
        i = index
        for level in self.levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                path.append("0x" + level[sibling].hex())
            i //= 2
        return InclusionProof(index=index, tree_size=self.size, path=path)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the tree over ``leaves`` without keeping levels (same result as ``MerkleTree``)."""
    level = [blake3.blake3(_LEAF + leaf).digest() for leaf in leaves]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [blake3.blake3(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root_from_proof(leaf: bytes, proof: InclusionProof) -> bytes | None:
    """Recompute the root from ``leaf`` and its proof (RFC 9162 §2.1.3.2); ``None`` if malformed."""
    if proof.index >= proof.tree_size:
        return None
    fn, sn = proof.index, proof.tree_size - 1
    node = leaf_node(leaf)
    try:
        path = [bytes.fromhex(p[2:]) for p in proof.path if p.startswith("0x")]
    except ValueError:
        return None
    if len(path) != len(proof.path) or any(len(p) != 32 for p in path):
        return None
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            node = inner_node(sibling, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            node = inner_node(node, sibling)
        fn >>= 1
        sn >>= 1
    return node if sn == 0 else None


def verify_inclusion(leaf: bytes, proof: InclusionProof, root: bytes) -> bool:
    """True iff ``proof`` shows ``leaf`` at ``proof.index`` in a tree of ``tree_size`` with ``root``."""
    computed = root_from_proof(leaf, proof)
    return computed is not None and computed == root
