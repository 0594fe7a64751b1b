"""Merkle proofs malformed at their edges never verify (core/merkle.py).

``make mutation MODULE=core/merkle.py`` runs these (docs/testing.md has the scores).
"""

import pytest

from core.merkle import InclusionProof, MerkleTree, root_from_proof, verify_inclusion

LEAVES = [bytes([i]) * 32 for i in range(1, 8)]


@pytest.mark.parametrize("size", range(1, 8))
def test_index_equal_to_tree_size_is_outside_the_tree(size):
    """The index bound is strict: leaf ``tree_size`` does not exist (a one-leaf tree would accept it)."""
    tree = MerkleTree(LEAVES[:size])
    last = tree.prove(size - 1)
    beyond = last.model_copy(update={"index": size})
    assert root_from_proof(LEAVES[size - 1], beyond) is None
    assert not verify_inclusion(LEAVES[size - 1], beyond, tree.root)


def test_path_entry_without_0x_prefix_makes_the_proof_malformed():
    """A junk entry must not be silently dropped from the path (the rest would still verify)."""
    tree = MerkleTree(LEAVES[:4])
    proof = tree.prove(2)
    assert verify_inclusion(LEAVES[2], proof, tree.root)
    padded = proof.model_copy(update={"path": [*proof.path, "ab" * 32]})
    assert root_from_proof(LEAVES[2], padded) is None
    assert not verify_inclusion(LEAVES[2], padded, tree.root)


def test_sibling_of_wrong_length_makes_the_proof_malformed():
    tree = MerkleTree(LEAVES[:4])
    proof = tree.prove(1)
    short = proof.model_copy(update={"path": ["0x" + "ab" * 31, *proof.path[1:]]})
    assert root_from_proof(LEAVES[1], short) is None


@pytest.mark.parametrize("index", [-1, 3, 4])
def test_prove_outside_the_tree_names_index_and_size(index):
    tree = MerkleTree(LEAVES[:3])
    with pytest.raises(IndexError, match=rf"leaf index {index} outside tree of size 3"):
        tree.prove(index)


def test_single_leaf_tree_proof_is_the_leaf_itself():
    tree = MerkleTree(LEAVES[:1])
    assert tree.prove(0) == InclusionProof(index=0, tree_size=1, path=[])
    assert verify_inclusion(LEAVES[0], tree.prove(0), tree.root)


SIZES = range(1, 18)


@pytest.mark.parametrize("size", SIZES)
def test_every_proof_of_every_small_tree_verifies_at_its_index_only(size):
    """Deterministic sweep (the Hypothesis test only samples): right-edge promotions up to 17 leaves."""
    leaves = [bytes([i + 1]) * 32 for i in range(size)]
    tree = MerkleTree(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.prove(i)
        assert root_from_proof(leaf, proof) == tree.root, (size, i)
        for j in range(size):
            if j != i:
                moved = proof.model_copy(update={"index": j})
                assert not verify_inclusion(leaf, moved, tree.root), (size, i, j)
