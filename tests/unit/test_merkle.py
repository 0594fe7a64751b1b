"""merkle-blake3-v1: RFC 6962 shape, inclusion proofs verify and cannot be moved or altered."""

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.merkle import (
    EMPTY_ROOT,
    InclusionProof,
    MerkleTree,
    inner_node,
    leaf_node,
    merkle_root,
    verify_inclusion,
)


def rfc6962_root(leaves):
    """Reference: the recursive definition (split at the largest power of two below n)."""
    if not leaves:
        return blake3.blake3(b"").digest()
    if len(leaves) == 1:
        return leaf_node(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return inner_node(rfc6962_root(leaves[:k]), rfc6962_root(leaves[k:]))


leaf_lists = st.lists(st.binary(min_size=32, max_size=32), max_size=70)


@given(leaf_lists)
def test_root_matches_recursive_definition(leaves):
    assert MerkleTree(leaves).root == merkle_root(leaves) == rfc6962_root(leaves)


@settings(max_examples=60)
@given(leaf_lists.filter(bool), st.data())
def test_every_inclusion_proof_verifies_and_only_for_its_leaf(leaves, data):
    tree = MerkleTree(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = tree.prove(i)
    assert verify_inclusion(leaves[i], proof, tree.root)
    other = data.draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != leaves[i]))
    assert not verify_inclusion(other, proof, tree.root)
    if len(leaves) > 1:
        moved = proof.model_copy(update={"index": (i + 1) % len(leaves)})
        assert not verify_inclusion(leaves[i], moved, tree.root) or leaves[(i + 1) % len(leaves)] == leaves[i]


def test_empty_root_is_blake3_of_nothing():
    assert EMPTY_ROOT.hex() == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda p: p.model_copy(update={"path": p.path[:-1]}), id="path_truncated"),
        pytest.param(lambda p: p.model_copy(update={"path": [*p.path, p.path[0]]}), id="path_extended"),
        pytest.param(
            lambda p: p.model_copy(update={"path": ["0x" + "00" * 32, *p.path[1:]]}), id="sibling_replaced"
        ),
        # A proof does not commit to tree_size where the path shape is the same (RFC 9162); a size that
        # changes the shape (leaf becomes the last one, or the path must be longer) must fail.
        pytest.param(lambda p: p.model_copy(update={"tree_size": 7}), id="tree_size_makes_leaf_last"),
        pytest.param(lambda p: p.model_copy(update={"tree_size": 100}), id="tree_size_needs_longer_path"),
        pytest.param(lambda p: p.model_copy(update={"index": 7}), id="index_moved"),
        pytest.param(lambda p: p.model_copy(update={"path": ["zz", *p.path[1:]]}), id="path_not_hex"),
    ],
)
def test_tampered_inclusion_proof_fails(mutate):
    leaves = [bytes([i]) * 32 for i in range(11)]
    tree = MerkleTree(leaves)
    proof = tree.prove(6)
    assert verify_inclusion(leaves[6], proof, tree.root)
    assert not verify_inclusion(leaves[6], mutate(proof), tree.root)


def test_prove_outside_tree_raises():
    with pytest.raises(IndexError):
        MerkleTree([b"\x00" * 32]).prove(1)
    assert not verify_inclusion(b"\x00" * 32, InclusionProof(index=1, tree_size=1, path=[]), EMPTY_ROOT)
